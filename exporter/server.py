"""HTTP: the metrics endpoint, health and readiness probes, and a landing page.

Scrapes send the exposition the ingest thread rendered last (text, gzip, or OpenMetrics
by Accept header); this module only routes and sends bytes, it never runs a collector.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import html
import logging
import socket
import ssl
import threading
import time
import zlib
from http import HTTPStatus
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, make_server

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, ThreadingWSGIServer
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE

from exporter import __version__
from exporter.webconfig import WebSecurity

# A connection that sends nothing for this long is dropped (slow clients hold a thread).
SOCKET_TIMEOUT = 10.0
# An OpenMetrics-only scrape waits this long for the ingest thread's first such rendering.
OPENMETRICS_WAIT_SECONDS = 10.0
# Threads serving connections, and connections accepted per wakeup of the accept loop.
HTTP_THREADS = 64
ACCEPTS_PER_WAKEUP = 256

log = logging.getLogger(__name__)


def listen_backlog() -> int:
    """The kernel's accept-queue cap (somaxconn), as Go servers use; Python's default is 5."""
    try:
        with open("/proc/sys/net/core/somaxconn") as fh:
            return max(128, int(fh.read().strip()))
    except (OSError, ValueError):
        return 4096


class _ResponseHandler(ServerHandler):
    """HTTP/1.1 responses (one request per connection, said with Connection: close), and no
    Server header naming the Python version."""

    http_version = "1.1"
    server_software = None

    def cleanup_headers(self):
        super().cleanup_headers()
        self.headers["Connection"] = "close"

    # wsgiref sends the status line, the headers and the body with a send each. Every send
    # gives up the GIL, and taking it back waits out the ingest thread's switch interval
    # (5 ms) while it renders or parses: held until the flush, a response is one send.
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pending: list[bytes] = []

    def _write(self, data):
        self._pending.append(data)

    def _flush(self):
        pending = self._pending
        if pending:
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            pending.clear()
            super()._write(data)
        self.stdout.flush()

    def finish_content(self):
        super().finish_content()  # a response without a body sends its headers here
        self._flush()


class _QuietHandler(WSGIRequestHandler):
    server_version = "mlpipe-exporter"
    sys_version = ""

    def _handle(self):
        """wsgiref's handle(), with our response handler."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _ResponseHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=False
        )
        handler.request_handler = self
        handler.run(self.server.get_app())

    def setup(self):
        self.request.settimeout(SOCKET_TIMEOUT)
        if isinstance(self.request, ssl.SSLSocket):
            # The TLS handshake runs here, in the request's thread, not in the accept loop.
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS handshake with %s failed: %s", self.client_address[0], exc)
                raise
            allowed = self.server.security.config.allowed_sans
            cert = self.request.getpeercert() if allowed else None
            if cert:  # SANs are checked on a presented (verified) client certificate
                sans = {value for _, value in cert.get("subjectAltName", ())}
                if not sans & allowed:
                    log.debug(
                        "client %s: certificate SANs %s not allowed", self.client_address[0], sans
                    )
                    raise ssl.SSLError("client certificate SAN not allowed")
        super().setup()

    def handle(self):
        try:
            self._handle()
        except (ssl.SSLError, OSError) as exc:
            log.debug("connection from %s dropped: %s", self.client_address[0], exc)

    def log_message(self, format, *args):
        # The request line only, never headers (credentials).
        log.debug("%s %s", self.address_string(), format % args)


class _SecureServer(ThreadingWSGIServer):
    """Wraps each accepted connection with the web config's TLS context of the moment.

    Connections are served by a fixed pool of threads, and every wakeup of the accept loop
    takes all pending connections: a thread per connection (and one accept per wakeup)
    made 100 clients opening and closing connections delay a scrape by a second.
    """

    security: WebSecurity
    request_queue_size = listen_backlog()
    pool: concurrent.futures.ThreadPoolExecutor

    def process_request(self, request, client_address):
        self.pool.submit(self.process_request_thread, request, client_address)

    def _handle_request_noblock(self):
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                request, client_address = self.get_request()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if self.verify_request(request, client_address):
                try:
                    self.process_request(request, client_address)
                except Exception:
                    self.handle_error(request, client_address)
                    self.shutdown_request(request)
            else:
                self.shutdown_request(request)

    def server_close(self):
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def get_request(self):
        sock, addr = self.socket.accept()
        ctx = self.security.refresh().ssl_context
        if ctx is not None:
            sock = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        log.debug("error serving %s", client_address[0], exc_info=True)


