import json
import math
import random
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.config import FieldMap, ServingLogFormat
from exporter.sources import feature_objects
from exporter.sources.serving_log import ServingLogParser
from tests.helpers import serving_line


def parser(**kw):
    fmt = ServingLogFormat(**kw.pop("fmt", {}))
    return ServingLogParser(fmt, kw.pop("models", ["fraud", "ranker"]), **kw)


def lines(*records) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


def test_valid_lines_become_columns():
    p = parser()
    data = lines(
        {
            "timestamp": "2026-11-25T10:00:00.123Z",
            "model": "fraud",
            "model_version": "v7",
            "request_id": "r-1",
            "latency_ms": 12.5,
            "status": "ok",
            "prediction": 0.9,
        },
        {
            "timestamp": 1790000000.5,
            "model": "ranker",
            "model_version": 3,
            "latency_ms": 250,
            "status": 503,
        },
    )
    b = p.parse(data)
    assert (b.lines, b.records, sum(b.invalid.values())) == (2, 2, 0)
    assert b.model.tolist() == [0, 1]
    assert b.version == ["v7", "3"]
    assert b.timestamp[0] == pytest.approx(1795600800.123, abs=1e-6)
    assert b.timestamp[1] == 1790000000.5
    assert b.latency.tolist() == pytest.approx([0.0125, 0.25])
    assert b.error.tolist() == [False, True]
    assert b.request_id == ["r-1", None]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json at all", "not_json"),
        (b"", "not_json"),
        (b"[1, 2]", "not_json"),
        (b'{"timestamp": NaN, "model": "fraud"}', "not_json"),
        (json.dumps({"model": "fraud"}).encode(), "missing_field"),
        (json.dumps({"timestamp": 1.0}).encode(), "missing_field"),
        (
            json.dumps({"timestamp": 1.0, "model": "fraud", "latency_ms": "fast"}).encode(),
            "wrong_type",
        ),
        (json.dumps({"timestamp": 1.0, "model": 7}).encode(), "wrong_type"),
        (json.dumps({"timestamp": "yesterday", "model": "fraud"}).encode(), "bad_timestamp"),
        (json.dumps({"timestamp": 1.0, "model": "spam"}).encode(), "unknown_model"),
    ],
)
def test_each_invalid_kind_is_counted_and_skipped(line, reason):
    p = parser()
    data = lines(serving_line(1).encode().strip(), line, serving_line(2).encode().strip())
    b = p.parse(data)
    assert b.lines == 3
    assert b.records == 2
    assert dict(b.invalid) == {reason: 1}


def test_status_outcomes():
    p = parser(fmt={"error_statuses": ("error", "boom")})
    statuses = ["ok", "error", "ERROR", "boom", 200, 404, 500, 503, "502", "200", None]
    b = p.parse(lines(*[{"timestamp": 1.0, "model": "fraud", "status": s} for s in statuses]))
    assert b.error.tolist() == [
        False,
        True,
        True,
        True,
        False,
        False,
        True,
        True,
        True,
        False,
        False,
    ]


def test_latency_in_seconds_and_missing_latency():
    p = parser(fmt={"latency_unit": "s"})
    b = p.parse(
        lines(
            {"timestamp": 1.0, "model": "fraud", "latency_ms": 0.2},
            {"timestamp": 1.0, "model": "fraud"},
        )
    )
    assert b.latency[0] == 0.2 and math.isnan(b.latency[1])


def test_nested_field_paths():
    fields = FieldMap(
        timestamp="ts",
        model="meta.model",
        version="meta.version",
        latency="timing.total_s",
        features="input",
    )
    p = parser(fmt={"fields": fields, "latency_unit": "s"}, numeric=["x"], categorical=["c"])
    b = p.parse(
        lines(
            {
                "ts": 5.0,
                "meta": {"model": "fraud", "version": "v2"},
                "timing": {"total_s": 0.5},
                "input": {"x": 1.5, "c": "DE"},
            },
            {"ts": 6.0, "meta": {"model": "ranker"}},
            {"ts": 7.0},
        )
    )
    assert b.records == 2 and dict(b.invalid) == {"missing_field": 1}
    assert b.version == ["v2", ""]
    assert b.latency[0] == 0.5
    assert b.numeric[0, 0] == 1.5 and math.isnan(b.numeric[1, 0])
    assert [c.to_pylist() for c in b.categorical] == [["DE", None]]


