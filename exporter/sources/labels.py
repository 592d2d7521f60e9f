"""Ground-truth label lines -> (request id, label, timestamp), counting unusable lines.

A line is ``{"request_id": "r-1", "label": 1, "timestamp": ...}`` (field names from
``models[].label_join``); the timestamp is optional. Pure: bytes in, lists out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import msgspec

from exporter.config import LabelJoin


@dataclass
class LabelBatch:
    lines: int = 0
    request_ids: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    invalid: Counter = field(default_factory=Counter)


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
        self._many = msgspec.json.Decoder(list[self._type])
        self.join = join

    def parse(self, data: bytes, oversized: int = 0) -> LabelBatch:
        n = data.count(b"\n")
        batch = LabelBatch(lines=n + oversized)
        if oversized:
            batch.invalid["too_long"] += oversized
        if not n:
            return batch
        try:
            records = self._many.decode(b"[" + data[:-1].replace(b"\n", b",") + b"]")
            if len(records) != n:
                raise msgspec.DecodeError
        except (msgspec.DecodeError, msgspec.ValidationError):
            records = []
            for line in data.split(b"\n")[:-1]:
                try:
                    records.append(self._one.decode(line))
                except msgspec.ValidationError:
                    batch.invalid["missing_field"] += 1
                except msgspec.DecodeError:
                    batch.invalid["not_json"] += 1
        batch.request_ids = [str(r.rid) for r in records]
        batch.labels = [r.label for r in records]
        return batch
