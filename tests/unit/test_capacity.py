import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from exporter.stats.capacity import estimate


def test_little_law_on_known_traffic():
    # 50 requests every second for 10 minutes, each taking 200 ms.
    t = np.repeat(np.arange(1_790_000_000, 1_790_000_600), 50) + np.tile(np.arange(50) / 50, 600)
    est = estimate(
        t, np.full(len(t), 0.2), replica_concurrency=1, target_utilization=0.7, headroom=0.2
    )
    assert est.peak_qps == 50 and est.mean_qps == 50
    assert est.concurrency == pytest.approx(10.0)
    assert est.replicas == 18  # ceil(10 * 1.2 / 0.7) = ceil(17.14)


def test_peak_is_p99_of_per_second_counts():
    counts = np.full(1000, 10)
    counts[:5] = 400  # five bursty seconds out of 1000: below the 99th percentile
    counts[5:20] = 100
    t = np.concatenate([np.full(c, 1_790_000_000 + i, float) for i, c in enumerate(counts)])
    est = estimate(t, np.full(len(t), 0.05))
    assert est.peak_qps == pytest.approx(np.quantile(counts, 0.99))


def test_estimate_quota_command(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    with open(logs / "a.jsonl", "w") as fh:
        for s in range(120):
            for k in range(20):
                fh.write(
                    json.dumps(
                        {
                            "timestamp": 1_790_000_000 + s + k / 20,
                            "model": "fraud",
                            "latency_ms": 250.0,
                        }
                    )
                    + "\n"
                )
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "models": [
                    {
                        "name": "fraud",
                        "serving_logs": [str(logs / "*.jsonl")],
                        "capacity": {
                            "replica_concurrency": 2,
                            "target_utilization": 0.5,
                            "headroom": 0.0,
                        },
                    }
                ]
            }
        )
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter.cli",
            "estimate-quota",
            f"--config.file={cfg}",
            "--output=json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)["models"]["fraud"]
    assert result["peak_qps"] == 20 and result["mean_latency_seconds"] == 0.25
    assert result["concurrency"] == pytest.approx(5.0)
    assert result["replicas"] == 5  # 5 / (2 * 0.5)
    table = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "estimate-quota", f"--config.file={cfg}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "fraud" in table.stdout and "Little's law" in table.stdout
