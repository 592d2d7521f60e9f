"""Prometheus-style durations ("90s", "1h30m", "30d") to seconds."""

import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "5s", "1h30m" or "30d"; ValueError if malformed."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"invalid duration {text!r} (use e.g. 30s, 5m, 1h, 7d)")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or total <= 0:
        raise ValueError(f"invalid duration {text!r} (use e.g. 30s, 5m, 1h, 7d)")
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact form of a duration, e.g. 3600 -> "1h"."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"
