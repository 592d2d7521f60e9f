"""Run log -> pipeline metrics; the run-log helper; quotas fed by finished runs."""

import json
import time

import pytest

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.runlog import record_run
from tests.helpers import sample


def config(tmp_path, **extra):
    return parse_config(
        {
            "pipelines": [
                {
                    "name": "train-fraud",
                    "kind": "training",
                    "run_log": str(tmp_path / "runs.jsonl"),
                    "expected_interval": "1d",
                },
                {"name": "etl", "kind": "data", "run_log": str(tmp_path / "runs.jsonl")},
            ],
            **extra,
        }
    )


def write(path, *records):
    with open(path, "a") as fh:
        for r in records:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")


def test_runs_durations_and_last_success(tmp_path):
    log = tmp_path / "runs.jsonl"
    t0 = 1_795_000_000.0
    write(
        log,
        {"pipeline": "train-fraud", "run_id": "a", "status": "running", "start": t0},
        {
            "pipeline": "train-fraud",
            "run_id": "a",
            "status": "succeeded",
            "start": t0,
            "end": t0 + 1200,
            "cpu_seconds": 3000,
            "gpu_seconds": 1100,
        },
        {
            "pipeline": "train-fraud",
            "run_id": "b",
            "status": "running",
            "start": "2026-11-18T10:00:00Z",
        },
        {
            "pipeline": "train-fraud",
            "run_id": "b",
            "status": "failed",
            "end": "2026-11-18T10:05:00Z",
        },
        {
            "pipeline": "train-fraud",
            "run_id": "b",
            "status": "failed",
            "end": "2026-11-18T10:05:00Z",
        },  # duplicate record: counted once
        {"pipeline": "etl", "run_id": 7, "status": "running", "start": time.time() - 100},
        {"pipeline": "nope", "run_id": "x", "status": "running"},
        {"pipeline": "etl", "run_id": 8, "status": "exploded"},
        "garbage",
    )
    e = Exporter(config(tmp_path), state_dir=str(tmp_path / "state"))
    e.ingest_pass()
    runs = lambda p, k, s: sample(e, "mlpipe_pipeline_runs_total", pipeline=p, kind=k, status=s)  # noqa: E731
    assert runs("train-fraud", "training", "succeeded") == 1
    assert runs("train-fraud", "training", "failed") == 1
    assert (
        sample(
            e, "mlpipe_pipeline_run_duration_seconds_sum", pipeline="train-fraud", kind="training"
        )
        == 1200 + 300
    )
    assert (
        sample(
            e,
            "mlpipe_pipeline_run_duration_seconds_bucket",
            pipeline="train-fraud",
            kind="training",
            le="600.0",
        )
        == 1
    )
    assert (
        sample(
            e, "mlpipe_pipeline_run_duration_seconds_count", pipeline="train-fraud", kind="training"
        )
        == 2
    )
    assert (
        sample(e, "mlpipe_pipeline_last_success_timestamp_seconds", pipeline="train-fraud")
        == t0 + 1200
    )
    assert sample(e, "mlpipe_pipeline_last_run_duration_seconds", pipeline="train-fraud") == 300
    assert (
        sample(
            e,
            "mlpipe_pipeline_resource_usage_total",
            pipeline="train-fraud",
            resource="gpu_seconds",
        )
        == 1100
    )
    assert sample(e, "mlpipe_pipeline_running_runs", pipeline="etl") == 1
    assert 99 <= sample(e, "mlpipe_pipeline_oldest_running_run_age_seconds", pipeline="etl") < 200
    assert sample(e, "mlpipe_pipeline_expected_interval_seconds", pipeline="train-fraud") == 86400
    inv = lambda r: sample(e, "mlpipe_source_invalid_lines_total", source="runs", reason=r)  # noqa: E731
    assert (inv("unknown_pipeline"), inv("wrong_type"), inv("not_json")) == (1, 1, 1)


def test_restart_from_checkpoint_counts_each_run_once(tmp_path):
    log = tmp_path / "runs.jsonl"
    write(
        log,
        *[
            {"pipeline": "etl", "run_id": i, "status": "succeeded", "start": 1.0, "end": 2.0}
            for i in range(5)
        ],
    )
    first = Exporter(config(tmp_path), state_dir=str(tmp_path / "state"))
    first.ingest_pass()
    first.stop()
    write(
        log,
        *[
            {"pipeline": "etl", "run_id": i, "status": "succeeded", "start": 1.0, "end": 2.0}
            for i in range(5, 8)
        ],
    )
    second = Exporter(config(tmp_path), state_dir=str(tmp_path / "state"))
    second.ingest_pass()
    total = sum(
        sample(x, "mlpipe_pipeline_runs_total", pipeline="etl", kind="data", status="succeeded")
        for x in (first, second)
    )
    assert total == 8
    assert (
        sample(
            second, "mlpipe_pipeline_runs_total", pipeline="etl", kind="data", status="succeeded"
        )
        == 3
    )


