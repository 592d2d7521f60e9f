"""Reloads: a bad one keeps the running config, a harmless one keeps the counts, none
loses or doubles a line."""

import json
import os
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import yaml

from exporter.app import Exporter
from exporter.config import ConfigError, load_config
from tests.helpers import sample, serving_line, settle, wait_for
from tests.unit.test_datasets import table


def write_config(path, logs, pattern="*.jsonl*", **model):
    cfg = {"models": [{"name": "fraud", "serving_logs": [str(logs / pattern)], **model}]}
    path.write_text(yaml.safe_dump(cfg))


def replace_text(path, text: str) -> None:
    """Write ``text`` as config tools (and Kubernetes' ConfigMap volumes) do: whole, by a
    rename. A truncate-then-write can be read half-done: ``models: []`` is a valid config."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def requests(e, version="v1"):
    return sum(
        sample(e, "mlpipe_serving_requests_total", model="fraud", version=version, outcome=o) or 0
        for o in ("success", "error")
    )


def test_conflicting_field_paths_fail_check_config_and_a_reload_keeps_the_old(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg_path = tmp_path / "config.yaml"
    write_config(cfg_path, logs)
    e = Exporter(load_config(str(cfg_path)), config_path=str(cfg_path))
    (logs / "a.jsonl").write_text("".join(serving_line(i) for i in range(10)))
    e.ingest_pass()
    bad = yaml.safe_load(cfg_path.read_text())
    bad["serving_log"] = {"fields": {"model": "meta", "version": "meta.v"}}
    cfg_path.write_text(yaml.safe_dump(bad))
    try:
        load_config(str(cfg_path))
    except ConfigError as exc:
        assert any(
            "model ('meta') cannot hold a value and also contain version" in x for x in exc.errors
        )
    else:
        raise AssertionError("check-config accepted conflicting field paths")
    assert e.reload() is False
    assert sample(e, "mlpipe_config_last_reload_successful") == 0
    with open(logs / "a.jsonl", "a") as fh:
        fh.write("".join(serving_line(i) for i in range(10, 15)))
    e.ingest_pass()
    assert requests(e) == 15  # still ingesting under the old config


def test_a_feature_of_two_kinds_across_models_fails_check_config(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = {
        "models": [
            {"name": "a", "serving_logs": [str(logs / "*")], "features": {"numeric": ["x"]}},
            {"name": "b", "serving_logs": [str(logs / "*")], "features": {"categorical": ["x"]}},
        ]
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    try:
        load_config(str(tmp_path / "c.yaml"))
    except ConfigError as exc:
        assert any("'x' is numeric in model a" in x for x in exc.errors), exc.errors
    else:
        raise AssertionError("accepted")


def test_a_threshold_only_reload_keeps_counters_and_windows(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg_path = tmp_path / "config.yaml"
    write_config(cfg_path, logs, thresholds={"psi": 0.2}, min_samples=100)
    e = Exporter(load_config(str(cfg_path)), config_path=str(cfg_path))
    (logs / "a.jsonl").write_text("".join(serving_line(i) for i in range(40)))
    e.ingest_pass()
    before = e.state.models["fraud"]
    write_config(
        cfg_path,
        logs,
        thresholds={"psi": 0.3},
        min_samples=50,
        quality_thresholds={"accuracy": 0.8},
        canary={"stable_version": "v1"},
    )
    assert e.reload() is True
    assert e.state.models["fraud"] is before
    assert requests(e) == 40
    assert sample(e, "mlpipe_drift_threshold", model="fraud", method="psi") == 0.3
    assert e.state.models["fraud"].model.min_samples == 50


def test_reloads_do_not_count_dataset_files_again(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "train").mkdir()
    pq.write_table(table(rng, 5000), tmp_path / "train" / "t.parquet")
    daily = tmp_path / "daily" / "date=2026-11-01"
    daily.mkdir(parents=True)
    pq.write_table(table(rng, 3000), daily / "p.parquet")
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = {
        "models": [
            {
                "name": "fraud",
                "serving_logs": [str(logs / "*")],
                "reference": {"path": str(tmp_path / "train"), "label": "y"},
            }
        ],
        "datasets": [{"name": "daily", "path": str(tmp_path / "daily"), "reference": "fraud"}],
    }
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    e = Exporter(
        load_config(str(cfg_path)), config_path=str(cfg_path), state_dir=str(tmp_path / "s")
    )
    settle(e)

    def values():
        return sample(
            e, "mlpipe_dataset_values_total", dataset="daily", feature="x", status="valid"
        )

    first = values()
    assert first == 3000
    for _ in range(3):
        assert e.reload() is True
        settle(e)
    assert values() == first


def test_a_sighup_storm_during_rename_rotation_loses_and_doubles_nothing(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg_path = tmp_path / "config.yaml"
    # Only the live name: rotated files are drained through the descriptor the tailer holds.
    write_config(cfg_path, logs, pattern="app.jsonl")
    good = cfg_path.read_text()
    bad = good.replace("models:", "models: []\nmodels_typo:")
    e = Exporter(
        load_config(str(cfg_path)),
        config_path=str(cfg_path),
        state_dir=str(tmp_path / "state"),
        interval=0.02,
    )
    e.start()
    stop = threading.Event()
    written = [0]

    def writer():
        # Rotations slower than ingestion (with a live-name-only glob, a file created and
        # rotated away between two looks is never seen: that is the glob's limit, not a
        # reload's), lines always in flight when a reload comes.
        live = logs / "app.jsonl"
        rotations = 0
        rotated_at = time.monotonic()
        while not stop.is_set():
            with open(live, "a") as fh:
                for _ in range(20):
                    fh.write(serving_line(written[0], request_id=f"w{written[0]}"))
                    written[0] += 1
            if time.monotonic() - rotated_at > 1.5:
                rotations += 1
                os.rename(live, logs / f"app.jsonl.{rotations}")
                rotated_at = time.monotonic()
            time.sleep(0.002)

    t = threading.Thread(target=writer)
    t.start()
    deadline = time.monotonic() + 6
    i = 0
    while time.monotonic() < deadline:
        replace_text(cfg_path, good if i % 2 else bad)
        e.request_reload()
        i += 1
        time.sleep(0.05)
    stop.set()
    t.join()
    replace_text(cfg_path, good)
    e.request_reload()
    # Rotated files drain (closed 5 s after their last growth), then nothing is left.
    wait_for(
        lambda: requests(e) == written[0],
        timeout=60,
        what=lambda: f"every line counted ({requests(e)} of {written[0]})",
    )
    time.sleep(1)
    e.stop()
    assert written[0] > 3000
    assert requests(e) == written[0]
    assert sample(e, "mlpipe_source_lines_total", source="serving", result="invalid") == 0
    json.loads((tmp_path / "state" / "checkpoints" / "serving.json").read_text())


def test_check_config_reads_reference_schemas_for_feature_kinds(tmp_path):
    import subprocess
    import sys

    import pyarrow as pa

    for name, column in (("a", pa.array([1.0, 2.0])), ("b", pa.array(["x", "y"]))):
        (tmp_path / name).mkdir()
        pq.write_table(pa.table({"x": column}), tmp_path / name / "t.parquet")
    (tmp_path / "logs").mkdir()
    cfg = {
        "models": [
            {
                "name": name,
                "serving_logs": [str(tmp_path / "logs" / "*")],
                "reference": {"path": str(tmp_path / name)},
            }
            for name in ("a", "b")
        ]
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "check-config", f"--config.file={path}"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert "models[1]: feature 'x' is categorical here but numeric in model a" in out.stderr
