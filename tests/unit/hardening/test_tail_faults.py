"""Faults in followed files: each is that file's alone, and no line is lost or doubled."""

import gzip
import os
import resource
from collections import Counter

from exporter.sources.tail import FileTailer
from exporter.state.checkpoint import CheckpointStore
from tests.unit.sources.test_tail import drain, ids, line


def test_truncated_below_checkpoint_with_the_same_first_line_is_reread(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"".join(line(i) for i in range(50)))
    t = FileTailer("t", [str(path)], CheckpointStore(str(tmp_path / "ck.json")))
    assert len(drain(t)) == 50
    # Truncated in place (same inode, same first line), then 100 new lines appended:
    # 49 old lines gone, first line identical, size ends below the old offset only briefly.
    with open(path, "r+b") as fh:
        fh.truncate(0)
        fh.write(line(0))
    got = drain(t)  # the exporter looks while the file is small
    with open(path, "ab") as fh:
        fh.write(b"".join(line(i) for i in range(1000, 1100)))
    got += drain(t)
    assert ids(got) == Counter({0: 1, **{i: 1 for i in range(1000, 1100)}})


def test_truncated_while_the_exporter_was_down_is_reread_after_restart(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"".join(line(i) for i in range(50)))
    store = str(tmp_path / "ck.json")
    assert len(drain(FileTailer("t", [str(path)], CheckpointStore(store)))) == 50
    path.write_bytes(line(0) + line(7000))  # same first line, shorter than the offset
    got = drain(FileTailer("t", [str(path)], CheckpointStore(store)))
    assert ids(got) == Counter({0: 1, 7000: 1})


def test_a_read_error_on_one_file_does_not_stop_the_others(tmp_path, monkeypatch, caplog):
    (tmp_path / "good.log").write_bytes(b"".join(line(i) for i in range(100)))
    (tmp_path / "bad.log").write_bytes(b"".join(line(i) for i in range(200, 210)))
    # A real device error first: an over-broad glob reaching /proc/self/mem (EIO).
    t = FileTailer("t", [str(tmp_path / "*.log"), "/proc/self/mem"], CheckpointStore(None))
    real_pread = os.pread
    bad_fd = []

    def pread(fd, n, offset):
        if fd in bad_fd:
            raise OSError(5, "Input/output error")
        return real_pread(fd, n, offset)

    t.discover()
    bad_fd.append(t.files[str(tmp_path / "bad.log")].fd)
    monkeypatch.setattr(os, "pread", pread)
    got = drain(t)
    assert ids(got) == Counter(range(100))
    assert t.file_errors["io_error"] >= 2  # /proc/self/mem and bad.log
    assert sum("cannot read" in r.message for r in caplog.records) == 2  # once per file
    # The disk recovers: after the back-off the file is read, nothing lost.
    bad_fd.clear()
    for failure in t.failures.values():
        failure.retry_at = 0
    assert ids(drain(t)) == Counter(range(200, 210))


def test_compressed_rotations_are_skipped_and_counted(tmp_path):
    (tmp_path / "app.log").write_bytes(line(1))
    with gzip.open(tmp_path / "app.log.1.gz", "wb") as fh:
        fh.write(line(2) * 100)
    t = FileTailer("t", [str(tmp_path / "app.log*")], CheckpointStore(None))
    assert ids(drain(t)) == Counter({1: 1})
    assert t.skipped_total == Counter({"compressed": 1})
    drain(t)
    assert t.skipped_total == Counter({"compressed": 1})  # counted once, not per pass


def test_exclude_globs(tmp_path):
    (tmp_path / "app.log").write_bytes(line(1))
    (tmp_path / "app.log.old").write_bytes(line(2))
    t = FileTailer("t", [str(tmp_path / "app.log*")], CheckpointStore(None), exclude=["*.old"])
    assert ids(drain(t)) == Counter({1: 1})


def test_more_files_than_descriptors_are_all_read(tmp_path):
    n = 300
    for i in range(n):
        (tmp_path / f"f{i:04}.log").write_bytes(line(i))
    t = FileTailer("t", [str(tmp_path / "*.log")], CheckpointStore(None), max_open_files=50)
    got: list[bytes] = []
    for _ in range(20):
        got += drain(t)
        assert sum(1 for f in t.files.values() if not f.parked) <= 50
    assert ids(got) == Counter(range(n))
    # A parked file that grows is reopened and read from where it stopped.
    with open(tmp_path / "f0000.log", "ab") as fh:
        fh.write(line(5000))
    got = []
    for _ in range(3):
        got += drain(t)
    assert ids(got) == Counter({5000: 1})


def test_the_soft_fd_limit_is_what_bounds_open_files(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    used = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 100, hard))
    try:
        for i in range(400):
            (tmp_path / f"f{i:04}.log").write_bytes(line(i))
        t = FileTailer("t", [str(tmp_path / "*.log")], CheckpointStore(str(tmp_path / "ck")))
        got: list[bytes] = []
        for _ in range(10):
            got += drain(t)
        assert ids(got) == Counter(range(400))
        assert t.file_errors["too_many_open_files"] == 0
        t.close()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_an_over_long_line_does_not_starve_the_other_files(tmp_path):
    (tmp_path / "a.log").write_bytes(b"y" * (40 << 20))  # 40 MiB, no newline yet
    (tmp_path / "b.log").write_bytes(line(1))
    t = FileTailer("t", [str(tmp_path / "*.log")], CheckpointStore(None), max_line_bytes=1 << 20)
    chunks = t.read(8 << 20)
    t.commit(chunks)
    assert ids([x for c in chunks for x in c.data.splitlines(keepends=True)]) == Counter({1: 1})
    assert sum(c.skipped for c in chunks) > 0  # progress on the long line, reported


def test_idle_files_cost_no_checkpoint_writes(tmp_path):
    for i in range(50):
        (tmp_path / f"f{i}.log").write_bytes(line(i))
    store = CheckpointStore(str(tmp_path / "ck.json"))
    t = FileTailer("t", [str(tmp_path / "*.log")], store)
    drain(t)
    writes = store.writes
    mtime = os.stat(tmp_path / "ck.json").st_mtime_ns
    for _ in range(20):
        drain(t)
    assert store.writes == writes
    assert os.stat(tmp_path / "ck.json").st_mtime_ns == mtime
    with open(tmp_path / "f3.log", "ab") as fh:
        fh.write(line(99))
    drain(t)
    assert store.writes == writes + 1
