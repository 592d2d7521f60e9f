"""The garbage collector does not stall scrapes (exporter/gcpolicy.py): the rendering
starts no collection (its samples would outlive the young generations and make the full
collections that held the GIL 100-140 ms in the soak), and the config's long-lived objects
are frozen after the first rendering and again after a reload."""

import gc

import yaml

from exporter.app import Exporter
from exporter.config import load_config
from tests.helpers import serving_line, wait_for

# The method itself: tests/conftest.py wraps it in a check that allocates afterwards.
RENDER = Exporter.render


def exporter_with_traffic(tmp_path, models=20):
    logs = tmp_path / "logs"
    logs.mkdir()
    names = [f"m{i}" for i in range(models)]
    cfg = {"models": [{"name": n, "serving_logs": [str(logs / "*.jsonl")]} for n in names]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with open(logs / "a.jsonl", "w") as fh:
        for i in range(2000):
            fh.write(serving_line(i, model=names[i % models], version=f"v{i % 3}"))
    return Exporter(
        load_config(str(path)), str(path), state_dir=str(tmp_path / "state"), interval=0.05
    )


def test_a_rendering_starts_no_collection(tmp_path):
    e = exporter_with_traffic(tmp_path)
    e.ingest_pass()
    e.compute_stats()
    encode, encoded, started = e.encoder.encode, [], []

    def encoding(registry):
        text = encode(registry)
        encoded.append(True)
        return text

    def seen(phase, info):
        if phase == "start" and not encoded:
            started.append(info["generation"])

    e.encoder.encode = encoding
    gc.callbacks.append(seen)
    try:
        rendering = RENDER(e)
    finally:
        gc.callbacks.remove(seen)
    # Enough samples that the default thresholds (700 allocations) collect many times while
    # they are alive; the collection due once they are freed may run after.
    assert rendering.text.count(b"\n") > 1500
    assert started == []
    assert gc.isenabled()


def test_long_lived_objects_are_frozen_after_the_first_rendering_and_a_reload(tmp_path):
    e = exporter_with_traffic(tmp_path, models=2)
    gc.unfreeze()
    try:
        e.start()
        wait_for(lambda: e.rendering is not None and not e._unsettled, timeout=30, what="settle")
        first = gc.get_freeze_count()
        assert first > 0
        gc.unfreeze()
        e.request_reload()
        wait_for(lambda: gc.get_freeze_count() > 0, timeout=30, what="settled after reload")
        assert e.reload_ok
    finally:
        e.stop()
        gc.unfreeze()
