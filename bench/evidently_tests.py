"""Runs inside bench/.venv-evidently (never the project's venv): Evidently's default
per-column drift test (its stattest selection by reference size and column type, at its
default thresholds) on raw windows. Prints one JSON list of {n, shift, rate}.

    python evidently_tests.py num|cat '[{"n": 100, "shift": null, "path": "x.npz"}, ...]'
"""

import json
import sys

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType


def main() -> None:
    kind = ColumnType.Numerical if sys.argv[1] == "num" else ColumnType.Categorical
    out = []
    for job in json.loads(sys.argv[2]):
        data = np.load(job["path"])
        ref = pd.Series(data["ref"])
        flagged = 0
        for window in data["cur"]:
            cur = pd.Series(window)
            test = get_stattest(ref, cur, kind, None)
            flagged += bool(test(ref, cur, kind, None).drifted)
        out.append({"n": job["n"], "shift": job["shift"], "rate": flagged / len(data["cur"])})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
