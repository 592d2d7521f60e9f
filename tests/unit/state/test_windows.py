"""Bucket rings: a long window's profiles are held in coarser buckets (memory), and what
that costs: the window's oldest coarse bucket leaves at once."""

import numpy as np
import pytest

from exporter.state.windows import MAX_PROFILE_BUCKETS, BucketClock, BucketRing, coarse_group

MIN, HOUR = 60.0, 3600.0


@pytest.mark.parametrize(
    ("per_window", "cap", "group"),
    [(60, 60, 1), (288, 60, 6), (1440, 60, 24), (7, 3, 7), (120, 60, 2)],
)
def test_the_group_is_the_smallest_divisor_within_the_cap(per_window, cap, group):
    assert coarse_group(per_window, cap) == group


def ring(length: float, bucket: float, profile: bool = True) -> tuple[BucketClock, BucketRing]:
    clock = BucketClock(bucket, length)
    return clock, BucketRing(clock, {"n": ((1,), np.int64)}, profile=profile)


def test_a_day_in_five_minute_buckets_is_held_in_half_hours():
    r = ring(24 * HOUR, 5 * MIN)[1]
    assert r.group == 6 and r.per_window == 48 <= MAX_PROFILE_BUCKETS
    assert r.size == 97  # two windows and the bucket being filled, instead of 577
    # An hour-long window in minutes is kept as configured.
    assert ring(HOUR, MIN)[1].group == 1
    # Traffic rings (per-bucket rates) are never coarsened.
    assert ring(24 * HOUR, 5 * MIN, profile=False)[1].size == 577


def test_new_data_counts_at_once_and_the_window_spans_its_length_less_one_coarse_bucket():
    length, bucket = 24 * HOUR, 5 * MIN
    rng = np.random.default_rng(0)
    for now in rng.uniform(1e9, 1e9 + 2 * HOUR, 20):
        clock, r = ring(length, bucket)
        ages = np.arange(0, 2 * length, bucket / 2)  # a record every 2.5 minutes, 48 h back
        for age in ages:
            bucket_id, too_old, _ = clock.place(np.array([now - age]), now)
            if not too_old[0]:
                r.add(int(bucket_id[0]), "n", np.ones(1, np.int64))
        got = r.window("n", now)[0] * (bucket / 2)  # seconds of data in the window
        coarse = r.group * bucket
        assert length - coarse <= got <= length + bucket, (now, got / HOUR)
        # The newest record is in the window whatever the phase.
        c2, r2 = ring(length, bucket)
        r2.add(int(c2.place(np.array([now]), now)[0][0]), "n", np.ones(1, np.int64))
        assert r2.window("n", now)[0] == 1
        # And the previous window holds the day before, as coarse.
        prev = r.window("n", now, back=1)[0] * (bucket / 2)
        assert length - coarse <= prev <= length + coarse
