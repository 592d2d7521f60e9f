"""Quota arithmetic: periods, use, rate and time to exhaustion. Pure functions.

Periods: ``rolling`` is the last ``period`` seconds. ``calendar`` resets at fixed times:
a period of 28 to 31 days is the calendar month (UTC); 7 days is the ISO week (Monday
00:00 UTC); anything else is a multiple of the period since the Unix epoch (so 1 day
starts at 00:00 UTC).
"""

from __future__ import annotations

import datetime as dt
import math

DAY = 86400.0
MONDAY_OFFSET = 4 * DAY  # 1970-01-01 was a Thursday


def period_bounds(now: float, period: float, reset: str) -> tuple[float, float]:
    """(start, end) of the period containing ``now``; a rolling period ends at ``now``."""
    if reset == "rolling":
        return now - period, now
    if 28 * DAY <= period <= 31 * DAY:
        t = dt.datetime.fromtimestamp(now, dt.UTC)
        start = dt.datetime(t.year, t.month, 1, tzinfo=dt.UTC)
        end = dt.datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=dt.UTC)
        return start.timestamp(), end.timestamp()
    offset = MONDAY_OFFSET if period == 7 * DAY else 0.0
    start = math.floor((now - offset) / period) * period + offset
    return start, start + period


def exhaustion_seconds(limit: float, used: float, rate: float) -> float:
    """Seconds until ``used`` reaches ``limit`` at ``rate`` per second (inf if never).

    For a rolling period this assumes nothing leaves the window meanwhile: a cautious
    (early) forecast.
    """
    if used >= limit:
        return 0.0
    if rate <= 0:
        return math.inf
    return (limit - used) / rate
