"""Decoding chunks of JSON lines, shared by every tailed source.

A chunk is decoded in one call (msgspec's ``decode_lines``: each line on its own, so two
broken lines can never be joined into one valid record). When a line fails, the failure's
byte offset points at it: the lines before it are decoded again as one block, the line is
handed to ``on_bad`` alone, and decoding goes on after it — a bad line costs about one
extra decode of the lines before it, not a line-by-line pass over the whole chunk.
Pure: bytes in, records out.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import msgspec
import numpy as np

# Everything a typed decoder raises for a bad line (msgspec raises UnicodeDecodeError, not
# DecodeError, for bytes that are not UTF-8).
DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)

_BYTE = re.compile(r"\(byte (\d+)\)")
_INDEX = re.compile(r"at `\$\[(\d+)\]")


def split_lines(data: bytes) -> list[bytes]:
    """The ``\\n``-terminated lines of ``data``, without their newlines."""
    return data.split(b"\n")[:-1]


def _hint(exc: Exception, lines: list[bytes]) -> int:
    """Index of the line an error most likely comes from (the middle when unknown)."""
    text = str(exc)
    match = _BYTE.search(text)
    if match:
        offset = int(match.group(1))
        pos = 0
        for i, line in enumerate(lines):
            pos += len(line) + 1
            if offset < pos:
                return i
        return len(lines) - 1
    match = _INDEX.search(text)
    if match:  # blank lines were removed before decoding, so record i is line i
        return min(int(match.group(1)), len(lines) - 1)
    return len(lines) // 2


# A chunk is decoded in pieces of about this many bytes (cut at a newline): a bad line then
# costs a second decode of its piece only, not of everything before it in an 8 MiB chunk
# (one torn line in 1 500 cost 29 % of the ingest rate that way). The calls are few: 128
# per 8 MiB.
PIECE_BYTES = 64 << 10


def decode_lines(
    data: bytes,
    decoder: msgspec.json.Decoder,
    on_bad: Callable[[bytes, Exception | None], None],
) -> list:
    """Records of the complete lines of ``data``, in line order.

    ``on_bad(line, error)`` receives each line the decoder rejects (``error`` is None for a
    blank line), in order; it counts or salvages it.
    """
    if len(data) <= PIECE_BYTES:
        return _decode_piece(data, decoder, on_bad, *_newlines(data))
    # Where every line ends, found once for the whole chunk: each piece's line count and
    # whether it has a blank line are read off it, not scanned for again piece by piece.
    # What pieces cost beyond one decode of the whole chunk: 0.27 against 0.39 µs a line
    # of 30 features (the count and search per piece took 0.36 alone, but they also
    # brought the piece into the cache for the decode). Only the pieces' bounds become
    # Python numbers, not every line's.
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == _NEWLINE)
    if not len(ends):
        return []  # no complete line
    # Blank lines up to each line: a line with nothing between its newline and the last.
    blanks = np.cumsum(np.diff(ends, prepend=-1) == 1)
    # Each piece's last line: the first to end PIECE_BYTES, 2 PIECE_BYTES... or more into
    # the chunk, and the chunk's last.
    grid = np.arange(PIECE_BYTES, int(ends[-1]), PIECE_BYTES)
    last = np.unique(np.append(np.searchsorted(ends, grid), len(ends) - 1))
    first = np.append(0, last[:-1] + 1)
    starts = np.append(0, ends[last[:-1]] + 1)
    has_blank = blanks[last] > np.where(first > 0, blanks[first - 1], 0)
    out: list = []
    # Pieces as views of the chunk, not copies: a record's raw parts (msgspec.Raw: its
    # features, read later in C) point into the chunk the step holds anyway, where copies
    # kept the step's bytes twice until its records were read (+23 MiB of RSS at
    # 100 x 100, 24 h / 5 min; bench/window_memory.py).
    view = memoryview(data)
    for start, stop, count, blank in zip(
        starts.tolist(),
        (ends[last] + 1).tolist(),
        (last + 1 - first).tolist(),
        has_blank.tolist(),
        strict=True,
    ):
        out.extend(_decode_piece(view[start:stop], decoder, on_bad, count, blank))
    return out


_BLANK = re.compile(b"\n\n")
_NEWLINE = ord("\n")


def _newlines(data: bytes) -> tuple[int, bool]:
    """How many newlines ``data`` has, and whether it has a blank line (``\\n\\n``, or a
    newline first). For a chunk of one piece; a larger chunk finds its newlines with numpy
    once (decode_lines), not per piece: numpy's passes let go of the GIL, and each time a
    busy thread beside ingest (a reference build, a dataset's profile) may hold it for a
    switch interval (5 ms). Per piece, renderings went stale for 1.7 s that way
    (tests/unit/hardening/test_ingest_thread.py); once per chunk, that is two waits."""
    return data.count(b"\n"), data.startswith(b"\n") or _BLANK.search(data) is not None


def _decode_piece(
    data: bytes | memoryview,
    decoder: msgspec.json.Decoder,
    on_bad: Callable[[bytes, Exception | None], None],
    newlines: int,
    blank: bool,
) -> list:
    """The records of a piece of ``newlines`` lines (``blank``: one of them is empty)."""
    if not data:
        return []
    # One decode of the whole piece, kept when it gave a record per line. decode_lines reads
    # whitespace-separated values, not lines: a blank line would shift the count, so such a
    # piece goes line by line. Known gap, left: a line of two records plus one record split
    # over two lines still give as many records as lines (contrived; lines still counted).
    if not blank:
        try:
            out = decoder.decode_lines(data)
        except DECODE_ERRORS:
            pass
        else:
            if len(out) == newlines:
                return out
    lines = split_lines(bytes(data))
    out: list = []
    blank = [i for i, line in enumerate(lines) if not line.strip()]
    if blank:
        # decode_lines skips blank lines; hand them over here so indices stay line indices.
        keep = set(range(len(lines))) - set(blank)
        for i in blank:
            on_bad(lines[i], None)
        lines = [lines[i] for i in sorted(keep)]
    # Work list of blocks still to decode, first block first.
    todo: list[list[bytes]] = [lines]
    while todo:
        block = todo.pop()
        if not block:
            continue
        if len(block) == 1:
            try:
                out.append(decoder.decode(block[0]))
            except DECODE_ERRORS as exc:
                on_bad(block[0], exc)
            continue
        try:
            records = decoder.decode_lines(b"\n".join(block) + b"\n")
        except DECODE_ERRORS as exc:
            k = _hint(exc, block)
            # Decode the lines before k, then k alone, then the rest (pushed in reverse).
            todo.append(block[k + 1 :])
            todo.append(block[k : k + 1])
            todo.append(block[:k])
            continue
        if len(records) == len(block):
            out.extend(records)
        else:  # a line held something decode_lines skipped: go line by line
            todo.extend([line] for line in reversed(block))
    return out


def classify(invalid, exc: Exception | None) -> str:
    """Count a line a typed decoder rejected under its reason (INVALID_REASONS)."""
    if isinstance(exc, UnicodeDecodeError):
        reason = "not_utf8"
    elif isinstance(exc, msgspec.ValidationError):
        reason = "missing_field" if "missing required field" in str(exc) else "wrong_type"
    else:
        reason = "not_json"
    invalid[reason] += 1
    return reason
