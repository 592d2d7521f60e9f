"""Predictions waiting for their labels, joined by request id, in bounded memory.

Pending predictions are kept in arrival order: past ``max_pending`` the oldest are evicted,
and those older than ``max_delay`` expire, each counted. A label that arrives before its
prediction (the two logs are read one after the other) waits at most ``LABEL_GRACE``
seconds.

Memory is bounded by bytes, not only by count: request ids (and string predictions and
labels) come from data, so one longer than ``MAX_KEY_CHARS`` is replaced by a 128-bit hash
of itself (both sides of the join hash alike, so matches are kept). An entry then costs at
most about ``ENTRY_BYTES`` (measured: tests/unit/hardening/test_join_memory.py), and the
buffer at most ``max_pending`` × that for predictions plus as much for early labels.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter

from exporter.state.versions import bounded_label

LABEL_GRACE = 300.0
MAX_KEY_CHARS = 64
# Upper bound of one pending entry's memory with keys at MAX_KEY_CHARS (dict slot, key,
# tuple, floats, a short version string shared with the slot table).
ENTRY_BYTES = 400


def bounded_key(value):
    """A string from data, at most MAX_KEY_CHARS long (longer: a hash of it); others as is."""
    if isinstance(value, str) and len(value) > MAX_KEY_CHARS:
        digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=16)
        return "#" + digest.hexdigest()
    return value


class JoinBuffer:
    def __init__(self, max_pending: int, max_delay: float, counts: Counter | None = None):
        self.max_pending = max_pending
        self.max_delay = max_delay
        self.label_grace = min(LABEL_GRACE, max_delay)
        # request id -> (arrival, prediction timestamp, version, prediction)
        self.predictions: dict[str, tuple] = {}
        self.labels: dict[str, tuple] = {}  # request id -> (arrival, label)
        self.counts = counts if counts is not None else Counter()

    def add_predictions(self, request_ids, timestamps, versions, predictions, now=None):
        """Store predictions; returns those whose label was already waiting."""
        now = time.time() if now is None else now
        matched = []
        preds, labels = self.predictions, self.labels
        for rid, ts, version, pred in zip(
            request_ids, timestamps, versions, predictions, strict=True
        ):
            if rid is None:
                continue
            rid = bounded_key(str(rid))
            pred = bounded_key(pred)
            version = bounded_label(version) if version else version
            waiting = labels.pop(rid, None)
            if waiting is not None:
                matched.append((float(ts), version, pred, waiting[1]))
                continue
            preds[rid] = (now, float(ts), version, pred)
        self.counts["matched"] += len(matched)
        self._bound(now)
        return matched

    def add_labels(self, request_ids, labels, now=None):
        """Match labels to waiting predictions: [(pred timestamp, version, prediction, label)]."""
        now = time.time() if now is None else now
        matched = []
        preds = self.predictions
        for rid, label in zip(request_ids, labels, strict=True):
            rid, label = bounded_key(rid), bounded_key(label)
            entry = preds.pop(rid, None)
            if entry is None:
                self.labels[rid] = (now, label)
                continue
            matched.append((entry[1], entry[2], entry[3], label))
        self.counts["matched"] += len(matched)
        self._bound(now)
        return matched

    def _bound(self, now: float) -> None:
        preds, labels = self.predictions, self.labels
        while len(preds) > self.max_pending:
            del preds[next(iter(preds))]
            self.counts["evicted"] += 1
        horizon = now - self.max_delay
        while preds:
            rid = next(iter(preds))
            if preds[rid][0] >= horizon:
                break
            del preds[rid]
            self.counts["expired"] += 1
        horizon = now - self.label_grace
        while labels:
            rid = next(iter(labels))
            if labels[rid][0] >= horizon and len(labels) <= self.max_pending:
                break
            del labels[rid]
            self.counts["unmatched_label"] += 1

    def expire(self, now: float | None = None) -> None:
        self._bound(time.time() if now is None else now)
