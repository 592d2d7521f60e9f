"""A model's state is made of mergeable parts: two exporters that each saw part of the
traffic, merged, hold what one exporter that saw all of it holds; and the exporter's peak
request rate is the one definition ``estimate-capacity`` uses, over window buckets."""

import dataclasses
import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import settle
from tests.unit.test_drift_end_to_end import make_exporter, reference, write_reference


def records(rng, n, now):
    cur = reference(rng, n)
    cur["amount"] = cur["amount"] + 5
    ts = now - 1150 + np.sort(rng.random(n)) * 1140  # this window and the one before
    out = []
    for i in range(n):
        out.append(
            {
                "timestamp": float(ts[i]),
                "model": "fraud",
                "model_version": "v1",
                "request_id": f"q{i}",
                "latency_ms": float(rng.gamma(2, 20)),
                "features": {
                    "amount": float(cur["amount"][i]),
                    "age": int(cur["age"][i]),
                    "score": float(cur["score"][i]),
                    "country": str(cur["country"][i]),
                    "device": str(cur["device"][i]),
                },
                "prediction": float(cur["prediction"][i]),
            }
        )
    labels = [{"request_id": r["request_id"], "label": int(rng.random() < 0.2)} for r in out]
    return out, labels


def feed(tmp_path, name, ref_dir, lines, labels):
    root = tmp_path / name
    root.mkdir()
    (root / "labels").mkdir()
    exporter, logs = make_exporter(
        root, ref_dir, labels=[str(root / "labels" / "*.jsonl")], label_join={"max_delay": "1h"}
    )
    settle(exporter)
    (logs / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    exporter.ingest_pass()
    (root / "labels" / "l.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels))
    exporter.ingest_pass()
    return exporter


def test_two_shards_merged_equal_the_whole(tmp_path):
    rng = np.random.default_rng(11)
    ref_dir, _ = write_reference(tmp_path, rng)
    now = time.time()
    lines, labels = records(rng, 3000, now)
    whole = feed(tmp_path, "whole", ref_dir, lines, labels)
    a = feed(tmp_path, "a", ref_dir, lines[::2], labels[::2])
    b = feed(tmp_path, "b", ref_dir, lines[1::2], labels[1::2])
    merged = a.state.models["fraud"]
    merged.merge(b.state.models["fraud"])
    got, want = merged.compute(now), whole.state.models["fraud"].compute(now)
    full = whole.state.models["fraud"]
    assert merged.features.status.tolist() == full.features.status.tolist()
    assert merged.serving.requests.tolist() == full.serving.requests.tolist()
    assert merged.serving.histogram.tolist() == full.serving.histogram.tolist()
    assert merged.labels == full.labels
    for field in ("feature_skew", "feature_drift", "prediction_skew", "quality", "capacity"):
        g, w = getattr(got, field), getattr(want, field)
        assert g.keys() == w.keys() and g, field
        for k in w:
            # float32 bin sums (Wasserstein) are added in another order: 1e-6 relative.
            assert g[k] == pytest.approx(w[k], rel=1e-6, abs=1e-9), (field, k)
    assert got.tests.keys() == want.tests.keys()
    for k in want.tests:
        assert got.tests[k] == pytest.approx(want.tests[k], rel=1e-6, abs=1e-12), k
    assert got.drifted == want.drifted and ("feature", "amount", "skew") in got.drifted
    # A shard alone sees a different, noisier picture than the whole.
    shard = feed(tmp_path, "shard", ref_dir, lines[::2], labels[::2]).state.models["fraud"]
    assert shard.compute(now).feature_skew != want.feature_skew


def test_peak_rate_is_the_p99_of_per_bucket_rates(tmp_path):
    rng = np.random.default_rng(2)
    ref_dir, _ = write_reference(tmp_path, rng)
    exporter, logs = make_exporter(tmp_path, ref_dir)
    settle(exporter)
    now = time.time()
    # A burst in one minute, quiet minutes around it, one minute with nothing at all.
    per_minute = [30, 0, 600, 45, 20]
    current = int(now // 60)
    lines = []
    for k, n in enumerate(per_minute):
        start = (current - len(per_minute) + 1 + k) * 60
        for t in start + np.sort(rng.random(n)) * 59:
            lines.append({"timestamp": float(min(t, now)), "model": "fraud", "latency_ms": 50.0})
    (logs / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    exporter.ingest_pass()
    cap = exporter.state.models["fraud"].compute(now).capacity
    want = np.quantile(np.array(per_minute), 0.99) / 60  # numpy, independently
    assert cap["peak_qps"] == pytest.approx(want, rel=1e-12)
    assert cap["concurrency"] == pytest.approx(want * 0.05, rel=1e-9)


def test_a_model_with_only_categorical_features_profiles_them(tmp_path):
    rng = np.random.default_rng(4)
    ref_dir = tmp_path / "train"
    ref_dir.mkdir()
    country = rng.choice(["DE", "FR", "US"], 5000, p=[0.5, 0.3, 0.2])
    pq.write_table(pa.table({"country": country}), ref_dir / "part-0.parquet")
    exporter, logs = make_exporter(tmp_path, ref_dir, reference={"path": str(ref_dir)})
    settle(exporter)
    now = time.time()
    (logs / "a.jsonl").write_text(
        "".join(
            json.dumps({"timestamp": now - 1, "model": "fraud", "features": {"country": c}}) + "\n"
            for c in ["US"] * 300
        )
    )
    exporter.ingest_pass()
    ms = exporter.state.models["fraud"]
    result = ms.compute(now)
    assert int(ms.features.profile(now).categorical.sum()) == 300
    assert ("feature", "country", "skew") in result.drifted


def test_windows_are_allocated_only_for_what_a_model_has(tmp_path):
    """No label files: no quality, AUC or label window at all; no prediction logged yet: no
    prediction window (at 24 h / 5 min these were 5.4 and 2.7 MiB a model)."""
    from exporter.config import parse_config
    from exporter.state.model import ModelState

    (tmp_path / "labels").mkdir()
    cfg = parse_config(
        {
            "models": [
                {"name": "plain", "serving_logs": [str(tmp_path / "*.jsonl")]},
                {
                    "name": "labelled",
                    "serving_logs": [str(tmp_path / "*.jsonl")],
                    "labels": [str(tmp_path / "labels" / "*.jsonl")],
                },
            ]
        }
    )
    plain = ModelState(cfg.models[0], (0.1, 1.0))
    assert plain.outcomes.ring.shapes == {} and plain.outcomes.metrics(time.time(), 1) == {}
    assert plain.predictions.ring.arrays == {}  # declared, not allocated
    labelled = ModelState(cfg.models[1], (0.1, 1.0))
    assert labelled.outcomes.ring.declared("auc")
    now = time.time()
    plain.predictions.add(np.array([plain.clock.current(now)]), np.array([0]), np.array([0.3]))
    assert set(plain.predictions.ring.arrays) == {"pred", "pred_sums"}
    assert plain.predictions.counts(now, 0, 0).counts.sum() == 1


def _fields(results):
    out = dataclasses.asdict(results)
    out.pop("computed_at")
    return out


def test_statistics_are_reused_only_while_nothing_they_read_changed(tmp_path):
    """compute() skips a model whose windows neither gained a record nor moved; what it
    returns is always what a full computation returns (checked after every step)."""
    rng = np.random.default_rng(5)
    ref_dir, _ = write_reference(tmp_path, rng)
    exporter, logs = make_exporter(
        tmp_path, ref_dir, labels=[str(tmp_path / "l*.jsonl")], label_join={"max_delay": "1h"}
    )
    settle(exporter)
    # now + 0.5 must be in now's 60 s bucket (it failed when a bucket ended in between).
    if time.time() % 60 > 55:
        time.sleep(61 - time.time() % 60)
    now = time.time()
    lines, labels = records(rng, 1500, now)
    ms = exporter.state.models["fraud"]
    last = [None]

    def reused(at) -> bool:
        """compute(at) checked against a full computation; whether it was reused."""
        got = ms.compute(at)
        assert got.computed_at == at
        was_reused = last[0] is not None and got.tests is last[0].tests
        ms._computed_for = None  # a full computation of the same state, kept for next time
        np.testing.assert_equal(_fields(ms.compute(at)), _fields(got))
        last[0] = ms.results
        return was_reused

    reused(now)
    with open(logs / "a.jsonl", "w") as fh:
        for step in range(3):
            fh.write("".join(json.dumps(r) + "\n" for r in lines[step * 500 : (step + 1) * 500]))
            fh.flush()
            exporter.ingest_pass()
            assert not reused(now)  # new records
            assert reused(now + 0.5)  # same bucket, nothing new
    assert ms.results.feature_skew and ms.results.tests
    (tmp_path / "l1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels[:600]))
    exporter.ingest_pass()
    assert not reused(now + 0.5)  # labels joined: the outcome window changed
    assert ms.labels["matched"] == 600
    assert not reused(now + 61)  # the next bucket: every window moved
    assert reused(now + 61.5)
    ms.reset_slot(0)  # a version slot freed
    assert not reused(now + 61.5)
