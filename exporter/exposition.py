"""The Prometheus text format, byte for byte as prometheus_client's ``generate_latest``
writes it, at a fraction of the cost: a series' ``name{labels} `` prefix is formatted once
and kept, so a rendering formats only values.

Most series of a rendering are the same from one to the next (a model's features, bins and
versions), and formatting their labels (escaping, sorting) was most of the encoding time:
bench/fleet.py measured 41 900 samples in 600 ms with ``generate_latest``. The cache is
bounded: past ``max_entries`` it starts over (series churn cannot grow it).
"""

from __future__ import annotations

import functools

import numpy as np
from prometheus_client.openmetrics import exposition as om
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from exporter.collectors.base import STATIC
from exporter.collectors.blocks import BlockFamily, SeriesLayout

_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}
_SUFFIXES = {"counter": "_total", "info": "_info"}
_OM_ONLY = ("_created", "_gsum", "_gcount")


# Metric and label names are few and their check (a regular expression) is most of a
# series' prefix: checked once each (bounded caches). Label values are only escaped.
@functools.lru_cache(maxsize=4096)
def _metric_name(name: str) -> str:
    return om.escape_metric_name(name, om.UNDERSCORES)


@functools.lru_cache(maxsize=4096)
def _label_name(name: str) -> str:
    return om.escape_label_name(name, om.UNDERSCORES)


def _prefix(name: str, labels: dict) -> str:
    if not labels:
        return f"{_metric_name(name)} "
    body = ",".join(
        [
            f'{_label_name(k)}="{om._escape(v, om.ALLOWUTF8, False)}"'
            for k, v in sorted(labels.items())
        ]
    )
    return f"{_metric_name(name)}{{{body}}} "


def _run_text(layout: SeriesLayout, values: np.ndarray) -> str:
    """A block's run: its lines, values formatted as ``floatToGoString`` does (Python's
    repr but for infinities, NaN and positive values from 1e6, which Go writes with an
    exponent: those few are formatted one by one)."""
    if layout.prefixes is None:
        layout.prefixes = [_prefix(name, labels) for name, labels in layout.keys]
    values = np.asarray(values, dtype=np.float64)
    floats = values.tolist()
    lines = [f"{p}{v!r}\n" for p, v in zip(layout.prefixes, floats, strict=True)]
    for i in np.flatnonzero(~(np.abs(values) < 1e6)).tolist():
        lines[i] = f"{layout.prefixes[i]}{floatToGoString(floats[i])}\n"
    return "".join(lines)


class TextEncoder:
    def __init__(self, max_entries: int = 500_000):
        self.max_entries = max_entries
        self._static: dict[str, tuple[list, str]] = {}  # family name -> (samples, text)
        # (name, labels) -> [prefix, last value, last line]
        self._prefixes: dict[tuple, list] = {}

    def _line(self, sample) -> str:
        key = (sample.name, tuple(sample.labels.items()))
        entry = self._prefixes.get(key)
        if entry is None:
            if len(self._prefixes) >= self.max_entries:
                self._prefixes.clear()
            entry = self._prefixes[key] = [_prefix(sample.name, sample.labels), None, ""]
        if sample.timestamp is not None:
            value = floatToGoString(sample.value)
            return f"{entry[0]}{value} {int(float(sample.timestamp) * 1000):d}\n"
        value = sample.value
        if value != entry[1] or value != value:  # changed, or NaN (never equal)
            entry[1], entry[2] = value, f"{entry[0]}{floatToGoString(value)}\n"
        # A series whose value did not change (the reference's shares, idle counters) costs
        # one dictionary lookup.
        return entry[2]

    def encode(self, registry: Collector) -> bytes:
        """What ``prometheus_client.generate_latest(registry)`` returns."""
        out: list[str] = []
        for metric in registry.collect():
            static = getattr(metric, STATIC, False)
            if static:
                # A block's runs, else its samples: the same list object, the same text.
                identity = metric.runs if isinstance(metric, BlockFamily) else metric.samples
                kept = self._static.get(metric.name)
                if kept is not None and kept[0] is identity:
                    out.append(kept[1])
                    continue
                start = len(out)
            mname = metric.name + _SUFFIXES.get(metric.type, "")
            mtype = _TYPES.get(metric.type, metric.type)
            doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
            escaped = om.escape_metric_name(mname, om.UNDERSCORES)
            out.append(f"# HELP {escaped} {doc}\n# TYPE {escaped} {mtype}\n")
            if isinstance(metric, BlockFamily):
                out.extend(_run_text(layout, values) for layout, values in metric.runs)
            else:
                self._samples_text(metric, out, doc)
            if static:
                self._static[metric.name] = (identity, "".join(out[start:]))
        return "".join(out).encode("utf-8")

    def _samples_text(self, metric, out: list[str], doc: str) -> None:
        line = self._line
        extra: dict[str, list[str]] = {}
        om_names = {metric.name + s: s for s in _OM_ONLY}
        for s in metric.samples:
            suffix = om_names.get(s.name)
            if suffix is None:
                out.append(line(s))
            else:
                extra.setdefault(suffix, []).append(line(s))
        for suffix, lines in sorted(extra.items()):
            name = om.escape_metric_name(metric.name + suffix, om.UNDERSCORES)
            out.append(f"# HELP {name} {doc}\n# TYPE {name} gauge\n")
            out.extend(lines)
