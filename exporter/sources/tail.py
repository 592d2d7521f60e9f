"""Follow files matched by globs, surviving rotation, truncation and restarts.

A file is identified by a fingerprint of its first line (as Vector does), not by its
name or inode, and its read offset is kept per fingerprint:

- rename rotation: the renamed file keeps its fingerprint (and its open descriptor is
  drained to the end); the new file at the old name starts at 0;
- copytruncate: the truncated file gets a new first line, so a new identity at 0; a copy
  that the globs also match has the old fingerprint and continues at the old offset, so
  the lines written between our last read and the copy are read once, from the copy;
- restart: the checkpoint maps fingerprints to offsets.

Consequence: files must not begin with an identical header line. Lines end at ``\\n``
only; a partial last line waits for its newline. Offsets advance only on ``commit``, after
the caller has applied the lines, so nothing is lost and nothing is counted twice.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from exporter.state.checkpoint import CheckpointStore

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 1024
# A rotated-away file is closed after it has not grown for this long.
ROTATE_WAIT_SECONDS = 5.0


@dataclass
class Identity:
    fingerprint: str
    offset: int  # committed: everything before it has been applied
    read_offset: int  # handed out in chunks not yet committed


@dataclass
class TrackedFile:
    path: str
    fd: int
    inode: int
    identity: Identity
    draining: bool = False  # the path now names another file, or is gone
    last_growth: float = field(default_factory=time.monotonic)
    last_size: int = -1
    skipping: bool = False  # inside an over-long line, discarding up to its newline
    close_on_commit: bool = False  # drained: close once its last chunk is committed


@dataclass
class Chunk:
    """Complete lines read from one file, to be applied and then committed."""

    data: bytes
    file: TrackedFile
    end_offset: int
    oversized_lines: int = 0


def drop_long_lines(data: bytes, limit: int) -> tuple[bytes, int]:
    """Remove lines longer than ``limit`` bytes; (the rest, how many were removed)."""
    if len(data) <= limit:
        return data, 0
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
    starts = np.concatenate([[0], ends[:-1] + 1])
    long = ends - starts > limit
    if not long.any():
        return data, 0
    keep = [data[s : e + 1] for s, e in zip(starts[~long], ends[~long], strict=True)]
    return b"".join(keep), int(long.sum())


def fingerprint(fd: int) -> str | None:
    """Hash of the first line (or first FINGERPRINT_BYTES); None until it is complete."""
    head = os.pread(fd, FINGERPRINT_BYTES, 0)
    newline = head.find(b"\n")
    if newline >= 0:
        head = head[: newline + 1]
    elif len(head) < FINGERPRINT_BYTES:
        return None
    return hashlib.blake2b(head, digest_size=12).hexdigest()


class FileTailer:
    """Reads new complete lines from every file the patterns match."""

    def __init__(
        self,
        source: str,
        patterns: list[str],
        checkpoints: CheckpointStore,
        max_line_bytes: int = 1 << 20,
        rotate_wait: float = ROTATE_WAIT_SECONDS,
    ):
        self.source = source
        self.patterns = list(patterns)
        self.checkpoints = checkpoints
        self.max_line_bytes = max_line_bytes
        self.rotate_wait = rotate_wait
        self.files: dict[str, TrackedFile] = {}  # active, by path
        self.draining: list[TrackedFile] = []
        self.identities: dict[str, Identity] = {}
        self.lag_bytes = 0
        self.bytes_read = 0

    # --- discovery ---------------------------------------------------------------------

    def _identity(self, fp: str) -> Identity:
        ident = self.identities.get(fp)
        if ident is None:
            start = self.checkpoints.offset(fp) or 0
            ident = Identity(fp, start, start)
            self.identities[fp] = ident
        return ident

    def _matches(self) -> list[str]:
        found: set[str] = set()
        for pattern in self.patterns:
            found.update(p for p in glob.glob(os.path.expanduser(pattern)) if os.path.isfile(p))
        return sorted(found)

    def _open(self, path: str) -> TrackedFile | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fp = fingerprint(fd)
            if fp is None:
                os.close(fd)
                return None
            return TrackedFile(path, fd, os.fstat(fd).st_ino, self._identity(fp))
        except OSError:
            os.close(fd)
            return None

    def _retire(self, tracked: TrackedFile) -> None:
        tracked.draining = True
        tracked.last_growth = time.monotonic()
        self.draining.append(tracked)

    def discover(self) -> None:
        """Notice new, rotated, truncated and vanished files."""
        matches = set(self._matches())
        for path, tracked in list(self.files.items()):
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is None or st.st_ino != tracked.inode or path not in matches:
                del self.files[path]
                self._retire(tracked)
                continue
            try:
                fp = fingerprint(tracked.fd)
            except OSError:
                fp = None
            if fp is None and st.st_size < tracked.identity.read_offset:
                # Truncated and not yet rewritten: wait for a first line.
                del self.files[path]
                os.close(tracked.fd)
            elif fp is not None and fp != tracked.identity.fingerprint:
                # Truncated (copytruncate) and rewritten: a new content stream.
                tracked.identity = self._identity(fp)
        for path in sorted(matches - self.files.keys()):
            tracked = self._open(path)
            if tracked is not None:
                self.files[path] = tracked

    # --- reading -----------------------------------------------------------------------

    def _read_file(self, tracked: TrackedFile, budget: int, chunks: list[Chunk]) -> int:
        """Read complete lines from one file into ``chunks``; returns bytes consumed."""
        ident = tracked.identity
        used = 0
        while used < budget:
            want = min(budget - used, max(self.max_line_bytes, 1 << 16))
            data = os.pread(tracked.fd, want, ident.read_offset)
            if not data:
                break
            start = ident.read_offset
            if tracked.skipping:
                newline = data.find(b"\n")
                skip = len(data) if newline < 0 else newline + 1
                tracked.skipping = newline < 0
                ident.read_offset += skip
                chunks.append(Chunk(b"", tracked, ident.read_offset))
                used += skip
                continue
            last = data.rfind(b"\n")
            if last < 0:
                if len(data) >= self.max_line_bytes:
                    # An over-long line: count it once and discard it up to its newline.
                    tracked.skipping = True
                    ident.read_offset += len(data)
                    chunks.append(Chunk(b"", tracked, ident.read_offset, oversized_lines=1))
                    used += len(data)
                    continue
                break  # a partial line waits for its newline
            piece = data[: last + 1]
            ident.read_offset = start + len(piece)
            kept, dropped = drop_long_lines(piece, self.max_line_bytes)
            chunks.append(Chunk(kept, tracked, ident.read_offset, oversized_lines=dropped))
            used += len(piece)
            if len(data) < want:
                break
        return used

    def _flush_partial(self, tracked: TrackedFile, chunks: list[Chunk]) -> None:
        """A closed rotated file's last line has no newline: it is still a line."""
        ident = tracked.identity
        rest = os.pread(tracked.fd, self.max_line_bytes, ident.read_offset)
        if rest and b"\n" not in rest and not tracked.skipping:
            ident.read_offset += len(rest)
            chunks.append(Chunk(rest + b"\n", tracked, ident.read_offset))

    def read(self, budget: int = 8 << 20) -> list[Chunk]:
        """Discover files and read up to ``budget`` bytes of complete lines."""
        self.discover()
        chunks: list[Chunk] = []
        now = time.monotonic()
        # Rotated-away files first: their lines are older than the new file's.
        for tracked in list(self.draining):
            budget -= self._read_file(tracked, budget, chunks)
            size = os.fstat(tracked.fd).st_size
            if size != tracked.last_size:
                tracked.last_size, tracked.last_growth = size, now
            elif now - tracked.last_growth >= self.rotate_wait:
                # Nothing new for a while: the writer has moved on to the new file.
                self._flush_partial(tracked, chunks)
                self.draining.remove(tracked)
                tracked.close_on_commit = True
                chunks.append(Chunk(b"", tracked, tracked.identity.read_offset))
        for tracked in self.files.values():
            if budget <= 0:
                break
            budget -= self._read_file(tracked, budget, chunks)
        self.bytes_read += sum(len(c.data) for c in chunks)
        self._update_lag()
        return chunks

    def _update_lag(self) -> None:
        lag = 0
        for tracked in [*self.files.values(), *self.draining]:
            with contextlib.suppress(OSError):
                lag += max(0, os.fstat(tracked.fd).st_size - tracked.identity.read_offset)
        self.lag_bytes = lag

    # --- committing ----------------------------------------------------------------------

    def commit(self, chunks: list[Chunk]) -> None:
        """Mark the chunks' lines as applied: advance offsets and the checkpoint entries."""
        for chunk in chunks:
            ident = chunk.file.identity
            ident.offset = max(ident.offset, chunk.end_offset)
            self.checkpoints.update(
                ident.fingerprint, ident.offset, chunk.file.path, chunk.file.inode
            )
            if chunk.file.close_on_commit:
                self._close(chunk.file)
        live = [*self.files.values(), *self.draining]
        for tracked in self.files.values():
            self.checkpoints.touch(tracked.identity.fingerprint)
        # Identities no open file uses live on in the checkpoint only: memory stays bounded.
        referenced = {t.identity.fingerprint for t in live}
        for fp in [fp for fp, i in self.identities.items() if fp not in referenced]:
            if self.identities[fp].offset == self.identities[fp].read_offset:
                del self.identities[fp]

    def rewind(self) -> None:
        """Forget uncommitted reads (the caller failed to apply them)."""
        for ident in self.identities.values():
            ident.read_offset = ident.offset

    def _close(self, tracked: TrackedFile) -> None:
        with contextlib.suppress(OSError):
            os.close(tracked.fd)
        tracked.close_on_commit = False

    def close(self) -> None:
        for tracked in [*self.files.values(), *self.draining]:
            self._close(tracked)
        self.files.clear()
        self.draining.clear()

    @property
    def file_count(self) -> int:
        return len(self.files) + len(self.draining)
