"""A response leaves in one send (exporter/server.py _ResponseHandler): each send gives
up the GIL, and taking it back waits out the ingest thread's switch interval while it
renders, so wsgiref's three sends (status line, headers, body) made scrapes slow."""

import io
import sys
from wsgiref.util import setup_testing_defaults

import pytest

from exporter.server import _ResponseHandler


class Sends:
    def __init__(self):
        self.sends: list[bytes] = []

    def write(self, data):
        self.sends.append(bytes(data))
        return len(data)

    def flush(self):
        pass


class RequestLog:
    def log_request(self, *args):
        pass


@pytest.mark.parametrize("body", [[b"metric 1\n" * 1000], [], [b"a", b"b"]])
def test_a_response_is_one_send_per_body_write(body):
    out = Sends()
    environ = {}
    setup_testing_defaults(environ)
    handler = _ResponseHandler(io.BytesIO(), out, sys.stderr, environ, multithread=False)
    handler.request_handler = RequestLog()

    def app(environ, start_response):
        size = sum(map(len, body))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(size))])
        return body

    handler.run(app)
    assert len(out.sends) == max(1, len(body))
    sent = b"".join(out.sends)
    head, _, rest = sent.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in head
    assert rest == b"".join(body)
