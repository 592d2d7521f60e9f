"""Ground-truth label lines -> (request id, label, timestamp), counting unusable lines.

A line is ``{"request_id": "r-1", "label": 1, "timestamp": ...}`` (field names from
``models[].label_join``); the timestamp is optional. Pure: bytes in, lists out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import msgspec

from exporter.config import LabelJoin
from exporter.sources.jsonlines import classify, decode_lines
from exporter.state.batches import InvalidSample


@dataclass
class LabelBatch:
    lines: int = 0
    request_ids: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    invalid: Counter = field(default_factory=Counter)
    sample: InvalidSample = field(default_factory=InvalidSample)


class LabelParser:
    def __init__(self, join: LabelJoin):
        rename = {"rid": join.request_id_field, "label": join.label_field}
        self._type = msgspec.defstruct(
            "Label",
            [("rid", str | int), ("label", bool | int | float | str)],
            rename=rename,
            gc=False,
        )
        self._one = msgspec.json.Decoder(self._type)
        self.join = join

    def parse(self, data: bytes, oversized: int = 0) -> LabelBatch:
        batch = LabelBatch(lines=data.count(b"\n") + oversized)
        if oversized:
            batch.invalid["too_long"] += oversized
        records = decode_lines(
            data, self._one, lambda line, exc: batch.sample.keep(line, classify(batch.invalid, exc))
        )
        batch.request_ids = [str(r.rid) for r in records]
        batch.labels = [r.label for r in records]
        return batch
