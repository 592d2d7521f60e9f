"""Runs inside bench/.venv-evidently (never the project's venv): Evidently's
DataDriftPreset on the same Parquet files, timed end to end (read + report), with peak RSS
and the per-column scores. Prints one JSON line.

    python evidently_runner.py REF.parquet CUR.parquet '["num_0", ...]' '["cat_0", ...]'
"""

import json
import resource
import sys
import time

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

METHOD_NAMES = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "js",
    "PSI": "psi",
}


def scores(snapshot) -> dict:
    out: dict = {}
    for metric in snapshot.dict()["metrics"]:
        cfg = metric.get("config", {})
        if cfg.get("type", "").endswith("ValueDrift"):
            method = METHOD_NAMES.get(cfg["method"], cfg["method"])
            out.setdefault(cfg["column"], {})[method] = float(metric["value"])
    return out


def main() -> None:
    ref_path, cur_path = sys.argv[1], sys.argv[2]
    numeric, categorical = json.loads(sys.argv[3]), json.loads(sys.argv[4])
    start = time.perf_counter()
    ref = pd.read_parquet(ref_path)
    cur = pd.read_parquet(cur_path)
    for c in categorical:  # as categories, as Evidently expects them
        ref[c] = ref[c].astype("category")
        cur[c] = cur[c].astype("category")
    default = Report([DataDriftPreset()]).run(cur, ref)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = scores(default)
    # Untimed: PSI on every column, for the side-by-side of scores.
    psi = Report([DataDriftPreset(num_method="psi", cat_method="psi")]).run(cur, ref)
    for column, methods in scores(psi).items():
        result.setdefault(column, {}).update(methods)
    print(
        json.dumps({"seconds": seconds, "peak_rss_mb": peak, "scores": result, "numeric": numeric})
    )


if __name__ == "__main__":
    main()
