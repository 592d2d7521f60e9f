"""YAML config -> frozen dataclasses, validated once at the edge.

Every problem is reported as ``FILE: key.path[i]: what is wrong`` and all problems are
collected before failing, so one run of ``check-config`` shows everything to fix.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import yaml

from exporter.durations import parse_duration
from exporter.stats.drift import METHODS

DURATION = "duration"
Duration = Annotated[float, DURATION]

# Prometheus client's defaults stop at 10 s; model serving wants finer low buckets.
DEFAULT_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
QUALITY_METRICS = ("accuracy", "precision", "recall", "auc", "logloss", "mae", "rmse")
# Metrics where lower is better: their threshold is a ceiling, the others a floor.
QUALITY_CEILINGS = frozenset({"logloss", "mae", "rmse"})


class ConfigError(Exception):
    """A config that cannot be used; ``errors`` holds one line per problem."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class FieldMap:
    """Where each serving-log field lives in a line (dot paths for nesting)."""

    timestamp: str = "timestamp"
    model: str = "model"
    version: str = "model_version"
    request_id: str = "request_id"
    latency: str = "latency_ms"
    status: str = "status"
    features: str = "features"
    prediction: str = "prediction"
    # Multiclass: the probability of each class, an object {class: p} or an array in the
    # order of ``models[].classes`` (the quality estimate reads them).
    scores: str = "scores"


FIELD_ROLES = tuple(f.name for f in dataclasses.fields(FieldMap))


LogFormat = Literal["json", "cri", "docker"]
Stream = Literal["stdout", "stderr"]


@dataclass(frozen=True)
class ServingLogFormat:
    # The envelope around each line (docs/inputs.md): json (none), cri (the kubelet's
    # /var/log/pods), docker (json-file); and which container streams are read.
    format: LogFormat = "json"
    streams: tuple[Stream, ...] = ("stdout", "stderr")
    fields: FieldMap = FieldMap()
    latency_unit: Literal["ms", "s"] = "ms"
    # Status strings (case-insensitive) that mean a failed request; HTTP codes >= 500 also do.
    error_statuses: tuple[str, ...] = ("error", "failed", "failure", "fail", "timeout")
    latency_buckets: tuple[float, ...] = DEFAULT_LATENCY_BUCKETS
    # A line longer than this is counted invalid and skipped (protects memory).
    max_line_bytes: int = 1 << 20
    # Globs of files the serving_logs globs match but that must not be read (e.g. "*.1").
    # Compressed files (logrotate's .gz) are skipped anyway, by their first bytes.
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServingSource:
    """One model's serving logs that differ from ``serving_log`` (docs/inputs.md): their own
    envelope, streams or field paths, and a constant version where the lines say none.
    Every record of such a source is the model's (the lines need no model field)."""

    path: str
    format: LogFormat | None = None  # default: serving_log.format
    streams: tuple[Stream, ...] | None = None  # default: serving_log.streams
    fields: FieldMap | None = None  # default: serving_log.fields
    version: str | None = None


@dataclass(frozen=True)
class Push:
    """POST /api/v1/records and /api/v1/kserve (docs/inputs.md): off unless enabled."""

    enabled: bool = False
    # A larger body is answered 413.
    max_body_bytes: int = 16 << 20
    # Records accepted but not yet applied; a push beyond it is answered 429 (retry later).
    max_queued_records: int = 200_000
    # KServe: a request event waits this long for its response event, then counts as a
    # failed request (KServe logs responses only for HTTP 200).
    kserve_response_timeout: Duration = 60.0
    kserve_max_pending: int = 100_000


@dataclass(frozen=True)
class Windows:
    length: Duration = 3600.0
    bucket: Duration = 60.0


@dataclass(frozen=True)
class Reference:
    # Training data (Parquet files, a directory or a glob), or ``profile``: a profile file
    # written by ``mlpipe-exporter profile --output`` (every shard of a fleet bins alike).
    path: str | None = None
    label: str | None = None
    prediction: str | None = None
    # Multiclass: the column of each class's probability, in the order of
    # ``models[].classes``, for the quality estimate's calibration.
    scores: tuple[str, ...] = ()
    profile: str | None = None


@dataclass(frozen=True)
class FeatureSet:
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()


@dataclass(frozen=True)
class Canary:
    stable_version: str | None = None


