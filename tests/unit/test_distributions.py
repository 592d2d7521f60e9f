"""Distributions as counters: bins from the reference, le just below each edge (so values on
an edge count as Prometheus means ``le``), categories folded into the exported top K, the
stated series count, and the portable profile file."""

import json
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from exporter.app import Exporter
from exporter.config import ConfigError, parse_config
from tests.helpers import settle
from tests.integration.conftest import ROOT


def setup(tmp_path, **model):
    rng = np.random.default_rng(1)
    (tmp_path / "train").mkdir()
    (tmp_path / "logs").mkdir()
    pq.write_table(
        pa.table(
            {
                "age": rng.integers(18, 80, 5000),  # integers: decile edges fall on values
                "amount": rng.normal(0, 20, 5000),  # negative bucket edges
                "country": rng.choice([f"c{i}" for i in range(30)], 5000),
            }
        ),
        tmp_path / "train" / "t.parquet",
    )
    cfg = {
        "models": [
            {
                "name": "fraud",
                "serving_logs": [str(tmp_path / "logs" / "*.jsonl")],
                "reference": {"path": str(tmp_path / "train")},
                **model,
            }
        ]
    }
    e = Exporter(parse_config(cfg))
    settle(e)
    return e, rng


def feed(e, tmp_path, rows):
    now = time.time()
    with open(tmp_path / "logs" / "a.jsonl", "a") as fh:
        for features in rows:
            fh.write(json.dumps({"timestamp": now, "model": "fraud", "features": features}) + "\n")
    e.ingest_pass()


def families(e):
    return {f.name: f for f in e.registry.collect()}


def test_histogram_counts_values_at_or_below_le_as_numpy_does(tmp_path):
    e, rng = setup(tmp_path)
    ages = rng.integers(10, 95, 2000)  # beyond the reference's range too
    feed(e, tmp_path, [{"age": int(a), "amount": 1.0, "country": "c1"} for a in ages])
    fam = families(e)["mlpipe_feature_value"]
    buckets = [
        (s.labels["le"], s.value)
        for s in fam.samples
        if s.name.endswith("_bucket") and s.labels["feature"] == "age"
    ]
    assert buckets[-1] == ("+Inf", 2000)
    for le, count in buckets[:-1]:
        assert count == (ages <= float(le)).sum(), le  # numpy, on the raw values
    # An integer edge e is exported as the float just below it: a value of e is above.
    assert any(le.endswith("99999999996") for le, _ in buckets[:-1])
    (total,) = [
        s.value for s in fam.samples if s.name.endswith("_sum") and s.labels["feature"] == "age"
    ]
    assert total == ages.sum()
    # Every feature has _count and _sum, negative values included (amount's reference is
    # positive, so test a feature whose first bucket is negative too).
    for feature in ("age", "amount"):
        names = {s.name for s in fam.samples if s.labels["feature"] == feature}
        assert {"mlpipe_feature_value_count", "mlpipe_feature_value_sum"} <= names, feature


def test_categories_fold_into_the_exported_top_k_and_unseen(tmp_path):
    e, _ = setup(tmp_path, distribution={"top_k": 3})
    ref = pq.read_table(tmp_path / "train" / "t.parquet").column("country").to_pylist()
    ranked = sorted(set(ref), key=lambda v: (-ref.count(v), v))
    values = ranked[:5] * 10 + ["never-seen"] * 7
    feed(e, tmp_path, [{"age": 30, "amount": 1.0, "country": v} for v in values])
    got = {
        s.labels["category"]: s.value
        for s in families(e)["mlpipe_feature_category"].samples
        if s.labels["feature"] == "country"
    }
    assert got == {**{v: 10 for v in ranked[:3]}, "__other__": 20, "__unseen__": 7}
    ratios = {
        s.labels["category"]: s.value
        for s in families(e)["mlpipe_reference_category_ratio"].samples
        if s.labels["feature"] == "country"
    }
    assert ratios[ranked[0]] == pytest.approx(ref.count(ranked[0]) / len(ref), abs=1e-12)
    assert ratios["__other__"] == pytest.approx(1 - sum(ratios[v] for v in ranked[:3]), abs=1e-12)
    assert ratios["__unseen__"] == 0


def test_series_per_model_are_what_the_docs_state(tmp_path):
    e, _ = setup(tmp_path)  # 2 numeric features, 1 categorical of 30 values (K = 20)
    names = {
        "mlpipe_feature_value": None,
        "mlpipe_feature_category": None,
        "mlpipe_reference_feature_bucket_ratio": None,
        "mlpipe_reference_feature_bucket_previous_info": None,
        "mlpipe_reference_category_ratio": None,
    }
    fam = families(e)
    count = {n: len(fam[n].samples) for n in names}
    # 31 per numeric feature: 12 histogram samples, 10 reference shares, 9 bucket-order.
    assert count["mlpipe_feature_value"] == 2 * 12
    assert count["mlpipe_reference_feature_bucket_ratio"] == 2 * 10
    assert count["mlpipe_reference_feature_bucket_previous_info"] == 2 * 9
    # 2 (K + 2) per categorical feature: 44 at K = 20.
    assert count["mlpipe_feature_category"] + count["mlpipe_reference_category_ratio"] == 44
    assert len(fam["mlpipe_reference_info"].samples) == 1


def test_profile_file_round_trip_and_config_errors(tmp_path):
    e, _ = setup(tmp_path)
    built = e.state.models["fraud"].reference
    cfg = {
        "models": [
            {
                "name": "fraud",
                "serving_logs": [str(tmp_path / "logs" / "*.jsonl")],
                "reference": {"path": str(tmp_path / "train")},
            }
        ]
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "profile", f"--config.file={tmp_path / 'c.yaml'}",
         f"--output={tmp_path / 'fraud.profile'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert built.hash in out.stdout
    cfg["models"][0]["reference"] = {"profile": str(tmp_path / "fraud.profile")}
    loaded = Exporter(parse_config(cfg))
    settle(loaded)
    assert loaded.state.models["fraud"].reference.hash == built.hash
    # Exactly one of path and profile; a profile that cannot be read.
    for bad, problem in (
        ({"path": str(tmp_path / "train"), "profile": str(tmp_path / "fraud.profile")},
         "exactly one of path"),
        ({"profile": str(tmp_path / "missing.profile")}, "cannot read"),
    ):  # fmt: skip
        cfg["models"][0]["reference"] = bad
        with pytest.raises(ConfigError) as exc:
            parse_config(cfg)
        assert any(problem in line for line in exc.value.errors), exc.value.errors
    # A file that is not a profile: check-config says so, naming the key.
    (tmp_path / "junk.profile").write_bytes(b"not a profile")
    cfg["models"][0]["reference"] = {"profile": str(tmp_path / "junk.profile")}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    check = [sys.executable, "-m", "exporter.cli", "check-config"]
    out = subprocess.run(
        [*check, f"--config.file={tmp_path / 'c.yaml'}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 1 and "models[0].reference.profile" in out.stderr, out.stderr
