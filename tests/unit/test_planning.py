"""Quota plans for pipelines, from a run log with known costs: the exported gauges and
`estimate-quota` against a hand computation."""

import json
import subprocess
import sys

import pytest
import yaml

from exporter.app import Exporter
from exporter.config import parse_config
from tests.helpers import sample

DAY = 86400


def fixture(tmp_path):
    """train: daily, GPU 3000..3900 s a run (10 runs); sweep (experiment): every 12 h,
    GPU 1800 s (10 runs, each also logged as running first); etl: CPU only."""
    log = tmp_path / "runs.jsonl"
    lines = []
    for i in range(10):
        start = 1_790_000_000 + i * DAY
        lines.append(
            {
                "pipeline": "train",
                "kind": "training",
                "run_id": f"t{i}",
                "status": "succeeded",
                "start": start,
                "end": start + 3600,
                "gpu_seconds": 3000 + 100 * i,
                "cpu_seconds": 10,
                "peak_memory_bytes": 8e9 + 1e8 * i,
            }
        )
        s = 1_790_000_000 + i * DAY / 2
        lines.append({"pipeline": "sweep", "run_id": f"s{i}", "status": "running", "start": s})
        lines.append(
            {
                "pipeline": "sweep",
                "run_id": f"s{i}",
                "status": "succeeded",
                "end": s + 600,
                "gpu_seconds": 1800,
            }
        )
        lines.append(
            {
                "pipeline": "sweep",
                "run_id": f"s{i}",
                "status": "succeeded",
                "end": s + 600,
                "gpu_seconds": 1800,
            }
        )  # a repeated record counts once
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cfg = {
        "pipelines": [
            {"name": "train", "kind": "training", "run_log": str(log)},
            {"name": "sweep", "kind": "experiment", "run_log": str(log)},
        ],
        "quotas": [
            {
                "name": "gpu-pool",
                "resource": "gpu_seconds",
                "limit": 150000,
                "period": "30d",
                "pipelines": ["train", "sweep"],
                "plan_headroom": 0.1,
            },
            {
                "name": "train-mem",
                "resource": "memory_bytes",
                "limit": 16e9,
                "pipelines": ["train"],
                "plan_headroom": 0.0,
            },
        ],
    }
    return cfg


def expected_gpu():
    # train: p95 of 3000..3900 (10 values) = 3855; daily -> 30 runs; sweep: 1800 x 60.
    train = 3855.0 * 30 * 1.1
    sweep = 1800.0 * 60 * 1.1
    return train, sweep


def test_planned_gauges_equal_the_hand_computation(tmp_path):
    e = Exporter(parse_config(fixture(tmp_path)))
    e.ingest_pass()
    train, sweep = expected_gpu()
    got = sample(e, "mlpipe_quota_planned", quota="gpu-pool", resource="gpu_seconds")
    assert got == pytest.approx(train + sweep)
    share = sample(
        e, "mlpipe_quota_planned_experiment_ratio", quota="gpu-pool", resource="gpu_seconds"
    )
    assert share == pytest.approx(sweep / (train + sweep))
    mem = sample(e, "mlpipe_quota_planned", quota="train-mem", resource="memory_bytes")
    assert mem == pytest.approx(8e9 + 1e8 * 8.55)  # p95 of the peaks, a level


def test_estimate_quota_prints_the_plan_and_the_day_it_runs_out(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(fixture(tmp_path)))
    run = [sys.executable, "-m", "exporter.cli", "estimate-quota", f"--config.file={path}"]
    out = json.loads(
        subprocess.run([*run, "--output=json"], capture_output=True, text=True, check=True).stdout
    )
    train, sweep = expected_gpu()
    q = out["quotas"]["gpu-pool"]
    assert q["planned"] == pytest.approx(train + sweep)
    assert q["experiment_share"] == pytest.approx(sweep / (train + sweep))
    assert q["runs_out_on_day"] == pytest.approx(30 * 150000 / (train + sweep))
    plan = out["pipelines"]["sweep"]["gpu-pool"]
    assert plan["runs"] == 10 and plan["runs_per_period"] == pytest.approx(60)
    table = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    day = round(30 * 150000 / (train + sweep))
    assert f"runs out on day {day} of 30 at this plan" in table
    assert "sweep" in table and "experiment" in table