@dataclass(frozen=True)
class DriftVerdict:
    """How "drifted" is decided (docs/statistics.md): a test per column, corrected across
    the model's columns so that with no drift a window is flagged at most this often."""

    false_alarm_rate: float = 0.01  # α, per model, comparison and window
    correction: Literal["benjamini_hochberg", "bonferroni"] = "benjamini_hochberg"
    # Practical significance: also require this share of traffic to have moved (the KS
    # statistic for numeric columns, total variation for categorical). 0: off.
    min_effect: float = 0.0


@dataclass(frozen=True)
class Distribution:
    """What the distribution counters export (docs/fleet.md): numeric histograms' buckets
    at the reference's deciles (10 buckets) or percentiles (100; the exporter's own KS
    resolution), and the reference's ``top_k`` most frequent categories of each
    categorical column (the rest count as ``__other__``)."""

    buckets: Literal["deciles", "percentiles"] = "deciles"
    top_k: int = 20


@dataclass(frozen=True)
class LabelJoin:
    # Predictions waiting for their label; the oldest are evicted (and counted) past this.
    max_pending: int = 200_000
    max_delay: Duration = 86400.0
    # Field names in label lines.
    request_id_field: str = "request_id"
    label_field: str = "label"
    timestamp_field: str = "timestamp"


@dataclass(frozen=True)
class Capacity:
    """For the serving-capacity estimate (docs/capacity.md)."""

    replica_concurrency: float = 1.0  # requests one replica serves at once
    target_utilization: float = 0.7
    headroom: float = 0.2


@dataclass(frozen=True)
class Model:
    name: str
    # Globs (read with serving_log's format; the lines name their model) or sources of this
    # model's own (ServingSource). Empty only when push.enabled.
    serving_logs: tuple[str | ServingSource, ...] = ()
    task: Literal["binary_classification", "multiclass", "regression"] = "binary_classification"
    labels: tuple[str, ...] = ()
    reference: Reference | None = None
    # None: every column of the reference (numeric types numeric, the rest categorical).
    features: FeatureSet | None = None
    windows: Windows = Windows()
    thresholds: dict[str, float] = field(default_factory=dict)
    drift: DriftVerdict = DriftVerdict()
    distribution: Distribution = Distribution()
    quality_thresholds: dict[str, float] = field(default_factory=dict)
    canary: Canary = Canary()
    max_versions: int = 5
    min_samples: int = 100
    top_k: int = 100
    # out_of_range: outside the reference's [min, max] widened by this fraction of its range.
    out_of_range_margin: float = 0.1
    label_join: LabelJoin = LabelJoin()
    # Binary classification: a prediction >= this is the positive class.
    decision_threshold: float = 0.5
    capacity: Capacity = Capacity()
    # Feature names in order, for payloads that carry features as positional arrays (KServe
    # v1 "instances": [[...]], a 2-D Open Inference Protocol tensor).
    feature_order: tuple[str, ...] = ()
    # Multiclass: the classes, in the order of a scores array (label values of the quality
    # estimate come from here, never from the data).
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    name: str
    path: str  # a directory of Parquet files, flat or hive-partitioned (date=.../part.parquet)
    reference: str  # the model whose training reference and features apply
    role: Literal["data", "validation"] = "data"
    label: str | None = None  # label column; default: the model's reference label


@dataclass(frozen=True)
class ProcessMatch:
    cmdline_regex: str | None = None
    pid_file: str | None = None


@dataclass(frozen=True)
class Pipeline:
    name: str
    kind: Literal["training", "data", "validation", "experiment"] = "training"
    run_log: str | None = None
    processes: ProcessMatch | None = None
    expected_interval: Duration | None = None


@dataclass(frozen=True)
class Quota:
    name: str
    resource: Literal["cpu_seconds", "gpu_seconds", "requests_per_second", "memory_bytes"]
    limit: float
    period: Duration = 30 * 86400.0
    reset: Literal["rolling", "calendar"] = "rolling"
    pipelines: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    # The rate of use that forecasts exhaustion is measured over this much recent time.
    forecast_window: Duration = 3600.0
    # The plan (mlpipe_quota_planned, estimate-quota): the p95 cost of the last plan_runs
    # runs of each pipeline, times its runs per period, plus plan_headroom.
    plan_runs: int = 20
    plan_headroom: float = 0.2


