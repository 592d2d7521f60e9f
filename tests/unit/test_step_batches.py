"""A step's reads (several files, several chunks) are parsed and applied as one batch: the
state is what reading them one chunk at a time gives, a parse that fails loses only its
chunk, and an invalid line is still logged with its own file and offset."""

import json
import logging
import time

import numpy as np
import pytest

from exporter import ingest
from exporter.app import Exporter
from exporter.config import parse_config
from tests.unit.test_multi_model import FEATURES, lines, model, state_of


def write_split(tmp_path, all_lines, parts: int):
    logs = tmp_path / "logs"
    logs.mkdir()
    for k in range(parts):
        (logs / f"part{k}.jsonl").write_text("\n".join(all_lines[k::parts]) + "\n")
    return logs


def exporter_for(tmp_path, logs) -> Exporter:
    return Exporter(parse_config({"models": [model(tmp_path, n, logs) for n in FEATURES]}))


def source(exporter: Exporter):
    stats = exporter.state.source("serving")
    return dict(stats.lines), dict(stats.invalid)


def test_a_step_of_several_files_is_one_batch_equal_to_chunk_by_chunk(tmp_path, monkeypatch):
    all_lines = lines(np.random.default_rng(0), time.time())
    logs = write_split(tmp_path, all_lines, 4)
    applied = []
    apply = ingest.ServingIngest.apply

    def counting(self, state, batch, now):
        applied.append(batch.lines)
        apply(self, state, batch, now)

    monkeypatch.setattr(ingest.ServingIngest, "apply", counting)
    together = exporter_for(tmp_path, logs)
    together.ingest_pass()
    assert applied[0] == len(all_lines)  # the four files' chunks in one batch
    applied.clear()
    monkeypatch.setattr(ingest.ServingIngest, "parse_chunks", ingest.TailIngest.parse_chunks)
    apart = exporter_for(tmp_path, logs)
    apart.ingest_pass()
    assert sorted(applied[:4]) == sorted(len(all_lines[k::4]) for k in range(4))
    assert source(together) == source(apart)
    assert source(together)[1]["unknown_model"] > 0  # invalid lines among them
    for name in FEATURES:
        got, want = state_of(together, name), state_of(apart, name)
        skew = got.pop("skew")
        # Value sums are float32 per bucket: added in another order, W1 moves at 1e-7.
        assert skew == pytest.approx(want.pop("skew"), rel=1e-6, abs=1e-12), name
        assert got == want, name


def test_a_parse_that_fails_loses_only_the_chunk_at_fault(tmp_path, monkeypatch, caplog):
    """A bug in the parser on one file's lines: the joined parse fails, the chunks are
    parsed one by one, and only that file's lines are lost (counted ``internal_error``)."""
    all_lines = lines(np.random.default_rng(1), time.time())
    logs = write_split(tmp_path, all_lines, 3)
    bad = logs / "part1.jsonl"
    bad.write_text(bad.read_text() + '{"boom": 1}\n')
    exporter = exporter_for(tmp_path, logs)
    serving = next(i for i in exporter.ingests if i.source == "serving")
    parse = serving.parse

    def buggy(data, oversized=0):
        if b"boom" in data:
            raise RuntimeError("a parser bug")
        return parse(data, oversized)

    serving.parse = buggy
    with caplog.at_level(logging.ERROR):
        exporter.ingest_pass()
    lost = len(all_lines[1::3]) + 1
    counted, invalid = source(exporter)
    assert invalid["internal_error"] == lost
    assert sum(counted.values()) == len(all_lines) + 1
    assert f"parsing {bad} failed" in caplog.text
    # The other two files' records are all there.
    good = tmp_path / "good"
    good.mkdir()
    (good / "a.jsonl").write_text("\n".join(all_lines[0::3] + all_lines[2::3]) + "\n")
    alone = exporter_for(tmp_path, good)
    alone.ingest_pass()
    for name in FEATURES:
        got, want = state_of(exporter, name), state_of(alone, name)
        assert got["requests"] == want["requests"] and got["status"] == want["status"], name


def test_an_invalid_line_is_logged_with_its_own_file_and_offset(tmp_path, caplog):
    now = time.time()

    def ok(k: int, n: int) -> bytes:  # distinct first lines: distinct files to the tailer
        return "".join(
            json.dumps({"timestamp": now - k - i * 1e-3, "model": "d"}) + "\n" for i in range(n)
        ).encode()

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(ok(1, 50))
    broken = b'{"timestamp": 1, "model": "d"'  # cut short
    head = ok(2, 20)
    (logs / "b.jsonl").write_bytes(ok(3, 50))
    (logs / "c.jsonl").write_bytes(head + broken + b"\n" + ok(4, 20))
    exporter = exporter_for(tmp_path, logs)
    with caplog.at_level(logging.WARNING):
        exporter.ingest_pass()
    assert f"file={logs / 'c.jsonl'} offset={len(head)} reason=not_json" in caplog.text


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"timestamp": "yesterday", "model": "d"}', "bad_timestamp"),
        (b'{"timestamp": 1e9, "model": "nobody"}', "unknown_model"),
    ],
)
def test_a_record_dropped_after_decoding_is_logged_as_its_line(tmp_path, caplog, line, reason):
    """Unknown models and bad timestamps are found after decoding (no line in hand): the
    log still shows the line and where it is, past lines the typed decoder rejected before
    it (a malformed feature value: the record is salvaged, not an invalid line)."""
    now = time.time()
    logs = tmp_path / "logs"
    logs.mkdir()

    def good(n: int) -> bytes:
        records = ({"timestamp": now - i, "model": "a", "features": {"x": i}} for i in range(n))
        return b"".join(json.dumps(r).encode() + b"\n" for r in records)

    salvaged = {"timestamp": now, "model": "a", "features": {"x": "not a number"}}
    head = good(30) + (json.dumps(salvaged).encode() + b"\n") * 2 + good(5)
    (logs / "a.jsonl").write_bytes(head + line + b"\n" + head)
    exporter = exporter_for(tmp_path, logs)
    with caplog.at_level(logging.WARNING):
        exporter.ingest_pass()
    assert exporter.state.source("serving").invalid[reason] == 1
    assert f"file={logs / 'a.jsonl'} offset={len(head)} reason=" in caplog.text
    assert f"line starts: {line!r}" in caplog.text
