"""Real processes on 127.0.0.1: the exporter CLI, Prometheus, Alertmanager."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import requests
import yaml

from tests.helpers import free_port, wait_for

PROMETHEUS = os.environ.get("PROMETHEUS_BIN", "/usr/bin/prometheus")
PROMTOOL = os.environ.get("PROMTOOL_BIN", "/usr/bin/promtool")
ALERTMANAGER = os.environ.get("ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager")
AMTOOL = os.environ.get("AMTOOL_BIN", "/usr/bin/amtool")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def require_binary(path: str) -> str:
    if not (os.path.exists(path) or shutil.which(path)):
        pytest.fail(f"{path} is missing: install Debian's prometheus packages (make test does)")
    return path


class ExporterProcess:
    def __init__(self, config_path: str, state_dir: str, log_path: str, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter.cli",
                "run",
                f"--config.file={config_path}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--state.dir={state_dir}",
                "--ingest.interval=200ms",
                *extra,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self.healthy, timeout=30, what="exporter /-/healthy")

    def healthy(self) -> bool:
        """Listening and answering: any HTTP status (a 401 behind basic auth), or a TCP
        connection when the exporter speaks TLS."""
        if self.proc.poll() is not None:
            raise AssertionError(f"exporter exited: {self.logs()}")
        try:
            return requests.get(f"{self.url}/-/healthy", timeout=1).status_code in (200, 401)
        except requests.ConnectionError:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                return False
            return "--web.config.file" in " ".join(self.proc.args)

    def metrics(self, **kw) -> str:
        return requests.get(f"{self.url}/metrics", timeout=5, **kw).text

    def logs(self) -> str:
        with open(self.log_path, "rb") as fh:
            return fh.read().decode(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        return self.proc.returncode


class Daemon:
    """A real server binary on a free loopback port, with its log in ``tmp``."""

    def start(self, tmp: str, name: str, argv: list[str]) -> None:
        self.log = open(os.path.join(tmp, f"{name}.log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._ready, timeout=60, what=f"{name} ready")

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Prometheus(Daemon):
    def __init__(
        self,
        tmp,
        targets: list[str],
        rule_files=(),
        alertmanager: str | None = None,
        scrape: dict | None = None,
    ):
        require_binary(PROMETHEUS)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        job = {"job_name": "mlpipe-exporter", "static_configs": [{"targets": targets}]}
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{**job, **(scrape or {})}],
            "rule_files": [str(r) for r in rule_files],
        }
        if alertmanager:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]
            }
        cfg_path = os.path.join(tmp, "prometheus.yml")
        with open(cfg_path, "w") as fh:
            yaml.safe_dump(config, fh)
        self.start(
            tmp,
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={cfg_path}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
        )

    def query(self, expr: str, at: float | None = None) -> list:
        params = {"query": expr}
        if at is not None:
            params["time"] = at
        r = requests.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        body = r.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


class Alertmanager(Daemon):
    def __init__(self, tmp, config: dict):
        require_binary(ALERTMANAGER)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg_path = os.path.join(tmp, "alertmanager.yml")
        with open(cfg_path, "w") as fh:
            yaml.safe_dump(config, fh)
        self.start(
            tmp,
            "alertmanager",
            [
                ALERTMANAGER,
                f"--config.file={cfg_path}",
                f"--storage.path={tmp}/am-data",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
        )

    def post(self, alerts: list[dict]) -> None:
        requests.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5).raise_for_status()

    def alerts(self) -> list[dict]:
        return requests.get(f"{self.url}/api/v2/alerts", timeout=5).json()


class Webhook:
    """A local HTTP endpoint recording the JSON bodies posted to each path."""

    def __init__(self):
        import http.server
        import json
        import threading

        received: dict[str, list] = {}
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.setdefault(self.path, []).append(json.loads(body or b"{}"))
                self.send_response(202)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def shipped_alertmanager_config(tmp, webhook: Webhook) -> dict:
    """deploy/alertmanager/alertmanager.yml with only the receivers' endpoints made local."""
    with open(os.path.join(ROOT, "deploy", "alertmanager", "alertmanager.yml")) as fh:
        config = yaml.safe_load(fh)
    key = os.path.join(tmp, "pagerduty-routing-key")
    with open(key, "w") as fh:
        fh.write("test-routing-key")
    for receiver in config["receivers"]:
        for pd in receiver.get("pagerduty_configs", []):
            pd["url"] = f"{webhook.url}/pagerduty"
            pd["routing_key_file"] = key
        for wh in receiver.get("webhook_configs", []):
            wh["url"] = f"{webhook.url}/tickets"
    return config


@pytest.fixture
def start_alertmanager(tmp_path):
    started: list[Alertmanager] = []

    def start(config: dict) -> Alertmanager:
        d = tmp_path / f"am{len(started)}"
        d.mkdir()
        am = Alertmanager(str(d), config)
        started.append(am)
        return am

    yield start
    for am in started:
        am.stop()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.stop()


@pytest.fixture
def start_exporter(tmp_path):
    started: list[ExporterProcess] = []

    def start(config: dict, *extra: str) -> ExporterProcess:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = ExporterProcess(
            str(path), str(tmp_path / "state"), str(tmp_path / "exporter.log"), *extra
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def start_prometheus(tmp_path):
    started: list[Prometheus] = []

    def start(targets, rule_files=(), alertmanager=None) -> Prometheus:
        d = tmp_path / f"prom{len(started)}"
        d.mkdir()
        prom = Prometheus(str(d), targets, rule_files, alertmanager)
        started.append(prom)
        return prom

    yield start
    for prom in started:
        prom.stop()


def wait_value(prom: Prometheus, expr: str, predicate, timeout=30.0):
    return wait_for(
        lambda: (v := prom.value(expr)) is not None and predicate(v) and v,
        timeout=timeout,
        what=expr,
    )


__all__ = ["PROMTOOL", "time"]
