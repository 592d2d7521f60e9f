"""The same serving records as plain JSON lines, Kubernetes CRI logs and Docker json-file
logs give the same metrics: requests, latency histogram, features profiled (skew)."""

import json
import time

import numpy as np
import pytest

from exporter.app import Exporter
from exporter.config import parse_config
from tests.helpers import sample, settle
from tests.unit.sources.test_envelopes import cri_lines, docker_lines
from tests.unit.test_drift_end_to_end import COUNTRIES, write_reference

N = 3000


def records(rng) -> list[dict]:
    # Inside the 10-minute window (records older than it are not profiled), counted from
    # now: a start fixed at import went out of the window when the suite reached this test
    # more than ~9 minutes after collection.
    t0 = time.time() - 350
    out = []
    for i in range(N):
        out.append(
            {
                "timestamp": t0 + i * 0.1,
                "request_id": f"r{i}",
                "model_version": "v2" if i % 5 == 0 else "v1",
                "latency_ms": float(rng.gamma(2.0, 20.0)),
                "status": 503 if i % 97 == 0 else "ok",
                "features": {
                    "amount": float(rng.normal(130, 20)),  # shifted from the reference's 100
                    "age": int(rng.integers(18, 80)),
                    "score": float(rng.normal(0, 1)),
                    "country": str(rng.choice(COUNTRIES)),
                    "device": "web",
                },
                "prediction": float(rng.random()),
                # Every 100th record is longer than the runtime's 16 KiB line: it is split.
                "note": "x" * (40_000 if i % 100 == 0 else 5),
            }
        )
    return out


def run(tmp_path, ref_dir, name: str, lines: bytes, source, **model) -> Exporter:
    logs = tmp_path / name
    logs.mkdir()
    (logs / "0.log").write_bytes(lines)
    source = source(str(logs / "*.log"))
    cfg = {
        "models": [
            {
                "name": "fraud",
                "serving_logs": [source],
                "reference": {"path": str(ref_dir), "label": "label", "prediction": "prediction"},
                "features": {"numeric": ["amount", "age", "score"], "categorical": ["country"]},
                "windows": {"length": "10m", "bucket": "1m"},
                "min_samples": 10,
                **model,
            }
        ]
    }
    e = Exporter(parse_config(cfg), state_dir=str(tmp_path / f"state-{name}"))
    settle(e)
    e.compute_stats()
    return e


def metrics(e: Exporter, source: str) -> dict:
    out = {
        "requests": {
            (v, o): sample(e, "mlpipe_serving_requests_total", model="fraud", version=v, outcome=o)
            for v in ("v1", "v2")
            for o in ("success", "error")
        },
        "latency": [
            sample(
                e,
                "mlpipe_serving_request_duration_seconds_bucket",
                model="fraud",
                version="v1",
                le=le,
            )
            for le in ("0.01", "0.025", "0.05", "0.1", "+Inf")
        ],
        "latency_sum": sample(
            e, "mlpipe_serving_request_duration_seconds_sum", model="fraud", version="v1"
        ),
        "skew": {
            f: sample(e, "mlpipe_feature_skew", model="fraud", feature=f, method="psi")
            for f in ("amount", "age", "score", "country")
        },
        "parsed": sample(e, "mlpipe_source_lines_total", source=source, result="parsed"),
    }
    return out


def same(got: dict, want: dict) -> None:
    """Counts exactly; sums and distances to float rounding (batches differ in size)."""
    assert got["skew"] == pytest.approx(want["skew"], abs=1e-9)
    assert got["latency_sum"] == pytest.approx(want["latency_sum"], rel=1e-12)
    exact = ("requests", "latency")
    assert {k: got[k] for k in exact} == {k: want[k] for k in exact}
    assert got["parsed"] == want["parsed"] == N


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    rng = np.random.default_rng(7)
    return write_reference(tmp_path_factory.mktemp("ref"), rng)[0]


