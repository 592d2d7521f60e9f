"""The exporter as a process: endpoints, signals, reload."""

import json
import os
import signal

import requests
import yaml

from tests.helpers import serving_line, wait_for


def config(tmp_path, **model):
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    return {"models": [{"name": "fraud", "serving_logs": [str(logs / "*.jsonl")], **model}]}


def test_endpoints(tmp_path, start_exporter):
    exp = start_exporter(config(tmp_path))
    wait_for(lambda: requests.get(f"{exp.url}/-/ready", timeout=1).status_code == 200)
    landing = requests.get(exp.url, timeout=2)
    assert landing.status_code == 200 and 'href="/metrics"' in landing.text
    assert requests.get(f"{exp.url}/nope", timeout=2).status_code == 404
    om = requests.get(
        f"{exp.url}/metrics",
        timeout=2,
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")
    # What Prometheus 2.x sends: OpenMetrics preferred, text accepted; gzip.
    prom_accept = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
        "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    scraped = requests.get(
        f"{exp.url}/metrics", timeout=2, headers={"Accept": prom_accept, "Accept-Encoding": "gzip"}
    )
    assert scraped.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert scraped.headers["Content-Encoding"] == "gzip"
    assert "mlpipe_ready 1.0" in scraped.text  # rendered after the first ingest pass
    plain = exp.metrics()
    assert "mlpipe_scrape_collector_success" in plain and "# EOF" not in plain


def test_sigterm_writes_checkpoint_and_exits_0(tmp_path, start_exporter):
    exp = start_exporter(config(tmp_path))
    (tmp_path / "logs" / "a.jsonl").write_text("".join(serving_line(i) for i in range(10)))
    wait_for(lambda: 'version="v1"' in exp.metrics())
    assert exp.stop() == 0
    checkpoint = json.loads((tmp_path / "state" / "checkpoints" / "serving.json").read_text())
    assert [v["offset"] for v in checkpoint.values()] == [
        os.path.getsize(tmp_path / "logs" / "a.jsonl")
    ]


def test_sighup_reload_rejects_bad_config_and_applies_good_one(tmp_path, start_exporter):
    exp = start_exporter(config(tmp_path))
    path = tmp_path / "config.yaml"
    path.write_text("models: [{name: fraud, serving_logs: 7}]\n")
    exp.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "mlpipe_config_last_reload_successful 0.0" in exp.metrics())
    assert "config reload rejected" in exp.logs() and "models[0].serving_logs" in exp.logs()
    (tmp_path / "logs" / "a.jsonl").write_text(serving_line(1))
    wait_for(lambda: 'model="fraud",outcome="success",version="v1"} 1.0' in exp.metrics())
    good = config(tmp_path)
    good["models"].append({"name": "ranker", "serving_logs": [str(tmp_path / "logs" / "*.jsonl")]})
    path.write_text(yaml.safe_dump(good))
    exp.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "mlpipe_config_last_reload_successful 1.0" in exp.metrics())
    with open(tmp_path / "logs" / "a.jsonl", "a") as fh:
        fh.write(serving_line(2, model="ranker"))
    wait_for(lambda: 'model="ranker",outcome="success",version="v1"} 1.0' in exp.metrics())
    # The unchanged model kept its counters: line 1 is neither lost nor counted again.
    assert 'model="fraud",outcome="success",version="v1"} 1.0' in exp.metrics()


def test_bad_config_fails_at_start_with_file_and_key(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"models": [{"name": "x", "serving_logs": ["/nope/*.log"]}]}))
    out = subprocess.run(
        [sys.executable, "-m", "exporter.cli", f"--config.file={path}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1
    assert f"{path}: models[0].serving_logs[0]: directory '/nope' does not exist" in out.stderr
