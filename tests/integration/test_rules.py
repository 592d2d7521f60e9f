"""The shipped rules: promtool check and unit tests; every alert documented and tested."""

import glob
import os
import subprocess

import yaml

from tests.integration.conftest import PROMTOOL, require_binary

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULE_FILES = sorted(glob.glob(os.path.join(ROOT, "alert_rules", "*.yaml")))
RULE_TESTS = sorted(glob.glob(os.path.join(ROOT, "tests", "rules", "*.yaml")))


def alerts() -> list[dict]:
    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(open(path))["groups"]:
            out += [r for r in group["rules"] if "alert" in r]
    return out


def test_promtool_check_rules():
    require_binary(PROMTOOL)
    out = subprocess.run(
        [PROMTOOL, "check", "rules", *RULE_FILES], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_unit_tests_pass():
    require_binary(PROMTOOL)
    out = subprocess.run(
        [PROMTOOL, "test", "rules", *[os.path.basename(t) for t in RULE_TESTS]],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.path.join(ROOT, "tests", "rules"),
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_is_documented_and_labelled():
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for a in alerts():
        assert a["alert"].startswith("Mlpipe")
        assert a["labels"]["severity"] in ("critical", "warning"), a["alert"]
        ann = a["annotations"]
        assert ann["summary"].endswith("."), a["alert"]
        assert "{{" in ann["description"], a["alert"]
        assert ann["runbook_url"].endswith(f"docs/runbooks/{a['alert']}.md")
        runbook = os.path.join(ROOT, "docs", "runbooks", f"{a['alert']}.md")
        assert os.path.exists(runbook), f"missing runbook {runbook}"
        text = open(runbook).read()
        for section in ("## Meaning", "## Confirm", "## Act"):
            assert section in text, f"{runbook}: no {section!r} section"


def test_every_alert_has_a_firing_case_and_a_near_miss():
    cases: dict[str, set] = {}
    for path in RULE_TESTS:
        for test in yaml.safe_load(open(path))["tests"]:
            for t in test.get("alert_rule_test", []):
                kind = "fires" if t["exp_alerts"] else "silent"
                cases.setdefault(t["alertname"], set()).add(kind)
    for a in alerts():
        assert cases.get(a["alert"]) == {"fires", "silent"}, a["alert"]
