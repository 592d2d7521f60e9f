"""Feature objects kept raw (one JSON object per record) -> numeric and Arrow columns.

Read by the compiled reader (``_feature_json``, built at install where a C compiler is):
numbers go straight into a float64 matrix and strings into Arrow buffers, with no Python
object per value (docs/scaling.md: the features were ~2 µs of a ~3.9 µs line through
msgspec objects). A row it does not take as msgspec's typed decoder would (a string for a
numeric feature, a duplicate key...) comes back as a *fallback*: empty, for the caller to
read the lenient way. Pure: objects in, columns out.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

try:
    from exporter.sources import _feature_json
except ImportError:  # built without a C compiler: serving_log reads msgspec structs instead
    _feature_json = None

COMPILED = _feature_json is not None


def read(items: list, names: tuple[bytes, ...], n_numeric: int):
    """(numeric rows x n_numeric, [one Arrow string array per categorical name], fallback
    row indices) of ``items`` (msgspec.Raw or bytes: a JSON object or null each, already
    decoded once by msgspec). ``names``: the numeric features' UTF-8 names, then the
    categorical ones'."""
    n, n_categorical = len(items), len(names) - n_numeric
    numeric = np.full((n, n_numeric), np.nan)
    offsets = np.zeros((n_categorical, n + 1), np.int32)
    validity = np.zeros((n_categorical, (n + 7) // 8), np.uint8)
    data, fallback = _feature_json.read(items, names, n_numeric, numeric, offsets, validity)
    categorical = [
        pa.StringArray.from_buffers(
            n, pa.py_buffer(offsets[j]), pa.py_buffer(data[j]), pa.py_buffer(validity[j])
        )
        for j in range(n_categorical)
    ]
    return numeric, categorical, fallback
