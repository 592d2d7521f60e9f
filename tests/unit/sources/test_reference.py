import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exporter.config import parse_config
from exporter.sources import reference as refmod
from exporter.sources.reference import load_or_build, select_columns


def model(tmp_path, path, **extra):
    (tmp_path / "logs").mkdir(exist_ok=True)
    cfg = parse_config(
        {
            "models": [
                {
                    "name": "m",
                    "serving_logs": [str(tmp_path / "logs" / "*")],
                    "reference": {"path": str(path), **extra},
                }
            ]
        }
    )
    return cfg.models[0]


def write(path, n=5000, seed=0):
    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "x": rng.normal(0, 1, n),
            "k": rng.integers(0, 5, n),
            "flag": rng.random(n) < 0.5,
            "city": pa.array(rng.choice(["a", "b", "c"], n)).dictionary_encode(),
            "when": pa.array(np.arange(n), pa.timestamp("s")),
            "y": rng.integers(0, 2, n),
        }
    )
    pq.write_table(table, path)
    return table


def test_columns_from_schema_numeric_and_categorical_kinds(tmp_path):
    write(tmp_path / "t.parquet")
    m = model(tmp_path, tmp_path / "t.parquet", label="y")
    schema = pq.read_schema(tmp_path / "t.parquet")
    assert select_columns(schema, m) == (["x", "k"], ["flag", "city"])  # timestamp skipped


def test_reference_counts_every_row_and_category(tmp_path):
    table = write(tmp_path / "t.parquet")
    ref = load_or_build(model(tmp_path, tmp_path / "t.parquet", label="y"), None)
    prof, specs = ref.features.profile, ref.features.specs
    assert ref.rows == 5000
    assert prof.numeric.sum(axis=1).tolist() == [5000, 5000]
    assert prof.sums[0].sum() == pytest.approx(table["x"].to_numpy().sum())
    city = next(s for s in specs.categorical if s.name == "city")
    counts = dict(zip(city.values, prof.categorical[1, : len(city.values)].tolist(), strict=True))
    expected = dict(
        zip(
            *np.unique(
                table["city"].to_numpy(zero_copy_only=False).astype(str), return_counts=True
            ),
            strict=True,
        )
    )
    assert counts == {k: int(v) for k, v in expected.items()}
    flag = specs.categorical[0]
    assert set(flag.values) == {"true", "false"}
    assert ref.label.profile.categorical[0].sum() == 5000


def test_cache_is_reused_and_invalidated_by_mtime(tmp_path, monkeypatch):
    write(tmp_path / "t.parquet")
    m = model(tmp_path, tmp_path / "t.parquet")
    state = str(tmp_path / "state")
    first = load_or_build(m, state)
    cached = os.listdir(tmp_path / "state" / "profiles")
    assert len(cached) == 1

    def no_rebuild(*a, **k):
        raise AssertionError("rebuilt although the files did not change")

    monkeypatch.setattr(refmod, "build_reference", no_rebuild)
    again = load_or_build(m, state)
    assert again.features.profile == first.features.profile
    assert [s.name for s in again.features.specs.numeric] == ["x", "k", "y"]
    np.testing.assert_array_equal(
        again.features.specs.numeric[0].edges, first.features.specs.numeric[0].edges
    )
    os.utime(tmp_path / "t.parquet", (1, 1))
    with pytest.raises(AssertionError, match="rebuilt"):
        load_or_build(m, state)


def test_missing_column_is_a_clear_error(tmp_path):
    write(tmp_path / "t.parquet")
    m = model(tmp_path, tmp_path / "t.parquet", label="nope")
    with pytest.raises(refmod.ReferenceError, match="no label column 'nope'"):
        load_or_build(m, None)


SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np, pyarrow as pa, pyarrow.parquet as pq
    from exporter.config import parse_config
    from exporter.sources.reference import build_reference
    rows, path, logs = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(path, pa.schema([(f"f{i}", pa.float64()) for i in range(8)])) as w:
        for start in range(0, rows, 250_000):
            w.write_table(pa.table({f"f{i}": rng.normal(size=250_000) for i in range(8)}))
    cfg = parse_config({"models": [{"name": "m", "serving_logs": [logs + "/*"],
                                    "reference": {"path": path}}]})
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ref = build_reference(cfg.models[0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert ref.rows == rows
    print((peak - base) // 1024)
""")


def test_profiling_memory_does_not_grow_with_dataset_size(tmp_path):
    (tmp_path / "logs").mkdir()
    growth = {}
    for rows in (1_000_000, 4_000_000):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                SCRIPT,
                str(rows),
                str(tmp_path / f"{rows}.parquet"),
                str(tmp_path / "logs"),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        growth[rows] = int(out.stdout.strip())
    # 4x the data (256 MiB of values at 4M rows) must not need more memory to profile.
    assert growth[4_000_000] <= growth[1_000_000] + 16, growth
    assert growth[4_000_000] < 100, growth


def test_calibration_counts_positive_labels_per_score_bin_and_survives_the_profile_file(
    tmp_path,
):
    rng = np.random.default_rng(3)
    n = 20_000
    score = rng.random(n)
    label = rng.random(n) < score
    # Labels as a reference may hold them: booleans here (true is the positive class).
    pq.write_table(
        pa.table({"x": rng.normal(0, 1, n), "score": score, "label": label}),
        tmp_path / "ref.parquet",
    )
    m = model(tmp_path, tmp_path / "ref.parquet", label="label", prediction="score")
    ref = refmod.build_reference(m)
    spec = ref.prediction.specs.numeric[0]
    idx = np.searchsorted(spec.edges, score, side="right")
    want = np.bincount(idx, weights=label, minlength=spec.bins).astype(np.int64)
    assert ref.calibration.tolist() == want.tolist()
    refmod.save_cache(str(tmp_path / "m.profile"), ref)
    loaded = refmod.load_cache(str(tmp_path / "m.profile"))
    assert loaded.calibration.tolist() == want.tolist() and loaded.hash == ref.hash
