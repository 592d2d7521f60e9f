"""Serving-log lines (JSON objects) -> columns, counting every line that cannot be used.

Hot path: a chunk of complete lines is decoded in one call into typed msgspec structs
built from the configured field paths (``jsonlines.decode_lines``), then pulled into numpy
columns. A line that fails the typed decoder costs only itself: it is decoded leniently to
classify its problem (or salvage a record with malformed features). Pure: bytes in,
columns out, no I/O.
"""

from __future__ import annotations

import logging
import math
import operator
import time
from collections import Counter
from itertools import chain, repeat
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from exporter.config import ServingLogFormat
from exporter.sources import feature_objects
from exporter.sources.envelopes import ENVELOPE_TIME
from exporter.sources.jsonlines import DECODE_ERRORS, classify, decode_lines, split_lines
from exporter.sources.timestamps import timestamps
from exporter.state.batches import InvalidSample, ParsedBatch

log = logging.getLogger(__name__)

ROLES = ("timestamp", "model", "version", "request_id", "latency", "status", "prediction")
# ``fields.features: "."``: the features are the record's own top-level fields (BentoML's
# monitor logs).
ROOT = "."
# A latency outside [0, this] is not a serving latency (a clock step, a unit mix-up, 1e308):
# the request still counts, its latency is not observed and is counted as rejected.
MAX_LATENCY_SECONDS = 86_400.0


def _path_tree(paths: dict[str, str]) -> dict:
    """{"meta.model": role} -> nested {"meta": {"model": role}}."""
    tree: dict = {}
    for role, path in paths.items():
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"field path {path!r} conflicts with another field")
        node[parts[-1]] = role
    return tree


