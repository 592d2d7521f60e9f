"""HTTP: the metrics endpoint, health and readiness probes, and a landing page.

Exposition (text or OpenMetrics by Accept header, gzip) is prometheus_client's own WSGI
app; this module only routes. Scrapes read state only, never files.
"""

from __future__ import annotations

import html
import logging
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from exporter import __version__

log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        log.debug("%s %s", self.address_string(), format % args)


def _text(start_response, status: str, body: str, ctype: str = "text/plain; charset=utf-8"):
    data = body.encode()
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data)))])
    return [data]


def make_app(exporter, telemetry_path: str = "/metrics"):
    metrics = make_wsgi_app(exporter.registry)
    landing = f"""<!doctype html><html><head><title>mlpipe-exporter</title></head><body>
<h1>mlpipe-exporter {html.escape(__version__)}</h1>
<p>Prometheus exporter for production ML pipelines.</p>
<ul>
<li><a href="{html.escape(telemetry_path)}">Metrics</a></li>
<li><a href="/-/healthy">Health</a></li>
<li><a href="/-/ready">Readiness</a></li>
</ul></body></html>"""

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == telemetry_path:
            return metrics(environ, start_response)
        if path == "/-/healthy":
            return _text(start_response, "200 OK", "Healthy.\n")
        if path == "/-/ready":
            if exporter.ready.is_set():
                return _text(start_response, "200 OK", "Ready.\n")
            return _text(start_response, "503 Service Unavailable", "Not ready: ingesting.\n")
        if path == "/":
            return _text(start_response, "200 OK", landing, "text/html; charset=utf-8")
        return _text(start_response, "404 Not Found", "Not found.\n")

    return app


class MetricsServer:
    def __init__(self, exporter, host: str, port: int, telemetry_path: str = "/metrics"):
        self.httpd = make_server(
            host,
            port,
            make_app(exporter, telemetry_path),
            ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_port

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def parse_listen_address(text: str) -> tuple[str, int]:
    """ "127.0.0.1:9847", ":9847" (all interfaces) or "[::1]:9847" -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"invalid listen address {text!r} (use HOST:PORT)")
    host = host.strip("[]")
    return host or "0.0.0.0", int(port)
