"""The envelope around each serving-log line: none (``json``), Kubernetes CRI or Docker.

A container runtime writes what a container prints inside a line of its own format:

- CRI (the kubelet's ``/var/log/pods``): ``<RFC 3339 nano time> <stdout|stderr> <P|F> <content>``;
  a line longer than the runtime's buffer (16 KiB) is split into ``P`` (partial) lines
  ended by an ``F`` line;
- Docker json-file: ``{"log": "<content>\\n", "stream": "stdout", "time": "..."}``; a
  ``log`` without its trailing newline is partial and continues in the next line.

An envelope tells the tailer where complete *records* end (a partial sequence waits, like a
line without its newline, so offsets are committed only past whole records) and unwraps a
chunk into payload lines. The envelope's time goes into a JSON-object payload under
``ENVELOPE_TIME``, so the parser takes it where the payload has no timestamp of its own.
Pure: bytes in, bytes out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import msgspec
import numpy as np

from exporter.sources.jsonlines import DECODE_ERRORS

# The key the envelope's time is spliced under; the parser reads it where the payload has
# no timestamp of its own.
ENVELOPE_TIME = "@ts@"
STREAMS = ("stdout", "stderr")


@dataclass
class Unwrapped:
    """Payload lines of a chunk, and what did not become one."""

    data: bytes  # \n-terminated payload lines
    ignored: Counter = field(default_factory=Counter)  # records not for us (another stream)
    invalid: Counter = field(default_factory=Counter)  # broken envelopes, too long records

    @property
    def dropped(self) -> int:
        return sum(self.ignored.values()) + sum(self.invalid.values())


class _Envelope:
    """Envelopes are equal when they read alike (a reload keeps a tailer whose is equal)."""

    name = ""
    streams: frozenset = frozenset()
    max_record_bytes = 0

    def _key(self) -> tuple:
        return (type(self), self.streams, self.max_record_bytes)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Envelope) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


class JsonLines(_Envelope):
    """No envelope: a line is a record."""

    name = "json"
    # Whether a record may span several lines (the tailer carries a cut one across a
    # rotation instead of flushing the last line alone).
    spans_lines = False

    def last_end(self, data: bytes) -> int:
        """Bytes of ``data`` that form complete records (0: none yet)."""
        return data.rfind(b"\n") + 1

    def skip_end(self, data: bytes) -> tuple[int, bool]:
        """Inside an over-long record: (bytes to discard, whether the record ended there)."""
        newline = data.find(b"\n")
        return (len(data), False) if newline < 0 else (newline + 1, True)

    def unwrap(self, data: bytes, final: bool = False) -> Unwrapped:
        return Unwrapped(data)


def _splice(content: bytes, stamp: bytes) -> bytes:
    """``{"a": 1}`` -> ``{"<ENVELOPE_TIME>": "<stamp>", "a": 1}``; other payloads unchanged."""
    stripped = content.lstrip()
    # An object with a key ("{}" would become invalid), its first key after at most one
    # space: the rule of the in-place CRI unwrap too.
    if stripped[:2] == b'{"' or stripped[:3] == b'{ "':
        return b'{"' + ENVELOPE_TIME.encode() + b'":"' + stamp + b'",' + stripped[1:]
    return content


class _Joining(_Envelope):
    """Shared by envelopes whose records may span several lines (partial + final)."""

    spans_lines = True

    def __init__(self, streams=STREAMS, max_record_bytes: int = 1 << 20):
        self.streams = frozenset(s.encode() for s in streams)
        self.max_record_bytes = max_record_bytes

    def _lines(self, data: bytes):
        """(content, stream, time, partial) per line; None for a broken envelope."""
        raise NotImplementedError

    def _partial(self, line: bytes) -> bool:
        raise NotImplementedError

    def last_end(self, data: bytes) -> int:
        end = data.rfind(b"\n")
        while end >= 0:
            start = data.rfind(b"\n", 0, end) + 1
            if not self._partial(data[start:end]):
                return end + 1
            end = start - 1
        return 0

    def skip_end(self, data: bytes) -> tuple[int, bool]:
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                return (start or len(data)), False
            if not self._partial(data[start:newline]):
                return newline + 1, True
            start = newline + 1

    def unwrap(self, data: bytes, final: bool = False) -> Unwrapped:
        """Join partial lines into records; ``final``: a trailing partial sequence is whole
        (the file was closed without its end)."""
        out: list[bytes] = []
        ignored: Counter = Counter()
        invalid: Counter = Counter()
        pending: list[bytes] = []
        size = 0
        first = None  # (stream, time) of the pending record's first line

        def emit(stream: bytes, stamp: bytes) -> None:
            content = b"".join(pending)
            if stream not in self.streams:
                ignored["stream"] += 1
            elif size > self.max_record_bytes:
                invalid["too_long"] += 1
            else:
                out.append(_splice(content.rstrip(b"\n"), stamp))

        for parsed in self._lines(data):
            if parsed is None:
                invalid["bad_envelope"] += 1
                continue
            content, stream, stamp, partial = parsed
            if first is None:
                first = (stream, stamp)
            pending.append(content)
            size += len(content)
            if not partial:
                emit(*first)
                pending, size, first = [], 0, None
        if pending and final:
            emit(*first)
        return Unwrapped(b"".join(line + b"\n" for line in out), ignored, invalid)


class Cri(_Joining):
    """``<time> <stream> <P|F> <content>`` lines (the kubelet's container logs)."""

    name = "cri"

    def __init__(self, streams=STREAMS, max_record_bytes: int = 1 << 20):
        super().__init__(streams, max_record_bytes)
        self._tags = [np.frombuffer(s + b" F ", np.uint8) for s in sorted(self.streams)]

    def _partial(self, line: bytes) -> bool:
        parts = line.split(b" ", 3)
        return len(parts) >= 3 and parts[2] == b"P"

    def _lines(self, data: bytes):
        for line in data.split(b"\n")[:-1]:
            parts = line.split(b" ", 3)
            if (
                len(parts) < 3
                or parts[1] not in (b"stdout", b"stderr")
                or parts[2]
                not in (
                    b"P",
                    b"F",
                )
            ):
                yield None
                continue
            yield (parts[3] if len(parts) == 4 else b""), parts[1], parts[0], parts[2] == b"P"

    def unwrap(self, data: bytes, final: bool = False) -> Unwrapped:
        fast = self._in_place(data) if data else None
        return Unwrapped(fast) if fast is not None else super().unwrap(data, final)

    def _in_place(self, data: bytes) -> bytes | None:
        """The common chunk — every line an ``F`` line of a stream we read — unwrapped in a
        few vectorised passes, without a Python step per line: each header is overwritten
        in place, so the payloads keep their offsets. A JSON object's header and ``{``
        become ``{"@ts@":"<time>",`` (exactly as long); any other payload's header becomes
        spaces (JSON allows them; the parser counts the line as ignored). None: take the
        line-by-line way (partial lines, other streams, a broken line)."""
        arr = np.frombuffer(data, np.uint8)
        ends = np.flatnonzero(arr == NEWLINE)
        if not len(ends) or ends[-1] != len(arr) - 1:
            return None
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        # The time ends at the line's first space, within its first TIME_MAX bytes.
        head = arr[np.minimum(starts[:, None] + _TIME_SPAN, len(arr) - 1)]
        spaced = head == SPACE
        if not spaced.any(1).all():
            return None
        time_len = spaced.argmax(1)
        space = starts + time_len
        if (space + HEADER_AFTER_TIME > ends).any():
            return None
        tag = arr[np.minimum(space[:, None] + _TAG_SPAN, len(arr) - 1)]
        ok = np.zeros(len(ends), bool)
        for want in self._tags:
            ok |= (tag == want).all(1)
        if not ok.all():
            return None
        content = space + HEADER_AFTER_TIME
        nxt = np.minimum(content + 1, len(arr) - 1)
        nxt2 = np.minimum(content + 2, len(arr) - 1)
        key = (arr[nxt] == QUOTE) | ((arr[nxt] == SPACE) & (arr[nxt2] == QUOTE))
        obj = (arr[content] == BRACE) & key & (content + 2 < ends)
        out = arr.copy()
        # Other payloads: the header becomes spaces.
        other = ~obj
        if other.any():
            out[_ranges(starts[other], time_len[other] + HEADER_AFTER_TIME)] = SPACE
        if obj.any():
            s, n = starts[obj], time_len[obj]
            out[s[:, None] + _PREFIX_SPAN] = _PREFIX
            src = _ranges(s, n)
            out[src + len(_PREFIX)] = arr[src]
            out[(s + len(_PREFIX) + n)[:, None] + _SUFFIX_SPAN] = _SUFFIX
        return out.tobytes()


# The in-place CRI unwrap's constants.
NEWLINE, SPACE, BRACE, QUOTE = 10, 32, ord("{"), ord('"')
# RFC 3339 with nanoseconds and a zone offset is 35 bytes.
TIME_MAX = 40
HEADER_AFTER_TIME = len(" stdout F ")  # stdout and stderr are as long
_TIME_SPAN = np.arange(TIME_MAX)
_TAG_SPAN = np.arange(1, HEADER_AFTER_TIME)
_PREFIX = np.frombuffer(b'{"' + ENVELOPE_TIME.encode() + b'":"', np.uint8)
_SUFFIX = np.frombuffer(b'",', np.uint8)
_PREFIX_SPAN = np.arange(len(_PREFIX))
_SUFFIX_SPAN = np.arange(len(_SUFFIX))
# "<time> stdout F {" is as long as '{"@ts@":"<time>",': the key is chosen for it.
assert len(_PREFIX) + len(_SUFFIX) == HEADER_AFTER_TIME + 1


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Every index in [start, start + length) of each pair, concatenated."""
    total = int(lengths.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


class _DockerLine(msgspec.Struct, gc=False):
    log: str
    stream: str = ""
    time: str = ""


_DOCKER = msgspec.json.Decoder(_DockerLine)


class Docker(_Joining):
    """Docker's json-file driver: ``{"log": "...\\n", "stream": ..., "time": ...}``."""

    name = "docker"

    def _partial(self, line: bytes) -> bool:
        try:
            return not _DOCKER.decode(line).log.endswith("\n")
        except DECODE_ERRORS:
            return False

    def _lines(self, data: bytes):
        for line in data.split(b"\n")[:-1]:
            try:
                rec = _DOCKER.decode(line)
            except DECODE_ERRORS:
                yield None
                continue
            partial = not rec.log.endswith("\n")
            yield rec.log.encode(), rec.stream.encode(), rec.time.encode(), partial


def envelope(name: str, streams=STREAMS, max_record_bytes: int = 1 << 20):
    """The envelope called ``name`` (``serving_log.format``)."""
    if name == "cri":
        return Cri(streams, max_record_bytes)
    if name == "docker":
        return Docker(streams, max_record_bytes)
    return JsonLines()
