"""Watch a dataset directory for new or changed Parquet files and profile them.

A dataset is a directory of Parquet files, flat or hive-partitioned
(``date=2026-11-25/part-0.parquet``). A **partition** is a file's directory relative to the
dataset root (for flat files, the file itself); partitions are ordered by that path, so
``date=`` partitions sort by date. Files and directories whose names start with ``.`` or
``_`` (``_SUCCESS``, ``_temporary``, ``.part-0.parquet.crc``) are ignored, as Spark and Hive
write them. A file is profiled when it is new or its size or mtime changed; a file that
cannot be read is counted under a reason and retried on its next change.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from exporter.sources.reference import (
    categorical_codes,
    categorical_counts,
    is_categorical_type,
    is_numeric_type,
    iter_batches,
    numeric_column,
)
from exporter.state.datasets import FileProfile
from exporter.state.profiles import (
    MALFORMED,
    MISSING,
    STATUSES,
    ColumnSpecs,
    Profile,
    bin_columns,
    categorical_status,
    profile_rows,
)

# "error": anything else that went wrong profiling the file (details in the log).


class Cancelled(Exception):
    """Profiling stopped on request (shutdown); the file is looked at again next time."""


class FileFailed(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def list_files(root: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        out.extend(
            os.path.join(dirpath, f)
            for f in filenames
            if f.endswith(".parquet") and not f.startswith((".", "_"))
        )
    return sorted(out)


def partition_of(root: str, path: str) -> str:
    rel = os.path.relpath(path, root)
    parent = os.path.dirname(rel)
    return parent if parent else rel


def _schema_problems(schema: pa.Schema, specs: ColumnSpecs) -> dict[str, str]:
    problems = {}
    for spec in specs.numeric:
        if spec.name not in schema.names:
            problems[spec.name] = "missing_column"
        elif not is_numeric_type(schema.field(spec.name).type):
            problems[spec.name] = "wrong_type"
    for spec in specs.categorical:
        if spec.name not in schema.names:
            problems[spec.name] = "missing_column"
        elif not is_categorical_type(schema.field(spec.name).type) and not is_numeric_type(
            schema.field(spec.name).type
        ):
            problems[spec.name] = "wrong_type"
    return problems


def profile_file(
    path: str,
    specs: ColumnSpecs,
    label_specs: ColumnSpecs | None,
    margin: float,
    should_stop=None,
) -> FileProfile:
    """Profile one file over fixed specs; FileFailed with a reason if it cannot be read.

    ``should_stop()`` is asked between batches: True raises Cancelled (a prompt shutdown,
    however long the file)."""
    try:
        if os.path.getsize(path) == 0:
            raise FileFailed("empty", "zero-byte file")
        schema = pq.read_schema(path)
    except FileFailed:
        raise
    except pa.ArrowInvalid as exc:  # no magic bytes, bad footer: truncated or not Parquet
        raise FileFailed("corrupt", str(exc)) from exc
    except OSError as exc:
        raise FileFailed("io_error", str(exc)) from exc
    problems = _schema_problems(schema, specs)
    num = [s for s in specs.numeric if s.name not in problems]
    cat = [s for s in specs.categorical if s.name not in problems]
    usable = ColumnSpecs(tuple(num), tuple(cat))
    label_col = None
    if label_specs is not None:
        spec = (label_specs.numeric or label_specs.categorical)[0]
        label_col = spec.name if spec.name in schema.names else None
    columns = [s.name for s in num] + [s.name for s in cat] + ([label_col] if label_col else [])
    profile = Profile.zeros(specs)
    label = Profile.zeros(label_specs) if label_specs is not None else None
    values = np.zeros((len(specs.numeric) + len(specs.categorical), len(STATUSES)), np.int64)
    num_index = [i for i, s in enumerate(specs.numeric) if s.name not in problems]
    cat_index = [i for i, s in enumerate(specs.categorical) if s.name not in problems]
    rows = 0
    try:
        for batch in iter_batches([path], list(dict.fromkeys(columns))):
            if should_stop is not None and should_stop():
                raise Cancelled(path)
            rows += batch.num_rows
            # Infinities are malformed values, not binned.
            counts, sums, status = bin_columns(
                usable,
                [numeric_column(batch, s.name) for s in num],
                margin,
                infinite_malformed=True,
                compiled=True,
            )
            cat_counts = categorical_counts(usable, batch)
            profile.numeric[num_index, : counts.shape[1]] += counts
            profile.sums[num_index, : sums.shape[1]] += sums
            profile.categorical[cat_index, : cat_counts.shape[1]] += cat_counts
            values[num_index] += status
            values[[len(specs.numeric) + i for i in cat_index]] += categorical_status(
                usable, cat_counts, batch.num_rows
            )
            if label_col is not None:
                label = label + _label_profile(label_specs, batch.column(label_col))
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        raise FileFailed("corrupt", str(exc)) from exc
    except OSError as exc:
        raise FileFailed("io_error", str(exc)) from exc
    for name, problem in problems.items():
        # A missing or wrongly typed column: every row's value is missing for us.
        idx = [s.name for s in specs.numeric + specs.categorical].index(name)
        values[idx, MISSING if problem == "missing_column" else MALFORMED] += rows
    return FileProfile(rows, profile, label, values, problems)


def _label_profile(specs: ColumnSpecs, column: pa.Array) -> Profile:
    if specs.numeric:
        values = column.to_numpy(zero_copy_only=False).astype(float)[:, None]
        return profile_rows(specs, values, np.empty((len(values), 0), np.int64))
    codes = categorical_codes(specs.categorical[0], column)[0][:, None]
    return profile_rows(specs, np.empty((len(codes), 0)), codes)


class DatasetWatcher:
    """Which files of a dataset are new, changed or gone since the last look."""

    def __init__(self, root: str):
        self.root = root
        self.seen: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns), ok or failed

    def changes(self) -> tuple[list[tuple[str, tuple[int, int]]], list[str]]:
        """([(path, (size, mtime_ns)) new or changed], [paths gone])."""
        current = {}
        for path in list_files(self.root):
            try:
                st = os.stat(path)
            except OSError:
                continue
            current[path] = (st.st_size, st.st_mtime_ns)
        changed = [(p, sig) for p, sig in current.items() if self.seen.get(p) != sig]
        gone = [p for p in self.seen if p not in current]
        return changed, gone

    def mark(self, path: str, signature: tuple[int, int]) -> None:
        """Profiled (or failed) as of ``signature``: look again only when it changes."""
        self.seen[path] = signature

    def forget(self, path: str) -> None:
        self.seen.pop(path, None)
