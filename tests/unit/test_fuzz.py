"""Fuzzing every parser and the config loader: no exception escapes, every line accounted."""

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.config import ConfigError, LabelJoin, ServingLogFormat, parse_config
from exporter.sources.labels import LabelParser
from exporter.sources.runs import RunLogParser
from exporter.sources.serving_log import ServingLogParser

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [
    "timestamp",
    "model",
    "model_version",
    "request_id",
    "latency_ms",
    "status",
    "features",
    "prediction",
    "label",
    "pipeline",
    "run_id",
    "start",
    "end",
    "kind",
]
records = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)
raw_lines = st.binary(max_size=80).map(lambda b: b.replace(b"\n", b" "))
lines = st.one_of(records.map(lambda r: json.dumps(r).encode()), raw_lines)
SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow],
)

SERVING = ServingLogParser(ServingLogFormat(), ["fraud", "ranker"], ["amount", "age"], ["country"])
LABELS = LabelParser(LabelJoin())
RUNS = RunLogParser(["train"])


@SETTINGS
@given(st.lists(lines, max_size=30))
def test_serving_parser_accounts_for_every_line(batch):
    data = b"".join(line + b"\n" for line in batch)
    out = SERVING.parse(data)
    assert out.lines == len(batch)
    assert out.records + sum(out.invalid.values()) == len(batch)


@SETTINGS
@given(st.lists(lines, max_size=30))
def test_label_parser_accounts_for_every_line(batch):
    out = LABELS.parse(b"".join(line + b"\n" for line in batch))
    assert out.lines == len(batch)
    assert len(out.request_ids) + sum(out.invalid.values()) == len(batch)


@SETTINGS
@given(st.lists(lines, max_size=30))
def test_run_log_parser_accounts_for_every_line(batch):
    out = RUNS.parse(b"".join(line + b"\n" for line in batch))
    assert out.lines == len(batch)
    assert len(out.records) + sum(out.invalid.values()) == len(batch)


@SETTINGS
@given(json_values)
def test_config_loader_gives_clear_errors_or_a_config(data):
    try:
        parse_config(data, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.errors and all(e.startswith("fuzz.yaml: ") for e in exc.errors)
