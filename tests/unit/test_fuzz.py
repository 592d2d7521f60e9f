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


CRI_SERVING = ServingLogParser(
    ServingLogFormat(), ["fraud"], ["amount", "age"], ["country"], model="fraud", envelope=True
)
cri_lines = st.tuples(
    st.sampled_from([b"2026-11-26T10:00:00.123456789Z", b"x", b""]),
    st.sampled_from([b"stdout", b"stderr", b"stdin"]),
    st.sampled_from([b"F", b"P", b"Q"]),
    lines,
).map(lambda t: b" ".join(t))


@SETTINGS
@given(st.lists(cri_lines, max_size=30), st.sampled_from([("stdout",), ("stdout", "stderr")]))
def test_cri_envelope_and_parser_account_for_every_record(batch, streams):
    """Whatever the lines (partial ones, broken headers, other streams), every record the
    envelope makes is parsed, invalid or ignored; the in-place way agrees with the
    line-by-line one."""
    from exporter.sources.envelopes import Cri, _Joining

    data = b"".join(line + b"\n" for line in batch)
    broken = records = pending = 0
    for line in batch:
        parts = line.split(b" ", 3)
        if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"P", b"F"):
            broken += 1
        elif parts[2] == b"P":
            pending = 1
        else:
            records, pending = records + 1, 0
    records += pending  # final: a trailing partial sequence is a record
    out = Cri(streams).unwrap(data, final=True)
    assert out.data.count(b"\n") + out.dropped == records + broken
    parsed = CRI_SERVING.parse(out.data)
    accounted = parsed.records + sum(parsed.invalid.values()) + sum(parsed.ignored.values())
    assert accounted == parsed.lines == out.data.count(b"\n")
    slow = _Joining.unwrap(Cri(streams), data, final=True)
    assert [x.strip() for x in out.data.split(b"\n")] == [x.strip() for x in slow.data.split(b"\n")]
    assert (out.ignored, out.invalid) == (slow.ignored, slow.invalid)