def _text(start_response, status: str, body: str, ctype: str = "text/plain; charset=utf-8"):
    data = body.encode()
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data)))])
    return [data]


def guarded(app, security: WebSecurity, max_requests: int):
    """Basic auth (when users are configured) and a cap on concurrent requests."""
    slots = threading.BoundedSemaphore(max_requests)

    def wrapper(environ, start_response):
        # No refresh here: the server refreshes the web config per accepted connection,
        # and wsgiref serves one request per connection.
        extra = security.config.headers
        if extra:
            send = start_response

            def start_response(status, headers, exc_info=None):
                return send(status, [*headers, *extra], exc_info)

        if security.auth_required and not _authorized(security, environ):
            start_response(
                "401 Unauthorized",
                [
                    ("WWW-Authenticate", 'Basic realm="mlpipe-exporter"'),
                    ("Content-Type", "text/plain; charset=utf-8"),
                ],
            )
            return [b"Unauthorized\n"]
        if not slots.acquire(blocking=False):
            return _text(
                start_response, "503 Service Unavailable", "Too many concurrent requests.\n"
            )
        try:
            return list(app(environ, start_response))
        finally:
            slots.release()

    return wrapper


def _authorized(security: WebSecurity, environ) -> bool:
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return False
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return bool(sep) and security.check(user, password)


def _rendered(rendering, environ, start_response):
    """The exposition rendered after the last ingest pass (gzip when the client takes it)."""
    gz = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
    body = rendering.gzipped if gz else rendering.text
    # The classic text format: what every Prometheus 2.x parses.
    headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4), ("Content-Length", str(len(body)))]
    if gz:
        headers.append(("Content-Encoding", "gzip"))
    start_response("200 OK", headers)
    return [body]


def make_app(exporter, telemetry_path: str = "/metrics"):
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
        head = environ.get("REQUEST_METHOD") == "HEAD"
        if path in PUSH_PATHS:
            return _push(exporter, PUSH_PATHS[path], environ, start_response)
        if path == telemetry_path:
            body = _metrics(exporter, environ, start_response)
        elif path == "/-/healthy":
            if exporter.healthy():
                body = _text(start_response, "200 OK", "Healthy.\n")
            else:
                body = _text(
                    start_response,
                    "503 Service Unavailable",
                    "Unhealthy: the ingest thread (or its gzip thread) died.\n",
                )
        elif path == "/-/ready":
            if exporter.ready.is_set():
                body = _text(start_response, "200 OK", "Ready.\n")
            else:
                body = _text(start_response, "503 Service Unavailable", "Not ready: ingesting.\n")
        elif path == "/":
            body = _text(start_response, "200 OK", landing, "text/html; charset=utf-8")
        else:
            body = _text(start_response, "404 Not Found", "Not found.\n")
        return [] if head else body  # HEAD: the headers (Content-Length included), no body

    return app


# POST endpoints -> the name the exporter knows them by (docs/inputs.md#push).
PUSH_PATHS = {"/api/v1/records": "records", "/api/v1/kserve": "kserve"}


