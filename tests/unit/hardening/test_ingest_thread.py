"""One thread collects; it survives any exception and says so if it ever dies."""

import threading
import time

import pytest
import requests

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.server import MetricsServer
from tests.helpers import sample, serving_line, wait_for


def serve(tmp_path, **kw):
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    cfg = {"models": [{"name": "fraud", "serving_logs": [str(logs / "*.jsonl")]}]}
    e = Exporter(parse_config(cfg), interval=0.05, stats_interval=0.2, **kw)
    server = MetricsServer(e, "127.0.0.1", 0)
    server.start()
    return e, server, f"http://127.0.0.1:{server.port}", logs


def failing_second_call(real):
    """``real`` wrapped to raise on its second call, and the count of calls so far."""
    calls = [0]

    def flaky(*args):
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("boom")
        return real(*args)

    return flaky, calls


def test_an_exception_in_the_loop_is_logged_counted_and_the_loop_goes_on(tmp_path, caplog):
    e, server, url, logs = serve(tmp_path)
    e.ingest_pass, calls = failing_second_call(e.ingest_pass)
    e.start()
    try:
        (logs / "a.jsonl").write_text("".join(serving_line(i) for i in range(5)))
        wait_for(lambda: calls[0] > 4, what="more passes")
        wait_for(lambda: sample(e, "mlpipe_ingest_errors_total", stage="ingest") == 1)
        wait_for(lambda: b'mlpipe_serving_requests_total{model="fraud"' in e.rendering.text)
        assert requests.get(f"{url}/-/healthy", timeout=2).status_code == 200
        assert any("an ingest pass failed" in r.message for r in caplog.records)
    finally:
        e.stop()
        server.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_ingest_thread_makes_healthy_503(tmp_path):
    e, server, url, _ = serve(tmp_path)

    def fatal():
        raise SystemExit("no exception handler catches this")

    e.ingest_pass = fatal
    e.start()
    try:
        wait_for(lambda: not e._thread.is_alive(), what="the thread to die")
        r = requests.get(f"{url}/-/healthy", timeout=2)
        assert r.status_code == 503 and "ingest thread (or its gzip thread) died" in r.text
    finally:
        server.stop()


def test_scrapes_never_collect_query_strings_and_head_included(tmp_path):
    e, server, url, _ = serve(tmp_path)
    collected = []
    real = e.registry.collect

    def counting():
        collected.append(threading.current_thread().name)
        return real()

    e.registry.collect = counting
    e.start()
    try:
        wait_for(lambda: e.rendering is not None)
        for q in ("", "?x=1", "?collect[]=serving"):
            r = requests.get(f"{url}/metrics{q}", timeout=2)
            assert r.status_code == 200 and b"mlpipe_ready" in r.content
        om = requests.get(
            f"{url}/metrics", timeout=15, headers={"Accept": "application/openmetrics-text"}
        )
        assert om.status_code == 200 and om.text.rstrip().endswith("# EOF")
        head = requests.head(f"{url}/metrics", timeout=2)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["Content-Length"]) > 0
        time.sleep(0.2)
        assert set(collected) == {"ingest"}
    finally:
        e.stop()
        server.stop()


def test_renderings_stay_fresh_while_a_writer_outruns_ingestion(tmp_path):
    e, server, url, logs = serve(tmp_path)
    e.pass_seconds = 0.3
    stop = threading.Event()

    def writer():
        i = 0
        with open(logs / "a.jsonl", "a") as fh:
            while not stop.is_set():
                fh.write("".join(serving_line(i + k) for k in range(200)))
                fh.flush()
                i += 200

    t = threading.Thread(target=writer)
    t.start()
    e.start()
    try:
        wait_for(lambda: requests.get(f"{url}/-/ready", timeout=2).status_code == 200, timeout=5)
        ages = []
        for _ in range(15):
            time.sleep(0.1)
            ages.append(time.time() - e.rendering.rendered_at)
        # Age bounded by the pass budget plus one rendering, far below 2 × stats interval... of
        # an unbounded pass (which never ended before).
        assert max(ages) < 2 * max(e.pass_seconds, e.stats_interval) + 1.0, ages
    finally:
        stop.set()
        t.join()
        e.stop()
        server.stop()


def test_the_gzip_thread_publishes_what_the_ingest_thread_rendered_and_survives_errors(
    tmp_path, caplog, monkeypatch
):
    import gzip

    e, server, url, logs = serve(tmp_path)
    e.compressor._publish, calls = failing_second_call(e._publish)
    compressing = []
    real_compress = gzip.compress

    def where(data, **kw):
        compressing.append(threading.current_thread().name)
        return real_compress(data, **kw)

    monkeypatch.setattr(gzip, "compress", where)
    e.start()
    try:
        (logs / "a.jsonl").write_text("".join(serving_line(i) for i in range(5)))
        wait_for(lambda: calls[0] > 4, what="more renderings")
        wait_for(lambda: sample(e, "mlpipe_ingest_errors_total", stage="compress") == 1)
        assert any("compressing /metrics failed" in r.message for r in caplog.records)
        r = requests.get(f"{url}/metrics", headers={"Accept-Encoding": "gzip"}, timeout=2)
        assert r.headers["Content-Encoding"] == "gzip"
        assert b'mlpipe_serving_requests_total{model="fraud"' in r.content
        rendering = e.rendering
        assert gzip.decompress(rendering.gzipped) == rendering.text
        assert requests.get(f"{url}/-/healthy", timeout=2).status_code == 200
        assert set(compressing) == {"compress"}  # never the ingest thread
    finally:
        e.stop()
        server.stop()
    assert not e.compressor.running


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_gzip_thread_makes_healthy_503(tmp_path):
    e, server, url, _ = serve(tmp_path)

    def fatal(*args):
        raise SystemExit("no exception handler catches this")

    e.compressor._publish = fatal
    e.start()
    try:
        wait_for(lambda: not e.compressor.running, what="the gzip thread to die")
        assert requests.get(f"{url}/-/healthy", timeout=2).status_code == 503
    finally:
        e.stop()
        server.stop()


def test_ready_means_metrics_can_be_scraped(tmp_path, monkeypatch):
    """/-/ready answers 200 only once a rendering is published: a scrape routed by a
    readiness probe never gets "No rendering yet" (gzip, on its own thread, made the
    first rendering land after the first ingest pass)."""
    import gzip

    real_compress = gzip.compress

    def slow(data, **kw):
        time.sleep(0.5)
        return real_compress(data, **kw)

    monkeypatch.setattr(gzip, "compress", slow)
    e, server, url, _ = serve(tmp_path)
    e.start()
    try:
        wait_for(lambda: requests.get(f"{url}/-/ready", timeout=2).status_code == 200, timeout=10)
        assert requests.get(f"{url}/metrics", timeout=2).status_code == 200
    finally:
        e.stop()
        server.stop()
