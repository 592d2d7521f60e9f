"""The exporter estimates quality from scores before labels arrive, and once they do,
exports how far the realized value is from the estimate."""

import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporter.app import Exporter
from exporter.config import parse_config
from tests.helpers import sample

N = 6000


def test_estimated_quality_before_labels_and_its_error_after(tmp_path):
    rng = np.random.default_rng(5)
    ref_p = rng.beta(2, 3, 50_000)
    (tmp_path / "train").mkdir()
    pq.write_table(
        pa.table(
            {
                "amount": rng.normal(100, 20, len(ref_p)),
                "prediction": ref_p,
                "label": (rng.random(len(ref_p)) < ref_p).astype(np.int64),
            }
        ),
        tmp_path / "train" / "part-0.parquet",
    )
    (tmp_path / "logs").mkdir()
    (tmp_path / "labels").mkdir()
    cfg = {
        "models": [
            {
                "name": "fraud",
                "serving_logs": [str(tmp_path / "logs" / "*.jsonl")],
                "labels": [str(tmp_path / "labels" / "*.jsonl")],
                "reference": {
                    "path": str(tmp_path / "train"),
                    "label": "label",
                    "prediction": "prediction",
                },
                "windows": {"length": "10m", "bucket": "1m"},
            }
        ]
    }
    e = Exporter(parse_config(cfg), state_dir=str(tmp_path / "state"))
    # The scores are the true probabilities: labels drawn from them, as the estimate assumes.
    p = rng.beta(1.5, 3.5, N)
    y = rng.random(N) < p
    now = time.time()
    with open(tmp_path / "logs" / "a.jsonl", "w") as fh:
        for i in range(N):
            record = {
                "timestamp": now - 300 + i * 0.01,
                "model": "fraud",
                "model_version": "v1",
                "request_id": f"r{i}",
                "features": {"amount": 100.0},
                "prediction": float(p[i]),
            }
            fh.write(json.dumps(record) + "\n")
    e.ingest_pass()
    e.compute_stats()

    def est(metric):
        return sample(
            e, "mlpipe_model_quality_estimated", model="fraud", version="v1", metric=metric
        )

    pred = p >= 0.5
    expected_accuracy = np.where(pred, p, 1 - p).mean()
    assert est("accuracy") == pytest.approx(expected_accuracy, abs=0.01)
    for metric in ("precision", "recall", "f1", "auc"):
        assert 0 < est(metric) < 1
    half = sample(
        e, "mlpipe_model_quality_estimated_halfwidth", model="fraud", version="v1", metric="auc"
    )
    assert 0 < half < 0.05
    assert sample(e, "mlpipe_model_quality", model="fraud", version="v1", metric="accuracy") is None

    # The labels arrive: realized quality, and its distance from the estimate.
    with open(tmp_path / "labels" / "l.jsonl", "w") as fh:
        for i in range(N):
            fh.write(json.dumps({"request_id": f"r{i}", "label": int(y[i])}) + "\n")
    e.ingest_pass()
    e.compute_stats()
    for metric in ("accuracy", "auc"):
        realized = sample(e, "mlpipe_model_quality", model="fraud", version="v1", metric=metric)
        error = sample(
            e, "mlpipe_model_quality_estimate_error", model="fraud", version="v1", metric=metric
        )
        width = sample(
            e,
            "mlpipe_model_quality_estimated_halfwidth",
            model="fraud",
            version="v1",
            metric=metric,
        )
        assert error == pytest.approx(realized - est(metric), abs=1e-12)
        assert abs(error) <= width + 0.01, metric  # the assumptions hold here


def test_no_estimate_without_a_calibration(tmp_path):
    """A reference without labels (or a regression model) gives no estimate, never a guess."""
    rng = np.random.default_rng(6)
    (tmp_path / "train").mkdir()
    pq.write_table(
        pa.table({"amount": rng.normal(100, 20, 5000), "prediction": rng.random(5000)}),
        tmp_path / "train" / "part-0.parquet",
    )
    (tmp_path / "logs").mkdir()
    cfg = {
        "models": [
            {
                "name": "fraud",
                "serving_logs": [str(tmp_path / "logs" / "*.jsonl")],
                "reference": {"path": str(tmp_path / "train"), "prediction": "prediction"},
            }
        ]
    }
    e = Exporter(parse_config(cfg))
    now = time.time()
    with open(tmp_path / "logs" / "a.jsonl", "w") as fh:
        for i in range(500):
            fh.write(
                json.dumps({"timestamp": now - i * 0.1, "model": "fraud", "prediction": 0.7}) + "\n"
            )
    e.ingest_pass()
    e.compute_stats()
    e.render()
    assert b"mlpipe_model_quality_estimated{" not in e.rendering.text