def test_feature_values_fast_and_slow_paths_agree():
    p = parser(numeric=["a", "b"], categorical=["c", "user-id"])
    good = {
        "timestamp": 1.0,
        "model": "fraud",
        "features": {"a": 1, "b": 2.5, "c": "x", "user-id": "u1"},
    }
    odd = {
        "timestamp": 1.0,
        "model": "fraud",
        "features": {"a": "12", "b": None, "c": 7, "user-id": [1]},
    }
    fast = p.parse(lines(good, good))
    assert fast.numeric.tolist() == [[1.0, 2.5], [1.0, 2.5]]
    assert fast.numeric_malformed is None
    mixed = p.parse(lines(good, odd))
    assert mixed.numeric[0].tolist() == [1.0, 2.5]
    assert math.isnan(mixed.numeric[1, 0]) and math.isnan(mixed.numeric[1, 1])
    assert mixed.numeric_malformed.tolist() == [[False, False], [True, False]]
    assert [c.to_pylist() for c in mixed.categorical] == [["x", "7"], ["u1", None]]
    assert mixed.categorical_malformed.tolist() == [[False, False], [False, True]]


def test_line_with_two_objects_is_not_miscounted():
    p = parser()
    two = serving_line(1).strip() + "," + serving_line(2).strip()
    b = p.parse(lines(two.encode(), serving_line(3).encode().strip()))
    assert b.lines == 2 and b.records == 1 and dict(b.invalid) == {"not_json": 1}


def test_control_characters_do_not_split_lines():
    p = parser()
    weird = b'{"timestamp": 1.0, "model": "fraud", "request_id": "a\x85b\x0bc\x1cd"}'
    b = p.parse(lines(weird, weird))
    assert b.lines == 2
    assert b.records + sum(b.invalid.values()) == 2


def test_fuzz_100k_mixed_lines_all_accounted_for():
    """Random garbage mixed with valid lines: every valid one parsed, every bad one counted."""
    rng = random.Random(42)
    p = parser(numeric=["amount"], categorical=["country"])
    valid_written = 0
    out = []
    for i in range(100_000):
        kind = rng.random()
        if kind < 0.5:
            valid_written += 1
            out.append(serving_line(i, features={"amount": rng.random(), "country": "DE"}))
        elif kind < 0.7:
            raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 60)))
            out.append(raw.replace(b"\n", b" ").decode("latin-1") + "\n")
        elif kind < 0.85:
            line = serving_line(i)
            cut = rng.randint(0, len(line) - 2)
            out.append(line[:cut] + "\n")
        else:
            out.append(
                json.dumps(
                    {
                        "timestamp": rng.choice([1.0, "x", None, [], {}]),
                        "model": rng.choice(["fraud", None, 3, "nope"]),
                        "latency_ms": rng.choice([1, "2", None, True]),
                    }
                )
                + "\n"
            )
    data = "".join(out).encode("latin-1", errors="replace")
    parsed = invalid = 0
    for start in range(0, len(data), 1 << 20):
        end = (
            data.rfind(b"\n", 0, start + (1 << 20)) + 1
            if start + (1 << 20) < len(data)
            else len(data)
        )
        if end <= start:
            continue
        b = p.parse(data[start:end])
        parsed += b.records
        invalid += b.lines - b.records
        assert sum(b.invalid.values()) == b.lines - b.records
    total = data.count(b"\n")
    assert parsed + invalid == total == 100_000
    assert parsed >= valid_written  # some random records are valid too
    assert np.isfinite(parsed)


