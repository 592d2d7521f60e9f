import os
import shutil
import threading
import time
from collections import Counter

import pytest

from exporter.sources.tail import FileTailer
from exporter.state.checkpoint import CheckpointStore
from tests.helpers import wait_for


def line(i: int) -> bytes:
    return b'{"id": %d, "pad": "%s"}\n' % (i, b"x" * (i % 50))


def drain(tailer: FileTailer, budget: int = 1 << 20, store: bool = True) -> list[bytes]:
    """Read and commit until nothing is left; the complete lines read, in order."""
    out: list[bytes] = []
    while True:
        chunks = tailer.read(budget)
        for c in chunks:
            out.extend(
                c.data.splitlines(keepends=True)
                if b"\x85" not in c.data
                else [x + b"\n" for x in c.data.split(b"\n")[:-1]]
            )
        tailer.commit(chunks)
        if store:
            tailer.checkpoints.save()
        if not any(c.data for c in chunks):
            return out


def ids(lines: list[bytes]) -> Counter:
    return Counter(int(x.split(b",")[0].split(b":")[1]) for x in lines)


def make(tmp_path, pattern="app.log*", **kw) -> FileTailer:
    store = CheckpointStore(str(tmp_path / "ck.json"))
    return FileTailer("t", [str(tmp_path / pattern)], store, **kw)


