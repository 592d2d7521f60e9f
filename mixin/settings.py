"""mixin/config.yaml -> a validated ``Settings``: every problem found at once, each with its
key (as the exporter's own config reports)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONFIG = os.path.join(HERE, "config.yaml")
DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
KEYS = {
    "selector",
    "cluster_label",
    "instance_label",
    "slo",
    "latency_buckets",
    "runbook_url_base",
    "dashboard_url_base",
    "prometheus_operator",
}
SLO_KEYS = {
    "availability",
    "latency_target",
    "latency_threshold_seconds",
    "page",
    "ticket",
    "page_for",
    "ticket_for",
}


class MixinConfigError(Exception):
    def __init__(self, path: str, errors: list[str]):
        super().__init__("\n".join(f"{path}: {e}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Burn:
    long: str
    short: str
    factor: float


@dataclass(frozen=True)
class Settings:
    selector: str
    cluster_label: str
    instance_label: str
    availability: float
    latency_target: float
    latency_threshold: float
    page: tuple[Burn, ...]
    ticket: tuple[Burn, ...]
    page_for: str
    ticket_for: str
    latency_buckets: tuple[float, ...]
    runbook_url_base: str
    dashboard_url_base: str
    release_label: str
    namespace: str

    @property
    def error_budget(self) -> float:
        return round(1.0 - self.availability, 12)

    @property
    def slow_budget(self) -> float:
        return round(1.0 - self.latency_target, 12)

    @property
    def le(self) -> str:
        """The latency bucket's ``le`` as the exporter writes it (Python's float repr)."""
        return repr(float(self.latency_threshold))

    def windows(self) -> list[str]:
        """Every burn window, shortest first."""
        found = {w for b in (*self.page, *self.ticket) for w in (b.long, b.short)}
        return sorted(found, key=seconds)


def seconds(duration: str) -> float:
    m = DURATION.match(duration)
    return int(m.group(1)) * SECONDS[m.group(2)]


def in_words(duration: str) -> str:
    """'3d' -> '3 days', '1h' -> '1 hour' (for alert descriptions)."""
    m = DURATION.match(duration)
    n, unit = int(m.group(1)), m.group(2)
    word = {
        "ms": "millisecond",
        "s": "second",
        "m": "minute",
        "h": "hour",
        "d": "day",
        "w": "week",
        "y": "year",
    }[unit]
    return f"{n} {word}{'' if n == 1 else 's'}"


def percent(share: float) -> str:
    """0.999 -> '99.9', 0.99 -> '99'."""
    return f"{share * 100:.10g}"


def load(path: str = CONFIG) -> Settings:
    try:
        with open(path) as fh:
            raw = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MixinConfigError(path, [f"cannot read: {exc}"]) from exc
    errors: list[str] = []
    settings = _build(raw, errors)
    if errors:
        raise MixinConfigError(path, errors)
    return settings


def _build(raw: dict, errors: list[str]) -> Settings | None:
    if not isinstance(raw, dict):
        errors.append("the file must be a mapping")
        return None
    errors += [f"{k}: unknown key" for k in sorted(set(raw) - KEYS)]
    slo = raw.get("slo") or {}
    errors += [f"slo.{k}: unknown key" for k in sorted(set(slo) - SLO_KEYS)]

    def text(key: str, value, allow_empty: bool = False) -> str:
        if not isinstance(value, str) or (not value and not allow_empty):
            errors.append(f"{key}: must be a {'' if allow_empty else 'non-empty '}string")
            return ""
        return value

    def share(key: str, value) -> float:
        if not isinstance(value, int | float) or not 0 < value < 1:
            errors.append(f"{key}: must be a number in (0, 1), got {value!r}")
            return 0.5
        return float(value)

    def duration(key: str, value) -> str:
        if not isinstance(value, str) or not DURATION.match(value):
            errors.append(f"{key}: {value!r} is not a Prometheus duration (e.g. 5m, 1h)")
            return "1h"
        return value

    def burns(key: str, value) -> tuple[Burn, ...]:
        if not isinstance(value, list) or not value:
            errors.append(f"{key}: must be a list of {{long, short, factor}}")
            return ()
        out = []
        for i, item in enumerate(value):
            item = item if isinstance(item, dict) else {}
            long = duration(f"{key}[{i}].long", item.get("long"))
            short = duration(f"{key}[{i}].short", item.get("short"))
            factor = item.get("factor")
            if not isinstance(factor, int | float) or factor <= 0:
                errors.append(f"{key}[{i}].factor: must be a positive number")
                factor = 1.0
            valid = all(
                isinstance(item.get(k), str) and DURATION.match(item[k]) for k in ("long", "short")
            )
            if valid and seconds(short) >= seconds(long):
                errors.append(f"{key}[{i}]: the short window must be shorter than the long one")
            out.append(Burn(long, short, float(factor)))
        return tuple(out)

    buckets = raw.get("latency_buckets")
    if (
        not isinstance(buckets, list)
        or not buckets
        or not all(isinstance(b, int | float) and b > 0 for b in buckets)
        or list(buckets) != sorted(set(buckets))
    ):
        errors.append("latency_buckets: must be positive numbers, strictly increasing")
        buckets = []
    threshold = slo.get("latency_threshold_seconds")
    if not isinstance(threshold, int | float) or threshold <= 0:
        errors.append("slo.latency_threshold_seconds: must be a positive number of seconds")
        threshold = 0.0
    elif buckets and float(threshold) not in {float(b) for b in buckets}:
        errors.append(
            f"slo.latency_threshold_seconds: {threshold} is not one of latency_buckets "
            f"({', '.join(map(str, buckets))}): no histogram bucket would count it"
        )
    operator = raw.get("prometheus_operator") or {}
    settings = Settings(
        selector=text("selector", raw.get("selector")),
        cluster_label=text("cluster_label", raw.get("cluster_label", ""), allow_empty=True),
        instance_label=text("instance_label", raw.get("instance_label")),
        availability=share("slo.availability", slo.get("availability")),
        latency_target=share("slo.latency_target", slo.get("latency_target")),
        latency_threshold=float(threshold),
        page=burns("slo.page", slo.get("page")),
        ticket=burns("slo.ticket", slo.get("ticket")),
        page_for=duration("slo.page_for", slo.get("page_for")),
        ticket_for=duration("slo.ticket_for", slo.get("ticket_for")),
        latency_buckets=tuple(float(b) for b in buckets),
        runbook_url_base=text("runbook_url_base", raw.get("runbook_url_base")),
        dashboard_url_base=text("dashboard_url_base", raw.get("dashboard_url_base")),
        release_label=text("prometheus_operator.release_label", operator.get("release_label")),
        namespace=text("prometheus_operator.namespace", operator.get("namespace")),
    )
    for key in ("cluster_label", "instance_label"):
        value = getattr(settings, key)
        if value and not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", value):
            errors.append(f"{key}: {value!r} is not a Prometheus label name")
    return settings