@dataclass(frozen=True)
class Limits:
    """Cardinality budget, enforced at scrape time (docs/scaling.md)."""

    max_series_per_metric: int = 25_000
    max_series_per_model: int = 20_000


@dataclass(frozen=True)
class Config:
    models: tuple[Model, ...] = ()
    serving_log: ServingLogFormat = ServingLogFormat()
    datasets: tuple[Dataset, ...] = ()
    pipelines: tuple[Pipeline, ...] = ()
    quotas: tuple[Quota, ...] = ()
    limits: Limits = Limits()
    push: Push = Push()
    # Not a YAML key: where this config came from, for messages.
    source: str = field(default="<memory>", compare=False)

    def pipeline(self, name: str) -> Pipeline:
        return next(p for p in self.pipelines if p.name == name)

    def model(self, name: str) -> Model:
        return next(m for m in self.models if m.name == name)


# --- generic builder -------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return "duration (e.g. 30s, 5m, 1h)"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is tuple:
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, str(tp)
    )


def _build(tp: Any, value: Any, path: str, errors: list[str]) -> Any:
    """Convert ``value`` to ``tp``; append "path: problem" to ``errors`` and return None."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        # str | Dataclass: a mapping builds the dataclass, anything else the first type.
        mapping = [a for a in args if dataclasses.is_dataclass(a)]
        if isinstance(value, dict) and mapping:
            return _build(mapping[0], value, path, errors)
        return _build(args[0], value, path, errors)
    if origin is Annotated:
        if isinstance(value, bool):
            errors.append(f"{path}: expected a duration (e.g. 30s, 5m, 1h), got {value!r}")
            return None
        if isinstance(value, int | float):
            if value > 0:
                return float(value)
            errors.append(f"{path}: duration must be positive, got {value!r}")
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            errors.append(f"{path}: {exc}")
            return None
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        errors.append(f"{path}: expected {_type_name(tp)}, got {value!r}")
        return None
    if origin is tuple:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return None
        item = typing.get_args(tp)[0]
        return tuple(_build(item, v, f"{path}[{i}]", errors) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {type(value).__name__}")
            return None
        item = typing.get_args(tp)[1]
        return {str(k): _build(item, v, f"{path}.{k}", errors) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, path, errors)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is bool or tp is str:
        if isinstance(value, tp):
            return value
    else:  # pragma: no cover - a type the schema above does not use
        raise TypeError(f"unsupported config type {tp}")
    errors.append(f"{path}: expected {_type_name(tp)}, got {value!r}")
    return None


def _build_dataclass(cls: Any, value: Any, path: str, errors: list[str]) -> Any:
    if not isinstance(value, dict):
        errors.append(f"{path or '<top level>'}: expected a mapping, got {type(value).__name__}")
        return None
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    prefix = f"{path}." if path else ""
    for key in value:
        if key not in fields:
            known = ", ".join(sorted(fields))
            errors.append(f"{prefix}{key}: unknown key (known keys: {known})")
    # Unknown keys do not void the part: the rest of it is still built and checked, so one
    # run reports every problem.
    before = len(errors)
    kwargs = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = _build(hints[name], value[name], prefix + name, errors)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            errors.append(f"{prefix}{name}: required key is missing")
    if len(errors) > before and path:
        return None
    try:
        return cls(**kwargs)
    except TypeError:
        return None


# --- semantic checks -------------------------------------------------------------------


def _glob_root(pattern: str) -> str:
    """The longest leading directory of a glob that has no wildcard in it."""
    parts = pattern.split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) or "."


def _check_readable_glob(pattern: str, path: str, errors: list[str]) -> None:
    root = _glob_root(os.path.expanduser(pattern))
    if not os.path.isdir(root):
        errors.append(f"{path}: directory {root!r} does not exist")
    elif not os.access(root, os.R_OK | os.X_OK):
        errors.append(f"{path}: directory {root!r} is not readable")
    elif (
        not glob.has_magic(pattern) and os.path.exists(pattern) and not os.access(pattern, os.R_OK)
    ):
        errors.append(f"{path}: {pattern!r} is not readable")


def _check_unique(items, what: str, errors: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.name in seen:
            errors.append(
                f"{what}[{i}].name: duplicate name {item.name!r} (also {what}[{seen[item.name]}])"
            )
        seen.setdefault(item.name, i)


def _field_path_conflicts(fields: FieldMap) -> list[str]:
    """Serving-log field paths that cannot all hold: one path twice, or one inside another."""
    problems = []
    paths = {role: getattr(fields, role) for role in FIELD_ROLES}
    if paths["features"] == ".":  # the record's own top-level fields
        del paths["features"]
    for role, path in paths.items():
        if not path or any(not part for part in path.split(".")):
            problems.append(f"serving_log.fields.{role}: {path!r} is not a dot path")
    items = sorted(paths.items())
    for i, (a, pa) in enumerate(items):
        for b, pb in items[i + 1 :]:
            if pa == pb:
                problems.append(f"serving_log.fields: {a} and {b} are both {pa!r}")
            elif pb.startswith(pa + ".") or pa.startswith(pb + "."):
                outer, inner = (a, b) if pb.startswith(pa + ".") else (b, a)
                problems.append(
                    f"serving_log.fields: {outer} ({paths[outer]!r}) cannot hold a value and "
                    f"also contain {inner} ({paths[inner]!r})"
                )
    return problems


def _validate(cfg: Config, errors: list[str]) -> None:
    """Semantic checks; parts that failed to build (None) are skipped, not fatal."""
    models = [m for m in cfg.models or () if m is not None]
    datasets = [d for d in cfg.datasets or () if d is not None]
    pipelines = [p for p in cfg.pipelines or () if p is not None]
    quotas = [q for q in cfg.quotas or () if q is not None]
    _check_unique(models, "models", errors)
    if cfg.limits is not None and (
        cfg.limits.max_series_per_metric < 1 or cfg.limits.max_series_per_model < 1
    ):
        errors.append("limits: every limit must be at least 1")
    _check_unique(datasets, "datasets", errors)
    _check_unique(pipelines, "pipelines", errors)
    _check_unique(quotas, "quotas", errors)
    if cfg.serving_log is not None:
        buckets = cfg.serving_log.latency_buckets
        if buckets is not None and (
            not buckets or list(buckets) != sorted(set(buckets)) or buckets[0] <= 0
        ):
            errors.append("serving_log.latency_buckets: must be positive and strictly increasing")
        if cfg.serving_log.fields is not None:
            errors.extend(_field_path_conflicts(cfg.serving_log.fields))
    model_names = {m.name for m in models}
    kinds: dict[str, tuple[str, str]] = {}  # feature -> (kind, first model that gave it)
    for i, m in enumerate(cfg.models or ()):
        if m is not None:
            _validate_model(m, f"models[{i}]", errors, push=bool(cfg.push and cfg.push.enabled))
            for kind in ("numeric", "categorical"):
                for f in getattr(m.features, kind, None) or () if m.features else ():
                    first = kinds.setdefault(f, (kind, m.name))
                    if first[0] != kind:
                        errors.append(
                            f"models[{i}].features.{kind}: {f!r} is {first[0]} in model "
                            f"{first[1]}; one serving log source reads it, so give it one kind"
                        )
    for i, d in enumerate(cfg.datasets or ()):
        if d is None:
            continue
        if d.reference not in model_names:
            errors.append(f"datasets[{i}].reference: no model named {d.reference!r}")
        _check_readable_glob(os.path.join(d.path, "x"), f"datasets[{i}].path", errors)
    pipeline_names = {p.name for p in pipelines}
    for i, p in enumerate(cfg.pipelines or ()):
        if p is None:
            continue
        if p.run_log is not None:
            _check_readable_glob(p.run_log, f"pipelines[{i}].run_log", errors)
        if p.processes is not None:
            if p.processes.cmdline_regex is None and p.processes.pid_file is None:
                errors.append(f"pipelines[{i}].processes: give cmdline_regex or pid_file")
            if p.processes.cmdline_regex is not None:
                try:
                    re.compile(p.processes.cmdline_regex)
                except re.error as exc:
                    errors.append(f"pipelines[{i}].processes.cmdline_regex: invalid regex: {exc}")
    for i, q in enumerate(cfg.quotas or ()):
        if q is None:
            continue
        if q.resource in ("cpu_seconds", "gpu_seconds") and not q.pipelines:
            errors.append(f"quotas[{i}].pipelines: a {q.resource} quota needs pipelines")
        if q.resource == "requests_per_second" and not q.models:
            errors.append(f"quotas[{i}].models: a requests_per_second quota needs models")
        if q.resource == "memory_bytes" and not q.pipelines:
            errors.append(f"quotas[{i}].pipelines: a memory_bytes quota needs pipelines")
        for j, name in enumerate(q.pipelines or ()):
            if name not in pipeline_names:
                errors.append(f"quotas[{i}].pipelines[{j}]: no pipeline named {name!r}")
        for j, name in enumerate(q.models or ()):
            if name not in model_names:
                errors.append(f"quotas[{i}].models[{j}]: no model named {name!r}")
        if q.limit is not None and q.limit <= 0:
            errors.append(f"quotas[{i}].limit: must be positive")
        if q.plan_runs is not None and q.plan_runs < 2:
            errors.append(f"quotas[{i}].plan_runs: must be at least 2")
        if q.plan_headroom is not None and q.plan_headroom < 0:
            errors.append(f"quotas[{i}].plan_headroom: must be >= 0")


def _validate_model(m: Model, p: str, errors: list[str], push: bool = False) -> None:
    if not m.name or not m.name.replace("-", "").replace("_", "").isalnum():
        errors.append(f"{p}.name: {m.name!r} must be letters, digits, '-' or '_'")
    if not m.serving_logs and not push:
        errors.append(f"{p}.serving_logs: at least one path or glob is required (or push.enabled)")
    for j, src in enumerate(m.serving_logs or ()):
        if isinstance(src, ServingSource):
            _check_readable_glob(src.path, f"{p}.serving_logs[{j}].path", errors)
            if src.fields is not None:
                errors.extend(
                    e.replace("serving_log.fields", f"{p}.serving_logs[{j}].fields")
                    for e in _field_path_conflicts(src.fields)
                )
        elif src is not None:
            _check_readable_glob(src, f"{p}.serving_logs[{j}]", errors)
    for j, name in enumerate(m.feature_order or ()):
        if m.features is not None and name not in (*m.features.numeric, *m.features.categorical):
            errors.append(f"{p}.feature_order[{j}]: {name!r} is not one of the model's features")
    for j, pattern in enumerate(m.labels or ()):
        _check_readable_glob(pattern, f"{p}.labels[{j}]", errors)
    if m.reference is not None:
        if (m.reference.path is None) == (m.reference.profile is None):
            errors.append(f"{p}.reference: set exactly one of path (training data) or profile")
        elif m.reference.path is not None:
            _check_readable_glob(m.reference.path, f"{p}.reference.path", errors)
        elif not os.access(m.reference.profile, os.R_OK):
            errors.append(f"{p}.reference.profile: cannot read {m.reference.profile!r}")
        if m.reference.profile is not None and (
            m.reference.label or m.reference.prediction or m.reference.scores
        ):
            errors.append(
                f"{p}.reference: label, prediction and scores come from the profile file; "
                "set them where it is built"
            )
    _validate_classes(m, p, errors)
    dist = m.distribution or Distribution()
    if dist.top_k is not None and not 1 <= dist.top_k <= (m.top_k or 100):
        errors.append(f"{p}.distribution.top_k: must be in [1, top_k = {m.top_k}]")
    if m.windows is not None and m.windows.bucket and m.windows.length:
        if m.windows.bucket > m.windows.length:
            errors.append(f"{p}.windows.bucket: longer than windows.length")
        elif m.windows.length / m.windows.bucket > 10_000:
            errors.append(f"{p}.windows: more than 10000 buckets per window")
    for method in m.thresholds or {}:
        if method not in METHODS:
            errors.append(f"{p}.thresholds.{method}: unknown method (known: {', '.join(METHODS)})")
    for metric in m.quality_thresholds or {}:
        if metric not in QUALITY_METRICS:
            errors.append(
                f"{p}.quality_thresholds.{metric}: unknown metric "
                f"(known: {', '.join(QUALITY_METRICS)})"
            )
    d = m.drift or DriftVerdict()
    if not 0 < d.false_alarm_rate < 1:
        errors.append(f"{p}.drift.false_alarm_rate: must be in (0, 1), got {d.false_alarm_rate}")
    if not 0 <= d.min_effect < 1:
        errors.append(f"{p}.drift.min_effect: must be in [0, 1), got {d.min_effect}")
    c = m.capacity
    if c is not None:
        if c.target_utilization is not None and not 0 < c.target_utilization <= 1:
            errors.append(f"{p}.capacity.target_utilization: must be in (0, 1]")
        if (c.replica_concurrency is not None and c.replica_concurrency <= 0) or (
            c.headroom is not None and c.headroom < 0
        ):
            errors.append(f"{p}.capacity: replica_concurrency > 0 and headroom >= 0 required")
    for key in ("max_versions", "top_k", "min_samples"):
        value = getattr(m, key)
        if value is not None and value < 1:
            errors.append(f"{p}.{key}: must be at least 1")
    if m.features is not None:
        both = set(m.features.numeric or ()) & set(m.features.categorical or ())
        if both:
            errors.append(f"{p}.features: {sorted(both)} listed as numeric and categorical")


def _validate_classes(m: Model, p: str, errors: list[str]) -> None:
    """Multiclass classes and the reference's score columns agree (docs/statistics.md)."""
    classes = tuple(m.classes or ())
    if classes and m.task != "multiclass":
        errors.append(f"{p}.classes: only a multiclass model has classes (task is {m.task})")
    if len(set(classes)) != len(classes):
        errors.append(f"{p}.classes: a class is listed twice")
    elif classes and len(classes) < 2:
        errors.append(f"{p}.classes: a multiclass model has at least two classes")
    scores = tuple(m.reference.scores or ()) if m.reference is not None else ()
    if not scores:
        return
    if m.task != "multiclass":
        errors.append(f"{p}.reference.scores: only for a multiclass model (task is {m.task})")
    elif len(scores) != len(classes):
        errors.append(
            f"{p}.reference.scores: one column per class of {p}.classes, in its order "
            f"({len(scores)} columns for {len(classes)} classes)"
        )
    elif len(set(scores)) != len(scores):
        errors.append(f"{p}.reference.scores: a column is listed twice")
    if not m.reference.label:
        errors.append(f"{p}.reference.scores: needs reference.label (calibration learns from it)")


