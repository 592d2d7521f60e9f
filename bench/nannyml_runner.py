"""Runs inside bench/.venv-nannyml (never the project's venv): NannyML 0.13's CBPE on the
same reference and analysis data, timed (fit + estimate, data already in memory). Prints
one JSON line: per metric, per analysis chunk, the estimate, NannyML's alert and thresholds.

    python nannyml_runner.py REF.parquet ANALYSIS.parquet CHUNK_SIZE [CLASS ...]

With classes, the problem is multiclass: columns ``p_<class>`` hold each class's
probability, ``pred`` the predicted class, ``y`` the label.
"""

import json
import sys
import time

import nannyml as nml
import pandas as pd

METRICS = {"roc_auc": "auc", "accuracy": "accuracy"}


def main() -> None:
    ref = pd.read_parquet(sys.argv[1])
    ana = pd.read_parquet(sys.argv[2])
    chunk = int(sys.argv[3])
    classes = sys.argv[4:]
    start = time.perf_counter()
    cbpe = nml.CBPE(
        y_pred_proba={c: f"p_{c}" for c in classes} if classes else "score",
        y_pred="pred",
        y_true="y",
        metrics=list(METRICS),
        chunk_size=chunk,
        problem_type="classification_multiclass" if classes else "classification_binary",
    )
    cbpe.fit(ref)
    result = cbpe.estimate(ana.drop(columns=["y"]))
    seconds = time.perf_counter() - start
    df = result.filter(period="analysis").to_df()
    out = {"seconds": seconds, "version": nml.__version__}
    for theirs, ours in METRICS.items():
        out[ours] = {
            "value": df[(theirs, "value")].tolist(),
            "alert": [bool(a) for a in df[(theirs, "alert")]],
            "lower": float(df[(theirs, "lower_threshold")].iloc[0]),
            "upper": float(df[(theirs, "upper_threshold")].iloc[0]),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
