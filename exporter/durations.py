"""Prometheus durations ("90s", "1h30m", "30d", "500ms") to seconds.

The format is Prometheus' own: whole numbers, units from largest to smallest, each at most
once (``1.5h`` and ``30m1m`` are errors there, so they are here).
"""

import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_ORDER = ("y", "w", "d", "h", "m", "s", "ms")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "5s", "1h30m" or "30d"; ValueError if malformed."""
    match = _DURATION.match(text) if isinstance(text, str) and text else None
    if match is None:
        raise ValueError(
            f"invalid duration {text!r} (whole numbers, units y w d h m s ms from largest "
            "to smallest: e.g. 30s, 1h30m, 7d, 500ms)"
        )
    total = sum(int(n) * _UNITS[u] for n, u in zip(match.groups(), _ORDER, strict=True) if n)
    if total <= 0:
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact form of a duration, e.g. 3600 -> "1h"."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"