def parse_config(data: Any, source: str = "<memory>") -> Config:
    """Build and validate a Config from parsed YAML; ConfigError lists every problem."""
    errors: list[str] = []
    cfg = _build_dataclass(Config, data if data is not None else {}, "", errors)
    if cfg is not None:
        # Also when building found problems: every problem is reported in one run. Parts
        # that failed to build are None and their checks are skipped.
        _validate(cfg, errors)
    if errors:
        raise ConfigError([f"{source}: {e}" for e in errors])
    return dataclasses.replace(cfg, source=source)


# A config is a page or two of YAML; anything far larger is a mistake or an attack.
MAX_CONFIG_BYTES = 1 << 20
# Alias expansions allowed in one file: a few anchors for shared settings are fine, an
# alias bomb (584 bytes, 10^9 leaves) is not.
MAX_ALIASES = 100


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (as promtool does) and counts aliases."""

    def __init__(self, stream):
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                event = self.peek_event()
                raise yaml.constructor.ConstructorError(
                    None, None, f"more than {MAX_ALIASES} aliases", event.start_mark
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first at line {seen[key].line + 1})",
                    key_node.start_mark,
                )
            if isinstance(key, str | int | float | bool):
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _count_leaves(node, budget: list[int]) -> None:
    """Walk the composed tree (aliases visited again) and stop past the node budget."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(["config expands to too many values (an alias bomb?)"])
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            _count_leaves(k, budget)
            _count_leaves(v, budget)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            _count_leaves(v, budget)


def load_config(path: str) -> Config:
    """Read, parse and validate the YAML file at ``path``."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config: {exc.strerror}"]) from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_CONFIG_BYTES} bytes; not read"])
    try:
        loader = _StrictLoader(raw.decode("utf-8"))
        try:
            node = loader.get_single_node()
            if node is not None:
                try:
                    _count_leaves(node, [100_000])
                except ConfigError as exc:
                    raise ConfigError([f"{path}: {e}" for e in exc.errors]) from None
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text: {exc}"]) from exc
    except RecursionError as exc:
        raise ConfigError([f"{path}: nested too deeply"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc
    return parse_config(data, source=path)
