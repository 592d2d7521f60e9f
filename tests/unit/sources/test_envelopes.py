"""Container-log envelopes (CRI, Docker json-file) as the runtimes write them."""

import datetime as dt
import json
import os

import msgspec
import pytest

from exporter.sources.envelopes import ENVELOPE_TIME, Cri, Docker, JsonLines

# containerd's CRI logger splits a line at 16 KiB (its default max container log line size).
CRI_SPLIT = 16 * 1024


def rfc3339nano(t: float) -> str:
    stamp = dt.datetime.fromtimestamp(t, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond:06d}123Z"


def cri_lines(content: str, t: float, stream: str = "stdout") -> bytes:
    """One line as the kubelet's runtime writes it: P pieces of 16 KiB, then the F piece."""
    data = content.encode()
    pieces = [data[i : i + CRI_SPLIT] for i in range(0, len(data), CRI_SPLIT)] or [b""]
    stamp = rfc3339nano(t).encode()
    out = b""
    for i, piece in enumerate(pieces):
        tag = b"F" if i == len(pieces) - 1 else b"P"
        out += stamp + b" " + stream.encode() + b" " + tag + b" " + piece + b"\n"
    return out


def docker_lines(content: str, t: float, stream: str = "stdout", split: int = 16 * 1024):
    """Docker json-file: a line longer than its buffer is logged in pieces, only the last one
    ending in a newline."""
    text = content + "\n"
    pieces = [text[i : i + split] for i in range(0, len(text), split)]
    stamp = rfc3339nano(t)
    return b"".join(
        json.dumps({"log": p, "stream": stream, "time": stamp}).encode() + b"\n" for p in pieces
    )


def payloads(unwrapped: bytes) -> list:
    return [msgspec.json.decode(line) for line in unwrapped.split(b"\n")[:-1]]


def big_record(i: int, size: int) -> dict:
    return {"model": "fraud", "request_id": f"r{i}", "blob": "x" * size}


@pytest.mark.parametrize("writer,envelope", [(cri_lines, Cri()), (docker_lines, Docker())])
def test_split_lines_are_joined_and_the_envelope_time_fills_in(writer, envelope):
    records = [big_record(0, 40 * 1024), {"model": "fraud", "timestamp": 5.0}, big_record(2, 10)]
    data = b"".join(writer(json.dumps(r), 1_790_000_000 + i) for i, r in enumerate(records))
    if writer is cri_lines:
        assert data.count(b" P ") == 2  # the 40 KiB line really is split in three
    out = envelope.unwrap(data)
    assert out.dropped == 0
    got = payloads(out.data)
    assert len(got) == 3
    for i, (g, r) in enumerate(zip(got, records, strict=True)):
        assert {k: v for k, v in g.items() if k != ENVELOPE_TIME} == r
        assert g[ENVELOPE_TIME] == rfc3339nano(1_790_000_000 + i)


@pytest.mark.parametrize("writer,envelope", [(cri_lines, Cri), (docker_lines, Docker)])
def test_other_streams_and_broken_envelopes_are_counted_apart(writer, envelope):
    data = (
        writer('{"model": "fraud"}', 1.0)
        + writer('{"model": "fraud", "n": 2}', 2.0, stream="stderr")
        + b"this is not an envelope line\n"
        + writer("GET /healthz 200", 3.0)
    )
    out = envelope(streams=("stdout",)).unwrap(data)
    assert out.ignored == {"stream": 1}
    assert out.invalid == {"bad_envelope": 1}
    lines = out.data.split(b"\n")[:-1]
    assert len(lines) == 2 and lines[1] == b"GET /healthz 200"  # the parser counts it apart


def test_cri_fast_and_slow_paths_agree():
    """The vectorised in-place unwrap (every line an F line) and the line-by-line one (a
    partial line sends the chunk there) give the same payloads."""
    lines = [json.dumps({"i": i, "s": "a b"}) for i in range(50)]
    lines += ["GET /healthz 200", "", "{}", '{ "spaced": 1}', "[1, 2]"]
    data = b"".join(cri_lines(x, 1_790_000_000 + i) for i, x in enumerate(lines))
    fast = Cri().unwrap(data).data.split(b"\n")[:-1]
    assert len(fast[0]) == len(data.split(b"\n")[0])  # in place: the header was overwritten
    slow = Cri().unwrap(data + cri_lines("x" * 40_000, 60)).data.split(b"\n")[:-2]
    assert [x.strip() for x in fast] == [x.strip() for x in slow]
    for x in fast[:50] + fast[53:54]:
        assert msgspec.json.decode(x)[ENVELOPE_TIME].startswith("2026-")
    assert [x.strip() for x in fast[50:53]] == [b"GET /healthz 200", b"", b"{}"]