def _push(exporter, endpoint: str, environ, start_response):
    """Read a pushed body (bounded, gzip allowed) and hand it to the exporter."""
    push = exporter.state.config.push

    def reply(code: int, text: str, headers=()):
        exporter.count_push(endpoint, code)
        return _send(start_response, code, text, headers)

    if not push.enabled:
        return reply(404, "push endpoints are off (push.enabled: false)")
    if environ.get("REQUEST_METHOD") != "POST":
        return reply(405, "use POST", [("Allow", "POST")])
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if length < 0:
        return reply(411, "a Content-Length is required")
    if length > push.max_body_bytes:
        return reply(413, f"body of {length} bytes; push.max_body_bytes is {push.max_body_bytes}")
    body = environ["wsgi.input"].read(length)
    if "gzip" in environ.get("HTTP_CONTENT_ENCODING", ""):
        inflate = zlib.decompressobj(wbits=31)
        try:
            body = inflate.decompress(body, push.max_body_bytes)
        except zlib.error as exc:
            return reply(400, f"body is not gzip: {exc}")
        if inflate.unconsumed_tail:
            return reply(413, f"body inflates past push.max_body_bytes ({push.max_body_bytes})")
    headers = {
        key[5:].lower().replace("_", "-"): value
        for key, value in environ.items()
        if key.startswith("HTTP_CE_")
    }
    result = exporter.push(endpoint, body, headers)
    return _send(start_response, result.code, result.text, result.headers)


def _send(start_response, code: int, text: str, headers=()):
    data = (text + "\n").encode()
    start_response(
        f"{code} {HTTPStatus(code).phrase}",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(data))),
            *headers,
        ],
    )
    return [data]


def _metrics(exporter, environ, start_response):
    """The latest rendering; never collected here (only the ingest thread runs collectors).

    A query string changes nothing (it is ignored, as node_exporter ignores unknown ones).
    """
    accept = environ.get("HTTP_ACCEPT", "")
    # Prometheus lists OpenMetrics first but accepts the text format too: serve the text
    # rendering unless the client takes OpenMetrics only.
    openmetrics_only = "openmetrics" in accept and not ("text/plain" in accept or "*/*" in accept)
    if openmetrics_only:
        exporter.want_openmetrics.set()
        deadline = time.monotonic() + OPENMETRICS_WAIT_SECONDS
        rendering = exporter.rendering
        while (rendering is None or rendering.openmetrics is None) and time.monotonic() < deadline:
            time.sleep(0.05)
            rendering = exporter.rendering
        if rendering is None or rendering.openmetrics is None:
            return _text(
                start_response,
                "503 Service Unavailable",
                "OpenMetrics rendering not ready yet; retry.\n",
            )
        body = rendering.openmetrics
        start_response(
            "200 OK",
            [("Content-Type", OPENMETRICS_CONTENT_TYPE), ("Content-Length", str(len(body)))],
        )
        return [body]
    rendering = exporter.rendering
    if rendering is None:
        return _text(start_response, "503 Service Unavailable", "No rendering yet; retry.\n")
    return _rendered(rendering, environ, start_response)


class MetricsServer:
    def __init__(
        self,
        exporter,
        host: str,
        port: int,
        telemetry_path: str = "/metrics",
        security: WebSecurity | None = None,
        max_requests: int = 40,
    ):
        security = security or WebSecurity(None)
        app = guarded(make_app(exporter, telemetry_path), security, max_requests)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        pool = concurrent.futures.ThreadPoolExecutor(HTTP_THREADS, thread_name_prefix="http")
        server_class = type(
            "SecureServer",
            (_SecureServer,),
            {"security": security, "address_family": family, "pool": pool},
        )
        self.httpd = make_server(host, port, app, server_class, handler_class=_QuietHandler)
        self.httpd.socket.setblocking(False)
        if host in ("0.0.0.0", "::", "") and (
            security.config.ssl_context is None and not security.auth_required
        ):
            log.warning(
                "listening on all interfaces without TLS or basic auth: anyone who can reach "
                "port %d can read the metrics (see --web.config.file)",
                port,
            )
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_port

    @property
    def host(self) -> str:
        return self.httpd.server_address[0]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def parse_listen_address(text: str) -> tuple[str, int]:
    """ "127.0.0.1:9847", ":9847" (all interfaces) or "[::1]:9847" -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"invalid listen address {text!r} (use HOST:PORT or [IPv6]:PORT)")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"invalid listen address {text!r} (use [IPv6]:PORT)")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"invalid listen address {text!r} (put an IPv6 address in brackets)")
    return host or "0.0.0.0", int(port)
