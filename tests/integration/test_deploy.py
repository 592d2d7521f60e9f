"""Deployment files: in sync with the bundle, secure by default, and pointing at real files."""

import glob
import os
import subprocess
import sys

import yaml

from tests.integration.conftest import ROOT


def load_all(path):
    with open(path) as fh:
        return [d for d in yaml.safe_load_all(fh) if d]


def test_kubernetes_prometheus_rule_equals_alert_rules():
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "sync_kubernetes.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout
    rule = load_all(os.path.join(ROOT, "deploy", "kubernetes", "prometheusrule.yaml"))[0]
    groups = []
    for path in sorted(glob.glob(os.path.join(ROOT, "alert_rules", "*.yaml"))):
        groups += yaml.safe_load(open(path))["groups"]
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == groups
    cm = load_all(os.path.join(ROOT, "deploy", "kubernetes", "dashboards-configmap.yaml"))[0]
    assert sorted(cm["data"]) == sorted(
        os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "dashboards", "*.json"))
    )


def locked_down_container(workload: dict, log_reader: bool = False) -> dict:
    """The workload's one container, after checking the pod runs it locked down: as a user,
    or (``log_reader``: the kubelet's root-owned logs) as root with every capability dropped
    but reading files."""
    pod = workload["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    if log_reader:
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["DAC_READ_SEARCH"]}
    else:
        assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    return c


def test_kubernetes_deployment_is_locked_down():
    docs = load_all(os.path.join(ROOT, "deploy", "kubernetes", "deployment.yaml"))
    locked_down_container(next(d for d in docs if d["kind"] == "Deployment"))
    svc = load_all(os.path.join(ROOT, "deploy", "kubernetes", "service.yaml"))
    assert {d["kind"] for d in svc} == {"Service", "ServiceMonitor"}


def test_compose_mounts_exist_and_services_present():
    compose = yaml.safe_load(open(os.path.join(ROOT, "docker-compose.yml")))
    assert set(compose["services"]) == {"mlpipe-exporter", "prometheus", "alertmanager", "grafana"}
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert os.path.exists(os.path.join(ROOT, source)), source
    prom = yaml.safe_load(open(os.path.join(ROOT, "deploy", "prometheus", "prometheus.yml")))
    assert prom["scrape_configs"][0]["job_name"] == "mlpipe-exporter"  # what the rules select


def test_systemd_unit_reloads_with_sighup_and_stops_with_sigterm():
    text = open(os.path.join(ROOT, "deploy", "systemd", "mlpipe-exporter.service")).read()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    assert "KillSignal=SIGTERM" in text
    assert "--state.dir=/var/lib/mlpipe-exporter" in text


def gate_queries() -> dict[str, str]:
    """Argo and Flagger queries with the template variables filled for model fraud, v7."""
    out = {}
    argo = load_all(os.path.join(ROOT, "deploy", "argo-rollouts", "analysis-template.yaml"))[0]
    for m in argo["spec"]["metrics"]:
        q = m["provider"]["prometheus"]["query"]
        out[f"argo/{m['name']}"] = q.replace("{{args.model}}", "fraud").replace(
            "{{args.canary-version}}", "v7"
        )
    for t in load_all(os.path.join(ROOT, "deploy", "flagger", "metric-templates.yaml")):
        q = t["spec"]["query"]
        out[f"flagger/{t['metadata']['name']}"] = q.replace(
            "{{ variables.model }}", "fraud"
        ).replace("{{ variables.canary_version }}", "v7")
    return out


def test_node_daemonset_is_locked_down_and_scraped_as_the_rules_expect():
    docs = load_all(os.path.join(ROOT, "deploy", "kubernetes", "daemonset.yaml"))
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    c = locked_down_container(ds, log_reader=True)
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["serving-logs"]["readOnly"] is True and mounts["profiles"]["readOnly"] is True
    assert mounts["pod-logs"] == {
        "name": "pod-logs",
        "mountPath": "/var/log/pods",
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "hostPath" in volumes["state"]  # checkpoints survive a pod restart on the node
    labels = ds["spec"]["template"]["metadata"]["labels"]
    monitor = next(d for d in docs if d["kind"] == "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert {"targetLabel": "job", "replacement": "mlpipe-exporter"} in endpoint["relabelings"]
    assert endpoint["port"] == c["ports"][0]["name"]
    # Without the operator (Debian's promtool lacks the Kubernetes discovery to check it).
    prom = yaml.safe_load(open(os.path.join(ROOT, "deploy", "prometheus", "kubernetes.yml")))
    (job,) = prom["scrape_configs"]
    assert job["job_name"] == "mlpipe-exporter"
    keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert {r["regex"] for r in keep} == {"mlpipe-exporter", c["ports"][0]["name"]}


def test_the_configmaps_the_workloads_mount_are_shipped_and_valid(tmp_path):
    """Every ConfigMap a workload mounts exists in the bundle, and its config is one the
    exporter accepts (paths that exist only in a cluster aside); the node's reads CRI."""
    from exporter.config import ConfigError, parse_config

    shipped = {
        d["metadata"]["name"]: d
        for d in load_all(os.path.join(ROOT, "deploy", "kubernetes", "configmap.yaml"))
    }
    for name in ("deployment.yaml", "daemonset.yaml"):
        for doc in load_all(os.path.join(ROOT, "deploy", "kubernetes", name)):
            if doc["kind"] not in ("Deployment", "DaemonSet"):
                continue
            volumes = doc["spec"]["template"]["spec"]["volumes"]
            mounted = {v["configMap"]["name"] for v in volumes if "configMap" in v}
            built_by_hand = {"mlpipe-reference-profiles"}  # from the user's profile files
            assert mounted - built_by_hand <= shipped.keys(), name
    for name, cm in shipped.items():
        data = yaml.safe_load(cm["data"]["config.yaml"])
        try:
            parse_config(data, name)
        except ConfigError as exc:
            elsewhere = [e for e in exc.errors if "does not exist" in e or "cannot read" in e]
            assert exc.errors == elsewhere, name  # only the cluster's paths are missing here
    node = yaml.safe_load(shipped["mlpipe-exporter-node-config"]["data"]["config.yaml"])
    assert node["serving_log"]["format"] == "cri"
    assert node["models"][0]["serving_logs"][0]["path"].startswith("/var/log/pods/")
