"""Python's garbage collector, kept from stalling scrapes.

A full (generation 2) collection holds the GIL while it walks every tracked object: in the
soak (20 models x 50 features) ~160 000 objects, 100-140 ms every second or two, during
which no scrape is answered; it came from the rendering, whose ~100 000 short-lived
samples outlived the young generations' collections mid-pass and were promoted, and
collected almost nothing (bench/soak.py; docs/scaling.md). So:

- the rendering runs with automatic collection paused: its samples are freed by reference
  counting when it ends and never reach the older generations;
- what lives as long as the config (models, reference profiles, column specs, the
  encoder's label cache) is frozen once it exists, after each start, reload or reference
  install: full collections then walk only what came after.

Reference counting frees almost everything this process makes; the collector is only for
cycles, and it still runs between passes.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No automatic collection inside (cycles made meanwhile are collected after)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def settle() -> None:
    """Collect everything (what an earlier settle froze included), then freeze what is
    left: it is the long-lived part, and later full collections skip it."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
