"""Dashboards: lint, and every panel query returns data from a live stack on demo data."""

import glob
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from exporter import demo
from tests.helpers import wait_for
from tests.integration.conftest import ROOT

DASHBOARDS = sorted(glob.glob(os.path.join(ROOT, "dashboards", "*.json")))
METRIC = re.compile(r"\b(?:[a-z_]+:)?mlpipe_[a-z0-9_]+(?::[a-z0-9_]+)?")


def panels(dash):
    for p in dash["panels"]:
        if p["type"] != "row":
            yield p


def exprs():
    for path in DASHBOARDS:
        dash = json.load(open(path))
        for p in panels(dash):
            for t in p["targets"]:
                yield os.path.basename(path), p["title"], t["expr"]


def test_generated_dashboards_are_up_to_date():
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "dashboards", "generate.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout


def test_dashboards_lint():
    assert len(DASHBOARDS) == 6
    uids = []
    documented = open(os.path.join(ROOT, "docs", "metrics.md")).read()
    recorded = set()
    for path in glob.glob(os.path.join(ROOT, "alert_rules", "*.yaml")):
        for g in yaml.safe_load(open(path))["groups"]:
            recorded |= {r["record"] for r in g["rules"] if "record" in r}
    for path in DASHBOARDS:
        dash = json.load(open(path))
        uids.append(dash["uid"])
        assert dash["schemaVersion"] >= 39
        names = [v["name"] for v in dash["templating"]["list"]]
        # Which cluster and which exporter first: every query follows them.
        assert names[:3] == ["datasource", "cluster", "instance"], path
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), path
        for p in panels(dash):
            assert p["datasource"]["uid"] == "${datasource}", (path, p["title"])
            assert p["description"], (path, p["title"])  # what it shows, for the on-call
            assert p["targets"], (path, p["title"])
            # A line to read against wherever an alert (or PSI's usual lines) draws one.
            steps = p["fieldConfig"]["defaults"].get("thresholds", {}).get("steps")
            assert bool(steps) == (p["title"] in WITH_THRESHOLDS), (path, p["title"])
            for t in p["targets"]:
                assert t["datasource"]["uid"] == "${datasource}"
                # Range or instant, never both (Grafana would answer with two frames); a
                # value now for stat, bar and table panels.
                assert t["range"] != t["instant"], (path, p["title"])
                assert t["instant"] == (p["type"] in ("stat", "bargauge", "table")), p["title"]
                expr = t["expr"]
                # Rates use Grafana's interval, never a hard-coded window.
                for window in re.findall(r"(?:rate|increase)\([^\[]*\[([^\]]+)\]", expr):
                    assert window == "$__rate_interval", (path, p["title"], expr)
                for var in re.findall(r"\$(\w+)", expr):
                    assert var.startswith("__") or var in names, (path, var)
                for metric in METRIC.findall(expr):
                    if ":" in metric:
                        assert metric in recorded, (path, metric)
                        continue
                    base = re.sub(r"_(bucket|count|sum)$", "", metric)
                    assert f"`{base}`" in documented or f"`{metric}`" in documented, metric
    assert len(uids) == len(set(uids))


# Panels with thresholds: each value follows an alert (or PSI's effect-size lines).
WITH_THRESHOLDS = {
    "Worst feature skew by model (PSI)",
    "Feature skew (PSI, an effect size)",
    "Feature drift, window vs previous (PSI)",
    "Label skew (PSI)",
    "Dataset skew vs training (PSI)",
    "Dataset drift vs previous partition (PSI)",
    "Fleet skew (PSI), all instances merged",
    "Fleet verdicts (1 = drifted)",
    "Quota used",
    "Quota used / limit",
    "Share of a shared quota by pipeline",
    "Hours to exhaustion at current rate",
    "GPU memory used",
    "Seconds since last request",
    "Firing mlpipe alerts",
    "Collectors failing",
    "Error ratio",
    "Error budget burn rate (1h, SLO 99.9 %)",
    "Latency budget burn rate (1h, SLO 99 % under 250 ms)",
    "p99 latency by model",
    "Latency p50 / p99",
}


def substitute(expr: str) -> str:
    expr = expr.replace("$__rate_interval", "30s")
    return re.sub(r"\$(\w+)", ".*", expr)


@pytest.fixture
def full_demo(tmp_path):
    directory = str(tmp_path / "demo")
    # One-minute windows: the window-vs-previous panels have data after two minutes.
    config_path = demo.write_config(directory, window="1m", bucket="5s")
    writer = demo.DemoWriter(directory, rate=60.0, drift_after=0.0, tick=0.25)
    pipelines = demo.DemoPipelines(directory, day=5.0, drift_after=0.0)
    writer.start()
    pipelines.start()
    yield config_path
    writer.stop()
    pipelines.stop()


def test_every_panel_returns_data(tmp_path, full_demo, start_exporter, start_prometheus):
    config = yaml.safe_load(open(full_demo))
    exporter = start_exporter(config, "--stats.interval=1s", "--ingest.interval=500ms")
    rules = []
    for path in sorted(glob.glob(os.path.join(ROOT, "alert_rules", "*.yaml"))):
        # Groups evaluated every few minutes (the fleet's reference shares) first run at an
        # offset within their interval: in production the fleet panels fill within 4 min of
        # a Prometheus start; here every group runs each minute, to keep the test short.
        text = re.sub(r"^(\s+interval:) \d+m$", r"\1 1m", open(path).read(), flags=re.M)
        rules.append(str(tmp_path / os.path.basename(path)))
        with open(rules[-1], "w") as fh:
            fh.write(text)
    prom = start_prometheus([f"127.0.0.1:{exporter.port}"], rules)
    queries = list(exprs())
    gpu_up = None

    def missing():
        nonlocal gpu_up
        gpu_up = prom.value("mlpipe_gpu_up")
        out = []
        for dash, title, expr in queries:
            if gpu_up == 0 and re.search(r"mlpipe_(pipeline_)?gpu_(?!up)", expr):
                continue  # no GPU on this machine: only mlpipe_gpu_up can answer
            if not prom.query(substitute(expr)):
                out.append((dash, title, expr))
        return out

    try:
        wait_for(lambda: not missing(), timeout=150, interval=3, what="every panel has data")
    except AssertionError:
        pytest.fail("panels without data:\n" + "\n".join(f"{d}: {t}: {e}" for d, t, e in missing()))
    assert gpu_up is not None


def test_runbooks_name_only_panels_that_exist():
    """A runbook that sends the on-call to a panel ("... dashboard: "Title", ...") names
    one the dashboards have."""
    titles = {p["title"] for path in DASHBOARDS for p in panels(json.load(open(path)))}
    named = 0
    for path in glob.glob(os.path.join(ROOT, "docs", "runbooks", "*.md")):
        text = " ".join(open(path).read().split())  # titles may wrap across lines
        text = re.sub(r"`[^`]*`", "", text)  # code (queries) is not a panel's name
        for sentence in re.findall(r"dashboard:[^.;]*", text):
            for title in re.findall(r'"([^"]+)"', sentence):
                named += 1
                assert title in titles, (os.path.basename(path), title)
    assert named >= 3
