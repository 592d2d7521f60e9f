"""Drift verdicts: no-drift false-alarm rates and detection rates, per feature and per model.

    python bench/false_alarms.py [--windows 500] [--features 8] [--alpha 0.01]
                                 [--sizes 100,300,1000,10000,100000] [--no-evidently]

For each shape (normal, heavy-tailed, integers with ties, zero-inflated, categoricals with
2, 50, 500 and 5 000 levels) a reference of ``--reference`` rows is drawn from the true
distribution and profiled with the exporter's own specs (reference-quantile bins, top-K).
Each window is what the exporter would hold after binning ``n`` records from the truth: a
multinomial draw over the bins' true probabilities (exactly the distribution of binned
counts, at O(bins) instead of O(n)). A model has ``--features`` independent features of
the shape; its verdict is the exporter's (state/compare.column_compare, stats/verdict.decide,
Benjamini–Hochberg at ``--alpha``).

- skew: window vs the reference profile; drift: window vs the previous window (both n).
- false alarms: windows with no drift; per feature (any one feature flagged) and per model
  (any of the model's features flagged).
- detection: one feature of the model shifted (mean +0.1/0.25/0.5 σ, sd x1.1, zero share
  70 -> 65 %, a category 5 -> 10 %, a new category at 5 %); the rate at which that
  feature is flagged.

Beside it, Evidently's default per-column tests (its stattest selection: KS / chi² /
z-test at p < 0.05 up to 1 000 rows, Wasserstein / Jensen–Shannon > 0.1 above) on raw
samples of the same shapes, run in bench/.venv-evidently (fewer windows: it needs the raw
rows; ``--evidently-windows``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from exporter.state.compare import column_compare
from exporter.state.profiles import CategoricalSpec, NumericSpec
from exporter.stats import drift, verdict

EVIDENTLY_PY = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), ".venv-evidently", "bin", "python"
)
TOP_K = 100  # the model default
TRUTH_ROWS = 4_000_000  # draws that estimate the bins' true probabilities


# --- shapes: draw(rng, size, shift) -> values ----------------------------------------------


def _normal(rng, size, shift=None):
    x = rng.normal(0.0, 1.0, size)
    if shift == "sd_x1.1":
        return x * 1.1
    return x + _mean_shift(shift) * 1.0


def _heavy(rng, size, shift=None):
    # Student t with 3 degrees of freedom: sd = sqrt(3).
    return rng.standard_t(3, size) + _mean_shift(shift) * np.sqrt(3)


def _integers(rng, size, shift=None):
    # Poisson(3): integers with heavy ties (sd = sqrt(3)).
    lam = 3.0
    return rng.poisson(lam, size).astype(float) + np.round(_mean_shift(shift) * np.sqrt(lam))


def _zero_inflated(rng, size, shift=None):
    zero = 0.65 if shift == "zero_share_65" else 0.70
    x = rng.exponential(2.0, size)
    x[rng.random(size) < zero] = 0.0
    return x


def _mean_shift(shift) -> float:
    return {"mean+0.1sd": 0.1, "mean+0.25sd": 0.25, "mean+0.5sd": 0.5}.get(shift, 0.0)


def _categorical_shares(levels: int) -> np.ndarray:
    if levels == 2:
        return np.array([0.7, 0.3])
    p = 1.0 / np.arange(1, levels + 1) ** 1.0
    p /= p.sum()
    if levels == 50:
        # One category at exactly 5 % for the "5 -> 10 %" shift.
        i = int(np.argmin(np.abs(p - 0.05)))
        rest = np.delete(np.arange(levels), i)
        p[rest] *= 0.95 / p[rest].sum()
        p[i] = 0.05
    return p


def categorical_truth(levels: int, shift=None) -> dict[str, float]:
    """Shares per category (``__new__`` is a category the reference never had)."""
    p = _categorical_shares(levels)
    names = [f"c{i}" for i in range(levels)]
    shares = dict(zip(names, p, strict=True))
    if shift == "category_5_to_10":
        five = min(shares, key=lambda k: abs(shares[k] - 0.05))
        others = 1.0 - shares[five]
        shares = {k: (0.10 if k == five else v * 0.90 / others) for k, v in shares.items()}
    elif shift == "new_category_5":
        shares = {k: v * 0.95 for k, v in shares.items()}
        shares["__new__"] = 0.05
    return shares


NUMERIC_SHAPES = {
    "normal": (_normal, ("mean+0.1sd", "mean+0.25sd", "mean+0.5sd", "sd_x1.1")),
    "heavy_tailed_t3": (_heavy, ("mean+0.25sd",)),
    "integers_poisson3": (_integers, ()),
    "zero_inflated_70": (_zero_inflated, ("zero_share_65",)),
}
CATEGORICAL_SHAPES = {
    "categorical_2": (2, ()),
    "categorical_50": (50, ("category_5_to_10", "new_category_5")),
    "categorical_500": (500, ()),
    # Singletons in the reference: unseen values arrive with no drift at all.
    "categorical_5000_long_tail": (5000, ()),
}


class Column:
    """One feature's reference profile (the exporter's specs) and its true bin shares."""

    def __init__(self, shape: str, reference_rows: int, rng, truth_rows: int = TRUTH_ROWS):
        self.shape = shape
        self.shifts: dict[str | None, np.ndarray] = {}
        if shape in NUMERIC_SHAPES:
            draw, shifts = NUMERIC_SHAPES[shape]
            sample = draw(rng, reference_rows)
            self.spec = NumericSpec.from_sample(
                shape, sample, float(sample.min()), float(sample.max()), float(sample.std())
            )
            idx = self.spec.bin_index(sample)
            self.reference = drift.NumericCounts(
                np.bincount(idx, minlength=self.spec.bins),
                np.bincount(idx, weights=sample, minlength=self.spec.bins),
            )
            for shift in (None, *shifts):
                truth = draw(rng, truth_rows, shift)
                self.shifts[shift] = np.bincount(
                    self.spec.bin_index(truth), minlength=self.spec.bins
                ) / len(truth)
        else:
            levels, shifts = CATEGORICAL_SHAPES[shape]
            truth = categorical_truth(levels)
            names = list(truth)
            sample = rng.choice(len(names), reference_rows, p=np.array(list(truth.values())))
            counts = np.bincount(sample, minlength=len(names))
            self.spec = CategoricalSpec.from_counts(
                shape, {names[i]: int(c) for i, c in enumerate(counts) if c}, TOP_K, True
            )
            codes, _ = self.spec.codes(names)
            self.reference = np.bincount(codes, weights=counts, minlength=self.spec.bins)
            for shift in (None, *shifts):
                shares = categorical_truth(levels, shift)
                codes, _ = self.spec.codes(list(shares))
                self.shifts[shift] = np.bincount(
                    codes, weights=list(shares.values()), minlength=self.spec.bins
                )

    def window(self, rng, n: int, shift=None):
        counts = rng.multinomial(n, self.shifts[shift] / self.shifts[shift].sum())
        if isinstance(self.spec, NumericSpec):
            # Value sums only matter to Wasserstein, not to the verdict.
            return drift.NumericCounts(counts, np.zeros(len(counts)))
        return counts


def model_verdicts(cols, rng, n, comparison, shifted=None, alpha=0.01):
    """Drifted mask of one window of a model of ``cols`` (feature 0 shifted by ``shifted``)."""
    pvalues = []
    for j, col in enumerate(cols):
        shift = shifted if j == 0 else None
        cur = col.window(rng, n, shift)
        base = col.reference if comparison == "skew" else col.window(rng, n)
        _, test = column_compare(col.spec, base, cur, 1, reference=comparison == "skew")
        pvalues.append(test[0])
    return verdict.decide(np.array(pvalues), alpha)[0]


def run_cell(cols, rng, n, comparison, windows, shifted=None, alpha=0.01):
    """(per-feature rate of feature 0, per-model rate of any feature) over ``windows``."""
    first = anyone = 0
    for _ in range(windows):
        drifted = model_verdicts(cols, rng, n, comparison, shifted, alpha)
        first += bool(drifted[0])
        anyone += bool(drifted.any())
    return first / windows, anyone / windows


def simulation_error(rate: float, windows: int) -> float:
    """Two binomial standard errors at the target rate."""
    return 2 * np.sqrt(rate * (1 - rate) / windows)


# --- Evidently, in its own venv -----------------------------------------------------------


def evidently_rates(shape, sizes, windows, seed, cols, reference_rows) -> dict | None:
    """Evidently's default per-column test on raw samples: {(n, shift): flagged rate}."""
    if not os.path.exists(EVIDENTLY_PY):
        return None
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for n in sizes:
            for shift in cols[0].shifts:
                ref = _raw(shape, rng, reference_rows, None)
                cur = np.stack([_raw(shape, rng, n, shift) for _ in range(windows)])
                path = os.path.join(tmp, f"{n}-{shift}.npz")
                np.savez(path, ref=ref, cur=cur)
                jobs.append({"n": n, "shift": shift, "path": path})
        runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evidently_tests.py")
        kind = "num" if shape in NUMERIC_SHAPES else "cat"
        out = subprocess.run(
            [EVIDENTLY_PY, runner, kind, json.dumps(jobs)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            print("evidently failed:", out.stderr[-2000:], file=sys.stderr)
            return None
        return {(r["n"], r["shift"]): r["rate"] for r in json.loads(out.stdout)}


def _raw(shape, rng, size, shift):
    if shape in NUMERIC_SHAPES:
        return NUMERIC_SHAPES[shape][0](rng, size, shift)
    shares = categorical_truth(CATEGORICAL_SHAPES[shape][0], shift)
    names = np.array(list(shares))
    return names[rng.choice(len(names), size, p=np.array(list(shares.values())))]


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=500)
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--reference", type=int, default=100_000)
    ap.add_argument("--sizes", default="100,300,1000,10000,100000")
    ap.add_argument("--shapes", default=",".join([*NUMERIC_SHAPES, *CATEGORICAL_SHAPES]))
    ap.add_argument("--no-evidently", action="store_true")
    ap.add_argument("--evidently-windows", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    err = simulation_error(args.alpha, args.windows)
    print(
        f"alpha {args.alpha} per model per window, {args.features} features a model, "
        f"{args.windows} windows a cell, reference {args.reference} rows; simulation error "
        f"(2 s.e. at alpha) ±{err:.4f}\n"
    )
    print("## No drift: false-alarm rates (per feature / per model)\n")
    print("| shape | comparison | " + " | ".join(f"n={n}" for n in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    detections = []
    worst_model = 0.0
    for shape in args.shapes.split(","):
        cols = [Column(shape, args.reference, rng) for _ in range(args.features)]
        for comparison in ("skew", "drift"):
            cells = []
            for n in sizes:
                f, m = run_cell(cols, rng, n, comparison, args.windows, alpha=args.alpha)
                worst_model = max(worst_model, m)
                cells.append(f"{f:.3f} / {m:.3f}")
            print(f"| {shape} | {comparison} | " + " | ".join(cells) + " |")
        for shift in [s for s in cols[0].shifts if s is not None]:
            for comparison in ("skew", "drift"):
                rates = [
                    run_cell(cols, rng, n, comparison, args.windows, shift, args.alpha)[0]
                    for n in sizes
                ]
                detections.append((shape, shift, comparison, rates))
        if not args.no_evidently:
            ev = evidently_rates(
                shape,
                [n for n in sizes if n <= 10_000],
                args.evidently_windows,
                7,
                cols,
                args.reference,
            )
            if ev is not None:
                detections.append((shape, "evidently", "skew", ev))
    print(
        f"\nworst per-model false-alarm rate: {worst_model:.3f} (target ≤ {args.alpha} ± {err:.4f})"
    )
    print("\n## Detection: rate at which the shifted feature is flagged\n")
    print("| shape | shift | comparison | " + " | ".join(f"n={n}" for n in sizes) + " |")
    print("|---|---|---|" + "---|" * len(sizes))
    for shape, shift, comparison, rates in detections:
        if shift == "evidently":
            continue
        print(
            f"| {shape} | {shift} | {comparison} | " + " | ".join(f"{r:.3f}" for r in rates) + " |"
        )
    evid = [(s, r) for s, sh, _, r in detections if sh == "evidently"]
    if evid:
        print("\n## Evidently's default per-column tests, skew, same shapes (rate flagged)\n")
        ns = sorted({n for _, r in evid for n, _ in r})
        print("| shape | shift | " + " | ".join(f"n={n}" for n in ns) + " |")
        print("|---|---|" + "---|" * len(ns))
        for shape, r in evid:
            for shift in sorted({s for _, s in r}, key=lambda s: (s is not None, str(s))):
                cells = [f"{r.get((n, shift), float('nan')):.3f}" for n in ns]
                print(f"| {shape} | {shift or 'none (false alarm)'} | " + " | ".join(cells) + " |")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