@pytest.mark.parametrize("writer,envelope", [(cri_lines, Cri()), (docker_lines, Docker())])
def test_a_record_ends_only_after_its_last_piece(writer, envelope):
    whole = writer(json.dumps(big_record(0, 40 * 1024)), 1.0)
    first_lines = whole[: whole.index(b"\n") + 1]  # one piece of three
    assert envelope.last_end(first_lines) == 0
    assert envelope.last_end(whole) == len(whole)
    tail = writer('{"model": "fraud"}', 2.0)
    assert envelope.last_end(tail + first_lines) == len(tail)
    # Inside an over-long record, skipping stops after its last piece.
    assert envelope.skip_end(whole + tail) == (len(whole), True)
    # A trailing partial sequence is whole when the file ends (closed after rotation).
    cut = envelope.unwrap(first_lines, final=True).data
    assert cut.count(b"\n") == 1 and ENVELOPE_TIME.encode() in cut
    assert envelope.unwrap(first_lines).data == b""


def test_json_lines_are_their_own_records():
    assert JsonLines().last_end(b'{"a":1}\n{"b"') == 8
    assert JsonLines().unwrap(b"x\n").data == b"x\n"


# --- through the tailer: offsets, rotation and restarts -----------------------------------


def _tailer(tmp_path, envelope, **kw):
    from exporter.sources.tail import FileTailer
    from exporter.state.checkpoint import CheckpointStore

    store = CheckpointStore(str(tmp_path / "ck.json"))
    return FileTailer("t", [str(tmp_path / "0.log")], store, envelope=envelope, **kw)


def _drain(tailer, envelope) -> list:
    """Read, unwrap and commit until nothing is left: the records' ids, in order."""
    got = []
    for _ in range(50):
        chunks = tailer.read(1 << 20)
        for c in chunks:
            got += [p["request_id"] for p in payloads(envelope.unwrap(c.data, c.final).data)]
        tailer.commit(chunks)
        tailer.checkpoints.save()
        if not any(c.data for c in chunks) and not tailer.carry and not tailer.draining:
            break
    return got


def _cut_record(tmp_path, writer):
    """0.log holds record r0 whole and the first piece of a split record r1; returns the
    path and the rest of r1's pieces, to be written after a restart or a rotation."""
    path = tmp_path / "0.log"
    split = writer(json.dumps(big_record(1, 40 * 1024)), 2.0)
    cut = split.index(b"\n") + 1
    path.write_bytes(writer(json.dumps(big_record(0, 10)), 1.0) + split[:cut])
    return path, split[cut:]


@pytest.mark.parametrize("writer,envelope", [(cri_lines, Cri()), (docker_lines, Docker())])
def test_a_split_record_cut_by_a_restart_is_read_once_whole(tmp_path, writer, envelope):
    path, rest = _cut_record(tmp_path, writer)
    assert _drain(_tailer(tmp_path, envelope), envelope) == ["r0"]  # then the process dies
    with open(path, "ab") as fh:
        fh.write(rest + writer(json.dumps(big_record(2, 10)), 3.0))
    assert _drain(_tailer(tmp_path, envelope), envelope) == ["r1", "r2"]


@pytest.mark.parametrize("writer,envelope", [(cri_lines, Cri()), (docker_lines, Docker())])
def test_a_split_record_cut_by_a_rotation_is_joined_across_the_files(tmp_path, writer, envelope):
    path, rest = _cut_record(tmp_path, writer)
    tailer = _tailer(tmp_path, envelope, rotate_wait=0.0)
    got = _drain(tailer, envelope)
    # The kubelet renames the file and the runtime goes on writing the same line in a new one.
    os.rename(path, tmp_path / "0.log.20261126-120000")
    path.write_bytes(rest + writer(json.dumps(big_record(2, 10)), 3.0))
    got += _drain(tailer, envelope)
    assert got == ["r0", "r1", "r2"]


def test_a_split_record_whose_rest_never_comes_is_flushed_once(tmp_path):
    envelope = Cri()
    path, _ = _cut_record(tmp_path, cri_lines)
    tailer = _tailer(tmp_path, envelope, rotate_wait=0.0)
    lines = []
    for _ in range(5):
        chunks = tailer.read(1 << 20)
        lines += [c.data for c in chunks if c.data]
        tailer.commit(chunks)
        if _ == 0:
            os.rename(path, tmp_path / "0.log.1")  # and no new file ever appears
    records = b"".join(envelope.unwrap(x, True).data for x in lines).split(b"\n")[:-1]
    assert len(records) == 2 and records[1].startswith(b'{"' + ENVELOPE_TIME.encode())


def test_an_over_long_split_record_is_counted_once_and_skipped(tmp_path):
    envelope = Cri()
    path = tmp_path / "0.log"
    path.write_bytes(
        cri_lines(json.dumps(big_record(0, 10)), 1.0)
        + cri_lines(json.dumps(big_record(1, 200 * 1024)), 2.0)
        + cri_lines(json.dumps(big_record(2, 10)), 3.0)
    )
    tailer = _tailer(tmp_path, envelope, max_line_bytes=64 * 1024)
    got, oversized = [], 0
    for _ in range(20):
        chunks = tailer.read(1 << 20)
        oversized += sum(c.oversized_lines for c in chunks)
        for c in chunks:
            got += [p["request_id"] for p in payloads(envelope.unwrap(c.data, c.final).data)]
        tailer.commit(chunks)
    assert got == ["r0", "r2"] and oversized == 1
