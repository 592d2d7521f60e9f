"""The web config file (Prometheus exporter-toolkit format): TLS and basic auth.

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # or NoClientCert (default), ...
      client_ca_file: ca.crt
      min_version: TLS12
    basic_auth_users:
      alice: $2y$10$...          # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')

The file and the certificate files are re-read when they change, so certificates rotate
without a restart. Passwords are checked with ``bcrypt.checkpw`` (constant time); a good
credential is then cached (a SHA-256 of user, password and hash), as exporter-toolkit does,
so that a scrape does not pay bcrypt's cost every time; a bad one always pays it. An
unknown user is checked against a dummy hash of the configured hashes' highest cost, so the
answer's timing does not tell which users exist. At most ``BCRYPT_SLOTS`` checks run at
once, so a brute force cannot take every core from ingestion or from scrapes with cached
credentials (the fast lane). A password over 72 bytes is refused (as Go's bcrypt does).

Every key node_exporter's toolkit accepts is accepted: what Python's ssl can apply is
applied (``max_version``, ``cipher_suites`` of TLS 1.2, ``client_allowed_sans``,
``http_server_config.headers``); what it cannot (``curve_preferences``, ``http2``,
``prefer_server_cipher_suites``) is warned about once and ignored.
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
import threading
from collections import OrderedDict
from dataclasses import dataclass

import bcrypt
import yaml

log = logging.getLogger(__name__)

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's TLS 1.2 cipher suite names -> OpenSSL's (TLS 1.3 suites are not configurable in Go).
GO_CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
GO_CURVES = ("CurveP256", "CurveP384", "CurveP521", "X25519")
TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
}
HTTP_KEYS = {"http2", "headers"}
# bcrypt checks at once: a brute force waits here instead of starving everything else.
BCRYPT_SLOTS = threading.BoundedSemaphore(2)
BCRYPT_WAIT_SECONDS = 5.0
MAX_PASSWORD_BYTES = 72
CACHE_SIZE = 256
_dummy_hashes: dict[int, bytes] = {}
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def dummy_hash(cost: int) -> bytes:
    """A hash of the given cost for unknown users: they then cost what known ones do."""
    if cost not in _dummy_hashes:
        _dummy_hashes[cost] = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=cost))
    return _dummy_hashes[cost]


def bcrypt_cost(hashed: bytes) -> int:
    try:
        return int(hashed.split(b"$")[2])
    except (IndexError, ValueError):
        return 10


class WebConfigError(Exception):
    pass


@dataclass(frozen=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None
    users: dict[str, bytes]  # user -> bcrypt hash
    headers: tuple[tuple[str, str], ...] = ()  # http_server_config.headers, on every answer
    allowed_sans: frozenset[str] = frozenset()  # client certificate SANs allowed (empty: any)

    @property
    def dummy(self) -> bytes:
        return dummy_hash(max((bcrypt_cost(h) for h in self.users.values()), default=10))


def _resolve(base: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(os.path.dirname(base), path)


def load_web_config(path: str) -> WebConfig:
    """Parse and validate; WebConfigError names the file and the key."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise WebConfigError(f"{path}: cannot read web config: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise WebConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise WebConfigError(f"{path}: expected a mapping")
    known = {"tls_server_config", "basic_auth_users", "http_server_config"}
    for key in data:
        if key not in known:
            raise WebConfigError(
                f"{path}: {key}: unknown key (known keys: {', '.join(sorted(known))})"
            )
    users = {}
    for user, hashed in (data.get("basic_auth_users") or {}).items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise WebConfigError(f"{path}: basic_auth_users.{user}: not a bcrypt hash")
        users[str(user)] = hashed.encode()
    tls = data.get("tls_server_config")
    context = None
    sans: frozenset[str] = frozenset()
    if tls:
        context = _ssl_context(path, tls)
        sans = frozenset(str(x) for x in tls.get("client_allowed_sans") or ())
    headers = _headers(path, data.get("http_server_config") or {})
    config = WebConfig(context, users, headers, sans)
    if users:
        config.dummy  # noqa: B018 - hash the dummy now, not in the first request
    return config


def _headers(path: str, http: dict) -> tuple[tuple[str, str], ...]:
    if not isinstance(http, dict):
        raise WebConfigError(f"{path}: http_server_config: expected a mapping")
    for key in http:
        if key not in HTTP_KEYS:
            raise WebConfigError(f"{path}: http_server_config.{key}: unknown key")
    if http.get("http2") is not None:
        _warn_once(f"{path}: http_server_config.http2: HTTP/2 is not served here; ignored")
    headers = http.get("headers") or {}
    if not isinstance(headers, dict):
        raise WebConfigError(f"{path}: http_server_config.headers: expected a mapping")
    return tuple((str(k), str(v)) for k, v in headers.items())


def _version(path: str, tls: dict, key: str, default: str) -> ssl.TLSVersion:
    value = tls.get(key, default)
    if value not in VERSIONS:
        raise WebConfigError(
            f"{path}: tls_server_config.{key}: one of {', '.join(VERSIONS)}, got {value!r}"
        )
    return VERSIONS[value]


