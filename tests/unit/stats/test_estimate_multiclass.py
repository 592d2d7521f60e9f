"""Multiclass quality estimated from class probabilities alone (one-vs-rest CBPE), through
the reference build (calibration per class) and the window the exporter keeps, against
the analytical expectation of each metric where it has one, simulated labels where it has
not, and the union of records for the merge law."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import rankdata

from exporter.config import parse_config
from exporter.sources.reference import build_reference, load_cache, save_cache
from exporter.state.class_scores import ClassScoreWindow
from exporter.state.windows import BucketClock
from exporter.stats.estimate import calibration_map

CLASSES = ("cat", "dog", "bird")
NOW = 10_000.0


def draw_labels(rng, p: np.ndarray) -> np.ndarray:
    """One label per row drawn from its probabilities (the scores are calibrated)."""
    return (rng.random((len(p), 1)) > np.cumsum(p, axis=1)).sum(axis=1)


def realized(p: np.ndarray, y: np.ndarray) -> dict:
    """Macro one-vs-rest metrics of labels ``y`` for predictions argmax(p)."""
    pred = p.argmax(axis=1)
    out = {"accuracy": float((pred == y).mean())}
    per = {"precision": [], "recall": [], "f1": [], "auc": []}
    for k in range(p.shape[1]):
        tp = np.sum((pred == k) & (y == k))
        fp, fn = np.sum((pred == k) & (y != k)), np.sum((pred != k) & (y == k))
        per["precision"].append(tp / (tp + fp))
        per["recall"].append(tp / (tp + fn))
        per["f1"].append(2 * tp / (2 * tp + fp + fn))
        pos = y == k
        ranks = rankdata(p[:, k])
        n1 = pos.sum()
        per["auc"].append((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)))
    out |= {m: float(np.mean(v)) for m, v in per.items()}
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A reference whose class scores are the true probabilities, built by the exporter
    (scores profiled per class, labels counted per class and score bin)."""
    rng = np.random.default_rng(3)
    p = rng.dirichlet([2.0, 1.5, 1.0], 120_000)
    y = draw_labels(rng, p)
    path = tmp_path_factory.mktemp("train")
    table = {f"p_{c}": p[:, k] for k, c in enumerate(CLASSES)}
    table["label"] = np.array(CLASSES)[y]
    table["amount"] = rng.normal(size=len(y))
    pq.write_table(pa.table(table), path / "part-0.parquet")
    cfg = parse_config(
        {
            "models": [
                {
                    "name": "animals",
                    "serving_logs": [str(path / "*.jsonl")],
                    "task": "multiclass",
                    "classes": list(CLASSES),
                    "reference": {
                        "path": str(path),
                        "label": "label",
                        "scores": [f"p_{c}" for c in CLASSES],
                    },
                }
            ]
        }
    )
    return build_reference(cfg.models[0]), rng


def window_of(ref, p: np.ndarray, slots: np.ndarray | None = None) -> ClassScoreWindow:
    specs, prof = ref.scores.specs, ref.scores.profile
    width = specs.numeric_width
    calibrated = np.stack(
        [calibration_map(prof.numeric[k, :width], ref.class_calibration[k]) for k in range(3)]
    )
    w = ClassScoreWindow(BucketClock(60, 600), specs, calibrated, n_slots=2)
    if p is not None:
        slots = np.zeros(len(p), np.int64) if slots is None else slots
        w.add(w.ring.clock.current(NOW), slots, p, np.full(len(p), -1))
    return w


def test_reference_keeps_scores_apart_and_counts_each_class(reference, tmp_path):
    ref, _ = reference
    assert [s.name for s in ref.scores.specs.numeric] == [f"p_{c}" for c in CLASSES]
    assert [s.name for s in ref.features.specs.numeric] == ["amount"]
    # Every row is labelled one class: the classes' counts add up to the rows.
    assert ref.class_calibration.shape == (3, ref.scores.specs.numeric_width)
    assert ref.class_calibration.sum() == ref.rows
    path = tmp_path / "profile.npz"
    save_cache(str(path), ref)
    back = load_cache(str(path))
    assert back.hash == ref.hash
    np.testing.assert_array_equal(back.class_calibration, ref.class_calibration)
    assert [s.name for s in back.scores.specs.numeric] == [f"p_{c}" for c in CLASSES]


def test_estimate_equals_the_expectation_of_each_metric(reference):
    ref, rng = reference
    # Traffic unlike the reference's (other class shares, other confidence).
    p = rng.dirichlet([1.2, 1.2, 1.0], 20_000)
    got = window_of(ref, p).estimate(NOW, 0)
    pred = p.argmax(axis=1)
    # Closed forms, the labels drawn from p: accuracy and each class's precision (their
    # denominators are counts of predictions, not random).
    expected = {
        "accuracy": p[np.arange(len(p)), pred].mean(),
        "precision": np.mean([p[pred == k, k].mean() for k in range(3)]),
    }
    draws = [realized(p, draw_labels(rng, p)) for _ in range(40)]
    for metric in ("recall", "f1", "auc"):
        expected[metric] = float(np.mean([d[metric] for d in draws]))
    # Tolerance: the calibration is learned from 120k labels over 100 bins per class, and
    # one row's calibrated probabilities are normalised (their bins' values need not sum
    # to one); AUC is binned (ties within a bin count one half).
    for metric, want in expected.items():
        assert got[metric][0] == pytest.approx(want, abs=0.006), metric


def test_the_band_holds_the_realized_value_about_95_percent_of_the_time(reference):
    ref, rng = reference
    p = rng.dirichlet([1.2, 1.2, 1.0], 3000)
    got = window_of(ref, p).estimate(NOW, 0)
    trials = 300
    inside = dict.fromkeys(got, 0)
    for _ in range(trials):
        actual = realized(p, draw_labels(rng, p))
        for m, (value, half) in got.items():
            inside[m] += abs(actual[m] - value) <= half
    for m, k in inside.items():
        # 95 % nominal; 300 trials give ±2.5 % (2 s.d.); AUC's band treats the classes as
        # independent (about 10 % narrow here) and the calibration is learned: [88, 99.7] %.
        assert 0.88 <= k / trials <= 0.997, (m, k / trials)


def test_merged_windows_estimate_as_the_union_of_records(reference):
    ref, rng = reference
    p = rng.dirichlet([1.5, 1.5, 1.0], 9000)
    a, b = window_of(ref, p[:4000]), window_of(ref, p[4000:])
    a.merge(b)
    whole = window_of(ref, p).estimate(NOW, 0)
    got = a.estimate(NOW, 0)
    for m in whole:
        # Expected rows per bin are kept as float32 per bucket.
        assert got[m] == pytest.approx(whole[m], rel=1e-6), m


def test_versions_apart_and_rows_without_scores_skipped(reference):
    ref, rng = reference
    p = rng.dirichlet([1.5, 1.5, 1.0], 4000)
    slots = np.r_[np.zeros(2500, np.int64), np.ones(1500, np.int64)]
    holes = p.copy()
    holes[::10] = np.nan  # no scores on these rows
    w = window_of(ref, holes, slots)
    keep = ~np.isnan(holes).any(axis=1)
    for slot in (0, 1):
        sel = keep & (slots == slot)
        assert w.window(NOW, slot)[1][0].sum() == sel.sum()
        want = window_of(ref, p[sel]).estimate(NOW, 0)
        assert w.estimate(NOW, slot)["accuracy"][0] == pytest.approx(want["accuracy"][0])