class ServingLogParser:
    """Parses chunks of serving-log lines for the configured models and features."""

    def __init__(
        self,
        fmt: ServingLogFormat,
        models: list[str],
        numeric: list[str] = (),
        categorical: list[str] = (),
        model: str | None = None,
        version: str | None = None,
        envelope: bool = False,
        arrival_time: bool = False,
        feature_order: tuple[str, ...] = (),
        model_columns: list | None = None,
        scores: bool = False,
        request_ids: bool = True,
    ):
        """``model``/``version``: constants for every record (the lines carry no such field);
        ``envelope``: a container runtime's time may stand in for a missing timestamp (the
        envelope spliced it in); ``arrival_time``: the parse time does (pushed records);
        ``scores``: read each record's class probabilities (a multiclass model estimates
        its quality from them); ``request_ids``: read each record's request id (a model
        joins labels to it), else every record's is None."""
        self.fmt = fmt
        self.model_index = {name: i for i, name in enumerate(models)}
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.constant_model = model
        self.constant_version = version
        self.envelope = envelope
        self.arrival_time = arrival_time
        self.time_optional = envelope or arrival_time
        # Features as a positional array, named in this order (read on the lenient path: the
        # typed decoder takes an object).
        self.feature_order = tuple(feature_order)
        # Per model (by index): its features' columns in the union, or None (no features).
        # Given, the batch carries each model's own feature block instead of the union's.
        self.model_columns = model_columns
        self._feature_getters: dict = {}
        # Models whose features mostly differ: their union would be thousands of columns,
        # every line decoded against all of them. Then a line's features stay raw JSON,
        # decoded per model against that model's own columns only. Not for features at the
        # top level (``fields.features: "."``): they are the record's own fields, with no
        # object of their own to keep raw.
        widest = max((len(n) + len(c) for n, c in filter(None, model_columns or ())), default=0)
        self.raw_features = (
            bool(model_columns)
            and fmt.fields.features != ROOT
            and len(self.numeric) + len(self.categorical) > 2 * max(widest, 1)
        )
        # With the compiled reader built, a features object always stays raw and is read
        # into columns in C (~0.5 against ~2 µs a line of 30 features). Not positional
        # features: a list of the wrong length drops its line (``_lenient``), which a
        # reader of the features alone cannot do.
        self.compiled_features = (
            feature_objects.COMPILED
            and fmt.fields.features != ROOT
            and not self.feature_order
            and bool(self.numeric or self.categorical)
        )
        self.features_raw = self.raw_features or self.compiled_features
        if (self.numeric or self.categorical) and not feature_objects.COMPILED:
            log.warning(
                "the compiled feature reader is not built (no C compiler at install): "
                "features are read through msgspec objects, about half the lines a second"
            )
        self._raw_decoders: dict = {}
        self._feature_names: dict = {}
        self.latency_scale = 0.001 if fmt.latency_unit == "ms" else 1.0
        self.error_statuses = {s.lower() for s in fmt.error_statuses}
        fields = fmt.fields
        paths = {role: getattr(fields, role) for role in ROLES}
        if model is not None:
            del paths["model"]
        if version is not None:
            del paths["version"]
        if not request_ids:
            del paths["request_id"]
        if envelope:
            paths["envelope_time"] = ENVELOPE_TIME
        if scores:
            paths["scores"] = fields.scores
        self.features_at_root = fields.features == ROOT
        if (self.numeric or self.categorical) and not self.features_at_root:
            paths["features"] = fields.features
        self._paths = {role: path.split(".") for role, path in paths.items()}
        if envelope:
            self._paths["envelope_time"] = [ENVELOPE_TIME]
        record_type, self._getters = self._build_types(paths)
        self._one = msgspec.json.Decoder(record_type)

    # --- typed decoders, built from the field paths ---------------------------------------

    def _build_types(self, paths: dict[str, str]):
        typed = {
            "timestamp": str | float,
            "model": str,
            "version": str | int | None,
            "request_id": str | int | None,
            "latency": float | None,
            "status": str | int | None,
            "prediction": float | str | None,
            "envelope_time": str | None,
            "scores": list[float] | dict[str, float] | None,
        }
        feature_spec, feature_rename = self._feature_fields(
            range(len(self.numeric)), range(len(self.categorical))
        )
        defaults: dict = {}
        if "features" in paths and self.features_raw:
            typed["features"] = msgspec.Raw
            defaults["features"] = msgspec.Raw(b"null")
        elif "features" in paths:
            features = msgspec.defstruct("Features", feature_spec, rename=feature_rename, gc=False)
            typed["features"] = features | None
        required = {"timestamp", "model"} & set(paths)
        if self.time_optional:
            typed["timestamp"] = str | float | None
            required.discard("timestamp")
        getters: dict[str, str] = {}
        counter = iter(range(10_000))

        def build(tree: dict, prefix: str) -> type:
            spec, rename = [], {}
            for key, sub in tree.items():
                attr = f"f{next(counter)}"
                rename[attr] = key
                if isinstance(sub, dict):
                    child = build(sub, f"{prefix}{attr}.")
                    optional = not any(
                        getters.get(r, "").startswith(f"{prefix}{attr}.") for r in required
                    )
                    spec.append((attr, child | None, None) if optional else (attr, child))
                else:
                    getters[sub] = prefix + attr
                    if sub in required:
                        spec.append((attr, typed[sub]))
                    else:
                        spec.append((attr, typed[sub], defaults.get(sub)))
            if not prefix and self.features_at_root and (self.numeric or self.categorical):
                spec.extend(feature_spec)
                rename |= feature_rename
            # Required fields first: msgspec wants those without defaults before the rest.
            spec.sort(key=lambda s: len(s) == 3)
            return msgspec.defstruct("Record", spec, rename=rename, gc=False)

        record = build(_path_tree(paths), "")
        result = {role: _getter(path) for role, path in getters.items()}
        if self.features_at_root:
            result["features"] = _itself
        return record, result

    def _feature_fields(self, num_idx, cat_idx) -> tuple[list, dict]:
        """Struct fields (n<i>: float, c<i>: str, i the union's index) and their JSON names,
        for the union's columns ``num_idx``/``cat_idx``."""
        spec = [(f"n{i}", float | None, None) for i in num_idx]
        spec += [(f"c{i}", str | None, None) for i in cat_idx]
        rename = {f"n{i}": self.numeric[i] for i in num_idx}
        rename |= {f"c{i}": self.categorical[i] for i in cat_idx}
        return spec, rename

    # --- parsing -------------------------------------------------------------------------

    def parse(self, data: bytes, oversized: int = 0) -> ParsedBatch:
        """Parse complete ``\\n``-terminated lines."""
        slow: list[tuple] = []
        invalid: Counter = Counter()
        ignored: Counter = Counter()
        sample = InvalidSample()

        rejected: list[bytes] = []  # non-blank lines not decoded, in order
        handed = [0]  # lines decode_lines handed to on_bad (blank ones too)

        def on_bad(line: bytes, exc: Exception | None) -> None:
            handed[0] += 1
            if line.strip():
                rejected.append(line)
            if self.envelope and not line.lstrip().startswith(b"{"):
                # A container's other output (an access log beside the JSON records): not
                # corrupt input, counted apart.
                ignored["not_json_payload"] += 1
                return
            if isinstance(exc, UnicodeDecodeError):
                sample.keep(line, classify(invalid, exc))
                return
            before = invalid.copy()
            record = self._lenient(line, invalid)
            if record is not None:
                slow.append(record)
            elif sample.line is None:
                sample.keep(line, next(iter(invalid - before), "invalid"))

        fast = decode_lines(data, self._one, on_bad)
        if oversized:
            invalid["too_long"] += oversized
        batch = self._columns(fast, slow, invalid)
        # Every line is a record or handed to on_bad (decode_lines), so no count of the
        # data's newlines again: that was a pass over the whole step's bytes.
        batch.lines = len(fast) + handed[0] + oversized
        batch.ignored = ignored
        dropped = batch.first_dropped
        if dropped is not None and dropped[0] < len(fast):
            sample.keep_found(lambda: decoded_line(data, rejected, dropped[0]), dropped[1])
        batch.sample = sample
        return batch

    def _get(self, obj: Any, role: str) -> tuple[bool, Any]:
        if role not in self._paths:
            return False, None
        for part in self._paths[role]:
            if not isinstance(obj, dict) or part not in obj:
                return False, None
            obj = obj[part]
        return True, obj

    def _lenient(self, line: bytes, invalid: Counter) -> tuple | None:
        """Classify a line the typed decoder rejected; a usable record or None (counted)."""
        try:
            obj = msgspec.json.decode(line)
        except DECODE_ERRORS:
            invalid["not_json"] += 1
            return None
        if not isinstance(obj, dict):
            invalid["not_json"] += 1
            return None
        values = {}
        for role in (*ROLES, "envelope_time", "scores"):
            values[role] = self._get(obj, role)[1]
        values["scores"] = _scores_or_none(values["scores"])
        if self.constant_model is not None:
            values["model"] = self.constant_model
        if self.constant_version is not None:
            values["version"] = self.constant_version
        if values["model"] is None or (values["timestamp"] is None and not self.time_optional):
            invalid["missing_field"] += 1
            return None
        if not isinstance(values["envelope_time"], str | type(None)):
            values["envelope_time"] = None
        checks = {
            "model": (str,),
            "version": (str, int, type(None)),
            "latency": (int, float, type(None)),
            "status": (str, int, type(None)),
            "timestamp": (str, int, float, type(None)) if self.time_optional else (str, int, float),
        }
        for role, types_ in checks.items():
            value = values[role]
            if not isinstance(value, types_) or (isinstance(value, bool) and role != "status"):
                invalid["wrong_type"] += 1
                return None
        if isinstance(values["status"], bool):
            invalid["wrong_type"] += 1
            return None
        rid = values["request_id"]
        values["request_id"] = (
            rid if isinstance(rid, str | int) and not isinstance(rid, bool) else None
        )
        pred = values["prediction"]
        if isinstance(pred, bool) or not isinstance(pred, int | float | str):
            values["prediction"] = None
        if self.features_at_root:
            features = obj
        else:
            _, features = self._get(obj, "features")
        if isinstance(features, list) and self.feature_order:
            if len(features) != len(self.feature_order):
                invalid["wrong_type"] += 1
                return None
            features = dict(zip(self.feature_order, features, strict=True))
        if self.features_raw:
            # Features are read from the raw object (``_block``), not here.
            features = msgspec.json.encode(features) if features is not None else b"null"
            return (values, features, None, None, None)
        return (values, *_feature_values(features, self.numeric, self.categorical))

    # --- columns -------------------------------------------------------------------------

    def _is_error(self, status: Any) -> bool:
        """Whether a status is an error (judged once per distinct status of a batch)."""
        if status is None:
            return False
        if isinstance(status, int):
            return status >= 500
        low = status.strip().lower()
        return low in self.error_statuses or (low.isdigit() and int(low) >= 500)

    def _block(self, feats, n_fast, slow, positions, num_idx, cat_idx):
        """(numeric, numeric malformed, categorical, categorical malformed) of the union's
        columns ``num_idx``/``cat_idx`` for the records at ``positions`` (None: every
        record; indices past the ``n_fast`` typed records are slow ones). ``feats`` None:
        no record has features."""
        total = n_fast + len(slow)
        n = total if positions is None else len(positions)
        k_num, k_cat = len(num_idx), len(cat_idx)
        if feats is None and not slow:
            missing = pa.nulls(n, pa.string())
            return np.full((n, k_num), np.nan), None, [missing] * k_cat, None
        num_idx, cat_idx = tuple(num_idx), tuple(cat_idx)
        if self.features_raw:
            if positions is None:
                raws = [*feats, *(s[1] for s in slow)] if slow else feats
            elif not slow:
                raws = list(map(feats.__getitem__, positions.tolist()))
            else:
                raws = [feats[p] if p < n_fast else slow[p - n_fast][1] for p in positions.tolist()]
            if self.compiled_features:
                return self._read_compiled(raws, num_idx, cat_idx)
            items, lenient = self._raw_items(raws, num_idx, cat_idx)
            return self._assemble(items, lenient, num_idx, cat_idx, whole=True)
        if positions is None:
            head, tail = feats or [], slow
        else:
            # Python ints: indexing a list by numpy's costs ~60 ns an item more.
            cut = int(np.searchsorted(positions, n_fast))
            head = list(map(feats.__getitem__, positions[:cut].tolist())) if feats else []
            tail = [slow[p - n_fast] for p in positions[cut:].tolist()]
        # A slow line's values are laid out over the union: these columns of them.
        lenient = [
            _Lenient(
                [s[1][i] for i in num_idx],
                [s[2][i] for i in num_idx],
                [s[3][i] for i in cat_idx],
                [s[4][i] for i in cat_idx],
            )
            for s in tail
        ]
        # Whole: the Features struct of every column; not the record itself (features at
        # the top level), whose other fields are the timestamp, the model...
        whole = positions is None and not self.features_at_root
        items = [*head, *lenient] if lenient else head
        return self._assemble(items, range(len(head), len(items)), num_idx, cat_idx, whole)

    def _raw_decoder(self, num_idx: tuple, cat_idx: tuple):
        """The typed decoder of a raw features object against these columns only."""
        key = (num_idx, cat_idx)
        decoder = self._raw_decoders.get(key)
        if decoder is None:
            spec, rename = self._feature_fields(num_idx, cat_idx)
            struct = msgspec.defstruct("ModelFeatures", spec, rename=rename, gc=False)
            decoder = self._raw_decoders[key] = msgspec.json.Decoder(struct | None)
        return decoder

    def _raw_items(self, raws: list, num_idx: tuple, cat_idx: tuple):
        """Raw feature objects decoded against these columns only: one decode of them all;
        a record with a malformed value read leniently, in its place. (Items, the indices
        of those read leniently.)"""
        decoder = self._raw_decoder(num_idx, cat_idx)
        try:
            items = decoder.decode_lines(b"\n".join(raws) + b"\n")
        except DECODE_ERRORS:
            items = None
        if items is not None and len(items) == len(raws):
            return items, ()
        items = [self._raw_one(decoder, raw, num_idx, cat_idx) for raw in raws]
        return items, [k for k, item in enumerate(items) if type(item) is _Lenient]

    def _read_compiled(self, raws: list, num_idx: tuple, cat_idx: tuple):
        """(numeric, numeric malformed, categorical, categorical malformed) of raw feature
        objects, by the compiled reader; a row it leaves to Python (a malformed value, a
        duplicate or escaped key) read as ``_raw_items`` reads it, in its place."""
        key = (num_idx, cat_idx)
        names = self._feature_names.get(key)
        if names is None:
            names = tuple(
                [self.numeric[i].encode() for i in num_idx]
                + [self.categorical[i].encode() for i in cat_idx]
            )
            self._feature_names[key] = names
        k_num, k_cat = len(num_idx), len(cat_idx)
        numeric, categorical, fallback = feature_objects.read(raws, names, k_num)
        if not fallback:
            return numeric, None, categorical, None
        decoder = self._raw_decoder(num_idx, cat_idx)
        num_bad = np.zeros((len(raws), k_num), bool)
        cat_bad = np.zeros((len(raws), k_cat), bool)
        patched: list[tuple] = []  # each fallback row's categorical values, in row order
        for r in fallback:
            item = self._raw_one(decoder, raws[r], num_idx, cat_idx)
            if item is None:  # a null object: no features (the reader takes those itself)
                num, cat = (), (None,) * k_cat
            elif type(item) is _Lenient:
                num, cat = item.num, item.cat
                num_bad[r], cat_bad[r] = item.num_bad, item.cat_bad
            else:
                row = msgspec.structs.astuple(item)
                num, cat = row[:k_num], row[k_num:]
            if num:
                numeric[r] = [math.nan if v is None else v for v in num]
            patched.append(cat)
        if k_cat:
            columns = zip(*patched, strict=True)
            categorical = [
                _replace_rows(c, fallback, pa.array(v, pa.string()))
                for c, v in zip(categorical, columns, strict=True)
            ]
        # Malformed flags only where a row was read leniently, as ``_assemble`` gives them.
        return (
            numeric,
            num_bad if num_bad.any() else None,
            categorical,
            cat_bad if cat_bad.any() else None,
        )

    def _assemble(self, items: list, lenient, num_idx: tuple, cat_idx: tuple, whole=False):
        """(numeric, numeric malformed, categorical, categorical malformed) of records given
        as typed structs (attributes n<i>/c<i>), None (no features) or _Lenient (values and
        malformed flags over these columns, in order), those at indices ``lenient``.
        ``whole``: a struct's fields are these columns, in order."""
        n, k_num, k_cat = len(items), len(num_idx), len(cat_idx)
        lenient = list(lenient)
        typed = items if not lenient else [None if type(i) is _Lenient else i for i in items]
        # Whole: the struct's fields as a tuple, read from its slots: 50 against 81 µs for
        # 67 records of 50 features by attribute names (a model of 100 in one log).
        getter = msgspec.structs.astuple if whole else self._getter_for(num_idx, cat_idx)
        if k_num and not k_cat and not lenient:
            try:  # straight from the structs, one pass (0.54 against 0.66 µs a line of 50
                # features), no row kept; a null or a record without features: below
                values = chain.from_iterable(map(getter, typed))
                numeric = np.fromiter(values, float, n * k_num).reshape(n, k_num)
                return numeric, None, [], None
            except (TypeError, AttributeError):
                pass
        try:
            rows = list(map(getter, typed))
        except (TypeError, AttributeError):  # a record without features (None)
            empty = (None,) * (k_num + k_cat)
            rows = [getter(f) if f is not None else empty for f in typed]
        for k in lenient:
            rows[k] = (*items[k].num, *items[k].cat)
        numeric, num_bad, categorical, cat_bad = np.empty((n, 0)), None, [], None
        if k_num and k_cat:
            # Numbers and strings in one row: an object array of references (no conversion),
            # then each kind of column in one call (1.13 -> 1.0 µs a line at 20 numeric +
            # 10 categorical features).
            table = np.array(rows, dtype=object).reshape(n, k_num + k_cat)
            numeric = table[:, :k_num].astype(float)
            categorical = [pa.array(table[:, k_num + j], pa.string()) for j in range(k_cat)]
        elif k_num:
            # Here a record read leniently or without features, or a null: np.array reads
            # None as NaN (the one-pass np.fromiter above cannot).
            numeric = np.array(rows, dtype=float).reshape(n, k_num)
        elif k_cat:
            # Transposed in C, a tuple per column; one Arrow array each.
            columns = zip(*rows, strict=True) if n else [()] * k_cat
            categorical = [pa.array(c, pa.string()) for c in columns]
        if lenient and k_num:
            num_bad = np.zeros((n, k_num), bool)
            num_bad[lenient] = [items[k].num_bad for k in lenient]
        if lenient and k_cat:
            cat_bad = np.zeros((n, k_cat), bool)
            cat_bad[lenient] = [items[k].cat_bad for k in lenient]
        return numeric, num_bad, categorical, cat_bad

    def _raw_one(self, decoder, raw, num_idx: tuple, cat_idx: tuple):
        try:
            return decoder.decode(raw)
        except DECODE_ERRORS:
            pass
        try:
            obj = msgspec.json.decode(raw)
        except DECODE_ERRORS:
            obj = None
        names = ([self.numeric[i] for i in num_idx], [self.categorical[i] for i in cat_idx])
        return _Lenient(*_feature_values(obj, *names))

    def _getter_for(self, num_idx: tuple, cat_idx: tuple):
        """A function giving a struct's values of these columns as one tuple, numeric
        columns first."""
        key = (num_idx, cat_idx)
        getter = self._feature_getters.get(key)
        if getter is None:
            names = [f"n{i}" for i in num_idx] + [f"c{i}" for i in cat_idx]
            getter = _tuples(operator.attrgetter(*names), len(names))
            self._feature_getters[key] = getter
        return getter

    def _columns(self, fast: list, slow: list[tuple], invalid: Counter) -> ParsedBatch:
        g = self._getters
        n = len(fast) + len(slow)
        batch = ParsedBatch(invalid=invalid)
        if n == 0:
            return batch

        def col(role: str) -> list:
            getter = g.get(role)
            head = list(map(getter, fast)) if getter else [None] * len(fast)
            return head + [s[0][role] for s in slow]

        if self.constant_model is not None:
            model = np.full(n, self.model_index.get(self.constant_model, -1), np.int32)
        else:
            models = col("model")
            model = np.fromiter(map(self.model_index.get, models, repeat(-1)), np.int32, n)
        keep = model >= 0
        unknown = int(n - keep.sum())
        if unknown:
            invalid["unknown_model"] += unknown
        stamps = col("timestamp")
        if self.time_optional and None in stamps:
            # The payload's own time first, else the container runtime's, else arrival.
            fallback = col("envelope_time") if self.envelope else [None] * n
            now = time.time()
            stamps = [
                s if s is not None else (f if f is not None else now)
                for s, f in zip(stamps, fallback, strict=True)
            ]
        timestamp, ts_ok = timestamps(stamps)
        bad_ts = int((keep & ~ts_ok).sum())
        if bad_ts:
            invalid["bad_timestamp"] += bad_ts
        keep &= ts_ok
        if not keep.all():
            first = int(np.argmin(keep))
            batch.first_dropped = (first, "unknown_model" if model[first] < 0 else "bad_timestamp")
        latency = np.array(col("latency"), dtype=float) * self.latency_scale
        with np.errstate(invalid="ignore"):
            odd = ~np.isnan(latency) & ~((latency >= 0) & (latency <= MAX_LATENCY_SECONDS))
        if odd.any():
            latency[odd] = np.nan
            rejected_latency = odd & keep
            if rejected_latency.any():
                batch.rejected["latency"] += int(rejected_latency.sum())
        statuses = col("status")
        # A status's verdict once per distinct status of the batch, not once per record.
        verdict = {status: self._is_error(status) for status in set(statuses)}
        error = np.fromiter(map(verdict.__getitem__, statuses), bool, n)
        if self.constant_version is not None:
            versions = [self.constant_version] * n
        else:
            versions = ["" if v is None else str(v) for v in col("version")]
        numeric = np.empty((n, len(self.numeric)))
        num_bad = cat_bad = None
        categorical: list = []
        feats = None
        if self.numeric or self.categorical:
            feats = list(map(g["features"], fast))
            if not slow and not self.features_raw and feats.count(None) == len(feats):
                feats = None  # a serving-only log: no feature anywhere
            if self.model_columns is None:
                everything = (range(len(self.numeric)), range(len(self.categorical)))
                numeric, num_bad, categorical, cat_bad = self._block(
                    feats, len(fast), slow, None, *everything
                )
        rid = col("request_id")
        pred = col("prediction")
        scores = col("scores") if "scores" in self._paths else None
        idx = None
        if not keep.all():
            idx = np.flatnonzero(keep)
            model, timestamp, latency, error = model[idx], timestamp[idx], latency[idx], error[idx]
            if self.model_columns is None:
                numeric = numeric[idx]
                num_bad = num_bad[idx] if num_bad is not None else None
                cat_bad = cat_bad[idx] if cat_bad is not None else None
                taken = pa.array(idx)
                categorical = [c.take(taken) for c in categorical]
            versions = [versions[i] for i in idx]
            rid = [rid[i] for i in idx]
            pred = [pred[i] for i in idx]
            scores = [scores[i] for i in idx] if scores is not None else None
        if self.model_columns is not None and (self.numeric or self.categorical):
            # Each model's own features for its own records: the cost of a line does not
            # grow with the other models' features (the union of 100 models' is thousands).
            origin = idx if idx is not None else np.arange(len(model))
            for m in np.unique(model):
                columns = self.model_columns[m]
                if columns is None:
                    continue
                positions = origin[model == m]
                batch.blocks[int(m)] = self._block(feats, len(fast), slow, positions, *columns)
        batch.model, batch.timestamp, batch.latency, batch.error = model, timestamp, latency, error
        batch.version, batch.request_id, batch.prediction = versions, rid, pred
        batch.scores = scores
        batch.numeric, batch.numeric_malformed = numeric, num_bad
        batch.categorical, batch.categorical_malformed = categorical, cat_bad
        return batch