def _ssl_context(path: str, tls: dict) -> ssl.SSLContext:
    for key in tls:
        if key not in TLS_KEYS:
            raise WebConfigError(f"{path}: tls_server_config.{key}: unknown key")
    for key in ("cert_file", "key_file"):
        if not tls.get(key):
            raise WebConfigError(f"{path}: tls_server_config.{key}: required with TLS")
    auth = tls.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH:
        raise WebConfigError(
            f"{path}: tls_server_config.client_auth_type: one of "
            f"{', '.join(CLIENT_AUTH)}, got {auth!r}"
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _version(path, tls, "min_version", "TLS12")
    if "max_version" in tls:
        ctx.maximum_version = _version(path, tls, "max_version", "TLS13")
    suites = tls.get("cipher_suites") or []
    if suites:
        unknown = [c for c in suites if c not in GO_CIPHERS]
        if unknown:
            raise WebConfigError(f"{path}: tls_server_config.cipher_suites: unknown {unknown}")
        try:
            ctx.set_ciphers(":".join(GO_CIPHERS[c] for c in suites))
        except ssl.SSLError:
            _warn_once(f"{path}: tls_server_config.cipher_suites: none available here; ignored")
    for curve in tls.get("curve_preferences") or []:
        if curve not in GO_CURVES:
            raise WebConfigError(
                f"{path}: tls_server_config.curve_preferences: one of {', '.join(GO_CURVES)}, "
                f"got {curve!r}"
            )
    if tls.get("curve_preferences"):
        _warn_once(
            f"{path}: tls_server_config.curve_preferences: Python's ssl cannot order curves; "
            "OpenSSL's defaults apply"
        )
    if "prefer_server_cipher_suites" in tls:
        _warn_once(f"{path}: tls_server_config.prefer_server_cipher_suites: ignored (as in Go)")
    try:
        ctx.load_cert_chain(_resolve(path, tls["cert_file"]), _resolve(path, tls["key_file"]))
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(f"{path}: tls_server_config.cert_file/key_file: {exc}") from exc
    ctx.verify_mode = CLIENT_AUTH[auth]
    if auth != "NoClientCert":
        ca = tls.get("client_ca_file")
        if not ca and auth in ("RequireAndVerifyClientCert", "VerifyClientCertIfGiven"):
            raise WebConfigError(f"{path}: tls_server_config.client_ca_file: required by {auth}")
        if ca:
            try:
                ctx.load_verify_locations(_resolve(path, ca))
            except (OSError, ssl.SSLError) as exc:
                raise WebConfigError(f"{path}: tls_server_config.client_ca_file: {exc}") from exc
    return ctx


class WebSecurity:
    """The current web config, re-read when its files change; checks credentials."""

    def __init__(self, path: str | None):
        self.path = path
        self.config = load_web_config(path) if path else WebConfig(None, {})
        self._stamp = self._stamps()
        self._lock = threading.Lock()
        self._good: OrderedDict[bytes, None] = OrderedDict()

    def _files(self) -> list[str]:
        if not self.path:
            return []
        files = [self.path]
        try:
            with open(self.path, encoding="utf-8") as fh:
                tls = (yaml.safe_load(fh) or {}).get("tls_server_config") or {}
            files += [
                _resolve(self.path, tls[k])
                for k in ("cert_file", "key_file", "client_ca_file")
                if tls.get(k)
            ]
        except (OSError, yaml.YAMLError, AttributeError):
            pass
        return files

    def _stamps(self) -> tuple:
        out = []
        for f in self._files():
            try:
                st = os.stat(f)
                out.append((f, st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((f, None, None))
        return tuple(out)

    def refresh(self) -> WebConfig:
        """The config, reloaded first if any of its files changed (a bad one is logged)."""
        if not self.path:
            return self.config
        stamp = self._stamps()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._stamp = stamp
                    try:
                        self.config = load_web_config(self.path)
                        self._good.clear()
                        log.info("web config %s reloaded", self.path)
                    except WebConfigError as exc:
                        log.error("web config reload rejected, keeping the old one: %s", exc)
        return self.config

    def check(self, user: str, password: str) -> bool:
        config = self.config
        hashed = config.users.get(user)
        secret = password.encode()
        key = hashlib.sha256(b"\0".join([user.encode(), secret, hashed or b""])).digest()
        with self._lock:
            if hashed is not None and key in self._good:
                self._good.move_to_end(key)  # the fast lane: no bcrypt, no waiting
                return True
        if len(secret) > MAX_PASSWORD_BYTES:
            secret = secret[:MAX_PASSWORD_BYTES]  # still pay the cost: timing says nothing
            hashed = None
        if not BCRYPT_SLOTS.acquire(timeout=BCRYPT_WAIT_SECONDS):
            return False
        try:
            ok = bcrypt.checkpw(secret, hashed or config.dummy)
        except ValueError:
            ok = False
        finally:
            BCRYPT_SLOTS.release()
        ok = ok and hashed is not None
        if ok:
            with self._lock:
                self._good[key] = None
                while len(self._good) > CACHE_SIZE:
                    self._good.popitem(last=False)
        return ok

    @property
    def auth_required(self) -> bool:
        return bool(self.config.users)
