"""Serving capacity from observed traffic: Little's law. Pure functions.

    peak_qps     = p99 of the request rate per interval (intervals with none count as 0):
                   per second offline (``estimate``), per window bucket in the exporter
    concurrency  = peak_qps * mean latency                 (Little's law: L = lambda * W)
    replicas     = ceil(concurrency * (1 + headroom) / (replica_concurrency * utilisation))

``replica_concurrency`` is how many requests one replica serves at once (its workers or
batch slots); ``utilisation`` the target share of that capacity to run at (0.7 leaves room
for bursts shorter than a second); ``headroom`` the growth to provision for.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class CapacityEstimate:
    requests: int
    seconds: float
    mean_qps: float
    peak_qps: float
    mean_latency_seconds: float
    p99_latency_seconds: float
    concurrency: float
    replicas: int
    replica_concurrency: float
    target_utilization: float
    headroom: float

    def as_dict(self) -> dict:
        return asdict(self)


def replicas_for(
    concurrency: float, replica_concurrency: float, utilization: float, headroom: float
) -> int:
    needed = concurrency * (1 + headroom) / (replica_concurrency * utilization)
    return max(1, math.ceil(needed - 1e-9))


def per_second_counts(timestamps: np.ndarray) -> np.ndarray:
    """Requests in each whole second from the first to the last, zeros included."""
    seconds = np.floor(timestamps).astype(np.int64)
    return np.bincount(seconds - seconds.min())


def peak_rate(counts: np.ndarray, interval_seconds: float) -> float:
    """Peak request rate: the p99 of the per-interval counts, per second. The one definition
    the exporter (intervals = window buckets) and ``estimate-capacity`` (seconds) share."""
    return quantile(counts, 0.99) / interval_seconds


def quantile(values: np.ndarray, q: float) -> float:
    """``np.quantile(values, q)`` (its default, linear interpolation), bit for bit, without
    its ~0.2 ms of set-up: a statistics pass takes it once per model (tests/unit/stats)."""
    ordered = np.sort(values, kind="stable")
    h = q * (len(ordered) - 1)
    low = math.floor(h)
    a, b = float(ordered[low]), float(ordered[min(low + 1, len(ordered) - 1)])
    t = h - low
    # numpy's _lerp: from the nearer end, so that t = 1 gives b exactly.
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def estimate(
    timestamps: np.ndarray,
    latencies: np.ndarray,
    replica_concurrency: float = 1.0,
    target_utilization: float = 0.7,
    headroom: float = 0.2,
) -> CapacityEstimate:
    """The estimate from raw request times (epoch seconds) and latencies (seconds)."""
    counts = per_second_counts(timestamps)
    lat = latencies[~np.isnan(latencies)]
    peak = peak_rate(counts, 1.0)
    mean_lat = float(lat.mean()) if lat.size else 0.0
    concurrency = peak * mean_lat
    return CapacityEstimate(
        requests=len(timestamps),
        seconds=float(len(counts)),
        mean_qps=float(counts.mean()),
        peak_qps=peak,
        mean_latency_seconds=mean_lat,
        p99_latency_seconds=float(np.quantile(lat, 0.99)) if lat.size else 0.0,
        concurrency=concurrency,
        replicas=replicas_for(concurrency, replica_concurrency, target_utilization, headroom),
        replica_concurrency=replica_concurrency,
        target_utilization=target_utilization,
        headroom=headroom,
    )
