"""The monitoring mixin: the committed rules, dashboards and manifests are what
mixin/config.yaml generates; another config changes every query and still passes promtool;
a bad config is refused with each key and problem at once."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from mixin import generate, promql
from mixin.settings import CONFIG, ROOT, MixinConfigError, load

RAW_METRIC = re.compile(r"(?<![\w:])(mlpipe_[a-z0-9_]+)(?![\w:(])(\{[^}]*\})?")


def test_the_committed_files_are_what_the_config_generates():
    out = subprocess.run(
        [sys.executable, "-m", "mixin.generate", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


def rules_of(files: dict[str, str]) -> list[dict]:
    rules = []
    for path, text in files.items():
        if path.startswith(os.path.join(ROOT, "alert_rules")):
            for g in yaml.safe_load(text)["groups"]:
                rules += g["rules"]
    return rules


def test_every_alert_links_its_runbook_and_an_existing_dashboard():
    s = load()
    files = generate.generated(s)
    uids = {json.loads(t)["uid"] for p, t in files.items() if p.endswith(".json")}
    alerts = [r for r in rules_of(files) if "alert" in r]
    assert len(alerts) > 30
    for a in alerts:
        ann = a["annotations"]
        assert ann["runbook_url"] == f"{s.runbook_url_base}{a['alert']}.md"
        url = ann["dashboard_url"]
        assert url.startswith(s.dashboard_url_base), a["alert"]
        uid = url[len(s.dashboard_url_base) :].split("?")[0]
        assert uid in uids, (a["alert"], uid)
        # A model's alert opens its dashboard on that model.
        if "$labels.model" in ann.get("description", ""):
            assert "var-model={{ $labels.model }}" in url, a["alert"]


def test_another_config_reaches_every_query_and_passes_promtool(tmp_path):
    config = yaml.safe_load(open(CONFIG))
    config["selector"] = 'job="ml", env="prod"'
    config["cluster_label"] = "region"
    config["slo"]["availability"] = 0.995
    config["slo"]["latency_threshold_seconds"] = 0.5
    config["slo"]["page"] = [{"long": "2h", "short": "10m", "factor": 10}]
    config["runbook_url_base"] = "https://wiki.example/runbooks/"
    config["prometheus_operator"]["release_label"] = "prom"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    s = load(str(path))
    files = generate.generated(s)
    rules = rules_of(files)
    for r in rules:
        expr = r["expr"]
        for name, matchers in RAW_METRIC.findall(expr):
            assert 'job="ml", env="prod"' in matchers, (r.get("record") or r["alert"], name)
        for clause in re.findall(r"\b(?:by|on)\s*\(([^()]*)\)", expr):
            if clause.strip():
                assert clause.split(",")[0].strip() == "region", expr
        assert "cluster" not in expr
    by_name = {r.get("record") or r["alert"]: r for r in rules}
    assert 'le="0.5"' in by_name["model:mlpipe_serving_slow:ratio_rate2h"]["expr"]
    burn = by_name["MlpipeServingErrorBudgetBurn"]
    assert "ratio_rate2h > (10 * 0.005)" in burn["expr"]
    assert "ratio_rate10m > (10 * 0.005)" in burn["expr"]
    assert "99.5 %" in burn["annotations"]["description"]
    assert burn["annotations"]["runbook_url"].startswith("https://wiki.example/runbooks/")
    k8s = next(t for p, t in files.items() if p.endswith("prometheusrule.yaml"))
    assert yaml.safe_load(k8s.split("\n", 1)[1])["metadata"]["labels"]["release"] == "prom"
    for p, text in files.items():
        if p.endswith(".json"):
            dash = json.loads(text)
            names = [v["name"] for v in dash["templating"]["list"]]
            assert names[:3] == ["datasource", "cluster", "instance"], p
            for panel in dash["panels"]:
                for t in panel.get("targets", ()):
                    for _, matchers in RAW_METRIC.findall(t["expr"]):
                        assert 'job="ml", env="prod"' in matchers and "$instance" in matchers
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed")
    out_dir = tmp_path / "rules"
    out_dir.mkdir()
    for p, text in files.items():
        if p.startswith(os.path.join(ROOT, "alert_rules")):
            (out_dir / os.path.basename(p)).write_text(text)
    check = subprocess.run(
        ["promtool", "check", "rules", *sorted(glob.glob(str(out_dir / "*.yaml")))],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_bad_config_names_every_key_and_problem(tmp_path):
    config = yaml.safe_load(open(CONFIG))
    config["slo"]["availability"] = 1.5
    config["slo"]["latency_threshold_seconds"] = 0.3  # not a bucket bound
    config["slo"]["page"][0]["short"] = "5 minutes"
    config["cluster_label"] = "not-a-label"
    config["colour"] = "blue"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(MixinConfigError) as info:
        load(str(path))
    errors = info.value.errors
    assert len(errors) == 5, errors
    assert "colour: unknown key" in errors
    assert any(e.startswith("slo.availability: must be a number in (0, 1)") for e in errors)
    assert any(
        e.startswith("slo.latency_threshold_seconds: 0.3 is not one of latency_buckets")
        for e in errors
    )
    assert "slo.page[0].short: '5 minutes' is not a Prometheus duration (e.g. 5m, 1h)" in errors
    assert "cluster_label: 'not-a-label' is not a Prometheus label name" in errors
    out = subprocess.run(
        [sys.executable, "-m", "mixin.generate", "--check", f"--config={path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and f"{path}: slo.availability" in out.stderr


def test_the_latency_buckets_are_the_exporters_defaults():
    """The SLO threshold is checked against these: they must be what the exporter exports
    unless its config says otherwise."""
    from exporter.config import DEFAULT_LATENCY_BUCKETS

    assert load().latency_buckets == DEFAULT_LATENCY_BUCKETS


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("mlpipe_a", 'mlpipe_a{job="j"}'),
        ('rate(mlpipe_a{x="1"}[5m])', 'rate(mlpipe_a{job="j",x="1"}[5m])'),
        ("model:mlpipe_a:rate5m > 1", "model:mlpipe_a:rate5m > 1"),  # a recording rule's
        ('{__name__=~"mlpipe_(a|b)"}', '{__name__=~"mlpipe_(a|b)"}'),  # not a metric name
        ("sum by (model) (x) / on (model) group_left () y", None),
    ],
)
def test_rewrites(expr, want):
    got = promql.rewrite(expr, 'job="j"', "cluster")
    if want is None:
        assert got == "sum by (cluster, model) (x) / on (cluster, model) group_left () y"
    else:
        assert got == want
