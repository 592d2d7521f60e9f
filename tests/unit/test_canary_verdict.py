"""Canary vs stable is judged beyond chance: a healthy canary's first hundred predictions
are often further than the model's JS threshold from the stable version's by luck alone,
and the two-sample verdict (comparison="stable") does not call them diverged; a canary
whose predictions really moved is."""

import json
import time

import numpy as np

from tests.helpers import sample
from tests.unit.test_drift_end_to_end import make_exporter, reference, write_reference

QUIET = [f"quiet{i}" for i in range(20)]


def lines(model, version, cur, now, n):
    for i in range(n):
        record = {
            "timestamp": now - 60 + i * 0.01,
            "model": model,
            "model_version": version,
            "features": {"amount": float(cur["amount"][i])},
            "prediction": float(cur["prediction"][i]),
        }
        yield json.dumps(record) + "\n"


def test_a_small_healthy_canary_is_within_chance_and_a_moved_one_diverges(tmp_path):
    rng = np.random.default_rng(11)
    ref_dir, _ = write_reference(tmp_path, rng)
    exporter, logs = make_exporter(
        tmp_path, ref_dir, names=[*QUIET, "moved"], canary={"stable_version": "v1"}
    )
    now = time.time()
    with open(logs / "a.jsonl", "w") as fh:
        for name in [*QUIET, "moved"]:
            fh.writelines(lines(name, "v1", reference(rng, 2000), now, 2000))
            canary = reference(rng, 300)
            n = 100
            if name == "moved":
                canary["prediction"] = np.clip(canary["prediction"] + 0.3, 0, 1)
                n = 300
            fh.writelines(lines(name, "v2", canary, now, n))
    exporter.ingest_pass()
    exporter.compute_stats()

    def canary(name, metric, **labels):
        return sample(exporter, metric, model=name, version="v2", **labels)

    js = [canary(m, "mlpipe_prediction_version_divergence", method="js") for m in QUIET]
    verdicts = [canary(m, "mlpipe_prediction_drifted", comparison="stable") for m in QUIET]
    assert None not in js and None not in verdicts
    # The distance alone would fail healthy canaries (the model's JS threshold is 0.1) ...
    assert sum(v > 0.1 for v in js) >= 10, js
    # ... the verdict, at alpha 0.01 per model, (nearly) never: 0.2 expected of 20.
    assert sum(verdicts) <= 1, verdicts
    assert canary("moved", "mlpipe_prediction_drifted", comparison="stable") == 1
    assert canary("moved", "mlpipe_prediction_drift_pvalue", comparison="stable") < 1e-6
    assert sample(exporter, "mlpipe_drift_tested_columns", model="moved", comparison="stable") == 1
    # The stable version is not compared with itself.
    assert (
        sample(
            exporter, "mlpipe_prediction_drifted", model="moved", version="v1", comparison="stable"
        )
        is None
    )