def test_partial_last_line_waits_for_its_newline(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(line(0) + b'{"id": 1, "pa')
    t = make(tmp_path)
    assert ids(drain(t)) == Counter({0: 1})
    with open(path, "ab") as fh:
        fh.write(b'd": ""}\n')
    assert ids(drain(t)) == Counter({1: 1})


@pytest.mark.parametrize(
    ("pattern", "pause"),
    [
        # The glob also matches rotated names: even rotations faster than polling lose nothing.
        ("app.log*", 0.0),
        # Only the live name: rotated files are drained through the open descriptor, which
        # needs the reader to have opened each file once (rotations are far apart in life).
        ("app.log", 0.05),
    ],
)
def test_rename_rotation_under_concurrent_writes_loses_nothing(tmp_path, pattern, pause):
    path = tmp_path / "app.log"
    path.write_bytes(b"")
    t = make(tmp_path, pattern=pattern, rotate_wait=0.2)
    total = 6000
    got: list[bytes] = []
    done = threading.Event()

    def writer():
        fh = open(path, "ab", buffering=0)
        for i in range(total):
            fh.write(line(i))
            if i % 1000 == 999:  # rotate: rename, then reopen a fresh file
                time.sleep(pause)
                os.rename(path, f"{path}.{i}")
                fh.close()
                fh = open(path, "ab", buffering=0)
                fh.write(line(total + i))  # a first line, so the new file has an identity
        fh.close()
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        got += drain(t, budget=4096, store=False)
    thread.join()
    expected = Counter(range(total)) + Counter(total + i for i in range(999, total, 1000))

    def drained() -> bool:
        # Rotated files are closed rotate_wait after their last growth: wait for that
        # state (not a sleep longer than rotate_wait), then a line read twice would show.
        got.extend(drain(t))
        return not t.draining and sum(ids(got).values()) >= sum(expected.values())

    wait_for(drained, timeout=10, what=lambda: f"{len(got)} lines, {len(t.draining)} draining")
    got += drain(t)
    assert ids(got) == expected


def test_copytruncate_with_copy_matched_loses_and_doubles_nothing(tmp_path):
    path = tmp_path / "app.log"
    t = make(tmp_path, pattern="app.log*")
    with open(path, "ab") as fh:
        fh.write(b"".join(line(i) for i in range(100)))
    got: list[bytes] = []
    chunks = t.read(2000)  # read only part of the file before the rotation
    for c in chunks:
        got += c.data.splitlines(keepends=True)
    t.commit(chunks)
    # logrotate copytruncate: copy, then truncate in place; the writer keeps appending.
    shutil.copyfile(path, f"{path}.1")
    with open(path, "r+b") as fh:
        fh.truncate(0)
    with open(path, "ab") as fh:
        fh.write(b"".join(line(i) for i in range(100, 150)))
    got += drain(t)
    assert ids(got) == Counter(range(150))


def test_copytruncate_growing_past_old_offset_is_detected(tmp_path):
    path = tmp_path / "app.log"
    t = make(tmp_path, pattern="app.log")
    path.write_bytes(b"".join(line(i) for i in range(10)))
    got = drain(t)
    with open(path, "r+b") as fh:
        fh.truncate(0)
    # More bytes than before: only the changed first line reveals the truncation.
    path.write_bytes(b"".join(line(i) for i in range(10, 40)))
    got += drain(t)
    assert ids(got) == Counter(range(40))


def test_restart_from_checkpoint_counts_nothing_twice(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"".join(line(i) for i in range(500)))
    first = make(tmp_path)
    got: list[bytes] = []
    chunks = first.read(5000)  # part of the file, applied and checkpointed
    for c in chunks:
        got += c.data.splitlines(keepends=True)
    first.commit(chunks)
    first.checkpoints.save()
    first.read(5000)  # read but never applied: the process "dies" here
    with open(path, "ab") as fh:
        fh.write(b"".join(line(i) for i in range(500, 700)))
    second = make(tmp_path)  # a new process, same state dir
    got += drain(second)
    assert ids(got) == Counter(range(700))


def test_rotated_file_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(line(0) + line(1)[:-1])
    t = make(tmp_path, pattern="app.log", rotate_wait=0.0)
    got = drain(t)
    os.rename(path, f"{path}.1")
    path.write_bytes(line(2))
    got += drain(t)
    assert ids(got) == Counter({0: 1, 1: 1, 2: 1})


def test_over_long_line_is_reported_and_skipped(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(line(0) + b"y" * 5000 + b"\n" + line(1))
    t = make(tmp_path, max_line_bytes=1000)
    oversized = 0
    got: list[bytes] = []
    for _ in range(20):
        chunks = t.read(1 << 20)
        oversized += sum(c.oversized_lines for c in chunks)
        for c in chunks:
            got += c.data.splitlines(keepends=True)
        t.commit(chunks)
    assert oversized == 1
    assert ids(got) == Counter({0: 1, 1: 1})


def test_new_files_matching_glob_are_picked_up(tmp_path):
    t = make(tmp_path, pattern="*.jsonl")
    assert drain(t) == []
    (tmp_path / "a.jsonl").write_bytes(line(1))
    (tmp_path / "b.jsonl").write_bytes(line(2))
    assert ids(drain(t)) == Counter({1: 1, 2: 1})
    assert t.lag_bytes == 0


def test_unwritable_checkpoint_keeps_going_in_memory(tmp_path):
    store = CheckpointStore(str(tmp_path / "missing-dir" / "sub" / "ck.json"))
    os.makedirs(tmp_path / "missing-dir")
    (tmp_path / "missing-dir" / "sub").write_text("a file, not a directory")
    (tmp_path / "app.log").write_bytes(line(0))
    t = FileTailer("t", [str(tmp_path / "app.log")], store)
    chunks = t.read()
    t.commit(chunks)
    assert store.save() is False and store.write_failures == 1
    assert ids(drain(t, store=False)) == Counter()  # offset still advanced in memory


def test_log_directory_deleted_and_recreated(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_bytes(line(1))
    t = FileTailer("t", [str(logs / "*.log")], CheckpointStore(None), rotate_wait=0.0)
    got = drain(t)
    shutil.rmtree(logs)
    got += drain(t)  # nothing there: no error
    logs.mkdir()
    (logs / "b.log").write_bytes(line(2) + line(3))
    got += drain(t)
    assert ids(got) == Counter({1: 1, 2: 1, 3: 1})


def test_file_replaced_by_a_symlink_is_followed_once(tmp_path):
    (tmp_path / "app.log").write_bytes(line(1))
    other = tmp_path / "archive" / "other.log"
    other.parent.mkdir()
    other.write_bytes(line(2) + line(3))
    t = make(tmp_path, pattern="app.log", rotate_wait=0.0)
    got = drain(t)
    os.remove(tmp_path / "app.log")
    os.symlink(other, tmp_path / "app.log")  # the name now points at another file
    got += drain(t)
    got += drain(t)
    assert ids(got) == Counter({1: 1, 2: 1, 3: 1})
    # The same target reached by two names is one identity: read once.
    os.symlink(other, tmp_path / "app.log.alias")
    t2 = make(tmp_path, pattern="app.log*", rotate_wait=0.0)
    assert ids(drain(t2)) == Counter()  # both names: the checkpoint already covers it
