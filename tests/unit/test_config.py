import os
import subprocess
import sys

import pytest
import yaml

from exporter.config import ConfigError, load_config, parse_config


def _model(tmp_path, **over):
    model = {"name": "fraud", "serving_logs": [str(tmp_path / "*.jsonl")]}
    model.update(over)
    return model


def _errors(data, source="cfg.yaml"):
    with pytest.raises(ConfigError) as info:
        parse_config(data, source)
    return info.value.errors


def test_valid_config_loads_with_defaults(tmp_path):
    cfg = parse_config({"models": [_model(tmp_path, windows={"length": "2h", "bucket": "5m"})]})
    model = cfg.model("fraud")
    assert model.windows.length == 7200 and model.windows.bucket == 300
    assert model.max_versions == 5
    assert cfg.serving_log.latency_unit == "ms"


def test_unknown_key_is_an_error_naming_the_path(tmp_path):
    errors = _errors({"models": [_model(tmp_path, windwos={"length": "1h"})]})
    assert errors == [
        "cfg.yaml: models[0].windwos: unknown key (known keys: "
        + ", ".join(sorted(_known_model_keys()))
        + ")"
    ]


def _known_model_keys():
    from dataclasses import fields

    from exporter.config import Model

    return [f.name for f in fields(Model)]


def test_wrong_type_names_key_and_types(tmp_path):
    errors = _errors({"models": [_model(tmp_path, max_versions="five")]})
    assert errors == ["cfg.yaml: models[0].max_versions: expected an integer, got 'five'"]


def test_bad_duration(tmp_path):
    errors = _errors({"models": [_model(tmp_path, windows={"length": "1 hour"})]})
    assert len(errors) == 1
    assert errors[0].startswith("cfg.yaml: models[0].windows.length: invalid duration '1 hour'")


def test_unreadable_path_missing_directory(tmp_path):
    errors = _errors({"models": [_model(tmp_path, serving_logs=["/nonexistent/dir/*.jsonl"])]})
    assert errors == [
        "cfg.yaml: models[0].serving_logs[0]: directory '/nonexistent/dir' does not exist"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_path_permissions(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0)
    errors = _errors({"models": [_model(tmp_path, serving_logs=[str(locked / "*.jsonl")])]})
    assert "is not readable" in errors[0]


def test_duplicate_model_names(tmp_path):
    errors = _errors({"models": [_model(tmp_path), _model(tmp_path)]})
    assert errors == ["cfg.yaml: models[1].name: duplicate name 'fraud' (also models[0])"]


def test_all_errors_reported_at_once(tmp_path):
    errors = _errors(
        {
            "models": [_model(tmp_path, task="ranking", min_samples=1.5)],
            "serving_log": {"latency_unit": "us"},
        }
    )
    assert len(errors) == 3
    assert any("models[0].task: expected one of" in e for e in errors)
    assert any("models[0].min_samples: expected an integer" in e for e in errors)
    assert any("serving_log.latency_unit" in e for e in errors)


def test_multiclass_classes_and_score_columns_are_checked_together(tmp_path):
    (tmp_path / "train.parquet").write_bytes(b"")
    ref = {"path": str(tmp_path / "train.parquet"), "label": "y"}
    errors = _errors(
        {
            "models": [
                _model(tmp_path, name="a", classes=["x", "y"]),  # binary: no classes
                _model(
                    tmp_path,
                    name="b",
                    task="multiclass",
                    classes=["x", "y", "z"],
                    reference={**ref, "scores": ["px", "py"]},
                ),
                _model(tmp_path, name="c", task="multiclass", classes=["x", "x"]),
                _model(
                    tmp_path,
                    name="d",
                    task="multiclass",
                    classes=["x", "y"],
                    reference={"path": ref["path"], "scores": ["px", "py"]},
                ),
            ]
        }
    )
    assert errors == [
        "cfg.yaml: models[0].classes: only a multiclass model has classes "
        "(task is binary_classification)",
        "cfg.yaml: models[1].reference.scores: one column per class of models[1].classes, "
        "in its order (2 columns for 3 classes)",
        "cfg.yaml: models[2].classes: a class is listed twice",
        "cfg.yaml: models[3].reference.scores: needs reference.label (calibration learns from it)",
    ]
    model = _model(
        tmp_path,
        task="multiclass",
        classes=["x", "y"],
        reference={**ref, "scores": ["px", "py"]},
    )
    assert parse_config({"models": [model]}).model("fraud").reference.scores == ("px", "py")


def test_missing_required_key():
    errors = _errors({"models": [{"serving_logs": ["/tmp/*.jsonl"]}]})
    assert errors == ["cfg.yaml: models[0].name: required key is missing"]


def test_a_model_without_serving_logs_needs_the_push_endpoint():
    errors = _errors({"models": [{"name": "fraud"}]})
    assert errors == [
        "cfg.yaml: models[0].serving_logs: at least one path or glob is required (or push.enabled)"
    ]
    cfg = parse_config({"models": [{"name": "fraud"}], "push": {"enabled": True}})
    assert cfg.model("fraud").serving_logs == ()


def test_unknown_threshold_method(tmp_path):
    errors = _errors({"models": [_model(tmp_path, thresholds={"kl": 0.1})]})
    assert "models[0].thresholds.kl: unknown method" in errors[0]


def test_load_config_reports_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(bad))
    assert info.value.errors[0].startswith(f"{bad}: not valid YAML")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "missing.yaml"))
    assert "cannot read config" in info.value.errors[0]


def test_check_config_command(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"models": [_model(tmp_path)]}))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"models": [_model(tmp_path, windows={"length": "x"})]}))
    cmd = [sys.executable, "-m", "exporter.cli", "check-config"]
    ok = subprocess.run([*cmd, f"--config.file={good}"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    fail = subprocess.run([*cmd, f"--config.file={bad}"], capture_output=True, text=True)
    assert fail.returncode == 1
    assert f"{bad}: models[0].windows.length: invalid duration 'x'" in fail.stderr
