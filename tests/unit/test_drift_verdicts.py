"""End to end: many models with no drift are (nearly) never flagged at n = 300, while a
half-sigma shift at n = 1 000 is, through config, reference build, ingest and collectors."""

import json
import time

import numpy as np

from tests.helpers import sample
from tests.unit.test_drift_end_to_end import make_exporter, reference, write_reference

QUIET = [f"quiet{i}" for i in range(20)]


def line(model, i, cur, now):
    feats = {
        "amount": float(cur["amount"][i]),
        "age": int(cur["age"][i]),
        "score": float(cur["score"][i]),
        "country": str(cur["country"][i]),
        "device": str(cur["device"][i]),
    }
    record = {
        "timestamp": now - 60 + i * 0.01,
        "model": model,
        "model_version": "v1",
        "features": feats,
        "prediction": float(cur["prediction"][i]),
    }
    return json.dumps(record) + "\n"


def test_quiet_models_stay_quiet_and_a_half_sigma_shift_is_flagged(tmp_path):
    rng = np.random.default_rng(5)
    ref_dir, _ = write_reference(tmp_path, rng)
    exporter, logs = make_exporter(tmp_path, ref_dir, names=[*QUIET, "shifted"])
    now = time.time()
    with open(logs / "a.jsonl", "w") as fh:
        for name in QUIET:
            cur = reference(rng, 300)
            fh.writelines(line(name, i, cur, now) for i in range(300))
        cur = reference(rng, 1000)
        cur["amount"] = cur["amount"] + 10  # sd 20: half a sigma
        fh.writelines(line("shifted", i, cur, now) for i in range(1000))
    exporter.ingest_pass()
    exporter.compute_stats()

    def flagged(name):
        features = [
            sample(exporter, "mlpipe_feature_drifted", model=name, feature=f, comparison="skew")
            for f in ("amount", "age", "score", "country", "device")
        ]
        pred = sample(
            exporter, "mlpipe_prediction_drifted", model=name, version="v1", comparison="skew"
        )
        assert None not in features and pred is not None, name
        return [
            f
            for f, v in zip(("amount", "age", "score", "country", "device"), features, strict=True)
            if v
        ]

    # 20 models x 6 columns at alpha 0.01 per model: 0.2 false alarms expected.
    assert sum(bool(flagged(m)) for m in QUIET) <= 1
    assert flagged("shifted") == ["amount"]
    assert (
        sample(exporter, "mlpipe_model_drifted_features", model="shifted", comparison="skew") == 1
    )
    assert sample(exporter, "mlpipe_drift_tested_columns", model="shifted", comparison="skew") == 6
    assert sample(exporter, "mlpipe_drift_false_alarm_rate", model="shifted") == 0.01
    p = sample(
        exporter,
        "mlpipe_feature_drift_pvalue",
        model="shifted",
        feature="amount",
        comparison="skew",
    )
    threshold = sample(
        exporter, "mlpipe_drift_pvalue_threshold", model="shifted", comparison="skew"
    )
    assert p <= threshold
    effect = sample(
        exporter,
        "mlpipe_feature_drift_effect",
        model="shifted",
        feature="amount",
        comparison="skew",
    )
    assert 0.12 < effect < 0.28  # KS of a 0.5 sd shift of a normal: 2 Phi(0.25) - 1 = 0.197


def test_a_practical_floor_keeps_a_small_significant_shift_quiet(tmp_path):
    rng = np.random.default_rng(6)
    ref_dir, _ = write_reference(tmp_path, rng)
    exporter, logs = make_exporter(tmp_path, ref_dir, drift={"min_effect": 0.3})
    cur = reference(rng, 3000)
    cur["amount"] = cur["amount"] + 10
    now = time.time()
    (logs / "a.jsonl").write_text("".join(line("fraud", i, cur, now) for i in range(3000)))
    exporter.ingest_pass()
    exporter.compute_stats()
    labels = {"model": "fraud", "feature": "amount", "comparison": "skew"}
    assert sample(exporter, "mlpipe_feature_drift_pvalue", **labels) < 1e-10
    assert sample(exporter, "mlpipe_feature_drifted", **labels) == 0.0
