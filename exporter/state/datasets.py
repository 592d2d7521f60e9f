"""Per-dataset partitions of profiled files, and their skew and drift."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from exporter.config import Dataset, Model
from exporter.state.compare import profile_scores
from exporter.state.profiles import STATUSES, ColumnSpecs, Profile
from exporter.state.reference import ReferenceProfile

MAX_PARTITIONS = 100  # newest partitions kept (by sort order); older ones are forgotten


@dataclass
class DatasetResults:
    partition: str = ""
    rows: int = 0
    feature_skew: dict = field(default_factory=dict)  # (feature, method) -> value
    feature_drift: dict = field(default_factory=dict)
    label_skew: dict = field(default_factory=dict)  # method -> value
    label_drift: dict = field(default_factory=dict)
    schema: dict = field(default_factory=dict)  # feature -> problem, latest partition


# Why a dataset file was not profiled, and what can be wrong with a column: label values.
FAILURE_REASONS = ("empty", "corrupt", "io_error", "error")
SCHEMA_PROBLEMS = ("missing_column", "wrong_type")


@dataclass
class FileProfile:
    """What one Parquet file contributed."""

    rows: int
    features: Profile
    label: Profile | None
    values: np.ndarray  # (columns, len(STATUSES)) status counts
    schema: dict[str, str] = field(default_factory=dict)  # column -> problem


class DatasetState:
    def __init__(self, dataset: Dataset, model: Model, reference: ReferenceProfile):
        self.dataset = dataset
        self.model = model
        self.reference = reference
        self.specs = reference.features.specs
        self.label_specs = None
        if reference.label is not None:
            spec = (reference.label.specs.numeric or reference.label.specs.categorical)[0]
            if dataset.label:
                spec = dataclasses.replace(spec, name=dataset.label)
            kind = "numeric" if reference.label.specs.numeric else "categorical"
            self.label_specs = ColumnSpecs(**{kind: (spec,)})
        self.features = [s.name for s in (*self.specs.numeric, *self.specs.categorical)]
        self.partitions: dict[str, dict[str, FileProfile]] = {}
        self.failed = Counter()
        self.values = np.zeros((len(self.features), len(STATUSES)), np.int64)
        self.last_update = 0.0
        self.results = DatasetResults()

    def apply(self, partition: str, path: str, profile: FileProfile, mtime: float) -> None:
        self.partitions.setdefault(partition, {})[path] = profile
        self.values += profile.values
        self.last_update = max(self.last_update, mtime)
        for old in sorted(self.partitions)[:-MAX_PARTITIONS]:
            del self.partitions[old]

    def remove(self, partition: str, path: str) -> None:
        files = self.partitions.get(partition)
        if files is not None:
            files.pop(path, None)
            if not files:
                del self.partitions[partition]

    def _sum(self, partition: str) -> tuple[Profile, Profile | None, int, dict]:
        files = list(self.partitions[partition].values())
        profile = Profile.zeros(self.specs)
        label = Profile.zeros(self.label_specs) if self.label_specs else None
        schema: dict = {}
        for f in files:
            profile = profile + f.features
            if label is not None and f.label is not None:
                label = label + f.label
            schema.update(f.schema)
        return profile, label, sum(f.rows for f in files), schema

    def compute(self) -> DatasetResults:
        """Latest partition vs the reference (skew) and vs the partition before (drift)."""
        r = DatasetResults()
        order = sorted(self.partitions)
        if not order:
            self.results = r
            return r
        minimum = self.model.min_samples
        cur, cur_label, r.rows, r.schema = self._sum(order[-1])
        r.partition = order[-1]
        r.feature_skew = profile_scores(self.specs, self.reference.features.profile, cur, minimum)
        if self.label_specs is not None and cur_label is not None:
            ref_label = self.reference.label.profile
            r.label_skew = _label_scores(self.label_specs, ref_label, cur_label, minimum)
        if len(order) > 1:
            prev, prev_label, _, _ = self._sum(order[-2])
            r.feature_drift = profile_scores(self.specs, prev, cur, minimum)
            if self.label_specs is not None and prev_label is not None:
                r.label_drift = _label_scores(self.label_specs, prev_label, cur_label, minimum)
        self.results = r
        return r


def _label_scores(specs, base: Profile, cur: Profile, minimum: int) -> dict:
    return {method: v for (_, method), v in profile_scores(specs, base, cur, minimum).items()}
