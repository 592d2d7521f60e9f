"""Reference profiles from a model's training Parquet, streamed in bounded memory.

Two passes over ``iter_batches``-sized record batches: the first keeps a bounded uniform
sample of each numeric column (for the quantile edges), exact min/max/mean/std, and the
category counts; the second bins every row exactly on the edges the first chose. Memory is
bounded by the batch size and the sample size, never by the dataset. The result is cached
in ``--state.dir/profiles/`` keyed by the files' paths, sizes and mtimes and the settings,
so a restart does not re-read the data.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from exporter.config import Model
from exporter.state.outcomes import POSITIVE_LABELS
from exporter.state.profiles import (
    FINE_BINS,
    CategoricalSpec,
    ColumnSpecs,
    NumericSpec,
    Profile,
    bin_columns,
    bin_matrix,
)
from exporter.state.reference import ColumnProfile, ReferenceProfile

log = logging.getLogger(__name__)

SAMPLE_SIZE = 100_000
BATCH_ROWS = 65_536
MAX_TRACKED_CATEGORIES = 100_000  # per column in pass 1; beyond it the tail is pruned
CACHE_VERSION = 2
PROFILE_FORMAT = "mlpipe-reference-profile"


class ReferenceError(Exception):
    pass


def is_numeric_type(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def is_categorical_type(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_dictionary(t)
        or pa.types.is_boolean(t)
    )


def parquet_files(path: str) -> list[str]:
    """Files of a glob, a single file, or a directory (recursively, hive partitions too)."""
    path = os.path.expanduser(path)
    if os.path.isdir(path):
        found = glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True)
    else:
        found = glob.glob(path, recursive=True)
    return sorted(f for f in found if os.path.isfile(f))


# A batch holds at most about this many bytes of decoded column data: rows alone do not
# bound memory (a file of long strings can decompress to gigabytes at a few rows a batch).
BATCH_BYTES = 64 << 20


# String columns are read as dictionaries only when their values are short on average:
# a dictionary is built for the whole column chunk, so long unique strings (a "bomb" of
# 1 MB values) would make it as large as the chunk, whatever the batch size.
DICTIONARY_MAX_BYTES_PER_ROW = 256


def _column_bytes_per_row(pf: pq.ParquetFile, columns: list[str]) -> dict[str, float]:
    """Largest uncompressed bytes per row of each column over the row groups."""
    meta = pf.metadata
    wanted = set(columns)
    out: dict[str, float] = {}
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        if not rg.num_rows:
            continue
        for j in range(rg.num_columns):
            col = rg.column(j)
            name = col.path_in_schema.split(".")[0]
            if name in wanted:
                per_row = col.total_uncompressed_size / rg.num_rows
                out[name] = max(out.get(name, 0.0), per_row)
    return out


def iter_batches(files: list[str], columns: list[str], batch_rows: int = BATCH_ROWS):
    """Record batches of ``columns`` from each file in turn, in bounded memory.

    ``pre_buffer=False`` and a read buffer keep one batch's worth of data in memory: with
    pre-buffering (or a dataset scanner's readahead) memory grows with the file. Short
    string columns are read as dictionaries, as Parquet stores them, so categorical values
    are coded once per dictionary, not once per row. Batches are bounded in bytes as well as
    rows (``BATCH_BYTES``, from the row groups' uncompressed sizes).
    """
    for path in files:
        with pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20) as probe:
            schema = probe.schema_arrow
            widths = _column_bytes_per_row(probe, columns)
        strings = [
            c
            for c in columns
            if c in schema.names
            and (
                pa.types.is_string(schema.field(c).type)
                or pa.types.is_large_string(schema.field(c).type)
            )
            and widths.get(c, 0.0) <= DICTIONARY_MAX_BYTES_PER_ROW
        ]
        width = sum(widths.values())
        rows = int(max(1, min(batch_rows, BATCH_BYTES // width))) if width > 0 else batch_rows
        with pq.ParquetFile(
            path, pre_buffer=False, buffer_size=1 << 20, read_dictionary=strings or None
        ) as pf:
            yield from pf.iter_batches(batch_size=rows, columns=columns, use_threads=False)


def count_rows(files: list[str]) -> int:
    total = 0
    for path in files:
        with pq.ParquetFile(path) as pf:
            total += pf.metadata.num_rows
    return total


# --- column selection ------------------------------------------------------------------


def check_references(models) -> list[str]:
    """What ``run`` would only find when it reads the references: a reference without files
    or columns, and a feature numeric in one model and categorical in another (one source
    reads all models' features). Reads only the Parquet schemas (footers), never the data."""
    problems: list[str] = []
    kinds: dict[str, tuple[str, str]] = {}
    for i, model in enumerate(models):
        if model.reference is not None and model.reference.profile is not None:
            try:
                specs = load_profile(model).features.specs
            except ReferenceError as exc:
                problems.append(f"models[{i}].reference.profile: {exc}")
                continue
            numeric = [s.name for s in specs.numeric]
            categorical = [s.name for s in specs.categorical]
        elif model.reference is not None and model.features is None:
            files = parquet_files(model.reference.path)
            if not files:
                problems.append(
                    f"models[{i}].reference.path: no Parquet files match {model.reference.path!r}"
                )
                continue
            try:
                numeric, categorical = select_columns(pq.read_schema(files[0]), model)
            except (OSError, pa.ArrowException, ReferenceError) as exc:
                problems.append(f"models[{i}].reference.path: {files[0]}: {exc}")
                continue
        elif model.features is not None:
            numeric, categorical = model.features.numeric, model.features.categorical
        else:
            continue
        for kind, names in (("numeric", numeric), ("categorical", categorical)):
            for name in names:
                first = kinds.setdefault(name, (kind, model.name))
                if first[0] != kind:
                    problems.append(
                        f"models[{i}]: feature {name!r} is {kind} here but {first[0]} in model "
                        f"{first[1]} (from the references' column types); one source reads "
                        "both, so list it under features with one kind in both models"
                    )
    return problems


def select_columns(schema: pa.Schema, model: Model) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns: from the config, else from the schema."""
    if model.features is not None:
        missing = [
            c
            for c in (*model.features.numeric, *model.features.categorical)
            if c not in schema.names
        ]
        if missing:
            raise ReferenceError(f"model {model.name}: reference has no column {missing[0]!r}")
        return list(model.features.numeric), list(model.features.categorical)
    skip = {model.reference.label, model.reference.prediction}
    numeric = [f.name for f in schema if f.name not in skip and is_numeric_type(f.type)]
    categorical = [f.name for f in schema if f.name not in skip and is_categorical_type(f.type)]
    return numeric, categorical


def as_strings(array: pa.Array) -> pa.Array:
    """Categorical values as strings, the way serving-log values are canonicalised."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_boolean(array.type):
        return pc.if_else(array, "true", "false")
    if pa.types.is_floating(array.type):
        whole = pc.equal(pc.floor(array), array)
        ints = pc.cast(pc.cast(array, pa.int64(), safe=False), pa.string())
        return pc.if_else(whole, ints, pc.cast(array, pa.string()))
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return pc.cast(array, pa.string())
    return array


def categorical_codes(spec: CategoricalSpec, array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Bin codes (-1 for nulls) and statuses of a column of any type, vectorised."""
    return spec.codes_array(_strings(array))


def categorical_counts(specs: ColumnSpecs, batch: pa.RecordBatch) -> np.ndarray:
    """(F_cat, width) bin counts of the batch's categorical columns (of any type)."""
    counts = np.zeros((len(specs.categorical), specs.categorical_width), np.int64)
    for j, spec in enumerate(specs.categorical):
        counts[j, : spec.bins] = spec.counts_array(_strings(batch.column(spec.name)))
    return counts


def _strings(array: pa.Array) -> pa.Array:
    """A column as strings (a dictionary's values converted, its indices kept)."""
    if pa.types.is_dictionary(array.type):
        return pa.DictionaryArray.from_arrays(array.indices, as_strings(array.dictionary))
    return as_strings(array)


def value_counts(array: pa.Array) -> tuple[list, list]:
    """(values as strings, counts) of a column's non-null values."""
    if pa.types.is_dictionary(array.type):
        valid = array.indices.drop_null().to_numpy(zero_copy_only=False)
        counts = np.bincount(valid, minlength=len(array.dictionary))
        values = as_strings(array.dictionary).to_pylist()
        keep = counts > 0
        return [v for v, k in zip(values, keep, strict=True) if k], counts[keep].tolist()
    vc = pc.value_counts(as_strings(array).drop_null())
    return vc.field("values").to_pylist(), vc.field("counts").to_pylist()


def numeric_matrix(batch: pa.RecordBatch, names: list[str]) -> np.ndarray:
    out = np.empty((batch.num_rows, len(names)))
    for j, name in enumerate(names):
        out[:, j] = numeric_column(batch, name)
    return out


def numeric_column(batch: pa.RecordBatch, name: str) -> np.ndarray:
    """A numeric column as float64 (nulls NaN); a view of the batch's buffer where it is
    float64 without nulls."""
    col = batch.column(name)
    if pa.types.is_decimal(col.type):
        col = pc.cast(col, pa.float64())
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=float)


# --- the two passes ----------------------------------------------------------------------


class _Pass1:
    """Sample, moments and category counts of every column."""

    def __init__(self, numeric: list[str], categorical: list[str], rows: int, seed: int = 0):
        self.numeric, self.categorical = numeric, categorical
        self.p = min(1.0, SAMPLE_SIZE / max(rows, 1))
        self.rng = np.random.default_rng(seed)
        self.samples: list[np.ndarray] = []
        n = len(numeric)
        self.low, self.high = np.full(n, np.inf), np.full(n, -np.inf)
        self.count, self.sum, self.sumsq = np.zeros(n), np.zeros(n), np.zeros(n)
        self.counts: list[dict[str, int]] = [{} for _ in categorical]
        self.complete = [True] * len(categorical)

    def add(self, batch: pa.RecordBatch) -> None:
        if self.numeric:
            m = numeric_matrix(batch, self.numeric)
            keep = self.rng.random(len(m)) < self.p
            self.samples.append(m[keep])
            finite = np.isfinite(m)
            if finite.all():  # the common case: no nulls, no infinities
                low, high, z = m.min(axis=0), m.max(axis=0), m
            else:
                low = np.where(finite, m, np.inf).min(axis=0)
                high = np.where(finite, m, -np.inf).max(axis=0)
                z = np.where(finite, m, 0.0)
            self.low = np.minimum(self.low, low)
            self.high = np.maximum(self.high, high)
            self.count += finite.sum(axis=0)
            self.sum += z.sum(axis=0)
            self.sumsq += np.einsum("ij,ij->j", z, z)
        for j, name in enumerate(self.categorical):
            counts = self.counts[j]
            for value, n in zip(*value_counts(batch.column(name)), strict=True):
                counts[value] = counts.get(value, 0) + n
            if len(counts) > MAX_TRACKED_CATEGORIES:
                keep = sorted(counts.items(), key=lambda kv: -kv[1])[: MAX_TRACKED_CATEGORIES // 2]
                self.counts[j] = dict(keep)
                self.complete[j] = False

    def merge(self, other: _Pass1) -> None:
        """Add another part's pass 1 (the Spark builder: one part per partition)."""
        self.samples += other.samples
        self.low, self.high = np.minimum(self.low, other.low), np.maximum(self.high, other.high)
        self.count, self.sum = self.count + other.count, self.sum + other.sum
        self.sumsq = self.sumsq + other.sumsq
        for j, theirs in enumerate(other.counts):
            counts = self.counts[j]
            for value, n in theirs.items():
                counts[value] = counts.get(value, 0) + n
            self.complete[j] = self.complete[j] and other.complete[j]
            if len(counts) > MAX_TRACKED_CATEGORIES:
                keep = sorted(counts.items(), key=lambda kv: -kv[1])[: MAX_TRACKED_CATEGORIES // 2]
                self.counts[j] = dict(keep)
                self.complete[j] = False

    def specs(self, top_k: int) -> ColumnSpecs:
        sample = np.concatenate(self.samples) if self.samples else np.empty((0, len(self.numeric)))
        numeric = []
        for j, name in enumerate(self.numeric):
            n = self.count[j]
            mean = self.sum[j] / n if n else 0.0
            var = max(self.sumsq[j] / n - mean * mean, 0.0) if n else 0.0
            low = self.low[j] if np.isfinite(self.low[j]) else 0.0
            high = self.high[j] if np.isfinite(self.high[j]) else 0.0
            numeric.append(NumericSpec.from_sample(name, sample[:, j], low, high, np.sqrt(var)))
        categorical = [
            CategoricalSpec.from_counts(name, self.counts[j], top_k, self.complete[j])
            for j, name in enumerate(self.categorical)
        ]
        return ColumnSpecs(tuple(numeric), tuple(categorical))


def profile_batch(specs: ColumnSpecs, batch: pa.RecordBatch) -> Profile:
    """Profile one record batch over fixed specs (a reference build's pass 2, on Spark too;
    dataset partitions go through ``datasets.profile_file``)."""
    numeric = [numeric_column(batch, s.name) for s in specs.numeric]
    counts, sums, _ = bin_columns(specs, numeric)
    return Profile(counts, sums, categorical_counts(specs, batch))


def _split(specs: ColumnSpecs, name: str | None) -> tuple[ColumnSpecs, ColumnSpecs | None]:
    """Take column ``name`` out of ``specs`` into its own one-column specs."""
    if name is None:
        return specs, None
    num = tuple(s for s in specs.numeric if s.name != name)
    cat = tuple(s for s in specs.categorical if s.name != name)
    alone = ColumnSpecs(
        tuple(s for s in specs.numeric if s.name == name),
        tuple(s for s in specs.categorical if s.name == name),
    )
    return ColumnSpecs(num, cat), alone


def profile_columns(schema: pa.Schema, model: Model) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns a reference profiles: the features, then the label
    and prediction columns in the kind the model's task gives them."""
    ref = model.reference
    numeric, categorical = select_columns(schema, model)
    classification = model.task != "regression"
    for role, name in (("label", ref.label), ("prediction", ref.prediction)):
        if name is None:
            continue
        if name not in schema.names:
            raise ReferenceError(f"model {model.name}: reference has no {role} column {name!r}")
        as_category = classification and not (role == "prediction" and model.task != "multiclass")
        (categorical if as_category else numeric).append(name)
    for name in ref.scores or ():
        if name not in schema.names:
            raise ReferenceError(f"model {model.name}: reference has no scores column {name!r}")
        if name not in numeric:
            numeric.append(name)
    return numeric, categorical


def build_reference(model: Model, files: list[str] | None = None) -> ReferenceProfile:
    """Stream the reference Parquet twice and return its specs and profiles."""
    ref = model.reference
    files = files if files is not None else parquet_files(ref.path)
    if not files:
        raise ReferenceError(f"model {model.name}: no Parquet files match {ref.path!r}")
    try:
        schema = pq.read_schema(files[0])
    except (pa.ArrowInvalid, OSError) as exc:
        raise ReferenceError(f"model {model.name}: cannot read reference: {exc}") from exc
    numeric, categorical = profile_columns(schema, model)
    columns = [*numeric, *categorical]
    try:
        rows = count_rows(files)
        first = _Pass1(numeric, categorical, rows)
        for batch in iter_batches(files, columns):
            first.add(batch)
        specs = first.specs(model.top_k)
        profile = Profile.zeros(specs)
        calibration = Calibration.for_model(model, specs)
        by_class = ClassCalibration.for_model(model, specs)
        for batch in iter_batches(files, columns):
            profile = profile + profile_batch(specs, batch)
            for part in filter(None, (calibration, by_class)):
                part.add(batch)
    except (pa.ArrowInvalid, OSError, KeyError) as exc:
        raise ReferenceError(f"model {model.name}: cannot read reference: {exc}") from exc
    ref = _assemble(model, specs, profile, rows, files)
    ref.calibration = calibration.positives if calibration is not None else None
    ref.class_calibration = by_class.positives if by_class is not None else None
    return ref


class ClassCalibration:
    """Multiclass: per class, the rows labelled that class per bin of its score column (pass
    2), for the one-vs-rest quality estimate's calibration."""

    def __init__(self, specs: ColumnSpecs, classes: tuple[str, ...], label: str):
        self.specs = specs
        self.classes = pa.array(list(classes))
        self.label = label
        self.positives = np.zeros((len(classes), specs.numeric_width), np.int64)

    @classmethod
    def for_model(cls, model: Model, specs: ColumnSpecs) -> ClassCalibration | None:
        ref = model.reference
        if model.task != "multiclass" or not (ref.label and ref.scores and model.classes):
            return None
        return cls(_score_specs(specs, model), tuple(model.classes), ref.label)

    def add(self, batch: pa.RecordBatch) -> None:
        names = [s.name for s in self.specs.numeric]
        scores = numeric_matrix(batch, names)
        bins = bin_matrix(self.specs, scores)
        label = pc.index_in(as_strings(batch.column(self.label)), value_set=self.classes)
        label = pc.fill_null(label, -1).to_numpy(zero_copy_only=False)
        k, width = self.positives.shape
        hit = (label[:, None] == np.arange(k)) & ~np.isnan(scores)
        flat = (np.arange(k) * width + bins)[hit]
        self.positives += np.bincount(flat, minlength=k * width).reshape(k, width)


class Calibration:
    """Positive labels per prediction-score bin (pass 2), for the quality estimate."""

    def __init__(self, spec: NumericSpec, label: str):
        self.spec = spec
        self.label = label
        self.positives = np.zeros(spec.bins, np.int64)

    @classmethod
    def for_model(cls, model: Model, specs: ColumnSpecs) -> Calibration | None:
        ref = model.reference
        if model.task != "binary_classification" or not (ref.label and ref.prediction):
            return None
        spec = next((s for s in specs.numeric if s.name == ref.prediction), None)
        return cls(spec, ref.label) if spec is not None else None

    def add(self, batch: pa.RecordBatch) -> None:
        scores = numeric_matrix(batch, [self.spec.name])[:, 0]
        labels = as_strings(batch.column(self.label))
        positive = pc.fill_null(pc.is_in(labels, pa.array(sorted(POSITIVE_LABELS))), False)
        ok = ~np.isnan(scores)
        bins = self.spec.bin_index(scores[ok])
        weights = positive.to_numpy(zero_copy_only=False)[ok].astype(np.int64)
        self.positives += np.bincount(bins, weights=weights, minlength=self.spec.bins).astype(
            np.int64
        )


def _take(specs: ColumnSpecs, profile: Profile, sub: ColumnSpecs) -> Profile:
    """The rows of ``profile`` for the columns of ``sub``, in ``sub``'s order, trimmed to
    ``sub``'s widths."""
    num_at = {s.name: i for i, s in enumerate(specs.numeric)}
    cat_at = {s.name: i for i, s in enumerate(specs.categorical)}
    num_idx = [num_at[s.name] for s in sub.numeric]
    cat_idx = [cat_at[s.name] for s in sub.categorical]
    return Profile(
        profile.numeric[num_idx, : sub.numeric_width],
        profile.sums[num_idx, : sub.numeric_width],
        profile.categorical[cat_idx, : sub.categorical_width],
    )


def _assemble(model, specs, profile, rows, files) -> ReferenceProfile:
    scores = _score_specs(specs, model)
    features = specs
    if scores is not None:  # the class scores are not features
        names = {s.name for s in scores.numeric}
        features = ColumnSpecs(
            tuple(s for s in specs.numeric if s.name not in names), specs.categorical
        )
    features, label = _split(features, model.reference.label)
    features, prediction = _split(features, model.reference.prediction)

    def part(sub: ColumnSpecs | None) -> ColumnProfile | None:
        return ColumnProfile(sub, _take(specs, profile, sub)) if sub else None

    ref = ReferenceProfile(part(features), part(prediction), part(label), rows, files)
    # Kept in the order of ``classes`` (``_take`` keeps the specs' own order).
    ref.scores = part(scores)
    ref.hash = profile_hash(ref)
    return ref


def _score_specs(specs: ColumnSpecs, model: Model) -> ColumnSpecs | None:
    """The specs of the reference's class-score columns, in the order of ``classes``."""
    names = model.reference.scores or ()
    if not names:
        return None
    by_name = {s.name: s for s in specs.numeric}
    return ColumnSpecs(tuple(by_name[n] for n in names), ())


def _parts(ref: ReferenceProfile) -> dict[str, ColumnProfile | None]:
    return {
        "features": ref.features,
        "prediction": ref.prediction,
        "label": ref.label,
        "scores": ref.scores,
    }


def profile_hash(ref: ReferenceProfile) -> str:
    """A short digest of the bins and counts (not of file paths or build time): two
    exporters that built or loaded the same reference agree on it."""
    h = hashlib.sha256()
    for key, part in _parts(ref).items():
        if part is None:
            continue
        specs = _specs_to_dict(part.specs)
        for s in specs["numeric"]:
            # Moments summed in another order (Spark's partitions) differ in the last bits.
            s["scale"] = float(f"{s['scale']:.10g}")
        h.update(json.dumps([key, specs], sort_keys=True).encode())
        for arr in (part.profile.numeric, part.profile.categorical):
            h.update(np.ascontiguousarray(arr, np.int64).tobytes())
    return h.hexdigest()[:12]


# --- cache -------------------------------------------------------------------------------


def cache_key(model: Model, files: list[str]) -> str:
    h = hashlib.sha256()
    h.update(
        json.dumps(
            [
                CACHE_VERSION,
                FINE_BINS,
                model.top_k,
                model.task,
                repr(model.features),
                repr(model.reference),
            ]
        ).encode()
    )
    for f in files:
        st = os.stat(f)
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _specs_to_dict(specs: ColumnSpecs) -> dict:
    return {
        "numeric": [
            {
                "name": s.name,
                "edges": s.edges.tolist(),
                "psi_edges": s.psi_edges.tolist(),
                "scale": s.scale,
                "low": s.low,
                "high": s.high,
            }
            for s in specs.numeric
        ],
        "categorical": [
            {
                "name": s.name,
                "values": list(s.values),
                "vocabulary": sorted(s.vocabulary) if s.vocabulary is not None else None,
                "new_value_share": s.new_value_share,
            }
            for s in specs.categorical
        ],
    }


def _specs_from_dict(d: dict) -> ColumnSpecs:
    numeric = []
    for s in d["numeric"]:
        edges, psi_edges = np.array(s["edges"]), np.array(s["psi_edges"])
        groups = np.searchsorted(psi_edges, np.concatenate([[-np.inf], edges]), side="right")
        numeric.append(
            NumericSpec(s["name"], edges, psi_edges, groups, s["scale"], s["low"], s["high"])
        )
    categorical = [
        CategoricalSpec.build(
            s["name"],
            tuple(s["values"]),
            frozenset(s["vocabulary"]) if s["vocabulary"] is not None else None,
            s["new_value_share"],
        )
        for s in d["categorical"]
    ]
    return ColumnSpecs(tuple(numeric), tuple(categorical))


def save_cache(path: str, ref: ReferenceProfile) -> None:
    """Write ``ref`` as a profile file (docs/fleet.md#the-profile-file): the cache under
    ``--state.dir`` and the portable file of ``profile --output`` are this one format."""
    parts = _parts(ref)
    meta = {
        "format": PROFILE_FORMAT,
        "version": CACHE_VERSION,
        "rows": ref.rows,
        "files": ref.files,
        "specs": {k: _specs_to_dict(v.specs) for k, v in parts.items() if v},
    }
    arrays = {}
    for key, part in parts.items():
        if part:
            arrays[f"{key}_numeric"] = part.profile.numeric
            arrays[f"{key}_sums"] = part.profile.sums
            arrays[f"{key}_categorical"] = part.profile.categorical
    if ref.calibration is not None:
        arrays["calibration_positives"] = ref.calibration
    if ref.class_calibration is not None:
        arrays["class_calibration_positives"] = ref.class_calibration
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
    os.replace(tmp, path)


def load_cache(path: str) -> ReferenceProfile:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta.get("version", CACHE_VERSION) != CACHE_VERSION:
            raise ValueError(
                f"profile format version {meta.get('version')}, this exporter reads "
                f"{CACHE_VERSION}: rebuild it with this version's `profile --output`"
            )
        parts = {}
        for key in ("features", "prediction", "label", "scores"):
            if key in meta["specs"]:
                specs = _specs_from_dict(meta["specs"][key])
                profile = Profile(
                    data[f"{key}_numeric"], data[f"{key}_sums"], data[f"{key}_categorical"]
                )
                parts[key] = ColumnProfile(specs, profile)
            else:
                parts[key] = None
        calibration = (
            data["calibration_positives"] if "calibration_positives" in data.files else None
        )
        by_class = (
            data["class_calibration_positives"]
            if "class_calibration_positives" in data.files
            else None
        )
    ref = ReferenceProfile(
        parts["features"], parts["prediction"], parts["label"], meta["rows"], meta["files"]
    )
    ref.scores = parts["scores"]
    ref.hash = profile_hash(ref)
    ref.calibration = calibration
    ref.class_calibration = by_class
    return ref


def load_profile(model: Model) -> ReferenceProfile:
    """The profile file a model names (``reference.profile``), as ReferenceError if bad."""
    path = model.reference.profile
    try:
        return load_cache(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ReferenceError(f"model {model.name}: cannot load profile {path!r}: {exc}") from exc


def load_or_build(model: Model, state_dir: str | None, force: bool = False) -> ReferenceProfile:
    """The model's reference profile: its profile file, or built from the training data
    (from the cache when the files are unchanged)."""
    if model.reference.profile is not None:
        return load_profile(model)
    files = parquet_files(model.reference.path)
    if not files:
        raise ReferenceError(f"model {model.name}: no Parquet files match {model.reference.path!r}")
    path = None
    if state_dir:
        path = os.path.join(state_dir, "profiles", f"{model.name}-{cache_key(model, files)}.npz")
        if not force and os.path.exists(path):
            try:
                return load_cache(path)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("reference cache %s unreadable, rebuilding: %s", path, exc)
    ref = build_reference(model, files)
    if path:
        try:
            save_cache(path, ref)
        except OSError as exc:
            log.error("cannot cache reference profile at %s: %s", path, exc)
    return ref
