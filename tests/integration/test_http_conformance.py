"""The HTTP side as node_exporter users expect it: addresses, errors, headers, signals."""

import contextlib
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import requests
import yaml

from tests.helpers import free_port, wait_for


def config(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    cfg = {"models": [{"name": "fraud", "serving_logs": [str(logs / "*.jsonl")]}]}
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def run(tmp_path, *args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "run", f"--config.file={config(tmp_path)}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kw,
    )


def test_a_port_in_use_is_one_log_line_and_exit_1(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = run(tmp_path, f"--web.listen-address=127.0.0.1:{port}")
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    text = out.decode()
    assert "Traceback" not in text
    assert f"cannot listen on 127.0.0.1:{port}" in text and "in use" in text


def test_ipv6_and_several_listen_addresses(tmp_path):
    p4, p6 = free_port(), free_port()
    proc = run(tmp_path, f"--web.listen-address=127.0.0.1:{p4}", f"--web.listen-address=[::1]:{p6}")
    try:
        for url in (f"http://127.0.0.1:{p4}", f"http://[::1]:{p6}"):
            wait_for(lambda u=url: _get(f"{u}/-/healthy") == 200, what=url)
        r = requests.get(f"http://[::1]:{p6}/metrics", timeout=5)
        wait_for(lambda: _get(f"http://[::1]:{p6}/metrics") == 200, what="a rendering")
        assert r.raw.version == 11  # HTTP/1.1
        assert "Server" not in r.headers  # no Python version leaked
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0


def test_a_malformed_listen_address_is_one_clear_error(tmp_path):
    proc = run(tmp_path, "--web.listen-address=::1:9847")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "IPv6 address in brackets" in out.decode() and "Traceback" not in out.decode()


def test_a_sighup_right_after_start_is_a_reload_not_a_death(tmp_path):
    port = free_port()
    proc = run(tmp_path, f"--web.listen-address=127.0.0.1:{port}")
    try:
        time.sleep(0.2)  # the interpreter is still importing
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/-/healthy") == 200, what="healthy")
        wait_for(
            lambda: (
                "mlpipe_config_last_reload_successful 1.0"
                in requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            ),
            what="the reload",
        )
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_connection_flood_does_not_slow_scrapes(tmp_path):
    """100 clients opening and closing connections (a backlog of 5 made scrapes take 1 s)."""
    port = free_port()
    proc = run(tmp_path, f"--web.listen-address=127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/metrics"
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()

    threads = [threading.Thread(target=flood) for _ in range(100)]
    try:
        wait_for(lambda: _get(url) == 200, what="a rendering")
        for t in threads:
            t.start()
        time.sleep(0.5)
        waits = []
        for _ in range(10):
            started = time.perf_counter()
            assert requests.get(url, timeout=10).status_code == 200
            waits.append(time.perf_counter() - started)
        assert statistics.median(waits) < 0.5, waits
    finally:
        stop.set()
        for t in threads:
            t.join()
        proc.terminate()
        proc.wait(20)


def test_the_listen_backlog_is_the_kernels():
    from exporter.server import _SecureServer, listen_backlog

    assert _SecureServer.request_queue_size == listen_backlog() >= 128


def _get(url: str) -> int:
    try:
        return requests.get(url, timeout=1).status_code
    except requests.ConnectionError:
        return 0
