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
so that a scrape does not pay bcrypt's cost every time; a bad one always pays it.
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
VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# Verifying against this hash for unknown users makes them cost the same as known ones.
_DUMMY_HASH = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=10))
CACHE_SIZE = 256


class WebConfigError(Exception):
    pass


@dataclass(frozen=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None
    users: dict[str, bytes]  # user -> bcrypt hash


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
    if tls:
        context = _ssl_context(path, tls)
    return WebConfig(context, users)


def _ssl_context(path: str, tls: dict) -> ssl.SSLContext:
    known = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version"}
    for key in tls:
        if key not in known:
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
    ctx.minimum_version = VERSIONS.get(tls.get("min_version", "TLS12"), ssl.TLSVersion.TLSv1_2)
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
        key = hashlib.sha256(b"\0".join([user.encode(), password.encode(), hashed or b""])).digest()
        with self._lock:
            if hashed is not None and key in self._good:
                self._good.move_to_end(key)
                return True
        ok = bcrypt.checkpw(password.encode(), hashed or _DUMMY_HASH)
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
