"""The shipped Alertmanager config: valid, routes by severity, inhibits as documented."""

import os
import subprocess
import time

import pytest

from tests.helpers import wait_for
from tests.integration.conftest import AMTOOL, ROOT, require_binary, shipped_alertmanager_config

CONFIG = os.path.join(ROOT, "deploy", "alertmanager", "alertmanager.yml")


def test_amtool_check_config():
    require_binary(AMTOOL)
    out = subprocess.run([AMTOOL, "check-config", CONFIG], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=MlpipeCanaryUnhealthy", "model=fraud"], "pagerduty"),
        (["severity=critical", "alertname=MlpipeExporterDown"], "pagerduty"),
        (["severity=warning", "alertname=MlpipeModelSkew", "model=fraud"], "tickets"),
        (["severity=warning", "alertname=MlpipeQuotaHog", "quota=gpu-pool"], "tickets"),
        (["alertname=SomethingUnlabelled"], "tickets"),
    ],
)
def test_routes(labels, receiver):
    require_binary(AMTOOL)
    out = subprocess.run(
        [
            AMTOOL,
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            f"--verify.receivers={receiver}",
            *labels,
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def alert(name, **labels):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": name + "."},
        "startsAt": now,
    }


def test_inhibitions_in_a_real_alertmanager(tmp_path, start_alertmanager, webhook):
    am = start_alertmanager(shipped_alertmanager_config(str(tmp_path), webhook))
    am.post(
        [
            alert("MlpipeExporterDown", severity="critical", instance="a:9847"),
            alert("MlpipeCollectorFailing", severity="warning", instance="a:9847"),
            alert("MlpipeCollectorFailing", severity="warning", instance="b:9847"),
            alert("MlpipeServingNoTraffic", severity="critical", model="fraud"),
            alert("MlpipeModelSkew", severity="warning", model="fraud", comparison="skew"),
            alert("MlpipeModelSkew", severity="warning", model="ranker", comparison="skew"),
        ]
    )

    def states():
        out = {}
        for a in am.alerts():
            key = (
                a["labels"]["alertname"],
                a["labels"].get("instance") or a["labels"].get("model"),
            )
            out[key] = a["status"]["state"]
        return out if len(out) == 6 and "unprocessed" not in out.values() else None

    expected = {
        ("MlpipeCollectorFailing", "a:9847"): "suppressed",  # exporter a is down
        ("MlpipeCollectorFailing", "b:9847"): "active",
        ("MlpipeModelSkew", "fraud"): "suppressed",  # fraud has no traffic
        ("MlpipeModelSkew", "ranker"): "active",
        ("MlpipeExporterDown", "a:9847"): "active",
        ("MlpipeServingNoTraffic", "fraud"): "active",
    }
    # The inhibitor learns of source alerts asynchronously: a target can read "active" for a
    # moment after all six are processed. Wait for the steady state.
    wait_for(lambda: states() == expected, timeout=20, what=lambda: f"inhibitions: {states()}")


def test_one_page_per_model_naming_model_and_version(tmp_path, start_alertmanager, webhook):
    """A bad canary's failing checks and the budget burns it causes are one incident whose
    title names the model and the canary's version; another model's page is its own."""
    config = shipped_alertmanager_config(str(tmp_path), webhook)
    for route in [config["route"], *config["route"]["routes"]]:
        route["group_wait"] = "1s"  # the grouping under test, not its patience
    am = start_alertmanager(config)
    am.post(
        [
            alert("MlpipeCanaryUnhealthy", severity="critical", model="fraud", version="v7"),
            alert("MlpipeServingErrorBudgetBurn", severity="critical", model="fraud"),
            alert("MlpipeServingLatencyBudgetBurn", severity="critical", model="fraud"),
            alert("MlpipeCanaryUnhealthy", severity="critical", model="ranker", version="v4"),
        ]
    )
    wait_for(
        lambda: len(webhook.received.get("/pagerduty", [])) >= 2,
        timeout=30,
        what=lambda: f"two pages: {webhook.received.get('/pagerduty')}",
    )
    time.sleep(2)  # nothing more comes
    pages = webhook.received["/pagerduty"]
    summaries = sorted(p["payload"]["summary"] for p in pages)
    assert len(pages) == 2, summaries
    assert summaries[0].startswith("fraud v7: 3 alerts: "), summaries  # the canary's version
    assert {"MlpipeCanaryUnhealthy", "MlpipeServingErrorBudgetBurn"} <= set(summaries[0].split())
    assert summaries[1] == "ranker v4: MlpipeCanaryUnhealthy."
