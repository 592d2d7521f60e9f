"""The push endpoints over real HTTP: JSON lines, and KServe's logger CloudEvents built with
the CNCF CloudEvents SDK exactly as KServe's logger sends them (binary mode, its extension
attributes, the request's content type on both events)."""

import datetime as dt
import gzip
import json
import time
import uuid

import numpy as np
import pytest
import requests
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.v1.event import CloudEvent

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.server import MetricsServer
from tests.helpers import sample, wait_for

FEATURES = ["amount", "age", "country"]


def config(**push):
    return {
        "models": [
            {
                "name": "fraud",
                "features": {"numeric": ["amount", "age"], "categorical": ["country"]},
                "feature_order": FEATURES,
                "windows": {"length": "10m", "bucket": "1m"},
            },
            {"name": "ranker", "task": "regression"},
        ],
        "push": {"enabled": True, **push},
    }


@pytest.fixture
def served():
    made = []

    def make(start=True, **push):
        e = Exporter(parse_config(config(**push)), interval=0.05)
        if start:
            e.start()
        else:
            e.render()
        server = MetricsServer(e, "127.0.0.1", 0)
        server.start()
        made.append((e, server))
        return e, f"http://127.0.0.1:{server.port}"

    yield make
    for e, server in made:
        server.stop()
        e.stop()


def requests_total(e, version="v1", outcome="success", model="fraud"):
    return (
        sample(e, "mlpipe_serving_requests_total", model=model, version=version, outcome=outcome)
        or 0.0
    )


def test_json_lines_are_accepted_counted_and_bad_bodies_refused(served):
    e, url = served()
    now = time.time()
    good = [
        {"model": "fraud", "model_version": "v1", "latency_ms": 5, "features": {"amount": i}}
        for i in range(900)
    ]
    for i, rec in enumerate(good):
        if i % 3:
            rec["timestamp"] = now - i * 0.01  # a third have none: arrival time
    body = b"".join(json.dumps(r).encode() + b"\n" for r in good) + b"{broken\n" + b"[1]\n"
    r = requests.post(f"{url}/api/v1/records", data=body, timeout=10)
    assert r.status_code == 200 and r.json() == {"accepted": 900, "invalid": 2}
    gz = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in good[:100]))
    r = requests.post(
        f"{url}/api/v1/records", data=gz, headers={"Content-Encoding": "gzip"}, timeout=10
    )
    assert r.status_code == 200 and r.json()["accepted"] == 100
    wait_for(lambda: requests_total(e) == 1000, what="1000 pushed requests applied")
    assert sample(e, "mlpipe_source_invalid_lines_total", source="push", reason="not_json") == 2

    r = requests.post(f"{url}/api/v1/records", data=b"not json\n", timeout=10)
    assert r.status_code == 400
    assert r.text == "no valid record: 1 of 1 lines invalid (first: not_json)\n"
    assert requests.get(f"{url}/api/v1/records", timeout=10).status_code == 405
    r = requests.post(f"{url}/api/v1/records", data=b"x" * (1 << 21), timeout=10)
    assert r.status_code == 400  # 2 MiB is within the default 16 MiB: read, and refused
    wait_for(
        lambda: sample(e, "mlpipe_push_requests_total", endpoint="records", code="400") == 2,
        what="the two 400s counted",
    )


def test_a_body_over_the_limit_is_a_413(served):
    _, url = served(max_body_bytes=1000)
    r = requests.post(f"{url}/api/v1/records", data=b"x" * 1001, timeout=10)
    assert r.status_code == 413
    bomb = gzip.compress(b"\n" * 100_000)  # small on the wire, large inflated
    r = requests.post(
        f"{url}/api/v1/records", data=bomb, headers={"Content-Encoding": "gzip"}, timeout=10
    )
    assert r.status_code == 413


def test_a_saturated_exporter_answers_429_and_loses_no_accepted_record(served):
    e, url = served(start=False, max_queued_records=500)  # no ingest thread yet
    line = json.dumps({"model": "fraud", "model_version": "v1", "timestamp": time.time()})
    body = (line + "\n").encode() * 200
    accepted = refused = 0
    for _ in range(5):
        r = requests.post(f"{url}/api/v1/records", data=body, timeout=10)
        if r.status_code == 200:
            accepted += r.json()["accepted"]
        else:
            assert r.status_code == 429 and r.headers["Retry-After"] == "1"
            refused += 1
    assert (accepted, refused) == (400, 3)
    e.ingest_pass()
    assert requests_total(e) == 400
    r = requests.post(f"{url}/api/v1/records", data=body, timeout=10)
    assert r.status_code == 200  # drained: accepted again


