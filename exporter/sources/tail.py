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
only; a partial last line waits for its newline. A file that shrinks below its read offset
while keeping its first line was truncated and rewritten: it is read again from the start
(as fluent-bit and Vector do).

One file's trouble is that file's: an error opening or reading it is logged (once per
file until it recovers), counted by reason and retried with a back-off, while the other
files go on. Compressed files (gzip, bzip2, xz, zstd: logrotate's ``.gz`` next to the live
log) are skipped and counted, never parsed as garbage. Files read to their end and idle
are closed when the open-file budget runs short, and reopened (by inode and first line)
when they grow, so thousands of idle files do not exhaust descriptors (a file renamed away
while closed is drained only if the globs match its new name).

Offsets advance only on ``commit``, after the caller has applied the lines, so nothing is
lost and nothing is counted twice.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import glob
import hashlib
import logging
import os
import re
import resource
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from exporter.sources.envelopes import JsonLines
from exporter.state.checkpoint import CheckpointStore

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 1024
# A rotated-away file is closed after it has not grown for this long.
ROTATE_WAIT_SECONDS = 5.0
# Retries of a file that failed to open or read wait this long, doubling up to the max.
BACKOFF_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# Descriptors kept free for checkpoints, sockets and Parquet reads.
RESERVED_FDS = 64
# First bytes of compressed files: gzip, bzip2, xz, zstd.
COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


def error_reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission_denied"
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        return "too_many_open_files"
    if exc.errno in (errno.EIO, errno.EINVAL, errno.ENXIO, errno.EISDIR):
        return "io_error"
    return "other"


class FdBudget:
    """Descriptors the tailers of this process may hold together: the soft RLIMIT_NOFILE, less
    what the rest of the process holds (sampled from /proc/self/fd now and then) and a
    reserve for checkpoints, sockets and Parquet reads."""

    def __init__(self):
        self.held = 0  # descriptors held by tailers
        self._others = RESERVED_FDS
        self._sampled = -1e9

    def available(self) -> int:
        now = time.monotonic()
        if now - self._sampled > 10.0:
            self._sampled = now
            with contextlib.suppress(OSError):
                self._others = max(0, len(os.listdir("/proc/self/fd")) - self.held)
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            soft = 1 << 20
        return max(8, soft - self._others - RESERVED_FDS) - self.held


FD_BUDGET = FdBudget()


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft open-files limit to the hard one, as Go programs do at start."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


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

    @property
    def parked(self) -> bool:
        """Closed while idle to save a descriptor; reopened when it grows."""
        return self.fd < 0


@dataclass
class Failure:
    """A path that failed to open or read: when to try again, and whether it was logged."""

    retry_at: float
    backoff: float
    reason: str


