"""Hostile lines in every tailed source: each bad line is counted, every good one applied."""

import json

import pytest

from exporter.app import Exporter
from exporter.config import parse_config
from exporter.sources.jsonlines import decode_lines
from tests.helpers import sample, serving_line

LATIN1 = (
    b'{"timestamp": 1790000000, "model": "fraud", "model_version": "caf\xe9", '
    b'"latency_ms": 1, "status": "ok"}\n'
)


def make(tmp_path, **extra):
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    cfg = {
        "models": [
            {
                "name": "fraud",
                "serving_logs": [str(logs / "*.jsonl")],
                "labels": [str(logs / "labels-*.json")],
            }
        ],
        "pipelines": [
            {"name": "train", "kind": "training", "run_log": str(logs / "runs.log")},
        ],
        **extra,
    }
    return Exporter(parse_config(cfg), state_dir=str(tmp_path / "state")), logs


def test_an_invalid_utf8_byte_costs_only_its_line_in_serving_logs(tmp_path):
    exporter, logs = make(tmp_path)
    for name, offset in (("a.jsonl", 0), ("b.jsonl", 150)):
        with open(logs / name, "wb") as fh:
            for i in range(150):
                fh.write(serving_line(offset + i).encode())
                if i == 70:
                    fh.write(LATIN1)
    exporter.ingest_pass()
    assert sample(exporter, "mlpipe_source_lines_total", source="serving", result="parsed") == 300
    assert (
        sample(exporter, "mlpipe_source_invalid_lines_total", source="serving", reason="not_utf8")
        == 2
    )
    assert sample(exporter, "mlpipe_source_lag_bytes", source="serving") == 0
    total = sum(
        sample(exporter, "mlpipe_serving_requests_total", model="fraud", version="v1", outcome=o)
        for o in ("success", "error")
    )
    assert total == 300


def test_an_invalid_utf8_byte_does_not_stop_labels_or_the_run_log(tmp_path):
    exporter, logs = make(tmp_path)
    with open(logs / "labels-1.json", "wb") as fh:
        fh.write(b'{"request_id": "caf\xe9", "label": 1}\n')
        for i in range(100):
            fh.write(json.dumps({"request_id": f"r-{i}", "label": 1}).encode() + b"\n")
    with open(logs / "runs.log", "wb") as fh:
        fh.write(b'{"pipeline": "train\xe9", "run_id": "x", "status": "running"}\n')
        for i in range(100):
            run = {"pipeline": "train", "kind": "training", "run_id": f"r{i}"}
            fh.write(json.dumps({**run, "status": "succeeded", "start": 1, "end": 2}).encode())
            fh.write(b"\n")
    exporter.ingest_pass()
    assert (
        sample(exporter, "mlpipe_source_lines_total", source="labels-fraud", result="parsed") == 100
    )
    assert (
        sample(
            exporter, "mlpipe_source_invalid_lines_total", source="labels-fraud", reason="not_utf8"
        )
        == 1
    )
    assert sample(exporter, "mlpipe_source_lines_total", source="runs", result="parsed") == 100
    assert (
        sample(
            exporter,
            "mlpipe_pipeline_runs_total",
            pipeline="train",
            kind="training",
            status="succeeded",
        )
        == 100
    )


def test_two_invalid_lines_that_join_into_valid_json_are_two_invalid_lines(tmp_path):
    exporter, logs = make(tmp_path)
    good = serving_line(1)
    # Alone each is broken; joined by a comma (the old array decoding) they made records.
    split = '{"timestamp": 1790000000, "model": "fraud", "x": "'
    rest = '{","latency_ms": 1, "status": "ok"}'
    two = good.strip() + "," + good.strip()
    with open(logs / "a.jsonl", "w") as fh:
        fh.write(good + split + "\n" + rest + "\n" + two + "\n" + good)
    exporter.ingest_pass()
    assert sample(exporter, "mlpipe_source_lines_total", source="serving", result="parsed") == 2
    assert sample(exporter, "mlpipe_source_lines_total", source="serving", result="invalid") == 3


