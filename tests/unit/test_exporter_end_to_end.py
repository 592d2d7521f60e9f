"""The Exporter on real files: lines written -> registry samples, checked against numpy."""

import json

import numpy as np
import pytest

from exporter.app import Exporter
from exporter.config import parse_config
from tests.helpers import sample, serving_line


def make(tmp_path, **model):
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    cfg = {
        "models": [
            {"name": "fraud", "serving_logs": [str(logs / "*.jsonl")], **model},
            {"name": "ranker", "serving_logs": [str(logs / "*.jsonl")]},
        ]
    }
    return Exporter(parse_config(cfg), state_dir=str(tmp_path / "state")), logs


def test_requests_histogram_and_last_timestamp_match_the_raw_log(tmp_path):
    exporter, logs = make(tmp_path)
    rng = np.random.default_rng(3)
    latency_ms = rng.lognormal(2.5, 1.0, 3000)
    errors = rng.random(3000) < 0.05
    versions = np.where(rng.random(3000) < 0.1, "v2", "v1")
    with open(logs / "a.jsonl", "w") as fh:
        for i in range(3000):
            fh.write(
                serving_line(
                    i,
                    version=str(versions[i]),
                    latency_ms=float(latency_ms[i]),
                    status="error" if errors[i] else "ok",
                )
            )
    exporter.ingest_pass()
    for v in ("v1", "v2"):
        sel = versions == v
        assert (
            sample(
                exporter, "mlpipe_serving_requests_total", model="fraud", version=v, outcome="error"
            )
            == errors[sel].sum()
        )
        assert (
            sample(
                exporter,
                "mlpipe_serving_requests_total",
                model="fraud",
                version=v,
                outcome="success",
            )
            == (~errors[sel]).sum()
        )
        for le in (0.005, 0.01, 0.1, 1.0):
            expected = (latency_ms[sel] / 1000 <= le).sum()
            got = sample(
                exporter,
                "mlpipe_serving_request_duration_seconds_bucket",
                model="fraud",
                version=v,
                le=str(le),
            )
            assert got == expected
        assert sample(
            exporter, "mlpipe_serving_request_duration_seconds_sum", model="fraud", version=v
        ) == pytest.approx(latency_ms[sel].sum() / 1000)
        last = 1_790_000_000 + np.flatnonzero(sel).max() * 0.01
        assert sample(
            exporter, "mlpipe_serving_last_request_timestamp_seconds", model="fraud", version=v
        ) == pytest.approx(last)
    assert sample(exporter, "mlpipe_source_lines_total", source="serving", result="parsed") == 3000


def test_versions_beyond_the_cap_are_counted_as_other(tmp_path):
    exporter, logs = make(tmp_path, max_versions=2)
    with open(logs / "a.jsonl", "w") as fh:
        for i in range(40):
            fh.write(serving_line(i, version=f"v{i % 4}"))
    exporter.ingest_pass()
    got = {
        v: sample(
            exporter, "mlpipe_serving_requests_total", model="fraud", version=v, outcome="success"
        )
        for v in ("v0", "v1", "v2", "v3", "other")
    }
    assert got == {"v0": 10, "v1": 10, "v2": None, "v3": None, "other": 20}


def test_a_failing_collector_reports_success_0_and_others_still_export(tmp_path):
    exporter, logs = make(tmp_path)
    (logs / "a.jsonl").write_text(serving_line(1))
    exporter.ingest_pass()

    class Broken:
        name = "broken"

        def collect(self, state):
            raise RuntimeError("boom")
            yield

    scrape = next(iter(exporter.registry._collector_to_names))
    scrape.collectors.insert(0, Broken())
    assert sample(exporter, "mlpipe_scrape_collector_success", collector="broken") == 0
    assert sample(exporter, "mlpipe_scrape_collector_success", collector="serving") == 1
    assert (
        sample(
            exporter,
            "mlpipe_serving_requests_total",
            model="fraud",
            version="v1",
            outcome="success",
        )
        == 1
    )


def test_invalid_lines_are_counted_by_reason(tmp_path):
    exporter, logs = make(tmp_path)
    with open(logs / "a.jsonl", "w") as fh:
        fh.write(serving_line(1))
        fh.write("garbage\n")
        fh.write(json.dumps({"timestamp": 1, "model": "unknown-model"}) + "\n")
    exporter.ingest_pass()
    assert sample(exporter, "mlpipe_source_lines_total", source="serving", result="invalid") == 2
    assert (
        sample(exporter, "mlpipe_source_invalid_lines_total", source="serving", reason="not_json")
        == 1
    )
    assert (
        sample(
            exporter, "mlpipe_source_invalid_lines_total", source="serving", reason="unknown_model"
        )
        == 1
    )