# --- KServe -------------------------------------------------------------------------------

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


def kserve_event(kind, ce_id, body: dict, when: dt.datetime, endpoint="default", model="fraud"):
    """A binary-mode CloudEvent with the attributes KServe's logger (pkg/logger/worker.go)
    sets: id, type, source, time, its four extensions, metadata, the request's content type."""
    event = CloudEvent(
        attributes={
            "id": ce_id,
            "type": kind,
            "source": f"http://localhost:9081/v1/models/{model}:predict",
            "time": when,
            "datacontenttype": "application/json",
            "inferenceservicename": model,
            "namespace": "prod",
            "component": "predictor",
            "endpoint": endpoint,
            "metadata": "{}",
        },
        data=json.dumps(body).encode(),
    )
    message = ce_http.to_binary_event(event)
    return message.headers, message.body


def post_event(url, kind, ce_id, body, when, **kw):
    headers, data = kserve_event(kind, ce_id, body, when, **kw)
    return requests.post(f"{url}/api/v1/kserve", data=data, headers=headers, timeout=10)


def test_kserve_events_joined_into_requests_with_latency_and_features(served):
    e, url = served(kserve_response_timeout="1s")
    rng = np.random.default_rng(3)
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
    latencies = []
    rows_sent = 0
    for i in range(60):
        ce_id = str(uuid.uuid4())
        n = 1 + i % 3  # batched requests: one record per instance
        rows = [[float(rng.normal(100, 10)), int(rng.integers(18, 80)), "DE"] for _ in range(n)]
        if i % 2:  # Open Inference Protocol (v2) bodies
            request = {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [n, 2],
                        "datatype": "FP64",
                        "data": [r[:2] for r in rows],
                    },
                    {"name": "country", "shape": [n], "datatype": "BYTES", "data": ["DE"] * n},
                ]
            }
            response = {
                "outputs": [
                    {
                        "name": "p",
                        "shape": [n, 2],
                        "datatype": "FP32",
                        "data": [x for _ in range(n) for x in (0.3, 0.7)],
                    }
                ]
            }
        else:
            request = {"instances": rows}
            response = {"predictions": [0.7] * n}
        sent = t0 + dt.timedelta(seconds=i * 0.5)
        latency = float(rng.uniform(0.002, 0.4))
        latencies += [latency] * n
        rows_sent += n
        done = sent + dt.timedelta(seconds=latency)
        halves = [(REQUEST, request, sent), (RESPONSE, response, done)]
        if i % 5 == 0:
            halves.reverse()  # KServe's logger workers are concurrent: either half first
        for kind, body, when in halves:
            assert post_event(url, kind, ce_id, body, when).status_code in (200, 202)
    # A request whose response never comes (KServe logs responses for HTTP 200 only).
    post_event(url, REQUEST, "lost", {"instances": [[1.0, 30, "FR"]]}, t0)
    # A canary's events land on the canary version slot.
    post_event(url, REQUEST, "c1", {"instances": [[1.0, 30, "FR"]]}, t0, endpoint="canary")
    post_event(url, RESPONSE, "c1", {"predictions": [0.1]}, t0, endpoint="canary")

    wait_for(lambda: requests_total(e, "default") == rows_sent, what="joined requests")
    wait_for(lambda: requests_total(e, "default", "error") == 1, what="the unpaired request")
    assert requests_total(e, "canary") == 1
    assert sample(e, "mlpipe_kserve_unpaired_events_total", type="request") == 1
    # The latency histogram is what the two events' ce-time say.
    buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5)
    for le in buckets:
        got = sample(
            e,
            "mlpipe_serving_request_duration_seconds_bucket",
            model="fraud",
            version="default",
            le=str(le),
        )
        assert got == sum(1 for x in latencies if x <= le), le
    # Every instance's features were profiled, positional (v1), 2-D (v2) and named alike.
    for feature in FEATURES:
        ok = sample(
            e, "mlpipe_feature_values_total", model="fraud", feature=feature, status="valid"
        )
        assert ok == rows_sent + 2, feature