CLASSES = ["cat", "dog", "bird"]


def test_multiclass_estimate_from_class_scores_and_its_error_after(tmp_path):
    """A multiclass model logs each class's probability (an object or an array in the
    order of ``classes``); the estimate is one-vs-rest, macro-averaged; labels bring the
    realized accuracy beside it."""
    rng = np.random.default_rng(7)
    ref_p = rng.dirichlet([2.0, 1.5, 1.0], 60_000)
    ref_y = (rng.random((len(ref_p), 1)) > np.cumsum(ref_p, axis=1)).sum(axis=1)
    (tmp_path / "train").mkdir()
    columns = {f"p_{c}": ref_p[:, k] for k, c in enumerate(CLASSES)}
    pq.write_table(
        pa.table(
            {
                "amount": rng.normal(100, 20, len(ref_p)),
                **columns,
                "predicted": np.array(CLASSES)[ref_p.argmax(axis=1)],
                "label": np.array(CLASSES)[ref_y],
            }
        ),
        tmp_path / "train" / "part-0.parquet",
    )
    (tmp_path / "logs").mkdir()
    (tmp_path / "labels").mkdir()
    cfg = {
        "models": [
            {
                "name": "animals",
                "task": "multiclass",
                "classes": CLASSES,
                "serving_logs": [str(tmp_path / "logs" / "*.jsonl")],
                "labels": [str(tmp_path / "labels" / "*.jsonl")],
                "reference": {
                    "path": str(tmp_path / "train"),
                    "label": "label",
                    "prediction": "predicted",
                    "scores": list(columns),
                },
                "windows": {"length": "10m", "bucket": "1m"},
            }
        ]
    }
    e = Exporter(parse_config(cfg), state_dir=str(tmp_path / "state"))
    p = rng.dirichlet([1.0, 1.0, 1.0], N)  # traffic unlike the reference's
    y = (rng.random((N, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    now = time.time()
    with open(tmp_path / "logs" / "a.jsonl", "w") as fh:
        for i in range(N):
            scores = dict(zip(CLASSES, p[i].tolist(), strict=True)) if i % 2 else p[i].tolist()
            record = {
                "timestamp": now - 300 + i * 0.01,
                "model": "animals",
                "model_version": "v1",
                "request_id": f"r{i}",
                "features": {"amount": 100.0},
                "prediction": CLASSES[int(p[i].argmax())],
                "scores": scores,
            }
            fh.write(json.dumps(record) + "\n")
        # Malformed scores: the record counts as a request, not in the estimate.
        bad = {"timestamp": now - 10, "model": "animals", "model_version": "v1", "scores": "x"}
        fh.write(json.dumps(bad) + "\n")
    e.ingest_pass()
    e.compute_stats()

    def est(metric, name="mlpipe_model_quality_estimated"):
        return sample(e, name, model="animals", version="v1", metric=metric)

    expected_accuracy = p.max(axis=1).mean()
    assert est("accuracy") == pytest.approx(expected_accuracy, abs=0.01)
    for metric in ("precision", "recall", "f1", "auc"):
        assert 0 < est(metric) < 1
        assert 0 < est(metric, "mlpipe_model_quality_estimated_halfwidth") < 0.05
    with open(tmp_path / "labels" / "l.jsonl", "w") as fh:
        for i in range(N):
            fh.write(json.dumps({"request_id": f"r{i}", "label": CLASSES[y[i]]}) + "\n")
    e.ingest_pass()
    e.compute_stats()
    realized = sample(e, "mlpipe_model_quality", model="animals", version="v1", metric="accuracy")
    assert realized == pytest.approx((p.argmax(axis=1) == y).mean(), abs=1e-12)
    error = est("accuracy", "mlpipe_model_quality_estimate_error")
    assert error == pytest.approx(realized - est("accuracy"), abs=1e-12)
    assert abs(error) <= est("accuracy", "mlpipe_model_quality_estimated_halfwidth") + 0.01