def decoded_line(data: bytes, rejected: list[bytes], index: int) -> bytes | None:
    """The line of ``data`` that decoded into record ``index``: records are the lines in
    order, less blank ones and those the decoder ``rejected`` (in order)."""
    j = 0
    for line in split_lines(data):
        if not line.strip():
            continue
        if j < len(rejected) and line == rejected[j]:
            j += 1
            continue
        if index == 0:
            return line
        index -= 1
    return None


class _Lenient:
    """A raw feature object read leniently: values and malformed flags, per model column."""

    __slots__ = ("cat", "cat_bad", "num", "num_bad")

    def __init__(self, num, num_bad, cat, cat_bad):
        self.num, self.num_bad, self.cat, self.cat_bad = num, num_bad, cat, cat_bad


def _feature_values(features: Any, numeric: list[str], categorical: list[str]) -> tuple:
    """(numeric values, malformed flags, categorical values, malformed flags) of a decoded
    features object, leniently: a value of the wrong type is malformed, not a lost line."""
    features = features if isinstance(features, dict) else {}
    num, num_bad = [], []
    for name in numeric:
        v = features.get(name)
        if v is None:
            num.append(math.nan), num_bad.append(False)
        elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            num.append(float(v)), num_bad.append(False)
        else:
            num.append(math.nan), num_bad.append(True)
    cat, cat_bad = [], []
    for name in categorical:
        v = features.get(name)
        if v is None or isinstance(v, str):
            cat.append(v), cat_bad.append(False)
        elif isinstance(v, bool):
            cat.append("true" if v else "false"), cat_bad.append(False)
        elif isinstance(v, int):
            cat.append(str(v)), cat_bad.append(False)
        else:
            cat.append(None), cat_bad.append(True)
    return num, num_bad, cat, cat_bad