@pytest.mark.parametrize("models", [["fraud"], ["fraud", "ranker"]])
def test_absent_and_null_feature_values_are_nan(models):
    """An absent key (the struct's default) and an explicit null both read as NaN, in a
    batch with nulls and in one without (a batch's values are converted in one pass until
    a null is met)."""
    p = parser(numeric=["x", "y"], models=models)
    base = {"timestamp": 1.0, "model": "fraud"}
    without_nulls = p.parse(lines({**base, "features": {"x": 1.0}}, {**base, "features": {}}))
    with_nulls = p.parse(lines({**base, "features": {"x": None, "y": 2}}, {**base}))
    np.testing.assert_array_equal(without_nulls.numeric, [[1.0, np.nan], [np.nan, np.nan]])
    np.testing.assert_array_equal(with_nulls.numeric, [[np.nan, 2.0], [np.nan, np.nan]])
    assert without_nulls.numeric_malformed is None and with_nulls.numeric_malformed is None


def test_numeric_features_at_the_top_level_are_read_by_name():
    """``fields.features: "."`` with numeric features only: the record's own struct holds
    the other fields too, so its features are read by name, not as all its fields (that
    raised on the model's name)."""
    p = parser(fmt={"fields": FieldMap(features=".")}, numeric=["x", "y"], models=["fraud"])
    b = p.parse(lines({"timestamp": 1.0, "model": "fraud", "x": 1.5, "y": 2.5, "other": 3}))
    assert b.records == 1
    np.testing.assert_array_equal(b.numeric, [[1.5, 2.5]])


def test_top_level_features_of_many_models_with_their_own_names():
    """Three models, each its own features, at the top level of a shared log: the union is
    decoded (there is no features object to keep raw per model); that parse raised before
    (a record handed over as raw JSON)."""
    cols = [([0, 1], []), ([2, 3], []), ([4, 5], [])]
    names = ["a1", "a2", "b1", "b2", "c1", "c2"]
    p = ServingLogParser(
        ServingLogFormat(fields=FieldMap(features=".")), ["a", "b", "c"], names, model_columns=cols
    )
    assert not p.raw_features
    b = p.parse(lines(*({"timestamp": 1.0, "model": m, f"{m}1": 1.5, f"{m}2": 2.5} for m in "abc")))
    assert sorted(b.blocks) == [0, 1, 2]
    for block in b.blocks.values():
        np.testing.assert_array_equal(block[0], [[1.5, 2.5]])


_NUMERIC_VALUES = st.one_of(
    st.floats(-1e6, 1e6), st.integers(-(10**6), 10**6), st.none(), st.just("12"), st.booleans()
)
_CATEGORICAL_VALUES = st.one_of(
    st.sampled_from(["a", "b", "ü"]), st.integers(-5, 5), st.none(), st.booleans(), st.just([1])
)
_ABSENT = object()


def _expected(features: dict | None, numeric: list[str], categorical: list[str]):
    """What a record's features read as, from the parser's documented rules, not its code:
    numbers as floats, absent or null as NaN / None, anything else malformed; a category
    as its string (an integer or boolean as its text)."""
    features = features or {}
    num, num_bad, cat, cat_bad = [], [], [], []
    for name in numeric:
        v = features.get(name, _ABSENT)
        ok = v is _ABSENT or v is None or (type(v) in (int, float))
        num.append(float(v) if ok and v not in (_ABSENT, None) else math.nan)
        num_bad.append(not ok)
    for name in categorical:
        v = features.get(name, _ABSENT)
        if type(v) is bool:
            cat.append("true" if v else "false"), cat_bad.append(False)
        elif isinstance(v, str) or type(v) is int:
            cat.append(str(v)), cat_bad.append(False)
        else:
            cat.append(None), cat_bad.append(v not in (_ABSENT, None))
    return num, num_bad, cat, cat_bad


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.dictionaries(st.sampled_from(["x", "y", "z", "c", "d"]), _NUMERIC_VALUES),
            st.dictionaries(st.sampled_from(["x", "y", "z", "c", "d"]), _CATEGORICAL_VALUES),
        ),
        max_size=12,
    ),
    st.sampled_from(["one model", "models with their own columns", "features raw per model"]),
    st.booleans(),
    st.sampled_from([True, False] if feature_objects.COMPILED else [False]),
)
def test_feature_columns_match_an_independent_reading(records, layout, with_categorical, compiled):
    """Typed records, records without features and records read leniently (a malformed
    value), numeric columns alone or with categorical ones: every value lands in its row
    and column, with its malformed flag, whichever way the parser assembles the columns,
    by the compiled reader or through msgspec structs."""
    with mock.patch.object(feature_objects, "COMPILED", compiled):
        _feature_columns_match(records, layout, with_categorical)


