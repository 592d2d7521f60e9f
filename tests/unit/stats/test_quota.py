import datetime as dt
import math

from exporter.stats.quota import exhaustion_seconds, period_bounds


def ts(*args):
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def test_rolling_period_ends_now():
    assert period_bounds(1000.0, 300.0, "rolling") == (700.0, 1000.0)


def test_calendar_month_rollover_including_december():
    assert period_bounds(ts(2026, 11, 25, 10), 30 * 86400, "calendar") == (
        ts(2026, 11, 1),
        ts(2026, 12, 1),
    )
    assert period_bounds(ts(2026, 12, 31, 23, 59), 31 * 86400, "calendar") == (
        ts(2026, 12, 1),
        ts(2027, 1, 1),
    )


def test_calendar_week_starts_monday_and_day_at_midnight():
    wed = ts(2026, 11, 25, 15)  # a Wednesday
    assert period_bounds(wed, 7 * 86400, "calendar") == (ts(2026, 11, 23), ts(2026, 11, 30))
    assert period_bounds(wed, 86400, "calendar") == (ts(2026, 11, 25), ts(2026, 11, 26))


def test_exhaustion_forecast():
    assert exhaustion_seconds(1000, 400, 2.0) == 300.0
    assert exhaustion_seconds(1000, 1000, 2.0) == 0.0
    assert exhaustion_seconds(1000, 1200, 0.0) == 0.0
    assert math.isinf(exhaustion_seconds(1000, 10, 0.0))
