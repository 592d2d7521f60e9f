"""Reference Parquet + serving log with a known shift -> skew, drift, data quality, quality."""

import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.stats.drift import METHODS
from tests.helpers import sample

COUNTRIES = ["DE", "FR", "US", "GB", "IT", "ES"]
P_COUNTRY = [0.3, 0.25, 0.2, 0.1, 0.1, 0.05]


def reference(rng, n):
    return {
        "amount": rng.normal(100, 20, n),
        "age": rng.integers(18, 80, n),
        "score": rng.normal(0, 1, n),
        "country": rng.choice(COUNTRIES, n, p=P_COUNTRY),
        "device": rng.choice(["ios", "android", "web"], n),
        "label": (rng.random(n) < 0.2).astype(np.int64),
        "prediction": rng.beta(2, 5, n),
    }


def write_reference(tmp_path, rng, n=20_000):
    ref_dir = tmp_path / "train"
    ref_dir.mkdir()
    cols = reference(rng, n)
    half = n // 2
    # Two hive partitions: the reader must take both.
    for i, part in enumerate(("date=2026-11-01", "date=2026-11-02")):
        (ref_dir / part).mkdir()
        sl = slice(i * half, (i + 1) * half)
        pq.write_table(
            pa.table({k: v[sl] for k, v in cols.items()}), ref_dir / part / "part-0.parquet"
        )
    return ref_dir, cols


def make_exporter(tmp_path, ref_dir, names=("fraud",), **model):
    """An exporter of the models ``names``, alike but for their names, on one log dir."""
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    cfg = {
        "models": [
            {
                "name": name,
                "serving_logs": [str(logs / "*.jsonl")],
                "reference": {"path": str(ref_dir), "label": "label", "prediction": "prediction"},
                "windows": {"length": "10m", "bucket": "1m"},
                **model,
            }
            for name in names
        ]
    }
    exporter = Exporter(parse_config(cfg), state_dir=str(tmp_path / "state"))
    return exporter, logs


def test_injected_shift_crosses_threshold_only_for_that_feature(tmp_path):
    rng = np.random.default_rng(0)
    ref_dir, _ = write_reference(tmp_path, rng)
    exporter, logs = make_exporter(tmp_path, ref_dir)
    n = 5000
    cur = reference(rng, n)
    cur["amount"] = cur["amount"] + 20  # a one-sigma shift in one feature
    now = time.time()
    bad = {
        "missing": 40,
        "null": 30,
        "malformed_num": 25,
        "out_of_range": 15,
        "unseen": 35,
        "malformed_cat": 20,
    }
    lines = []
    for i in range(n):
        feats = {
            "amount": float(cur["amount"][i]),
            "age": int(cur["age"][i]),
            "score": float(cur["score"][i]),
            "country": str(cur["country"][i]),
            "device": str(cur["device"][i]),
        }
        k = i % 500
        if k < bad["missing"]:
            del feats["score"]
        elif k < 70:
            feats["score"] = None
        elif k < 95:
            feats["score"] = "n/a"
        elif k < 110:
            feats["score"] = 1e9
        elif k < 145:
            feats["device"] = "fridge"
        elif k < 165:
            feats["device"] = ["ios"]
        lines.append(
            json.dumps(
                {
                    "timestamp": now - 30 + i * 0.001,
                    "model": "fraud",
                    "model_version": "v1",
                    "request_id": f"r{i}",
                    "latency_ms": 5.0,
                    "features": feats,
                    "prediction": float(cur["prediction"][i]),
                }
            )
        )
    (logs / "a.jsonl").write_text("\n".join(lines) + "\n")
    exporter.ingest_pass()
    exporter.compute_stats()
    for method in ("psi", "js", "ks", "wasserstein"):
        threshold = sample(exporter, "mlpipe_drift_threshold", model="fraud", method=method)
        assert threshold == METHODS[method].default_threshold
        assert (
            sample(exporter, "mlpipe_feature_skew", model="fraud", feature="amount", method=method)
            > threshold
        )
        # "age" is clean; "score" carries the injected bad values, checked below.
        assert (
            sample(exporter, "mlpipe_feature_skew", model="fraud", feature="age", method=method)
            < threshold
        ), method
    for method in ("psi", "js", "linf"):
        threshold = sample(exporter, "mlpipe_drift_threshold", model="fraud", method=method)
        assert (
            sample(exporter, "mlpipe_feature_skew", model="fraud", feature="country", method=method)
            < threshold
        )
    # 7 % of "device" values are categories training never had: that is skew too.
    assert (
        sample(exporter, "mlpipe_feature_skew", model="fraud", feature="device", method="psi") > 0.2
    )
    # Data quality, exactly: 10 blocks of 500 lines, each with the injected counts.
    blocks = n // 500

    def values(feature, status):
        return sample(
            exporter, "mlpipe_feature_values_total", model="fraud", feature=feature, status=status
        )

    assert values("score", "missing") == (bad["missing"] + bad["null"]) * blocks
    assert values("score", "malformed") == bad["malformed_num"] * blocks
    assert values("score", "out_of_range") == bad["out_of_range"] * blocks
    assert values("score", "valid") == n - (40 + 30 + 25 + 15) * blocks
    assert values("device", "unseen") == bad["unseen"] * blocks
    assert values("device", "malformed") == bad["malformed_cat"] * blocks
    assert values("device", "valid") == n - (35 + 20) * blocks
    assert values("amount", "valid") + values("amount", "out_of_range") == n
    assert sample(exporter, "mlpipe_window_samples", model="fraud", version="v1") == n
    # Unchanged predictions: skew present and small.
    assert (
        sample(exporter, "mlpipe_prediction_skew", model="fraud", version="v1", method="psi") < 0.1
    )
    assert sample(exporter, "mlpipe_reference_rows", model="fraud") == 20_000


