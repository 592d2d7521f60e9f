"""One log of many models, each with its own features: every model gets exactly what it
would get from a log of its own records (the parser builds each model's features apart)."""

import json
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporter.app import Exporter
from exporter.config import parse_config

SHARED = {
    "a": (["x", "shared"], ["color"]),
    "b": (["y", "shared"], []),
    "c": ([], ["color", "size"]),
    "d": ([], []),  # serving only
}
# Mostly different features: the parser keeps each line's features raw and decodes them per
# model (the union is more than twice the widest model's).
DISTINCT = {
    **{m: ([f"{m}_x", f"{m}_y"], [f"{m}_k"]) for m in "abcdef"},
    "g": (["a_x"], []),
    "h": ([], []),
}
FEATURES = SHARED


def model(tmp_path, name, logs):
    numeric, categorical = FEATURES[name]
    entry = {"name": name, "serving_logs": [str(logs / "*.jsonl")], "min_samples": 1}
    if numeric or categorical:
        rng = np.random.default_rng(hash(name) % 2**32)
        cols = {f: rng.normal(0, 1, 500) for f in numeric}
        cols |= {f: rng.choice(["r", "g", "b"], 500) for f in categorical}
        path = tmp_path / f"ref-{name}.parquet"
        if not path.exists():
            pq.write_table(pa.table(cols), path)
        entry["reference"] = {"path": str(path)}
    return entry


def lines(rng, now):
    out = []
    for i in range(3000):
        name = list(FEATURES)[i % len(FEATURES)]
        numeric, categorical = FEATURES[name]
        feats = {f: float(rng.normal(0.3, 1)) for f in numeric}
        feats |= {f: str(rng.choice(["r", "g", "b", "new"])) for f in categorical}
        if i % 97 == 0 and numeric:
            feats[numeric[0]] = "not a number"  # a malformed value: the line's slow path
        if i % 89 == 0 and categorical:
            feats[categorical[0]] = ["a", "list"]
        if i % 83 == 0 and feats:
            del feats[next(iter(feats))]  # missing
        record = {"timestamp": now - 100 + i * 0.01, "model": name, "features": feats}
        out.append(json.dumps(record))
        if i % 101 == 0:
            out.append(json.dumps({**record, "model": "unknown"}))
        if i % 103 == 0:
            out.append(json.dumps({**record, "timestamp": "yesterday"}))
        if i % 107 == 0:  # a line the typed decoder rejects for another field: slow path
            out.append(json.dumps({**record, "latency_ms": "fast"}))
    return out


def state_of(exporter: Exporter, name: str):
    ms = exporter.state.models[name]
    exporter.compute_stats()
    prof = ms.features.profile(time.time(), 0) if ms.specs is not None else None
    return {
        "status": ms.features.status.tolist(),
        "numeric": None if prof is None else prof.numeric.tolist(),
        "categorical": None if prof is None else prof.categorical.tolist(),
        "requests": ms.traffic.records(time.time()).tolist(),
        "skew": ms.results.feature_skew,
    }


@pytest.mark.parametrize("features", [SHARED, DISTINCT], ids=["shared", "distinct"])
def test_each_model_gets_what_its_own_log_gives(tmp_path, features, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "FEATURES", features)
    now = time.time()
    all_lines = lines(np.random.default_rng(0), now)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "all.jsonl").write_text("\n".join(all_lines) + "\n")
    together = Exporter(parse_config({"models": [model(tmp_path, n, shared) for n in FEATURES]}))
    together.ingest_pass()
    parser = next(i for i in together.ingests if i.source == "serving").parse.__self__
    assert parser.model_columns is not None  # the per-model way is the one under test
    assert parser.raw_features == (features is DISTINCT)
    for name in FEATURES:
        own = tmp_path / f"own-{name}"
        own.mkdir()
        mine = [x for x in all_lines if json.loads(x)["model"] == name]
        (own / "a.jsonl").write_text("\n".join(mine) + "\n")
        alone = Exporter(parse_config({"models": [model(tmp_path, name, own)]}))
        alone.ingest_pass()
        got, want = state_of(together, name), state_of(alone, name)
        assert got["status"] == want["status"], name
        assert got["requests"] == want["requests"], name
        assert got["numeric"] == want["numeric"] and got["categorical"] == want["categorical"]
        assert got["skew"] == pytest.approx(want["skew"], abs=1e-12), name


def test_a_log_shared_by_many_models_is_read_in_larger_steps(tmp_path):
    """A step pays a fixed cost per model in it: 100 models sharing a log get 32 MiB
    steps (each model's share ~80 records or more), one model's own log 8 MiB."""
    models = [{"name": f"m{i}", "serving_logs": [str(tmp_path / "*.jsonl")]} for i in range(100)]
    shared = Exporter(parse_config({"models": models}))
    alone = Exporter(parse_config({"models": models[:1]}))
    (serving,) = [i for i in shared.ingests if i.source == "serving"]
    (one,) = [i for i in alone.ingests if i.source == "serving"]
    assert (serving.budget, one.budget) == (32 << 20, 8 << 20)