def test_series_budget_drops_excess_series_counts_them_and_warns_once(tmp_path, caplog):
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = {
        "models": [{"name": "fraud", "serving_logs": [str(logs / "*.jsonl")], "max_versions": 8}],
        "limits": {"max_series_per_metric": 6, "max_series_per_model": 1000},
    }
    exporter = Exporter(parse_config(cfg))
    with open(logs / "a.jsonl", "w") as fh:
        for i in range(80):
            fh.write(serving_line(i, version=f"v{i % 8}", latency_ms=5.0))
    exporter.ingest_pass()
    for _ in range(3):
        samples = list(exporter.registry.collect())
    requests = next(f for f in samples if f.name == "mlpipe_serving_requests")
    keys = {tuple(sorted(s.labels.items())) for s in requests.samples}
    assert len(keys) == 6  # 8 versions x 2 outcomes = 16 series, capped at 6
    hist = next(f for f in samples if f.name == "mlpipe_serving_request_duration_seconds")
    per_version = {}
    for s in hist.samples:
        per_version.setdefault(s.labels["version"], []).append(s)
    # Whole histograms kept: every kept version has all its buckets, sum and count.
    assert len({len(v) for v in per_version.values()}) == 1
    dropped = exporter.registry.get_sample_value(
        "mlpipe_series_dropped_total", {"metric": "mlpipe_serving_requests"}
    )
    # Ten series dropped per scrape: three above, plus get_sample_value's own scrape.
    assert dropped == 4 * 10
    warnings = [
        r
        for r in caplog.records
        if "series budget exceeded for mlpipe_serving_requests" in r.getMessage()
    ]
    assert len(warnings) == 1


def test_series_budget_per_model(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = {
        "models": [
            {"name": "fraud", "serving_logs": [str(logs / "*.jsonl")]},
            {"name": "ranker", "serving_logs": [str(logs / "*.jsonl")]},
        ],
        "limits": {"max_series_per_model": 4},
    }
    exporter = Exporter(parse_config(cfg))
    with open(logs / "a.jsonl", "w") as fh:
        for i in range(10):
            fh.write(serving_line(i, model="fraud" if i % 2 else "ranker"))
    exporter.ingest_pass()
    families = list(exporter.registry.collect())
    per_model = {}
    for f in families:
        for s in f.samples:
            if "model" in s.labels:
                key = (f.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")))
                per_model.setdefault(s.labels["model"], set()).add(key)
    assert {m: len(k) for m, k in per_model.items()} == {"fraud": 4, "ranker": 4}


def test_clock_jumps_are_counted_and_windows_stay_sane(tmp_path):
    import time

    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = {
        "models": [
            {
                "name": "fraud",
                "serving_logs": [str(logs / "*.jsonl")],
                "windows": {"length": "10m", "bucket": "1m"},
            }
        ]
    }
    exporter = Exporter(parse_config(cfg))
    now = time.time()
    stamps = [now - 5] * 7 + [now + 3600] * 2 + [now - 86400] * 3  # 2 future, 3 far past
    with open(logs / "a.jsonl", "w") as fh:
        for i, ts in enumerate(stamps):
            fh.write(
                json.dumps(
                    {
                        "timestamp": ts,
                        "model": "fraud",
                        "model_version": "v1",
                        "request_id": str(i),
                        "latency_ms": 1.0,
                    }
                )
                + "\n"
            )
    exporter.ingest_pass()
    exporter.compute_stats()

    def dropped(r):
        return sample(
            exporter,
            "mlpipe_window_dropped_records_total",
            model="fraud",
            reason=r,
        )

    assert (dropped("future"), dropped("too_old")) == (2, 3)
    assert sample(exporter, "mlpipe_window_samples", model="fraud", version="v1") == 7
    # Every request is still counted; the last-request time is never in the future.
    assert (
        sample(
            exporter,
            "mlpipe_serving_requests_total",
            model="fraud",
            version="v1",
            outcome="success",
        )
        == 12
    )
    last = sample(
        exporter, "mlpipe_serving_last_request_timestamp_seconds", model="fraud", version="v1"
    )
    assert now - 10 < last <= time.time()