def test_tiny_window_exports_nothing(tmp_path):
    rng = np.random.default_rng(1)
    ref_dir, _ = write_reference(tmp_path, rng, n=2000)
    exporter, logs = make_exporter(tmp_path, ref_dir, min_samples=100)
    now = time.time()
    (logs / "a.jsonl").write_text(
        "".join(
            json.dumps({"timestamp": now, "model": "fraud", "features": {"amount": 1.0}}) + "\n"
            for _ in range(50)
        )
    )
    exporter.ingest_pass()
    exporter.compute_stats()
    assert (
        sample(exporter, "mlpipe_feature_skew", model="fraud", feature="amount", method="psi")
        is None
    )
    assert sample(exporter, "mlpipe_window_samples", model="fraud", version="unknown") == 50


def test_window_drift_and_canary_divergence(tmp_path):
    rng = np.random.default_rng(2)
    ref_dir, _ = write_reference(tmp_path, rng)
    exporter, logs = make_exporter(tmp_path, ref_dir, canary={"stable_version": "v1"})
    now = time.time()
    lines = []
    # Previous window (10-20 min ago): as in training. Current window: score shifted.
    for i in range(3000):
        lines.append(
            {
                "timestamp": now - 900 + i * 0.1,
                "model": "fraud",
                "model_version": "v1",
                "features": {"score": float(rng.normal(0, 1))},
                "prediction": float(rng.beta(2, 5)),
            }
        )
    for i in range(3000):
        canary = i % 3 == 0
        lines.append(
            {
                "timestamp": now - 300 + i * 0.05,
                "model": "fraud",
                "model_version": "v2" if canary else "v1",
                "features": {"score": float(rng.normal(1.5, 1))},
                "prediction": float(rng.beta(5, 2) if canary else rng.beta(2, 5)),
            }
        )
    (logs / "a.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    exporter.ingest_pass()
    exporter.compute_stats()
    assert (
        sample(exporter, "mlpipe_feature_drift", model="fraud", feature="score", method="psi") > 0.2
    )
    assert (
        sample(
            exporter,
            "mlpipe_prediction_version_divergence",
            model="fraud",
            version="v2",
            method="js",
        )
        > 0.3
    )
    assert (
        sample(
            exporter,
            "mlpipe_prediction_version_divergence",
            model="fraud",
            version="v1",
            method="js",
        )
        is None
    )  # the stable version is not compared with itself

    assert sample(exporter, "mlpipe_model_stable_version", model="fraud", version="v1") == 1
    assert sample(exporter, "mlpipe_model_stable_version", model="fraud", version="v2") is None


def rank_auc(scores, positive):
    """Exact AUC by ranks (Mann-Whitney U), ties counted one half."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def test_quality_from_delayed_labels_matches_numpy(tmp_path):
    rng = np.random.default_rng(3)
    ref_dir, _ = write_reference(tmp_path, rng)
    (tmp_path / "labels").mkdir()
    exporter, logs = make_exporter(
        tmp_path,
        ref_dir,
        labels=[str(tmp_path / "labels" / "*.jsonl")],
        label_join={"max_delay": "1h"},
    )
    n = 4000
    positive = rng.random(n) < 0.3
    scores = np.clip(np.where(positive, rng.beta(5, 2, n), rng.beta(2, 5, n)), 0, 1)
    now = time.time()
    with open(logs / "a.jsonl", "w") as fh:
        for i in range(n):
            fh.write(
                json.dumps(
                    {
                        "timestamp": now - 60 + i * 0.01,
                        "model": "fraud",
                        "model_version": "v1",
                        "request_id": f"q{i}",
                        "prediction": float(scores[i]),
                    }
                )
                + "\n"
            )
    exporter.ingest_pass()
    # Labels arrive later: all but the last 500 predictions, plus 30 labels for nothing.
    labelled = n - 500
    with open(tmp_path / "labels" / "l.jsonl", "w") as fh:
        for i in range(labelled):
            fh.write(json.dumps({"request_id": f"q{i}", "label": int(positive[i])}) + "\n")
        for i in range(30):
            fh.write(json.dumps({"request_id": f"nobody-{i}", "label": 1}) + "\n")
        fh.write("not json\n")
    exporter.ingest_pass()
    exporter.compute_stats()
    s, y = scores[:labelled], positive[:labelled]
    pred = s >= 0.5

    def q(m):
        return sample(
            exporter,
            "mlpipe_model_quality",
            model="fraud",
            version="v1",
            metric=m,
        )

    assert q("accuracy") == pytest.approx(np.mean(pred == y), abs=1e-12)
    assert q("precision") == pytest.approx((pred & y).sum() / pred.sum(), abs=1e-12)
    assert q("recall") == pytest.approx((pred & y).sum() / y.sum(), abs=1e-12)
    p = np.clip(s, 1e-15, 1 - 1e-15)
    assert q("logloss") == pytest.approx(-np.mean(y * np.log(p) + (~y) * np.log(1 - p)), rel=1e-9)
    # Binned AUC: pairs in the same one of 200 bins count one half; bound that error.
    bins = np.clip((s * 200).astype(int), 0, 199)
    tie_mass = sum((bins[y] == b).sum() * (bins[~y] == b).sum() for b in np.unique(bins))
    tol = tie_mass / (2 * y.sum() * (~y).sum())
    assert abs(q("auc") - rank_auc(s, y)) <= tol + 1e-12
    join = lambda r: sample(exporter, "mlpipe_label_join_total", model="fraud", result=r)  # noqa: E731
    assert join("matched") == labelled
    assert join("unmatched_label") == 0  # still within their grace period
    assert (
        sample(
            exporter, "mlpipe_source_invalid_lines_total", source="labels-fraud", reason="not_json"
        )
        == 1
    )
    # Time passes: the unlabelled predictions expire and the orphan labels give up.
    ms = exporter.state.models["fraud"]
    ms.join.expire(time.time() + 3601)
    assert join("expired") == 500 and join("unmatched_label") == 30
