"""Faults: kill -9 at random points while ingesting; a state dir that cannot be written."""

import json
import os
import random
import signal
import threading
import time

import requests

from tests.helpers import wait_for


def parsed(exp) -> float:
    try:
        text = requests.get(f"{exp.url}/metrics", timeout=2).text
    except requests.RequestException:
        return -1.0
    for line in text.splitlines():
        if line.startswith('mlpipe_source_lines_total{result="parsed",source="serving"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def checkpoint_offset(state) -> int:
    path = state / "checkpoints" / "serving.json"
    if not path.exists():
        return 0
    entries = json.loads(path.read_text())
    return max((e["offset"] for e in entries.values()), default=0)


def test_kill_9_at_random_points_loses_nothing_and_counts_nothing_twice(tmp_path, start_exporter):
    rng = random.Random(1234)
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "serving.jsonl"
    log.write_text("")
    stop = threading.Event()
    written = []

    def writer():
        # About 100k lines/s, in blocks of whole lines, while the exporter is killed.
        i = 0
        with open(log, "a") as fh:
            while not stop.is_set():
                fh.write(
                    "".join(
                        f'{{"timestamp":{1790000000 + k},"model":"fraud","model_version":"v1",'
                        f'"request_id":"r{k}","latency_ms":5.0}}\n'
                        for k in range(i, i + 2000)
                    )
                )
                fh.flush()
                i += 2000
                time.sleep(0.02)
        written.append(i)

    thread = threading.Thread(target=writer)
    thread.start()
    config = {"models": [{"name": "fraud", "serving_logs": [str(logs / "*.jsonl")]}]}
    state = tmp_path / "state"
    segments = []
    try:
        for _ in range(6):
            start = checkpoint_offset(state)
            exp = start_exporter(config, "--ingest.interval=50ms")
            time.sleep(rng.uniform(0.05, 1.0))
            seen = parsed(exp)  # what Prometheus could have scraped just before the kill
            exp.proc.send_signal(signal.SIGKILL)
            exp.proc.wait()
            end = checkpoint_offset(state)
            assert end >= start
            data = log.read_bytes()
            lines = data[start:end].count(b"\n")
            # Nothing a scrape saw lies beyond the checkpoint: a restart cannot count it again.
            assert seen <= lines, (seen, lines)
            segments.append(lines)
    finally:
        stop.set()
        thread.join()
    total = written[0]
    start = checkpoint_offset(state)  # before the final process moves it
    rest = log.read_bytes()[start:].count(b"\n")
    final = start_exporter(config, "--ingest.interval=50ms")
    wait_for(
        lambda: parsed(final) == rest,
        timeout=60,
        what=f"catch-up to {rest} lines, total {total}, segments {segments}",
    )
    segments.append(rest)
    assert sum(segments) == total, (segments, total)  # each line in exactly one segment
    assert sum(1 for s in segments[:-1] if s > 0) >= 3, segments  # kills hit mid-stream


def test_unwritable_state_dir_is_reported_and_recovers(tmp_path, start_exporter):
    logs = tmp_path / "logs"
    logs.mkdir()
    config = {"models": [{"name": "fraud", "serving_logs": [str(logs / "*.jsonl")]}]}
    exp = start_exporter(config, "--ingest.interval=100ms")
    ck = tmp_path / "state" / "checkpoints"
    wait_for(lambda: ck.exists() or True)

    def write(i):
        with open(logs / "a.jsonl", "a") as fh:
            fh.write(json.dumps({"timestamp": 1.0, "model": "fraud", "request_id": str(i)}) + "\n")

    write(0)
    wait_for(lambda: parsed(exp) == 1)
    # The checkpoints directory becomes a file: every write fails; ingestion goes on.
    for f in ck.iterdir():
        f.unlink()
    ck.rmdir()
    ck.write_text("not a directory")
    write(1)
    wait_for(lambda: parsed(exp) == 2)
    text = requests.get(f"{exp.url}/metrics", timeout=2).text
    assert 'mlpipe_checkpoint_last_write_success{source="serving"} 0.0' in text
    assert "cannot write checkpoint" in exp.logs()
    ck.unlink()  # space is back
    write(2)
    wait_for(
        lambda: (
            'mlpipe_checkpoint_last_write_success{source="serving"} 1.0'
            in requests.get(f"{exp.url}/metrics", timeout=2).text
        )
    )
    assert parsed(exp) == 3
    assert os.path.exists(ck / "serving.json")
