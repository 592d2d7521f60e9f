"""Our text encoder writes exactly what prometheus_client's generate_latest writes, for a
whole exporter (every collector, the process collectors), escaping included, rendering
after rendering (the prefix cache must never serve a stale value)."""

import dataclasses
import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_client import generate_latest

from exporter.config import Distribution
from exporter.exposition import TextEncoder
from tests.helpers import settle
from tests.unit.test_drift_end_to_end import make_exporter


def strip(text: bytes) -> list[str]:
    """All but the lines that move between two collections (process CPU, timings)."""
    moving = ("process_", "mlpipe_scrape_collector_duration")
    return [ln for ln in text.decode().splitlines() if not ln.startswith(moving)]


def test_the_encoder_writes_what_generate_latest_writes(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "train").mkdir()
    odd = ['a"quoted"', "back\\slash", "new\nline", "ünïcode", "plain"]
    pq.write_table(
        pa.table(
            {
                "amount": rng.normal(0, 1, 3000),
                "country": rng.choice(odd, 3000),
                "label": rng.integers(0, 2, 3000),
                "prediction": rng.random(3000),
            }
        ),
        tmp_path / "train" / "t.parquet",
    )
    exporter, logs = make_exporter(tmp_path, tmp_path / "train")
    settle(exporter)
    encoder = TextEncoder(max_entries=50)  # small: the cache starts over during the test
    for round_ in range(3):
        now = time.time()
        with open(logs / "a.jsonl", "a") as fh:
            for i in range(400):
                features = {"amount": float(rng.normal()), "country": odd[i % 5]}
                record = {"timestamp": now, "model": "fraud", "model_version": f"v{i % 2}",
                          "features": features, "prediction": float(rng.random())}  # fmt: skip
                fh.write(json.dumps(record) + "\n")
        exporter.ingest_pass()
        exporter.compute_stats()
        ours = encoder.encode(exporter.registry)
        theirs = generate_latest(exporter.registry)
        # Process metrics move between two collections: compare everything else exactly.
        assert strip(ours) == strip(theirs), round_
        assert 'category="a\\"quoted\\""' in ours.decode()
        assert 'category="new\\nline"' in ours.decode()
    # The reference's families are kept as text while nothing changes; a new distribution
    # setting (as after a reload) must show at once.
    ms = exporter.state.models["fraud"]
    before = encoder.encode(exporter.registry).decode()
    ms.model = dataclasses.replace(ms.model, distribution=Distribution(top_k=2))
    after = encoder.encode(exporter.registry)
    assert strip(after) == strip(generate_latest(exporter.registry))
    ratio = 'mlpipe_reference_category_ratio{category="'
    assert before.count(ratio) == 7 and after.decode().count(ratio) == 4
