"""Quota plans from run costs, against a hand computation."""

import pytest

from exporter.stats.plan import RunCost, plan_pipeline, plan_quota

DAY = 86400.0


def runs(n, every, cpu, gpu=None, mem=None, start=0.0):
    return [
        RunCost(
            start + i * every,
            start + i * every + 600,
            cpu[i % len(cpu)],
            None if gpu is None else gpu[i % len(gpu)],
            mem,
        )
        for i in range(n)
    ]


def test_need_is_p95_per_run_times_runs_per_period_plus_headroom():
    # 20 daily runs costing 100..2000 CPU seconds: p95 by linear interpolation = 1905.
    costs = runs(20, DAY, [100.0 * (i + 1) for i in range(20)])
    plan = plan_pipeline("train", "training", costs, 30 * DAY, None, 0.2, 20)
    assert plan.runs_per_period == pytest.approx(30.0)
    assert plan.median["cpu_seconds"] == pytest.approx(1050.0)
    assert plan.p95["cpu_seconds"] == pytest.approx(1905.0)
    assert plan.need["cpu_seconds"] == pytest.approx(1905.0 * 30 * 1.2)


def test_expected_interval_wins_over_the_observed_cadence_and_last_runs_bound_history():
    costs = runs(10, 3600.0, [50.0]) + runs(5, DAY, [10.0], start=100 * DAY)
    plan = plan_pipeline("etl", "data", costs, 7 * DAY, 12 * 3600.0, 0.0, 5)
    assert plan.runs == 5 and plan.p95["cpu_seconds"] == 10.0  # only the last 5 runs
    assert plan.runs_per_period == pytest.approx(14.0)
    assert plan.need["cpu_seconds"] == pytest.approx(140.0)


def test_quota_plan_experiment_share_and_the_day_it_runs_out():
    train = plan_pipeline(
        "train", "training", runs(10, DAY, [0.0], gpu=[3600.0]), 30 * DAY, None, 0.0, 20
    )
    exp = plan_pipeline(
        "sweep", "experiment", runs(10, DAY / 2, [0.0], gpu=[1800.0]), 30 * DAY, None, 0.0, 20
    )
    q = plan_quota("gpu-pool", "gpu_seconds", 150_000.0, 30 * DAY, [train, exp])
    # train 30 x 3600 = 108 000; sweep 60 x 1800 = 108 000; planned 216 000 > 150 000.
    assert q.planned == pytest.approx(216_000.0)
    assert q.experiment_share == pytest.approx(0.5)
    assert q.runs_out_on_day == pytest.approx(30 * 150_000 / 216_000)  # day 20.8 of 30
    roomy = plan_quota("gpu-pool", "gpu_seconds", 300_000.0, 30 * DAY, [train, exp])
    assert roomy.runs_out_on_day is None


def test_a_pipeline_with_one_run_and_no_interval_has_no_cadence():
    plan = plan_pipeline("new", "experiment", runs(1, DAY, [5.0]), 30 * DAY, None, 0.2, 20)
    assert plan.runs_per_period is None and "cpu_seconds" not in plan.need
    q = plan_quota("cpu", "cpu_seconds", 10.0, 30 * DAY, [plan])
    assert q.unknown == ["new"] and q.planned == 0.0


def test_memory_need_is_a_level():
    plan = plan_pipeline(
        "train", "training", runs(4, DAY, [1.0], mem=8e9), 30 * DAY, None, 0.25, 20
    )
    assert plan.need["peak_memory_bytes"] == pytest.approx(1e10)
