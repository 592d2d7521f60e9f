"""Predictions waiting for their labels, joined by request id, in bounded memory.

Pending predictions are kept in arrival order: past ``max_pending`` the oldest are evicted,
and those older than ``max_delay`` expire, each counted. A label that arrives before its
prediction (the two logs are read one after the other) waits at most ``LABEL_GRACE``
seconds. Memory: about 150 bytes per pending prediction.
"""

from __future__ import annotations

import time
from collections import Counter

LABEL_GRACE = 300.0


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
            rid = str(rid)
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