@pytest.mark.parametrize("bad_at", [0, 1, 7, 19])
def test_decode_lines_hands_each_bad_line_over_once_and_keeps_order(bad_at):
    import msgspec

    class R(msgspec.Struct):
        i: int

    lines = [json.dumps({"i": i}).encode() for i in range(20)]
    lines[bad_at] = b'{"i": "x"}'
    lines[(bad_at + 5) % 20] = b'{"i": 1'
    lines[(bad_at + 9) % 20] = b""
    bad = []
    data = b"\n".join(lines) + b"\n"
    out = decode_lines(data, msgspec.json.Decoder(R), lambda b, e: bad.append(b))
    expected = [i for i in range(20) if i not in {bad_at, (bad_at + 5) % 20, (bad_at + 9) % 20}]
    assert [r.i for r in out] == expected
    assert sorted(bad) == sorted([b'{"i": "x"}', b'{"i": 1', b""])


def test_each_models_label_files_have_their_own_source_metrics(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = {
        "models": [
            {
                "name": name,
                "serving_logs": [str(logs / "*.jsonl")],
                "labels": [str(logs / f"labels-{name}-*.json")],
            }
            for name in ("fraud", "ranker")
        ]
    }
    exporter = Exporter(parse_config(cfg), state_dir=str(tmp_path / "state"))
    for name, n in (("fraud", 30), ("ranker", 7)):
        with open(logs / f"labels-{name}-1.json", "w") as fh:
            for i in range(n):
                fh.write(json.dumps({"request_id": f"{name}-{i}", "label": 1}) + "\n")
    exporter.ingest_pass()
    for name, n in (("fraud", 30), ("ranker", 7)):
        source = f"labels-{name}"
        assert sample(exporter, "mlpipe_source_lines_total", source=source, result="parsed") == n
        assert sample(exporter, "mlpipe_source_files", source=source) == 1
        assert sample(exporter, "mlpipe_source_read_bytes_total", source=source) > 0


def test_odd_latencies_are_not_observed_but_the_requests_count(tmp_path):
    exporter, logs = make(tmp_path)
    with open(logs / "a.jsonl", "w") as fh:
        for i, ms in enumerate([10.0, -5.0, 1e308, 20.0, 86_400_001.0]):
            fh.write(serving_line(i, latency_ms=ms))
    exporter.ingest_pass()
    total = sample(
        exporter, "mlpipe_serving_requests_total", model="fraud", version="v1", outcome="success"
    )
    assert total == 5
    labels = {"model": "fraud", "version": "v1"}
    assert sample(exporter, "mlpipe_serving_request_duration_seconds_count", **labels) == 2
    assert sample(
        exporter, "mlpipe_serving_request_duration_seconds_sum", **labels
    ) == pytest.approx(0.030)
    assert (
        sample(exporter, "mlpipe_source_rejected_values_total", source="serving", field="latency")
        == 3
    )


def test_rfc3339_lowercase_t_and_z_are_times(tmp_path):
    exporter, logs = make(tmp_path)
    with open(logs / "a.jsonl", "w") as fh:
        fh.write(serving_line(0, timestamp="2026-11-25t10:00:00.5z"))
        fh.write(serving_line(1, timestamp="2026-11-25T10:00:01Z"))
    exporter.ingest_pass()
    assert sample(exporter, "mlpipe_source_lines_total", source="serving", result="parsed") == 2
    last = sample(
        exporter, "mlpipe_serving_last_request_timestamp_seconds", model="fraud", version="v1"
    )
    assert last == 1795600801.0


def test_a_wrong_format_shows_in_the_log_with_file_offset_reason_and_bytes(tmp_path, caplog):
    exporter, logs = make(tmp_path)
    cri = "2026-11-25T10:00:00.123456789Z stdout F " + serving_line(1)
    with open(logs / "pod.jsonl", "w") as fh:
        fh.write(serving_line(0))
        for _ in range(50):
            fh.write(cri)
    exporter.ingest_pass()
    warnings = [r.message for r in caplog.records if "reason=" in r.message]
    assert len(warnings) == 1  # rate-limited: one per source per 10 s
    (msg,) = warnings
    assert f"file={logs / 'pod.jsonl'}" in msg
    assert f"offset={len(serving_line(0))}" in msg
    assert "reason=not_json" in msg and "2026-11-25T10:00:00.123456789Z stdout F" in msg
