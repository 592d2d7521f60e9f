"""Read whole files as chunks of complete lines (one-off reads: no offsets, no checkpoint)."""

from __future__ import annotations

import glob
import os

CHUNK = 8 << 20


def read_complete_lines(patterns: list[str]):
    """Yield chunks of complete ``\\n``-terminated lines from every file the globs match."""
    files = sorted(
        {f for p in patterns for f in glob.glob(os.path.expanduser(p)) if os.path.isfile(f)}
    )
    for path in files:
        with open(path, "rb") as fh:
            rest = b""
            while True:
                block = fh.read(CHUNK)
                if not block:
                    break
                block = rest + block
                last = block.rfind(b"\n")
                if last < 0:
                    rest = block
                    continue
                rest = block[last + 1 :]
                yield block[: last + 1]
            if rest:
                yield rest + b"\n"
