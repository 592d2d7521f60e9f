"""Columnar batches of serving records, as the serving-log parser hands them to state."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np


class InvalidSample:
    """The first invalid line of a chunk and why, for a rate-limited log line."""

    __slots__ = ("_find", "_line", "reason")

    def __init__(self):
        self._line: bytes | None = None
        self._find = None
        self.reason = ""

    def keep(self, line: bytes, reason: str) -> None:
        if self._line is None and self._find is None:
            self._line, self.reason = line, reason

    def keep_found(self, find, reason: str) -> None:
        """A line found only if it is logged (``find()``: a search of the chunk, too dear
        for every chunk when the log takes one line every 10 s)."""
        if self._line is None and self._find is None:
            self._find, self.reason = find, reason

    @property
    def line(self) -> bytes | None:
        if self._line is None and self._find is not None:
            self._line, self._find = self._find(), None
        return self._line


@dataclass
class ParsedBatch:
    """Columns for the valid records of a chunk; rows are records."""

    lines: int = 0
    invalid: Counter = field(default_factory=Counter)
    # Records that are not for us and not broken (another stream, a non-JSON payload).
    ignored: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)  # values of used lines, by field
    sample: InvalidSample = field(default_factory=InvalidSample)  # the first invalid line
    model: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    version: list = field(default_factory=list)  # str; "" when absent
    timestamp: np.ndarray = field(default_factory=lambda: np.empty(0))  # epoch seconds
    latency: np.ndarray = field(default_factory=lambda: np.empty(0))  # seconds, NaN if absent
    error: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    request_id: list = field(default_factory=list)  # str or None
    prediction: list = field(default_factory=list)  # float, str or None
    numeric: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))  # NaN = no value
    numeric_malformed: np.ndarray | None = None  # bool (rows, numeric); None = none malformed
    categorical: list = field(default_factory=list)  # per feature: pa.StringArray (nulls: none)
    categorical_malformed: np.ndarray | None = None
    # Per model index, when the parser builds each model's features apart: (numeric,
    # numeric malformed, categorical, categorical malformed) for that model's records, in
    # order, over its own features (then ``numeric``/``categorical`` above are unused).
    blocks: dict = field(default_factory=dict)
    # The first record dropped after decoding (unknown model, bad timestamp): (its index
    # among the decoded records, why), so that its line can be sampled into the log.
    first_dropped: tuple[int, str] | None = None

    @property
    def records(self) -> int:
        return len(self.model)

    def pick(self, values: list, rows) -> list:
        """The items ``rows`` of one of the batch's per-record lists; the list itself when
        ``rows`` are all the records (one model's batch: ``apply_serving`` hands a model
        its rows in batch order), not a copy item by item (0.06 µs a line each)."""
        if len(rows) == len(self.model):
            return values
        return list(map(values.__getitem__, rows.tolist()))  # Python ints: ~60 ns less each