@dataclass
class Chunk:
    """Complete lines read from one file, to be applied and then committed."""

    data: bytes
    file: TrackedFile
    end_offset: int
    oversized_lines: int = 0
    skipped: int = 0  # bytes of an over-long line discarded (progress, though no data)
    # The file ended (closed after rotation) inside a record split over several lines: the
    # trailing part is a record of its own.
    final: bool = False


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
        exclude: list[str] = (),
        max_open_files: int | None = None,
        envelope=None,
    ):
        self.source = source
        # Where records end (a line, or a container runtime's split lines joined).
        self.envelope = envelope or JsonLines()
        # A record a rotation cut: its first lines, from the rotated file, wait for the rest
        # at the start of the new file at the same path (path -> (bytes, rotated file, when)).
        self.carry: dict[str, tuple[bytes, TrackedFile, float]] = {}
        self.patterns = list(patterns)
        self.exclude = list(exclude)
        # Compiled once: the match runs on every file at every discovery.
        self._excluded = (
            re.compile("|".join(fnmatch.translate(os.path.expanduser(x)) for x in exclude))
            if exclude
            else None
        )
        self.checkpoints = checkpoints
        self.max_line_bytes = max_line_bytes
        self.rotate_wait = rotate_wait
        self.max_open_files = max_open_files
        self.files: dict[str, TrackedFile] = {}  # active, by path
        self.draining: list[TrackedFile] = []
        self.identities: dict[str, Identity] = {}
        self.failures: dict[str, Failure] = {}  # paths that failed, by path
        self.file_errors: Counter = Counter()  # by FILE_ERROR_REASONS
        self.skipped: dict[str, str] = {}  # path -> why it is not read ("compressed")
        self.skipped_total: Counter = Counter()
        self.lag_bytes = 0
        self.bytes_read = 0
        self._start = 0  # round-robin start, so no file always reads first

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
        if self._excluded is not None:
            found = {p for p in found if not self._excluded.match(p)}
        return sorted(found)

    def _failed(self, path: str, exc: OSError, now: float) -> None:
        """Count and log (once until it recovers) a file's error; back off its retries."""
        reason = error_reason(exc)
        self.file_errors[reason] += 1
        old = self.failures.get(path)
        if old is None:
            log.error(
                "source %s: cannot read %s (%s): %s; retrying with back-off",
                self.source,
                path,
                reason,
                exc,
            )
        backoff = min(old.backoff * 2, BACKOFF_MAX_SECONDS) if old else BACKOFF_SECONDS
        self.failures[path] = Failure(now + backoff, backoff, reason)

    def _recovered(self, path: str) -> None:
        if self.failures.pop(path, None) is not None:
            log.info("source %s: %s readable again", self.source, path)

    def _open_count(self) -> int:
        return sum(1 for t in [*self.files.values(), *self.draining] if not t.parked)

    def _make_room(self) -> bool:
        """Close the longest-idle caught-up file if the open-file budget is spent."""
        mine = self.max_open_files is None or self._open_count() < self.max_open_files
        if mine and FD_BUDGET.available() > 0:
            return True
        idle = [
            t
            for t in self.files.values()
            if not t.parked and t.last_size == t.identity.read_offset and not t.skipping
        ]
        if not idle:
            return False
        self._park(min(idle, key=lambda t: t.last_growth))
        return True

    def _park(self, tracked: TrackedFile) -> None:
        self._close(tracked)

    def _open(self, path: str, now: float) -> TrackedFile | None:
        failure = self.failures.get(path)
        if failure is not None and now < failure.retry_at:
            return None
        if not self._make_room():
            return None
        try:
            fd = self._os_open(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self._failed(path, exc, now)
            return None
        try:
            head = os.pread(fd, 8, 0)
            if head.startswith(COMPRESSED_MAGIC):
                self._os_close(fd)
                if path not in self.skipped:
                    self.skipped[path] = "compressed"
                    self.skipped_total["compressed"] += 1
                    log.info("source %s: %s is compressed; skipped", self.source, path)
                return None
            fp = fingerprint(fd)
            if fp is None:
                self._os_close(fd)
                return None
            st = os.fstat(fd)
            tracked = TrackedFile(path, fd, st.st_ino, self._identity(fp))
        except OSError as exc:
            self._os_close(fd)
            self._failed(path, exc, now)
            return None
        self._recovered(path)
        if st.st_size < tracked.identity.read_offset:
            self._restart(tracked)  # truncated while we were not looking (or restarted)
        tracked.last_size = st.st_size
        return tracked

    def _restart(self, tracked: TrackedFile) -> None:
        """The file shrank below our offset but kept its first line: read it again."""
        ident = tracked.identity
        log.warning(
            "source %s: %s was truncated below its read offset %d; reading it from the start",
            self.source,
            tracked.path,
            ident.read_offset,
        )
        ident.offset = ident.read_offset = 0
        tracked.skipping = False
        self.checkpoints.update(ident.fingerprint, 0, tracked.path, tracked.inode)

    def _unpark(self, tracked: TrackedFile, now: float) -> bool:
        """Reopen a parked file that changed; False if it is no longer the same file."""
        if not self._make_room():
            return True  # stays parked; tried again next time
        try:
            fd = self._os_open(tracked.path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self._failed(tracked.path, exc, now)
            return exc.errno != errno.ENOENT
        if os.fstat(fd).st_ino != tracked.inode:
            self._os_close(fd)
            return False
        tracked.fd = fd
        return True

    def _retire(self, tracked: TrackedFile) -> None:
        if tracked.parked:
            return  # read to its end before it was parked: nothing left to drain
        tracked.draining = True
        tracked.last_growth = time.monotonic()
        self.draining.append(tracked)

    def discover(self) -> None:
        """Notice new, rotated, truncated and vanished files."""
        now = time.monotonic()
        matches = set(self._matches())
        for path in [p for p in self.skipped if p not in matches]:
            del self.skipped[path]
        for path in [p for p in self.failures if p not in matches]:
            del self.failures[path]
        for path, tracked in list(self.files.items()):
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is None or st.st_ino != tracked.inode or path not in matches:
                del self.files[path]
                self._retire(tracked)
                continue
            if tracked.parked:
                if st.st_size == tracked.last_size:
                    continue
                if not self._unpark(tracked, now):
                    del self.files[path]
                    continue
                if tracked.parked:
                    continue
            try:
                fp = fingerprint(tracked.fd)
            except OSError:
                fp = None
            if fp is None and st.st_size < tracked.identity.read_offset:
                # Truncated and not yet rewritten: wait for a first line.
                del self.files[path]
                self._close(tracked)
            elif fp is not None and fp != tracked.identity.fingerprint:
                # Truncated (copytruncate) and rewritten: a new content stream.
                tracked.identity = self._identity(fp)
            elif fp is not None and st.st_size < tracked.identity.read_offset:
                self._restart(tracked)
        for path in sorted(matches - self.files.keys() - self.skipped.keys()):
            tracked = self._open(path, now)
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
                skip, ended = self.envelope.skip_end(data)
                tracked.skipping = not ended
                ident.read_offset += skip
                chunks.append(Chunk(b"", tracked, ident.read_offset, skipped=skip))
                used += skip
                continue
            end = self.envelope.last_end(data)
            if end == 0:
                if len(data) >= self.max_line_bytes:
                    # An over-long record: count it once and discard it up to its end.
                    tracked.skipping = True
                    skip = data.rfind(b"\n") + 1 or len(data)
                    ident.read_offset += skip
                    chunks.append(
                        Chunk(b"", tracked, ident.read_offset, oversized_lines=1, skipped=skip)
                    )
                    used += skip
                    continue
                break  # a partial record waits for its end
            piece = data[:end]
            ident.read_offset = start + len(piece)
            kept, dropped = drop_long_lines(piece, self.max_line_bytes)
            if self.carry and not tracked.draining and tracked.path in self.carry:
                kept = self.carry.pop(tracked.path)[0] + kept
            chunks.append(Chunk(kept, tracked, ident.read_offset, oversized_lines=dropped))
            used += len(piece)
            if len(data) < want:
                break
        return used

    def _flush_partial(self, tracked: TrackedFile, chunks: list[Chunk], now: float) -> None:
        """A closed rotated file's last line has no newline: it is still a line. A record
        split over several lines that the rotation cut continues in the new file at the same
        path: its first part is carried over to that file's next chunk."""
        ident = tracked.identity
        rest = os.pread(tracked.fd, self.max_line_bytes, ident.read_offset)
        if not rest or tracked.skipping:
            return
        if not self.envelope.spans_lines:
            if b"\n" not in rest:
                ident.read_offset += len(rest)
                chunks.append(Chunk(rest + b"\n", tracked, ident.read_offset))
            return
        ident.read_offset += len(rest)
        if not rest.endswith(b"\n"):
            rest += b"\n"
        successor = self.files.get(tracked.path)
        if successor is not None and successor is not tracked:
            self.carry[tracked.path] = (rest, tracked, now)
        else:
            chunks.append(Chunk(rest, tracked, ident.read_offset, final=True))

    def _flush_carry(self, chunks: list[Chunk], now: float) -> None:
        """A carried part whose continuation did not come (the new file stayed empty, or is
        gone) is a record of its own."""
        for path, (rest, rotated, since) in list(self.carry.items()):
            if path not in self.files or now - since >= self.rotate_wait:
                del self.carry[path]
                chunks.append(Chunk(rest, rotated, rotated.identity.offset, final=True))

    def _read_one(self, tracked: TrackedFile, budget: int, chunks: list[Chunk], now) -> int:
        """Read one file, keeping its error to itself; bytes consumed."""
        failure = self.failures.get(tracked.path)
        if failure is not None and now < failure.retry_at:
            return 0
        try:
            used = self._read_file(tracked, budget, chunks)
        except OSError as exc:
            self._failed(tracked.path, exc, now)
            return 0
        self._recovered(tracked.path)
        return used

    def read(self, budget: int = 8 << 20) -> list[Chunk]:
        """Discover files and read up to ``budget`` bytes of complete lines.

        Files share the budget: each gets an equal slice (at least one maximal line), taken
        in turn from a rotating start, so one busy or over-long file cannot starve the rest.
        """
        self.discover()
        chunks: list[Chunk] = []
        now = time.monotonic()
        # Rotated-away files first: their lines are older than the new file's.
        for tracked in list(self.draining):
            budget -= self._read_one(tracked, budget, chunks, now)
            try:
                size = os.fstat(tracked.fd).st_size
            except OSError:
                size = tracked.last_size
            if size != tracked.last_size:
                tracked.last_size, tracked.last_growth = size, now
            elif now - tracked.last_growth >= self.rotate_wait:
                # Nothing new for a while: the writer has moved on to the new file.
                with contextlib.suppress(OSError):
                    self._flush_partial(tracked, chunks, now)
                self.draining.remove(tracked)
                tracked.close_on_commit = True
                chunks.append(Chunk(b"", tracked, tracked.identity.read_offset))
        active = [t for t in self.files.values() if not t.parked]
        if active:
            self._start = (self._start + 1) % len(active)
            active = active[self._start :] + active[: self._start]
        share = max(budget // max(1, len(active)), self.max_line_bytes + 1, 1 << 16)
        for tracked in active:
            if budget <= 0:
                break
            budget -= self._read_one(tracked, min(budget, share), chunks, now)
        if self.carry:
            self._flush_carry(chunks, now)
        self.bytes_read += sum(len(c.data) for c in chunks)
        self._update_lag(now)
        return chunks

    def _update_lag(self, now: float) -> None:
        lag = 0
        for tracked in [*self.files.values(), *self.draining]:
            if tracked.parked:
                continue
            try:
                size = os.fstat(tracked.fd).st_size
            except OSError:
                continue
            lag += max(0, size - tracked.identity.read_offset)
            if not tracked.draining and size != tracked.last_size:
                tracked.last_size, tracked.last_growth = size, now
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

    @staticmethod
    def _os_open(path: str) -> int:
        fd = os.open(path, os.O_RDONLY)
        FD_BUDGET.held += 1
        return fd

    @staticmethod
    def _os_close(fd: int) -> None:
        FD_BUDGET.held -= 1
        with contextlib.suppress(OSError):
            os.close(fd)

    def _close(self, tracked: TrackedFile) -> None:
        if not tracked.parked:
            self._os_close(tracked.fd)
        tracked.fd = -1
        tracked.close_on_commit = False

    def close(self) -> None:
        for tracked in [*self.files.values(), *self.draining]:
            self._close(tracked)
        self.files.clear()
        self.draining.clear()

    @property
    def file_count(self) -> int:
        return len(self.files) + len(self.draining)
