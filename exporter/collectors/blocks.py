"""Families laid out once and filled from arrays at every scrape.

At 100 models × 100 features a rendering has ~330 000 series. As prometheus_client Samples
(a namedtuple and a label dict each, then a lookup in the encoder and a count or a sort in
the series budget) they cost ~7 µs apiece: 2.3 s a rendering (docs/scaling.md). Yet a
model's per-feature series are the same from one rendering to the next; only their values
change. A `SeriesLayout` holds one model's series of a family in order (sample names and
labels, where each series ends, and the text prefixes once the encoder has made them); a
`BlockFamily` pairs layouts with arrays of values. The encoder writes a run with one join
(exposition.py), the series budget counts and cuts runs, not samples (base.py).

``samples`` still gives prometheus_client Samples, built when read (OpenMetrics, tests).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
from prometheus_client.core import Metric
from prometheus_client.samples import Sample


class SeriesLayout:
    """One model's series of one family: ``keys`` (sample name, labels) per line, ``ends``
    the line count after each series (a histogram's series is several lines)."""

    __slots__ = ("ends", "keys", "model", "prefixes")

    def __init__(
        self, model: str | None, keys: list[tuple[str, dict]], ends: list[int] | None = None
    ):
        self.model = model
        self.keys = keys
        self.ends = list(range(1, len(keys) + 1)) if ends is None else ends
        self.prefixes: list[str] | None = None  # the encoder's, made on first use

    @property
    def series(self) -> int:
        return len(self.ends)

    def head(self, series: int) -> SeriesLayout:
        """The first ``series`` series (the series budget's cut)."""
        lines = self.ends[series - 1] if series else 0
        out = SeriesLayout(self.model, self.keys[:lines], self.ends[:series])
        if self.prefixes is not None:
            out.prefixes = self.prefixes[:lines]
        return out


def gauge_layout(
    model: str, name: str, labelnames: Sequence[str], label_values: Sequence[Sequence[str]]
) -> SeriesLayout:
    """One line per label set (gauges, counters: ``name`` with its suffix)."""
    keys = [(name, dict(zip(labelnames, values, strict=True))) for values in label_values]
    return SeriesLayout(model, keys)


class BlockFamily(Metric):
    """A metric family as runs of (layout, values): ``values[i]`` is line ``i``'s value."""

    def __init__(self, name: str, documentation: str, typ: str):
        self.runs: list[tuple[SeriesLayout, np.ndarray]] = []
        super().__init__(name, documentation, typ)

    def add_run(self, layout: SeriesLayout, values: np.ndarray) -> None:
        if len(values) != len(layout.keys):
            raise ValueError(f"{self.name}: {len(values)} values for {len(layout.keys)} lines")
        if layout.keys:
            self.runs.append((layout, values))

    @property
    def samples(self) -> list[Sample]:
        return [
            Sample(name, labels, float(v))
            for layout, values in self.runs
            for (name, labels), v in zip(layout.keys, values.tolist(), strict=True)
        ]

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        # Metric.__init__ sets []; anything else would be ignored silently.
        if value:
            raise TypeError(f"{self.name}: a BlockFamily's series come from its runs")


class LayoutCache:
    """Layouts (with what a collector keeps beside them) by a key the collector chooses
    (model, reference hash, column names...). Bounded: past ``max_entries`` it starts over
    (keys come from the config and references, so only if those churn)."""

    def __init__(self, max_entries: int = 16 * 1024):
        self.max_entries = max_entries
        self._layouts: dict[Hashable, Any] = {}

    def get(self, key: Hashable, build: Callable[..., Any], *args) -> Any:
        """The layout kept for ``key``, else ``build(*args)``'s, kept."""
        layout = self._layouts.get(key)
        if layout is None:
            if len(self._layouts) >= self.max_entries:
                self._layouts.clear()
            layout = self._layouts[key] = build(*args)
        return layout
