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


def _summed_whole(ring: BucketRing, name: str, now: float, back: int) -> np.ndarray:
    """The window as the ring's definition says: its buckets' rows summed, now."""
    arr = ring.arrays[name]
    wide = np.int64 if arr.dtype.kind in "iu" else np.float64
    return arr[ring._mask(now, back)].sum(axis=0, dtype=wide)


@pytest.mark.parametrize("profile", [False, True])
def test_kept_window_sums_equal_the_buckets_summed_through_any_sequence(profile):
    """Window sums are kept (added to as records arrive, moved as windows slide), never
    summed whole each time: after every step of a random run (records in and around the
    windows, clocks moving on by one bucket or many, back a little, slots cleared, rings
    merged) they equal the buckets summed, exactly for counts, to float64 rounding for
    float32 sums."""
    rng = np.random.default_rng(3)
    clock = BucketClock(60, 600)  # 10 buckets a window
    shapes = {"n": ((3, 4), np.int64), "s": ((3, 4), np.float32)}
    ring = BucketRing(clock, shapes, profile=profile)
    now, slid = 1_000_000.0, 0
    for step in range(1500):
        op = rng.random()
        current = clock.current(now)
        if op < 0.5:  # a batch over a few buckets, some outside both windows
            ids = np.unique(current - rng.integers(0, 2 * clock.per_window + 2, 3))
            ids = ids[ids >= current - 2 * clock.per_window]
            ring.add_buckets(
                ids,
                {
                    "n": rng.integers(0, 50, (len(ids), 3, 4)),
                    "s": rng.normal(0, 100, (len(ids), 3, 4)),
                },
            )
        elif op < 0.65:
            ring.add(current - int(rng.integers(0, 3)), "n", rng.integers(0, 9, (3, 4)))
        elif op < 0.85:
            now += float(rng.choice([1, 30, 60, 61, 300, 1200, 5000]))
        elif op < 0.9:
            now -= 90.0  # a clock stepped back: the kept sums start again
        elif op < 0.95:
            ring.clear_row("n", int(rng.integers(0, 3)))
        else:
            other = BucketRing(clock, shapes, profile=profile)
            other.add_buckets(np.array([current]), {"n": np.ones((1, 3, 4), np.int64)})
            ring.merge(other)
        if rng.random() < 0.6:
            continue  # windows read now and then: records and moves pile up in between
        for back in (0, 1):
            if "n" in ring.arrays:
                assert np.array_equal(
                    ring.window("n", now, back), _summed_whole(ring, "n", now, back)
                )
            if "s" in ring.arrays:
                np.testing.assert_allclose(
                    ring.window("s", now, back),
                    _summed_whole(ring, "s", now, back),
                    rtol=1e-9,
                    atol=1e-6,
                    err_msg=f"step {step}",
                )
        slid = max([slid, *(kept[2] for kept in ring._sums.values())])
    assert slid > 1  # kept sums were moved along, not only summed whole
