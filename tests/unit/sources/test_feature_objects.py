"""The compiled feature reader against msgspec's typed decoder: the same value in every
row it takes, every row msgspec rejects handed back, and any bytes read safely."""

import json
import math
import re
import struct

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.sources import feature_objects

pytestmark = pytest.mark.skipif(
    not feature_objects.COMPILED, reason="the compiled reader is not built"
)

NUMERIC = ["x", "y", "ünï"]
CATEGORICAL = ["c", "d"]
NAMES = tuple(n.encode() for n in NUMERIC + CATEGORICAL)
Typed = msgspec.defstruct(
    "Typed",
    [(f"n{i}", float | None, None) for i in range(len(NUMERIC))]
    + [(f"c{i}", str | None, None) for i in range(len(CATEGORICAL))],
    rename={f"n{i}": n for i, n in enumerate(NUMERIC)}
    | {f"c{i}": n for i, n in enumerate(CATEGORICAL)},
)
TYPED = msgspec.json.Decoder(Typed | None)


def test_compiled_modules_are_built():
    """`make setup` builds both (the machine has a C compiler): without them the exporter
    works, ~2x slower a line, and this says so."""
    from exporter.state import profiles

    assert feature_objects.COMPILED and profiles.SCATTER_COMPILED


def _number_text():
    """JSON numbers as a log writer may print them: floats by repr, long and exponent
    forms, integers past 2**53 and 2**64, negative zeros."""
    return st.one_of(
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.integers(-(10**30), 10**30).map(str),
        st.tuples(st.integers(-(10**25), 10**25), st.integers(0, 30), st.integers(-330, 310)).map(
            lambda t: f"{t[0]}.{'7' * t[1] or '0'}e{t[2]}"
        ),
        st.sampled_from(["-0", "-0.0", "0", "1E5", "1e-400", "9007199254740993", "0.1e1"]),
        st.decimals(allow_nan=False, allow_infinity=False, places=6).map(str),
    )


_VALUE = st.one_of(
    _number_text(),
    st.text(max_size=6).map(json.dumps),  # escapes, \\u forms
    st.text(max_size=6).map(lambda t: json.dumps(t, ensure_ascii=False)),
    st.sampled_from(["null", "true", "false", '[1, {"c": "]"}]', '{"x": 1}', "[]"]),
)
_KEY = st.one_of(
    st.sampled_from([*NUMERIC, *CATEGORICAL, "other", "x2", ""]).map(
        lambda k: json.dumps(k, ensure_ascii=False)
    ),
    st.sampled_from(['"\\u0078"', '"\\u00fcn\\u00ef"', json.dumps("ünï")]),  # escaped keys
)
_OBJECT = st.one_of(
    st.lists(st.tuples(_KEY, _VALUE), max_size=8).map(
        lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
    ),
    st.sampled_from(["null", "[]", "3", '"x"', " { } ", '{"x":1,"x":2}']),
)


def _bits(v: float) -> bytes:
    return struct.pack("<d", v)


@settings(max_examples=400, deadline=None)
@given(st.lists(_OBJECT, max_size=10))
def test_rows_read_as_msgspec_reads_them(objects):
    """Each object msgspec takes whole: the same numbers (to the bit), strings and nulls,
    unless the row is handed back (a duplicate or escaped key); each object msgspec's
    typed decoder rejects (or a value of the wrong type): handed back, its row empty."""
    raws = []
    for text in objects:
        try:
            msgspec.json.decode(text)  # only what the line decoder let through as Raw
        except msgspec.DecodeError:
            continue
        raws.append(text.encode())
    numeric, categorical, fallback = feature_objects.read(raws, NAMES, len(NUMERIC))
    cats = [c.to_pylist() for c in categorical]
    for r, raw in enumerate(raws):
        try:
            want = TYPED.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            want = "rejected"
        if want == "rejected" or r in fallback:
            assert want == "rejected" or _ESCAPED_KEY.search(raw) or _duplicate_keys(raw)
            if r in fallback:
                assert np.isnan(numeric[r]).all() and all(c[r] is None for c in cats)
            continue
        values = msgspec.structs.astuple(want) if want is not None else (None,) * 5
        for j in range(len(NUMERIC)):
            v = values[j]
            got = numeric[r, j]
            assert math.isnan(got) if v is None else _bits(got) == _bits(v), (raw, j)
        for j in range(len(CATEGORICAL)):
            assert cats[j][r] == values[len(NUMERIC) + j], (raw, j)


def _duplicate_keys(raw: bytes) -> bool:
    """Whether the object's own keys (not a nested object's) repeat."""
    calls = []
    json.loads(raw, object_pairs_hook=lambda kv: calls.append([k for k, _ in kv]) or {})
    return bool(calls) and len(calls[-1]) != len(set(calls[-1]))


_ESCAPED_KEY = re.compile(rb'"(?:[^"\\]|\\.)*\\(?:[^"\\]|\\.)*"\s*:')


def test_a_number_msgspec_reads_is_read_the_same():
    """Correct rounding where the fast path cannot be exact, and an integer's -0 as 0.0."""
    texts = [
        "0.1", "-0.0", "-0", "1e22", "1e23", "9007199254740993", "123456789012345678901234",
        "2.2250738585072011e-308", "4.9e-324", "1.7976931348623157e308", "0.30000000000000004",
        "1e-400", "-1234.5678e-3", "18446744073709551615", "18446744073709551616",
    ]  # fmt: skip
    raws = [f'{{"x": {t}}}'.encode() for t in texts]
    numeric, _, fallback = feature_objects.read(raws, NAMES, len(NUMERIC))
    assert fallback == []
    for t, got in zip(texts, numeric[:, 0], strict=True):
        want = TYPED.decode(f'{{"x": {t}}}'.encode()).n0
        assert _bits(got) == _bits(want), t


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=6))
def test_any_bytes_are_read_within_bounds(raws):
    """Bytes that were never valid JSON (a caller's bug, not a log's): no crash, no read
    past an item; every row either read or handed back."""
    numeric, categorical, fallback = feature_objects.read(raws, NAMES, len(NUMERIC))
    assert numeric.shape == (len(raws), len(NUMERIC))
    assert all(len(c) == len(raws) for c in categorical)
    assert all(0 <= r < len(raws) for r in fallback)


def test_bad_arguments_are_refused():
    """A buffer too small for the rows is refused before anything is written."""
    from exporter.sources import _feature_json

    offsets, validity = np.zeros((2, 2), np.int32), np.zeros((2, 1), np.uint8)
    with pytest.raises(ValueError, match="numeric"):
        _feature_json.read([b"{}"], NAMES, 3, np.zeros(2), offsets, validity)
    with pytest.raises(ValueError, match="duplicate"):
        feature_objects.read([b"{}"], (b"x", b"x"), 1)


def test_escaped_strings_are_read_as_msgspec_reads_them():
    """Every JSON escape, a surrogate pair, and raw UTF-8, into the categorical column."""
    texts = [
        r'"a\nb"', r'"\"q\""', r'"\\"', r'"\/"', r'"\b\f\r\t"', r'"\u00e9"', r'"\ud83d\ude00"',
        '"é 😀"', r'"x\u0000y"', '""',
    ]  # fmt: skip
    raws = [f'{{"c": {t}}}'.encode() for t in texts]
    _, categorical, fallback = feature_objects.read(raws, NAMES, len(NUMERIC))
    assert fallback == []
    assert categorical[0].to_pylist() == [TYPED.decode(r).c0 for r in raws]
