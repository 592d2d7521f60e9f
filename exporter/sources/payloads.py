"""Inference request and response bodies -> one row per instance of a batched request.

Two protocols, as KServe's payload logger forwards them (body bytes unchanged):

- v1 (TensorFlow-serving style): ``{"instances": [...]}`` (or ``"inputs"``) and
  ``{"predictions": [...]}``; an instance is an object of named features or a positional
  list (names from ``feature_order``);
- v2, the Open Inference Protocol: ``{"inputs": [{"name", "shape", "datatype", "data"}]}``
  and ``{"outputs": [...]}``; a tensor named after a feature is that column (shape ``[N]``
  or ``[N, 1]``), a ``[N, k]`` tensor is ``k`` columns named by ``feature_order``.

A prediction is the scalar per row; a ``[p0, p1]`` pair for binary classification is the
positive class's probability; more columns are a class (the largest's name from
``classes``, else its index), and for a multiclass model with classes, its scores. Pure:
bytes in, rows out; ``BodyError`` says in one line why a body cannot be read.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec


class BodyError(ValueError):
    """A body that is not a v1 or v2 inference request/response (one line, for the 400)."""


def _decode(body: bytes) -> dict:
    try:
        obj = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BodyError(f"body is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BodyError("body is not a JSON object")
    return obj


def _tensor_rows(tensor: dict) -> tuple[str, list]:
    """An OIP tensor -> (name, one entry per row: a scalar or a list)."""
    name, shape, data = tensor.get("name"), tensor.get("shape"), tensor.get("data")
    if not isinstance(name, str) or not isinstance(shape, list) or not shape:
        raise BodyError("an Open Inference Protocol tensor needs a name and a shape")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BodyError(f"tensor {name!r}: shape {shape!r} is not a list of sizes")
    flat = _flatten(data)
    rows = shape[0]
    width = math.prod(shape[1:]) if len(shape) > 1 else 1
    if len(flat) != rows * width:
        raise BodyError(f"tensor {name!r}: {len(flat)} values for shape {shape}")
    if len(shape) == 1:
        return name, flat
    return name, [flat[i * width : (i + 1) * width] for i in range(rows)]


def _flatten(data: Any) -> list:
    if not isinstance(data, list):
        raise BodyError("tensor data is not a list")
    if not data or not isinstance(data[0], list):
        return data
    out: list = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def request_rows(body: bytes, feature_order: tuple[str, ...] = ()) -> list[dict]:
    """Features of each instance of a v1 or v2 request body."""
    obj = _decode(body)
    inputs = obj.get("instances", obj.get("inputs"))
    if (
        isinstance(inputs, list)
        and inputs
        and isinstance(inputs[0], dict)
        and "datatype" in (inputs[0])
    ):
        return _oip_request(inputs, feature_order)
    if not isinstance(inputs, list):
        raise BodyError('no "instances" or "inputs" list in the request body')
    rows = []
    for instance in inputs:
        if isinstance(instance, dict):
            rows.append(instance)
        elif isinstance(instance, list):
            if len(instance) != len(feature_order):
                raise BodyError(
                    f"an instance of {len(instance)} values, but feature_order names "
                    f"{len(feature_order)}"
                )
            rows.append(dict(zip(feature_order, instance, strict=True)))
        else:
            raise BodyError("an instance is neither an object nor a list")
    return rows


def _oip_request(inputs: list, feature_order: tuple[str, ...]) -> list[dict]:
    """Named tensors are their features; a 2-D tensor's columns are the ``feature_order``
    names no named tensor gave, in order."""
    columns: dict[str, list] = {}
    wide: list[tuple[str, list]] = []
    n = None
    for tensor in inputs:
        if not isinstance(tensor, dict):
            raise BodyError("an Open Inference Protocol input is not an object")
        name, rows = _tensor_rows(tensor)
        if n is not None and len(rows) != n:
            raise BodyError(f"tensor {name!r} has {len(rows)} rows, another {n}")
        n = len(rows)
        if rows and isinstance(rows[0], list) and len(rows[0]) == 1:
            rows = [r[0] for r in rows]
        if rows and isinstance(rows[0], list):
            wide.append((name, rows))
        else:
            columns[name] = rows
    rest = [f for f in feature_order if f not in columns]
    for name, rows in wide:
        width = len(rows[0])
        if width > len(rest):
            raise BodyError(
                f"tensor {name!r} has {width} columns, but feature_order names "
                f"{len(rest)} features no other tensor gives"
            )
        for j, feature in enumerate(rest[:width]):
            columns[feature] = [r[j] for r in rows]
        rest = rest[width:]
    return [{k: v[i] for k, v in columns.items()} for i in range(n or 0)]


def response_values(body: bytes) -> list:
    """The raw output of each instance of a v1 or v2 response body."""
    obj = _decode(body)
    if "predictions" in obj:
        values = obj["predictions"]
        if not isinstance(values, list):
            raise BodyError('"predictions" is not a list')
        return values
    if isinstance(obj.get("outputs"), list) and obj["outputs"]:
        first = obj["outputs"][0]
        if not isinstance(first, dict):
            raise BodyError("an Open Inference Protocol output is not an object")
        return _tensor_rows(first)[1]
    raise BodyError('no "predictions" or "outputs" in the response body')


def response_predictions(body: bytes, binary: bool = True) -> list:
    """The prediction of each instance of a v1 or v2 response body."""
    return [prediction(v, binary) for v in response_values(body)]


def prediction(value: Any, binary: bool, classes: tuple[str, ...] = ()) -> float | str | None:
    """An instance's prediction: the scalar; of a list of probabilities, the positive
    class's (binary) or the class of the largest (named by ``classes`` when it has one
    name per probability, else its index)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, list) and value and all(_is_number(v) for v in value):
        if len(value) == 1:
            return value[0]
        if binary and len(value) == 2:
            return value[1]
        top = max(range(len(value)), key=value.__getitem__)
        return classes[top] if len(classes) == len(value) else str(top)
    return None


def class_scores(values: list, classes: tuple[str, ...]) -> list:
    """Per instance, its class probabilities (a list with one number per class), or None."""
    k = len(classes)
    return [
        v if isinstance(v, list) and len(v) == k and all(_is_number(x) for x in v) else None
        for v in values
    ]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)