def _replace_rows(column: pa.Array, rows: list[int], values: pa.Array) -> pa.Array:
    """``column`` with its ``rows`` (ascending) replaced by ``values``, in order: the
    slices between them joined, a copy of the buffers. Not every row made a Python string
    and back (1.2 ms a column of 12 000), nor Arrow's replace_with_mask (160 µs): a
    malformed value costs its line, not its batch."""
    pieces, after = [], 0
    for k, row in enumerate(rows):
        pieces += [column.slice(after, row - after), values.slice(k, 1)]
        after = row + 1
    pieces.append(column.slice(after))
    return pa.concat_arrays(pieces)


def _scores_or_none(value: Any) -> list | dict | None:
    """Class probabilities read leniently: a list or object of numbers, else none (the
    record still counts; its quality estimate input is missing)."""

    def number(v):
        return isinstance(v, int | float) and not isinstance(v, bool)

    if isinstance(value, list) and all(map(number, value)):
        return value
    if isinstance(value, dict) and all(map(number, value.values())):
        return value
    return None


def _tuples(getter, k: int):
    """``getter`` as a function that always returns a k-tuple (attrgetter of one attribute
    returns the value itself)."""
    if k == 1:
        return lambda obj: (getter(obj),)
    return getter


def _itself(obj):
    return obj


def _getter(path: str):
    """attrgetter for a field path; a nested path yields None where a parent is absent."""
    if "." not in path:
        return operator.attrgetter(path)
    parts = path.split(".")

    def get(obj):
        for part in parts:
            if obj is None:
                return None
            obj = getattr(obj, part)
        return obj

    return get