def test_cri_and_docker_logs_give_what_the_json_file_gives(tmp_path, reference):
    recs = records(np.random.default_rng(1))
    plain = b"".join(json.dumps({"model": "fraud", **r}).encode() + b"\n" for r in recs)
    want = metrics(run(tmp_path, reference, "json", plain, lambda p: p), "serving")
    assert sum(want["requests"].values()) == N and want["requests"][("v1", "error")] > 0
    assert want["skew"]["amount"] > 1.0  # a real shift, so equal skews mean something

    # CRI: no model field (the source is the model's), no timestamp (the kubelet's time is
    # the record's), an access log between the records on stdout, a sidecar on stderr.
    cri = b""
    for r in recs:
        payload = {k: v for k, v in r.items() if k != "timestamp"}
        cri += cri_lines(json.dumps(payload), r["timestamp"])
        if r["request_id"].endswith("7"):
            cri += cri_lines('10.0.0.1 - - "POST /v1/models/fraud:predict HTTP/1.1" 200', 0.0)
            cri += cri_lines(json.dumps({"msg": "sidecar"}), 0.0, stream="stderr")
    assert cri.count(b" P ") >= 2 * (N // 100)
    e = run(
        tmp_path,
        reference,
        "cri",
        cri,
        lambda p: {"path": p, "format": "cri", "streams": ["stdout"]},
    )
    got = metrics(e, "serving-fraud")
    same(got, want)
    ignored = {
        r: sample(e, "mlpipe_source_ignored_lines_total", source="serving-fraud", reason=r)
        for r in ("not_json_payload", "stream")
    }
    assert ignored == {"not_json_payload": N / 10, "stream": N / 10}
    assert sample(e, "mlpipe_source_lines_total", source="serving-fraud", result="invalid") == 0

    docker = b"".join(
        docker_lines(json.dumps({k: v for k, v in r.items() if k != "timestamp"}), r["timestamp"])
        for r in recs
    )
    e = run(tmp_path, reference, "docker", docker, lambda p: {"path": p, "format": "docker"})
    got = metrics(e, "serving-fraud")
    same(got, want)


def test_bentoml_monitor_lines_features_at_top_level_constant_version(tmp_path, reference):
    """BentoML's monitor writes the logged fields at the top level and no model name."""
    recs = records(np.random.default_rng(2))
    plain = b"".join(json.dumps({"model": "fraud", **r}).encode() + b"\n" for r in recs)
    want = metrics(run(tmp_path, reference, "json", plain, lambda p: p), "serving")
    bento = b"".join(
        json.dumps(
            {
                "timestamp": r["timestamp"],
                "request_id": r["request_id"],
                **r["features"],
                "pred": r["prediction"],
            }
        ).encode()
        + b"\n"
        for r in recs
    )
    e = run(
        tmp_path,
        reference,
        "bento",
        bento,
        lambda p: {
            "path": p,
            "version": "v1",
            "fields": {"features": ".", "prediction": "pred"},
        },
    )
    assert (
        sample(e, "mlpipe_serving_requests_total", model="fraud", version="v1", outcome="success")
        == N
    )
    skew = {
        f: sample(e, "mlpipe_feature_skew", model="fraud", feature=f, method="psi")
        for f in ("amount", "age", "score", "country")
    }
    assert skew == pytest.approx(want["skew"], abs=1e-9)


def test_features_as_a_positional_array_named_by_feature_order(tmp_path, reference):
    recs = records(np.random.default_rng(3))
    plain = b"".join(json.dumps({"model": "fraud", **r}).encode() + b"\n" for r in recs)
    want = metrics(run(tmp_path, reference, "json", plain, lambda p: p), "serving")
    order = ["country", "amount", "age", "score"]
    positional = b"".join(
        json.dumps({**r, "features": [r["features"][f] for f in order]}).encode() + b"\n"
        for r in recs
    )
    e = run(
        tmp_path,
        reference,
        "positional",
        positional,
        lambda p: {"path": p},
        feature_order=order,
    )
    got = metrics(e, "serving-fraud")
    same(got, want)