def test_kserve_bad_events_are_400_and_counted(served):
    e, url = served()
    now = dt.datetime.now(dt.UTC)
    r = post_event(url, REQUEST, "a", {"instances": [[1, 2]]}, now)  # 2 values, 3 features
    assert r.status_code == 400 and "feature_order names 3" in r.text
    r = post_event(url, REQUEST, "b", {"instances": [[1, 2, "x"]]}, now, model="nope")
    assert r.status_code == 400 and "'nope'" in r.text
    r = requests.post(f"{url}/api/v1/kserve", data=b"{}", timeout=10)  # not a CloudEvent
    assert r.status_code == 400
    wait_for(
        lambda: (
            sample(e, "mlpipe_source_invalid_lines_total", source="kserve", reason="bad_body") == 2
        ),
        what="bad bodies counted",
    )
    assert (
        sample(e, "mlpipe_source_invalid_lines_total", source="kserve", reason="unknown_model") == 1
    )


def test_the_push_endpoints_sit_behind_basic_auth(tmp_path):
    from exporter.webconfig import WebSecurity
    from tests.unit.hardening.test_web_hardening import web_config

    e = Exporter(parse_config(config()))
    e.render()
    server = MetricsServer(e, "127.0.0.1", 0, security=WebSecurity(web_config(tmp_path, cost=4)))
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/api/v1/records"
        line = json.dumps({"model": "fraud", "timestamp": time.time()}).encode() + b"\n"
        assert requests.post(url, data=line, timeout=10).status_code == 401
        r = requests.post(url, data=line, auth=("alice", "secret"), timeout=10)
        assert r.status_code == 200 and r.json()["accepted"] == 1
    finally:
        server.stop()
        e.stop()


def test_kserve_multiclass_probabilities_estimate_quality(tmp_path):
    """A multiclass model's KServe responses carry one probability per class (v1 lists, a
    [N, 3] OIP tensor): the prediction is the top class's name and the probabilities feed
    the quality estimate."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    classes = ["cat", "dog", "bird"]
    rng = np.random.default_rng(11)
    ref = rng.dirichlet([2.0, 1.5, 1.0], 30_000)
    ref_y = (rng.random((len(ref), 1)) > np.cumsum(ref, axis=1)).sum(axis=1)
    (tmp_path / "train").mkdir()
    columns = {f"p_{c}": ref[:, k] for k, c in enumerate(classes)}
    pq.write_table(
        pa.table({**columns, "label": np.array(classes)[ref_y]}),
        tmp_path / "train" / "part-0.parquet",
    )
    model = {
        "name": "animals",
        "task": "multiclass",
        "classes": classes,
        "min_samples": 50,
        "reference": {"path": str(tmp_path / "train"), "label": "label", "scores": list(columns)},
        "windows": {"length": "10m", "bucket": "1m"},
    }
    e = Exporter(
        parse_config({"models": [model], "push": {"enabled": True}}),
        interval=0.05,
        stats_interval=0.2,
    )
    e.start()
    server = MetricsServer(e, "127.0.0.1", 0)
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        p = rng.dirichlet([1.0, 1.0, 1.0], 300)
        t0 = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60)
        for i in range(0, len(p), 3):
            rows = p[i : i + 3]
            if i % 2:
                response = {"predictions": rows.tolist()}
            else:
                response = {
                    "outputs": [
                        {"name": "p", "shape": [3, 3], "datatype": "FP32", "data": rows.tolist()}
                    ]
                }
            when = t0 + dt.timedelta(seconds=i * 0.1)
            for kind, body in ((REQUEST, {"instances": [{"x": 0.0}] * 3}), (RESPONSE, response)):
                r = post_event(url, kind, f"e{i}", body, when, model="animals")
                assert r.status_code in (200, 202), r.text

        def estimated():
            return sample(
                e,
                "mlpipe_model_quality_estimated",
                model="animals",
                version="default",
                metric="accuracy",
            )

        def window_samples():
            return sample(e, "mlpipe_window_samples", model="animals", version="default")

        # Every record applied and the statistics computed after it.
        wait_for(lambda: window_samples() == len(p), what="every record in the window")
        wait_for(lambda: estimated() is not None, what="the multiclass estimate")
        assert estimated() == pytest.approx(p.max(axis=1).mean(), abs=0.03)
        # The predictions are the top classes by name (bins of the label's classes).
        dog = sample(
            e,
            "mlpipe_prediction_category_total",
            model="animals",
            version="default",
            category="dog",
        )
        assert dog == (p.argmax(axis=1) == 1).sum()
    finally:
        server.stop()
        e.stop()
