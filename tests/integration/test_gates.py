"""The rollout gates (Argo Rollouts AnalysisTemplate, Flagger MetricTemplates) wait for data:
with no canary data, or a canary window below min_samples, a gate is inconclusive (Argo) or
neutral (Flagger), never failed; with enough data on a bad canary it fails; a canary far
from the stable version on too few predictions to tell from chance passes the divergence
gate. The queries run in promtool (Prometheus' own engine); Argo's conditions are evaluated
on their results."""

import os
import subprocess

import pytest
import yaml

from tests.integration.conftest import PROMTOOL, ROOT, require_binary
from tests.integration.test_deploy import gate_queries, load_all

STABLE = [
    ('model_version:mlpipe_serving_errors:ratio_rate5m{model="fraud",version="v6"}', 0.01),
    (
        'model_version:mlpipe_serving_request_duration_seconds:p99_5m{model="fraud",version="v6"}',
        0.05,
    ),
    ('mlpipe_model_stable_version{model="fraud",version="v6"}', 1),
    ('mlpipe_drift_threshold{model="fraud",method="js"}', 0.1),
    ('mlpipe_drift_min_samples{model="fraud"}', 100),
]
BAD_CANARY = [
    ('model_version:mlpipe_serving_errors:ratio_rate5m{model="fraud",version="v7"}', 0.2),
    (
        'model_version:mlpipe_serving_request_duration_seconds:p99_5m{model="fraud",version="v7"}',
        0.5,
    ),
    ('mlpipe_prediction_version_divergence{model="fraud",version="v7",method="js"}', 0.3),
    ('mlpipe_prediction_drifted{model="fraud",version="v7",comparison="stable"}', 1),
]
# As far from the stable version, on too few predictions to tell from chance (the verdict
# says 0); healthy otherwise.
LUCKY_CANARY = [
    ('model_version:mlpipe_serving_errors:ratio_rate5m{model="fraud",version="v7"}', 0.01),
    (
        'model_version:mlpipe_serving_request_duration_seconds:p99_5m{model="fraud",version="v7"}',
        0.05,
    ),
    ('mlpipe_prediction_version_divergence{model="fraud",version="v7",method="js"}', 0.3),
    ('mlpipe_prediction_drifted{model="fraud",version="v7",comparison="stable"}', 0),
]
# What each gate answers for the bad canary, computed as Prometheus computes it.
FAILING = {
    "error-ratio-vs-stable": 0.2 - (2 * (0.01 * 1) + 0.01),
    "p99-latency-vs-stable": 0.5 - (1.5 * (0.05 * 1) + 0.01),
    "prediction-divergence": 0.3 - 0.1,
}
SCENARIOS = {
    "no canary data": (STABLE, None),
    "canary below min_samples": (STABLE + BAD_CANARY, 10),
    "bad canary, enough data": (STABLE + BAD_CANARY, 500),
    "canary far from stable by chance": (STABLE + LUCKY_CANARY, 120),
}
# What each gate answers for the lucky canary: every check passes.
PASSING = {
    "error-ratio-vs-stable": 0.01 - (2 * (0.01 * 1) + 0.01),
    "p99-latency-vs-stable": 0.05 - (1.5 * (0.05 * 1) + 0.01),
    "prediction-divergence": (0.3 - 0.1) * 0,
}


def argo_conditions() -> dict:
    template = load_all(os.path.join(ROOT, "deploy", "argo-rollouts", "analysis-template.yaml"))
    return {m["name"]: m for m in template[0]["spec"]["metrics"]}


def argo_outcome(metric: dict, result: list[float]) -> str:
    """Argo Rollouts' reading of a measurement: Successful, Failed or Inconclusive (neither
    condition true). Its conditions use `len`, `&&` and comparisons only: Python reads them
    once `&&` is `and`."""

    def holds(condition: str) -> bool:
        return bool(eval(condition.replace("&&", "and"), {"len": len}, {"result": result}))

    if holds(metric["successCondition"]):
        return "Successful"
    if holds(metric["failureCondition"]):
        return "Failed"
    return "Inconclusive"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_gates_wait_for_data_and_fail_a_bad_canary(tmp_path, scenario):
    require_binary(PROMTOOL)
    series, canary_samples = SCENARIOS[scenario]
    inputs = [{"series": s, "values": f"{v}x10"} for s, v in series]
    if canary_samples is not None:
        inputs.append(
            {
                "series": 'mlpipe_window_samples{model="fraud",version="v7"}',
                "values": f"{canary_samples}x10",
            }
        )
    enough = scenario == "bad canary, enough data"
    lucky = scenario == "canary far from stable by chance"
    tests = []
    for name, query in gate_queries().items():
        kind, metric = name.split("/", 1)
        metric = metric.removeprefix("mlpipe-")
        if lucky:
            samples = [{"labels": "{}", "value": PASSING[metric]}]
        elif kind == "argo":
            samples = [{"labels": "{}", "value": FAILING[metric]}] if enough else []
        else:  # Flagger: neutral 0 while waiting
            samples = [{"labels": "{}", "value": FAILING[metric] if enough else 0}]
        tests.append({"expr": query, "eval_time": "5m", "exp_samples": samples})
    (tmp_path / "empty.yaml").write_text("groups: []\n")
    spec = {
        "rule_files": ["empty.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": inputs, "promql_expr_test": tests}],
    }
    (tmp_path / "gates_test.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    out = subprocess.run(
        [PROMTOOL, "test", "rules", "gates_test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # Argo's verdicts on those results: waiting is never a failure.
    for metric in argo_conditions().values():
        if lucky:
            result, want = [PASSING[metric["name"]]], "Successful"
        else:
            result = [FAILING[metric["name"]]] if enough else []
            want = "Failed" if enough else "Inconclusive"
        assert argo_outcome(metric, result) == want, (metric["name"], scenario)
        assert metric["inconclusiveLimit"] >= metric["count"]  # waiting all along: a pause
