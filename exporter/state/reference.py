"""A model's reference profile and its status: the value types that sources build (from the
training Parquet, sources/reference.py) and state compares the live windows with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exporter.config import Model
from exporter.state.profiles import ColumnSpecs, Profile


@dataclass
class ColumnProfile:
    """Specs and the reference profile of a group of columns."""

    specs: ColumnSpecs
    profile: Profile


@dataclass
class ReferenceProfile:
    features: ColumnProfile
    prediction: ColumnProfile | None
    label: ColumnProfile | None
    rows: int
    files: list[str]
    # Identity of the bins and counts (sources/reference.profile_hash): shards that export
    # distributions from different references cannot be merged, and say so.
    hash: str = ""
    # Binary classification with a label and a score column: positive labels per score bin
    # (the prediction's bins), for the quality estimate's calibration (stats/estimate.py).
    calibration: np.ndarray | None = None
    # Multiclass with ``reference.scores``: each class's probability column (in the order of
    # ``classes``) and, per class and bin of it, the rows labelled that class.
    scores: ColumnProfile | None = None
    class_calibration: np.ndarray | None = None


@dataclass
class ReferenceStatus:
    ok: bool
    rows: int = 0
    error: str = ""
    building: bool = False


def reference_key(model: Model) -> tuple:
    """What a reference profile depends on in the config."""
    return (model.name, model.reference, model.features, model.top_k, model.task)
