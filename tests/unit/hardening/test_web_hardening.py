"""Basic auth and web config: no user enumeration, no 500s, a fast lane under brute force,
and every exporter-toolkit key accepted."""

import logging
import statistics
import threading
import time

import bcrypt
import pytest
import requests
import yaml

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.server import MetricsServer
from exporter.webconfig import WebConfigError, WebSecurity, load_web_config


def web_config(tmp_path, cost=11, **extra):
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=cost)).decode()
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump({"basic_auth_users": {"alice": hashed}, **extra}))
    return str(path)


def tls_web_config(tmp_path, extra=None, **tls) -> str:
    """A web config with the test PKI's server certificate and the given TLS keys."""
    from tests.integration.test_web import make_pki

    make_pki(str(tmp_path))
    path = tmp_path / "web.yml"
    tls = {"cert_file": "server.crt", "key_file": "server.key", **tls}
    path.write_text(yaml.safe_dump({"tls_server_config": tls, **(extra or {})}))
    return str(path)


def serve(security: WebSecurity, **kw) -> MetricsServer:
    """A started server in front of an exporter with one rendering."""
    e = Exporter(parse_config({}))
    e.render()
    server = MetricsServer(e, "127.0.0.1", 0, security=security, **kw)
    server.start()
    return server


def timed(fn, n=5) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_an_unknown_user_costs_what_a_known_one_does(tmp_path):
    sec = WebSecurity(web_config(tmp_path, cost=11))
    known = timed(lambda: sec.check("alice", "wrong"))
    unknown = timed(lambda: sec.check("mallory", "wrong"))
    assert 0.7 < unknown / known < 1.4, (known, unknown)


def test_a_password_over_72_bytes_is_a_401_not_a_500(tmp_path):
    sec = WebSecurity(web_config(tmp_path, cost=4))
    assert sec.check("alice", "x" * 100) is False
    assert sec.check("alice", "secret" + "x" * 100) is False  # no truncation match either
    server = serve(sec)
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        assert requests.get(url, auth=("alice", "p" * 200), timeout=5).status_code == 401
        assert requests.get(url, auth=("alice", "secret"), timeout=5).status_code == 200
    finally:
        server.stop()


def test_cached_credentials_stay_fast_under_a_brute_force(tmp_path):
    sec = WebSecurity(web_config(tmp_path, cost=10))
    server = serve(sec, max_requests=200)
    url = f"http://127.0.0.1:{server.port}/metrics"
    stop = threading.Event()

    def attacker():
        while not stop.is_set():
            requests.get(url, auth=("alice", "guess"), timeout=30)

    try:
        assert requests.get(url, auth=("alice", "secret"), timeout=5).status_code == 200
        threads = [threading.Thread(target=attacker) for _ in range(16)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        waits = [
            timed(lambda: requests.get(url, auth=("alice", "secret"), timeout=10), n=1)
            for _ in range(10)
        ]
        assert max(waits) < 0.5, waits
    finally:
        stop.set()
        for t in threads:
            t.join()
        server.stop()


def test_every_exporter_toolkit_key_is_accepted(tmp_path, caplog):
    path = tls_web_config(
        tmp_path,
        extra={
            "http_server_config": {
                "http2": True,
                "headers": {"Strict-Transport-Security": "max-age=31536000"},
            }
        },
        client_auth_type="NoClientCert",
        min_version="TLS12",
        max_version="TLS13",
        cipher_suites=[
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        ],
        curve_preferences=["X25519", "CurveP256"],
        prefer_server_cipher_suites=True,
        client_allowed_sans=["client"],
    )
    with caplog.at_level(logging.WARNING):
        config = load_web_config(path)
    assert config.headers == (("Strict-Transport-Security", "max-age=31536000"),)
    assert any("curve_preferences" in r.message for r in caplog.records)
    server = serve(WebSecurity(path))
    try:
        r = requests.get(
            f"https://127.0.0.1:{server.port}/-/healthy", verify=str(tmp_path / "ca.crt"), timeout=5
        )
        assert r.status_code == 200
        assert r.headers["Strict-Transport-Security"] == "max-age=31536000"
    finally:
        server.stop()


@pytest.mark.parametrize("version", ["TLS14", "SSL3", "tls12"])
def test_an_unknown_min_version_is_an_error(tmp_path, version):
    path = tls_web_config(tmp_path, min_version=version)
    with pytest.raises(WebConfigError, match="min_version"):
        load_web_config(path)