def test_record_run_helper_writes_what_the_exporter_reads(tmp_path):
    log = str(tmp_path / "runs.jsonl")
    with record_run(log, "train-fraud", run_id="ok") as run:
        sum(i * i for i in range(3_000_000))  # burn CPU beyond os.times()' 10 ms ticks
        run.gpu_seconds = 12.5
    with pytest.raises(RuntimeError), record_run(log, "train-fraud", run_id="bad"):
        raise RuntimeError("training diverged")
    lines = [json.loads(x) for x in open(log)]
    assert [x["status"] for x in lines] == ["running", "succeeded", "running", "failed"]
    assert lines[1]["cpu_seconds"] > 0 and lines[1]["gpu_seconds"] == 12.5
    assert lines[1]["end"] >= lines[1]["start"]
    e = Exporter(config(tmp_path))
    e.ingest_pass()
    assert (
        sample(
            e,
            "mlpipe_pipeline_runs_total",
            pipeline="train-fraud",
            kind="training",
            status="failed",
        )
        == 1
    )
    assert sample(e, "mlpipe_pipeline_running_runs", pipeline="train-fraud") == 0


def test_gpu_quota_fed_by_finished_runs(tmp_path):
    now = time.time()
    log = tmp_path / "runs.jsonl"
    # 100 s of GPU an hour ago, 700 s within the last hour; limit 1000 s per day.
    write(
        log,
        {
            "pipeline": "train-fraud",
            "run_id": 1,
            "status": "succeeded",
            "start": now - 7300,
            "end": now - 7200,
            "gpu_seconds": 100,
        },
        {
            "pipeline": "etl",
            "run_id": 2,
            "status": "succeeded",
            "start": now - 1900,
            "end": now - 1800,
            "gpu_seconds": 700,
        },
        {
            "pipeline": "train-fraud",
            "run_id": 3,
            "status": "succeeded",
            "start": now - 90000,
            "end": now - 90000 + 10,
            "gpu_seconds": 5000,
        },
    )  # older than the period
    cfg = config(
        tmp_path,
        quotas=[
            {
                "name": "gpu-pool",
                "resource": "gpu_seconds",
                "limit": 1000,
                "period": "1d",
                "pipelines": ["train-fraud", "etl"],
            }
        ],
    )
    e = Exporter(cfg)
    e.ingest_pass()
    q = {"quota": "gpu-pool", "resource": "gpu_seconds"}
    assert sample(e, "mlpipe_quota_limit", **q) == 1000
    assert sample(e, "mlpipe_quota_used", **q) == 800
    assert sample(e, "mlpipe_quota_pipeline_used", quota="gpu-pool", pipeline="etl") == 700
    rate = sample(e, "mlpipe_quota_usage_rate", **q)
    assert rate == pytest.approx(700 / 3600)
    assert sample(e, "mlpipe_quota_exhaustion_seconds", **q) == pytest.approx(200 / rate)


def test_the_demo_baseline_stays_far_under_the_error_budget(tmp_path):
    """Before its fault the demo never pages: its error ratio is a fraction of the 0.1 %
    budget, not a hair under the 6x burn line (0.6 %) as it was."""
    import json

    from exporter.demo import DemoWriter

    demo = DemoWriter(str(tmp_path), rate=4000, drift_after=None)
    now = time.time()
    fraud = [json.loads(x) for _ in range(50) for x in demo._fraud_lines(now)]
    ranker = [json.loads(x) for _ in range(50) for x in demo._ranker_lines(now)]
    fraud_errors = sum(r["status"] == "error" for r in fraud) / len(fraud)
    ranker_errors = sum(r["status"] >= 500 for r in ranker) / len(ranker)
    assert len(fraud) > 50_000 and len(ranker) > 25_000
    # 6x burn: 0.6 %; budget: 0.1 %. Binomial noise at these counts is ~0.01 %.
    assert fraud_errors < 0.001 and ranker_errors < 0.001
