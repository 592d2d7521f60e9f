"""Quota use over time, per member, in time buckets (bounded: about 720 per period)."""

from __future__ import annotations

import math

import numpy as np

from exporter.config import Quota
from exporter.stats.quota import exhaustion_seconds, period_bounds

CUMULATIVE = ("cpu_seconds", "gpu_seconds")


class QuotaLedger:
    """Amounts added at points in time (finished runs' CPU/GPU seconds), by member."""

    def __init__(self, quota: Quota):
        self.quota = quota
        self.members = list(quota.pipelines)
        self.bucket = max(60.0, quota.period / 720)
        self.buckets: dict[int, np.ndarray] = {}

    def add(self, when: float, member: str, amount: float) -> None:
        if member not in self.members or amount <= 0:
            return
        b = math.floor(when / self.bucket)
        row = self.buckets.get(b)
        if row is None:
            row = self.buckets[b] = np.zeros(len(self.members))
        row[self.members.index(member)] += amount

    def _sum(self, start: float, end: float) -> np.ndarray:
        """Per member, the amounts in buckets starting in [start, end] (bucket-granular)."""
        lo, hi = math.floor(start / self.bucket), math.floor(end / self.bucket)
        total = np.zeros(len(self.members))
        for b, row in self.buckets.items():
            if lo <= b <= hi:
                total += row
        return total

    def snapshot(self, now: float) -> dict:
        q = self.quota
        start, end = period_bounds(now, q.period, q.reset)
        by_member = self._sum(start + (self.bucket if q.reset == "rolling" else 0), now)
        used = float(by_member.sum())
        recent = float(self._sum(now - q.forecast_window, now).sum())
        rate = recent / q.forecast_window
        horizon = min(start, now - q.forecast_window) - self.bucket
        for b in [b for b in self.buckets if (b + 1) * self.bucket < horizon]:
            del self.buckets[b]
        return {
            "used": used,
            "members": dict(zip(self.members, by_member.tolist(), strict=True)),
            "rate": rate,
            "exhaustion_seconds": exhaustion_seconds(q.limit, used, rate),
            "period_end": end if q.reset == "calendar" else None,
        }