def _feature_columns_match(records, layout, with_categorical):
    numeric, categorical = ["x", "y", "z"], ["c", "d"] if with_categorical else []
    if layout == "one model":
        p = parser(numeric=numeric, categorical=categorical, models=["fraud"])
        own = (numeric, categorical)
    else:
        # Model "fraud" has y, x and d of the union; "raw" per model when the union is wide.
        extra = [f"u{i}" for i in range(10)] if layout == "features raw per model" else []
        union_num = numeric + extra
        cols = [([1, 0], [1]), ([2], [0])] if with_categorical else [([1, 0], []), ([2], [])]
        p = ServingLogParser(
            ServingLogFormat(), ["fraud", "ranker"], union_num, categorical, model_columns=cols
        )
        assert p.raw_features == bool(extra)
        own = (["y", "x"], ["d"] if with_categorical else [])
    data = lines(
        *(
            {"timestamp": 1.0, "model": "fraud", "request_id": str(i)}
            | ({} if f is None else {"features": f})
            for i, f in enumerate(records)
        )
    )
    b = p.parse(data)
    assert b.records == len(records)
    if not records:
        return
    numeric, num_bad, cat, cat_bad = (
        (b.numeric, b.numeric_malformed, b.categorical, b.categorical_malformed)
        if layout == "one model"
        else b.blocks[0]
    )
    # Rows are the typed records, then those read leniently: matched by request id.
    want = [_expected(records[int(r)], *own) for r in b.request_id]
    k_num, k_cat = len(own[0]), len(own[1])
    np.testing.assert_array_equal(numeric, np.array([w[0] for w in want]).reshape(-1, k_num))
    no_num_bad = [[False] * k_num] * len(want)
    assert (no_num_bad if num_bad is None else num_bad.tolist()) == [w[1] for w in want]
    assert [c.to_pylist() for c in cat] == [
        list(c) for c in zip(*(w[2] for w in want), strict=True)
    ]
    no_cat_bad = [[False] * k_cat] * len(want)
    assert (no_cat_bad if cat_bad is None else cat_bad.tolist()) == [w[3] for w in want]


def test_request_ids_are_read_only_for_models_that_join_labels(tmp_path):
    """A parser told no model joins labels leaves request ids undecoded (None); the
    exporter's parser reads them exactly when some model of its log has labels."""
    from exporter.config import parse_config
    from exporter.ingest import reads_request_ids

    b = parser(request_ids=False).parse(
        lines({"timestamp": 1.0, "model": "fraud", "request_id": "r"})
    )
    assert (b.records, b.request_id) == (1, [None])
    base = {"serving_logs": [str(tmp_path / "*.jsonl")]}
    config = parse_config(
        {"models": [{"name": "a", **base}, {"name": "b", **base, "labels": [str(tmp_path / "l")]}]}
    )
    assert reads_request_ids(config) and reads_request_ids(config, "b")
    assert not reads_request_ids(config, "a")


@pytest.mark.parametrize("rows", [[], [0], [4], [0, 1], [1, 3], [0, 2, 4]])
def test_a_fallback_row_replaces_only_itself(rows):
    """The compiled reader's fallback rows get their lenient values in their place; every
    other row keeps the reader's, nulls included."""
    import pyarrow as pa

    from exporter.sources.serving_log import _replace_rows

    column = pa.array(["a", None, "c", "d", "e"])
    values = [f"x{r}" if r % 2 else None for r in rows]
    got = _replace_rows(column, rows, pa.array(values, pa.string())).to_pylist()
    want = column.to_pylist()
    for r, v in zip(rows, values, strict=True):
        want[r] = v
    assert got == want
