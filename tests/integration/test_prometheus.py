"""A real Prometheus scrapes the real exporter; PromQL answers match what was written."""

import subprocess
import threading
import time

import numpy as np
import pytest

from exporter.config import DEFAULT_LATENCY_BUCKETS
from tests.helpers import serving_line, wait_for
from tests.integration.conftest import PROMTOOL, require_binary, wait_value


def prometheus_quantile(q: float, values: np.ndarray, bounds) -> float:
    """What histogram_quantile returns for these raw values: linear within the bucket."""
    counts = np.array([(values <= b).sum() for b in bounds], dtype=float)
    rank = q * len(values)
    b = int(np.searchsorted(counts, rank, side="left"))
    lower = 0.0 if b == 0 else bounds[b - 1]
    below = 0.0 if b == 0 else counts[b - 1]
    return lower + (bounds[b] - lower) * (rank - below) / (counts[b] - below)


def test_rate_and_latency_quantile_through_prometheus(tmp_path, start_exporter, start_prometheus):
    logs = tmp_path / "logs"
    logs.mkdir()
    exp = start_exporter({"models": [{"name": "fraud", "serving_logs": [str(logs / "*.jsonl")]}]})
    prom = start_prometheus([f"127.0.0.1:{exp.port}"])
    rng = np.random.default_rng(11)
    rate, seconds = 40, 20  # lines per second, for this long
    latency_ms = rng.lognormal(np.log(20), 0.6, rate * seconds)
    errors = rng.random(rate * seconds) < 0.1

    def writer():
        # Ten slices a second, paced on the clock, so any window sees an even flow.
        start = time.monotonic()
        with open(logs / "serving.jsonl", "a") as fh:
            for tick in range(seconds * 10):
                for k in range(rate // 10):
                    i = tick * (rate // 10) + k
                    status = "error" if errors[i] else "ok"
                    fh.write(serving_line(i, latency_ms=float(latency_ms[i]), status=status))
                fh.flush()
                time.sleep(max(0.0, start + (tick + 1) / 10 - time.monotonic()))

    thread = threading.Thread(target=writer)
    thread.start()
    # While traffic flows: the per-second rate Prometheus computes is the rate written.
    sel = 'mlpipe_serving_requests_total{model="fraud",version="v1"}'
    time.sleep(15)
    measured = prom.value(f"sum(rate({sel}[10s]))")
    assert measured == pytest.approx(rate, rel=0.2), measured
    thread.join()
    total = rate * seconds
    wait_value(prom, f"sum({sel})", lambda v: v == total)
    assert prom.value(f'{sel[:-1]},outcome="error"}}') == errors.sum()
    bucket = 'mlpipe_serving_request_duration_seconds_bucket{model="fraud",version="v1"}'
    p99 = prom.value(f"histogram_quantile(0.99, {bucket})")
    expected = prometheus_quantile(0.99, latency_ms / 1000, list(DEFAULT_LATENCY_BUCKETS))
    assert p99 == pytest.approx(expected, rel=1e-6)
    # And the same through rate(), the form dashboards and alerts use.
    p99_rate = prom.value(f"histogram_quantile(0.99, sum by (le) (rate({bucket}[30s])))")
    assert p99_rate is not None and 0.05 <= p99_rate <= 0.1  # raw p99 lies in (0.05, 0.1]
    assert 0.05 < np.quantile(latency_ms / 1000, 0.99) <= 0.1


def test_promtool_check_metrics_reports_no_problem(tmp_path, start_exporter):
    require_binary(PROMTOOL)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_text("".join(serving_line(i) for i in range(5)) + "garbage\n")
    exp = start_exporter({"models": [{"name": "fraud", "serving_logs": [str(logs / "*.jsonl")]}]})
    wait_for(lambda: 'mlpipe_serving_requests_total{model="fraud"' in exp.metrics())
    text = exp.metrics()
    out = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and out.stdout.strip() == "" and out.stderr.strip() == "", out
