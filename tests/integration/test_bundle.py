"""The bundle end to end: demo data -> exporter -> Prometheus with the shipped rules ->
Alertmanager with the shipped config -> a local webhook standing in for PagerDuty.

The rule files are the shipped ones with one change: every `for:` is shortened to 5s (but
KEEP_FOR's), so that the test runs in about a minute instead of the rules' production
waiting times. The demo runs healthy for FAULT_AFTER seconds, then its fault starts (the
canary fails and slows, amount and country shift): nothing may page before it, one
incident after.
"""

import glob
import os
import re
import time

import pytest
import requests
import yaml

from exporter import demo
from tests.helpers import wait_for
from tests.integration.conftest import ROOT, shipped_alertmanager_config
from tests.integration.test_deploy import gate_queries

# Alerts whose `for:` is not shortened: `absent(up)` holds from Prometheus' start until its
# first scrape of the target; 5 s would page for that, 10 minutes (as shipped) never does.
KEEP_FOR = {"MlpipeExporterAbsent"}
CHECKS = 'mlpipe:canary_check:failing{model="fraud"}'


def fast_rules(tmp) -> list[str]:
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "alert_rules", "*.yaml"))):
        lines, alert = [], None
        for line in open(path).read().splitlines(keepends=True):
            if m := re.match(r"\s*- (?:alert|record): (\w+)", line):
                alert = m.group(1)
            if alert not in KEEP_FOR:
                line = re.sub(r"^(\s+for:) .*$", r"\1 5s", line)
            lines.append(line)
        text = "".join(lines)
        dest = os.path.join(tmp, os.path.basename(path))
        with open(dest, "w") as fh:
            fh.write(text)
        out.append(dest)
    return out


FAULT_AFTER = 30.0


@pytest.fixture
def demo_data(tmp_path):
    directory = str(tmp_path / "demo")
    config_path = demo.write_config(directory, window="2m", bucket="5s")
    writer = demo.DemoWriter(directory, rate=100.0, drift_after=FAULT_AFTER, tick=0.25)
    writer.start()
    yield config_path, writer.started + FAULT_AFTER
    writer.stop()


def test_no_page_before_the_fault_then_one_incident_naming_model_version_and_features(
    tmp_path, demo_data, start_exporter, start_prometheus, start_alertmanager, webhook
):
    config_path, fault_at = demo_data
    config = yaml.safe_load(open(config_path))
    exporter = start_exporter(config, "--stats.interval=1s")
    am = start_alertmanager(shipped_alertmanager_config(str(tmp_path), webhook))
    prom = start_prometheus(
        [f"127.0.0.1:{exporter.port}"],
        fast_rules(str(tmp_path)),
        alertmanager=f"127.0.0.1:{am.port}",
    )

    def firing(alertname):
        return prom.query(f'ALERTS{{alertname="{alertname}",alertstate="firing"}}')

    def pages():
        return [
            p for p in webhook.received.get("/pagerduty", []) if p.get("event_action") == "trigger"
        ]

    # The demo's healthy baseline: no critical alert firing, no page, until its fault
    # (counted from the first scrape, when the exporter's metrics exist). The healthy
    # canary's first requests included: its checks wait for min_samples requests, and its
    # predictions must diverge beyond chance (one error in 50 requests, or JS noise of
    # ~0.13 at 100 predictions against a 0.1 threshold, used to page here).
    wait_for(lambda: prom.query("up == 1"), timeout=30, what="the first scrape")
    while time.time() < fault_at - 1:
        alerts = requests.get(f"{prom.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        early = [
            a["labels"]
            for a in alerts
            if a["labels"].get("severity") == "critical" and a["state"] == "firing"
        ]
        assert not early, (early, prom.query(CHECKS))
        assert not pages(), pages()
        time.sleep(2)

    canary = wait_for(lambda: firing("MlpipeCanaryUnhealthy"), timeout=90, what="bad canary")
    # One alert for the canary, however many of its checks fail (the demo's fails them all).
    assert [(a["metric"]["model"], a["metric"]["version"]) for a in canary] == [("fraud", "v7")]
    wait_for(
        lambda: (
            {
                s["metric"]["check"]
                for s in prom.query('mlpipe:canary_check:failing{model="fraud",version="v7"}')
            }
            >= {"error_ratio", "prediction_divergence"}
        ),
        timeout=60,
        what="the canary's failing checks",
    )
    skew = wait_for(lambda: firing("MlpipeModelSkew"), timeout=60, what="model skew")
    # One alert per model and comparison, not one per feature and method.
    assert [a["metric"]["model"] for a in skew] == ["fraud"]
    # The page names the columns that moved (amount and country drift in the demo).
    alerts = requests.get(f"{prom.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    description = next(
        a["annotations"]["description"]
        for a in alerts
        if a["labels"]["alertname"] == "MlpipeModelSkew" and a["state"] == "firing"
    )
    assert "amount (p=" in description or "country (p=" in description, description
    assert "age (p=" not in description, description

    def canary_pages():
        return [
            p for p in pages() if "MlpipeCanary" in p["payload"]["custom_details"]["runbook_url"]
        ]

    # The model-wide error budget burns too (the canary's errors count); find the canary's.
    page = wait_for(canary_pages, timeout=90, what="a canary page at the PagerDuty webhook")[0]
    details = page["payload"]["custom_details"]
    assert page["routing_key"] == "test-routing-key"
    assert page["payload"]["severity"] == "critical"
    assert details["model"] == "fraud"
    # One incident per model: the canary's alerts and the model's budget burn share it, and
    # it links every firing alert's runbook.
    runbooks = details["runbook_url"].split()
    assert any(re.search(r"docs/runbooks/MlpipeCanary\w+\.md$", r) for r in runbooks)
    assert page["links"][0]["href"] in runbooks
    assert page["payload"]["summary"].startswith("fraud v7"), page["payload"]["summary"]
    tickets = wait_for(lambda: webhook.received.get("/tickets"), timeout=60, what="a ticket")
    alerts = [a for t in tickets for a in t["alerts"]]
    assert all(a["labels"]["severity"] == "warning" for a in alerts)
    assert all(
        a["annotations"]["runbook_url"].endswith(f"{a['labels']['alertname']}.md") for a in alerts
    )
    # Nothing about the healthy model pages; the bad canary's model is one incident (the
    # PagerDuty dedup key is Alertmanager's group), however many of its alerts joined it.
    assert not [p for p in pages() if p["payload"]["custom_details"]["model"] == "ranker"]
    assert len({p["dedup_key"] for p in pages()}) == 1, [p["payload"] for p in pages()]

    # The drift ticket names the shifted features (amount, country), never the unshifted one.
    def skew_tickets():
        return [
            a
            for t in webhook.received.get("/tickets", [])
            for a in t["alerts"]
            if a["labels"]["alertname"] in ("MlpipeModelSkew", "MlpipeModelDrift")
        ]

    for a in wait_for(skew_tickets, timeout=60, what="the drift ticket"):
        assert a["labels"]["model"] == "fraud"
        text = a["annotations"]["description"]
        assert "amount (p=" in text or "country (p=" in text, text
        assert "age (p=" not in text, text
    assert exporter.proc.poll() is None

    # The rollout gates (Argo Rollouts, Flagger) on the same data: they parse, answer, and
    # fail this canary (a result above 0 fails the gate).
    for name, query in gate_queries().items():
        result = prom.query(query)
        assert len(result) == 1, (name, result)
        assert float(result[0]["value"][1]) > 0, (name, result)
