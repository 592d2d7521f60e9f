"""TLS, client certificates, basic auth, certificate rotation and the request cap."""

import os
import socket
import ssl
import subprocess
import time

import bcrypt
import pytest
import requests
import yaml

from tests.helpers import wait_for


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d, name="server"):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, in ``d``."""
    if not os.path.exists(os.path.join(d, "ca.key")):
        openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            cwd=d,
        )
    for who, ext in (
        (name, "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{who}.key",
            "-out",
            f"{who}.csr",
            "-subj",
            f"/CN={who}",
            cwd=d,
        )
        with open(os.path.join(d, f"{who}.ext"), "w") as fh:
            fh.write(ext + "\n")
        openssl(
            "x509",
            "-req",
            "-in",
            f"{who}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{who}.crt",
            "-days",
            "2",
            "-extfile",
            f"{who}.ext",
            cwd=d,
        )


def config(tmp_path):
    (tmp_path / "logs").mkdir(exist_ok=True)
    return {"models": [{"name": "fraud", "serving_logs": [str(tmp_path / "logs" / "*.jsonl")]}]}


def test_basic_auth(tmp_path, start_exporter):
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"alice": hashed}}))
    exp = start_exporter(config(tmp_path), f"--web.config.file={web}")
    url = f"{exp.url}/metrics"
    denied = requests.get(url, timeout=5)
    assert denied.status_code == 401 and denied.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(url, auth=("alice", "wrong"), timeout=5).status_code == 401
    assert requests.get(url, auth=("mallory", "s3cret"), timeout=5).status_code == 401
    ok = requests.get(url, auth=("alice", "s3cret"), timeout=5)
    assert ok.status_code == 200 and "mlpipe_exporter_build_info" in ok.text
    assert "s3cret" not in exp.logs() and hashed not in exp.logs()


def test_unknown_user_costs_as_much_as_a_wrong_password(tmp_path):
    from exporter.webconfig import WebSecurity

    web = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=10)).decode()
    web.write_text(yaml.safe_dump({"basic_auth_users": {"alice": hashed}}))
    sec = WebSecurity(str(web))

    def median(user, pw):
        times = []
        for _ in range(5):
            t = time.perf_counter()
            assert not sec.check(user, pw)
            times.append(time.perf_counter() - t)
        return sorted(times)[2]

    wrong, unknown = median("alice", "nope"), median("bob", "nope")
    # Both run one bcrypt at cost 10: no shortcut for names that do not exist.
    assert 0.5 < unknown / wrong < 2.0, (wrong, unknown)
    assert sec.check("alice", "pw") and sec.check("alice", "pw")  # second one from the cache


def test_tls_with_client_certificates_and_rotation(tmp_path, start_exporter):
    pki = tmp_path / "pki"
    pki.mkdir()
    make_pki(str(pki))
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {
                    "cert_file": str(pki / "server.crt"),
                    "key_file": str(pki / "server.key"),
                    "client_auth_type": "RequireAndVerifyClientCert",
                    "client_ca_file": str(pki / "ca.crt"),
                }
            }
        )
    )
    exp = start_exporter(config(tmp_path), f"--web.config.file={web}")
    url = f"https://127.0.0.1:{exp.port}/metrics"
    client = (str(pki / "client.crt"), str(pki / "client.key"))
    assert requests.get(url, verify=str(pki / "ca.crt"), cert=client, timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, verify=str(pki / "ca.crt"), timeout=5)  # no client certificate
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{exp.port}/metrics", timeout=5)  # plain HTTP
    assert served_cn_with_client(exp.port, pki) == "server"
    # Rotate: a new certificate with another name, written in place; no restart.
    make_pki(str(pki), name="rotated")
    os.replace(pki / "rotated.crt", pki / "server.crt")
    os.replace(pki / "rotated.key", pki / "server.key")
    wait_for(lambda: served_cn_with_client(exp.port, pki) == "rotated", timeout=10)


def served_cn_with_client(port, pki) -> str:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
    with (
        socket.create_connection(("127.0.0.1", port)) as s,
        ctx.wrap_socket(s, server_hostname="127.0.0.1") as tls,
    ):
        return dict(x[0] for x in tls.getpeercert()["subject"])["commonName"]


def test_bad_web_config_fails_at_start_naming_file_and_key(tmp_path):
    import sys

    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"alice": "plaintext"}}))
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config(tmp_path)))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter.cli",
            f"--config.file={cfg}",
            f"--web.config.file={web}",
            "--web.listen-address=127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1
    assert f"{web}: basic_auth_users.alice: not a bcrypt hash" in out.stderr


def test_concurrent_requests_are_capped():
    from exporter.server import guarded
    from exporter.webconfig import WebSecurity

    inside = []

    def slow_app(environ, start_response):
        inside.append(1)
        if len(inside) == 1:  # the first request re-enters: the cap (1) is taken
            status = []
            guarded_app(environ, lambda s, h: status.append(s))
            inside.append(status[0])
        start_response("200 OK", [])
        return [b"ok"]

    guarded_app = guarded(slow_app, WebSecurity(None), max_requests=1)
    statuses = []
    guarded_app({}, lambda s, h: statuses.append(s))
    assert statuses == ["200 OK"]
    assert inside[-1].startswith("503")
