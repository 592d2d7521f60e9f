"""Small shared helpers for tests: serving lines, ports, polling."""

from __future__ import annotations

import json
import socket
import time


def serving_line(i: int, model: str = "fraud", version: str = "v1", **extra) -> str:
    record = {
        "timestamp": 1_790_000_000 + i * 0.01,
        "model": model,
        "model_version": version,
        "request_id": f"r-{i}",
        "latency_ms": 10.0,
        "status": "ok",
    }
    record.update(extra)
    return json.dumps(record) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1, what="condition"):
    """Poll ``predicate`` until truthy; ``what`` (text, or a callable giving it at the
    timeout) says what was awaited and how far it got."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    what = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def sample(exporter, name: str, **labels) -> float | None:
    """One sample from an in-process Exporter's registry (a scrape of its own)."""
    return exporter.registry.get_sample_value(name, labels)


def scraped(text: str, name: str, **labels) -> list[float]:
    """The values of the samples ``name`` whose labels include ``labels``, in an exposition
    (an exporter process's /metrics)."""
    from prometheus_client.parser import text_string_to_metric_families

    return [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]


def settle(exporter, timeout: float = 30.0) -> None:
    """Ingest until every source is caught up and the dataset profiler has nothing left."""
    from exporter.ingest import DatasetIngest

    for ingest in exporter.ingests:
        if isinstance(ingest, DatasetIngest):
            ingest.listed = 0.0  # list the directories now, not after the throttle

    def done():
        exporter.ingest_pass()
        busy = [i for i in exporter.ingests if isinstance(i, DatasetIngest) and not i.idle]
        return not busy and exporter.caught_up

    wait_for(done, timeout=timeout, interval=0.02, what="ingestion to settle")
