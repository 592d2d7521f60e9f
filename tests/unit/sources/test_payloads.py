"""KServe v1 and Open Inference Protocol (v2) bodies -> one row per instance."""

import json

import pytest

from exporter.sources.payloads import (
    BodyError,
    class_scores,
    prediction,
    request_rows,
    response_predictions,
    response_values,
)

ORDER = ("amount", "age", "country")


def body(obj) -> bytes:
    return json.dumps(obj).encode()


def test_v1_instances_named_or_positional():
    named = [{"amount": 1.5, "age": 30, "country": "DE"}, {"amount": 2.0, "country": "FR"}]
    assert request_rows(body({"instances": named}), ORDER) == named
    positional = {"instances": [[1.5, 30, "DE"], [2.0, 41, "FR"]]}
    assert request_rows(body(positional), ORDER) == [
        {"amount": 1.5, "age": 30, "country": "DE"},
        {"amount": 2.0, "age": 41, "country": "FR"},
    ]
    assert request_rows(body({"inputs": [[1, 2, "x"]]}), ORDER)[0]["country"] == "x"


def test_oip_named_wide_flat_and_nested_tensors():
    request = {
        "id": "42",
        "inputs": [
            # A 2-D tensor, data flat (row-major) as the protocol allows...
            {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1.5, 30, 2.0, 41]},
            # ...and a named one, nested [N, 1].
            {"name": "country", "shape": [2, 1], "datatype": "BYTES", "data": [["DE"], ["FR"]]},
        ],
    }
    assert request_rows(body(request), ORDER) == [
        {"country": "DE", "amount": 1.5, "age": 30},
        {"country": "FR", "amount": 2.0, "age": 41},
    ]


@pytest.mark.parametrize(
    ("response", "binary", "want"),
    [
        ({"predictions": [0.2, 0.9]}, True, [0.2, 0.9]),
        ({"predictions": [[0.8, 0.2], [0.1, 0.9]]}, True, [0.2, 0.9]),  # P(positive)
        ({"predictions": [[0.1, 0.7, 0.2]]}, False, ["1"]),  # a class: the largest's index
        ({"predictions": ["cat", True]}, False, ["cat", 1.0]),
        (
            {
                "outputs": [
                    {"name": "p", "shape": [2, 2], "datatype": "FP32", "data": [0.8, 0.2, 0.1, 0.9]}
                ]
            },
            True,
            [0.2, 0.9],
        ),
        (
            {"outputs": [{"name": "y", "shape": [3], "datatype": "FP64", "data": [1, 2, 3]}]},
            False,
            [1, 2, 3],
        ),
    ],
)
def test_predictions(response, binary, want):
    assert response_predictions(body(response), binary) == want


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"nope", "not JSON"),
        (b"[1]", "not a JSON object"),
        (body({"instances": [[1, 2]]}), "feature_order names 3"),
        (body({"rows": []}), 'no "instances" or "inputs"'),
        (
            body(
                {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}
            ),
            "3 values for shape [2, 2]",
        ),
        (
            body(
                {
                    "inputs": [
                        {"name": "a", "shape": [2], "datatype": "FP32", "data": [1, 2]},
                        {"name": "b", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]},
                    ]
                }
            ),
            "has 3 rows, another 2",
        ),
    ],
)
def test_bad_bodies_say_why_in_one_line(raw, message):
    with pytest.raises(BodyError, match=None) as info:
        request_rows(raw, ORDER)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_multiclass_probabilities_name_their_class_and_are_the_scores():
    classes = ("cat", "dog", "bird")
    v1 = body({"predictions": [[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], "bird", [0.5, 0.5]]})
    values = response_values(v1)
    assert [prediction(v, False, classes) for v in values] == ["dog", "cat", "bird", "0"]
    assert class_scores(values, classes) == [[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], None, None]
    # Without classes a probability list is its largest's index, as before.
    assert [prediction(v, False) for v in values[:2]] == ["1", "0"]
    tensor = {"name": "p", "shape": [2, 3], "datatype": "FP32", "data": [0, 1, 0, 1, 0, 0]}
    v2 = body({"outputs": [tensor]})
    assert class_scores(response_values(v2), classes) == [[0, 1, 0], [1, 0, 0]]
