"""Config leniency closed: duplicate keys, alias bombs, huge files, loose durations, and
every problem in one run."""

import time

import pytest

from exporter.config import MAX_CONFIG_BYTES, ConfigError, load_config
from exporter.durations import parse_duration


def errors(tmp_path, text: str | bytes) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as exc:
        load_config(str(path))
    return exc.value.errors


def test_duplicate_keys_are_rejected_with_both_lines(tmp_path):
    text = f"models:\n  - name: a\n    serving_logs: ['{tmp_path}/*']\nmodels: []\n"
    (err,) = errors(tmp_path, text)
    assert "duplicate key 'models'" in err and "first at line 1" in err and "line 4" in err


def test_a_yaml_alias_bomb_is_rejected_fast(tmp_path):
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
    for name, prev in zip("bcdefghij", "abcdefghi", strict=True):
        bomb += f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]\n"
    start = time.monotonic()
    (err,) = errors(tmp_path, bomb)
    assert time.monotonic() - start < 2
    assert "aliases" in err or "too many values" in err


def test_a_config_larger_than_the_cap_is_not_read(tmp_path):
    (err,) = errors(tmp_path, b"# " + b"x" * MAX_CONFIG_BYTES + b"\n")
    assert "larger than" in err


@pytest.mark.parametrize("text", ["1.5h", "30m1m", "1h1h", "5", "s", "-1s", "0s", "1m30"])
def test_durations_are_prometheus_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("90s", 90), ("1h30m", 5400), ("1d12h", 129600), ("1y2w", 32745600)],
)
def test_valid_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_every_problem_in_one_run(tmp_path):
    text = f"""
models:
  - name: a
    serving_logs: ['{tmp_path}/missing-dir/*.jsonl']
    colour: blue
  - name: b
    serving_logs: ['{tmp_path}/*']
    windows: {{length: 1.5h}}
  - name: c
    serving_logs: ['{tmp_path}/*']
    features: {{numeric: [amount]}}
  - name: d
    serving_logs: ['{tmp_path}/*']
    features: {{categorical: [amount]}}
serving_log:
  fields: {{model: meta, version: meta.v}}
quotas:
  - {{name: q, resource: gpu_seconds, limit: -1, pipelines: [nope]}}
"""
    got = "\n".join(errors(tmp_path, text))
    for expected in (
        "models[0].colour: unknown key",
        "models[0].serving_logs[0]: directory",
        "models[1].windows.length: invalid duration '1.5h'",
        "models[3].features.categorical: 'amount' is numeric in model c",
        "serving_log.fields: model ('meta') cannot hold a value and also contain version",
        "quotas[0].pipelines[0]: no pipeline named 'nope'",
        "quotas[0].limit: must be positive",
    ):
        assert expected in got, (expected, got)
