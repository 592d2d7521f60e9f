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

import re
from collections import Counter
from dataclasses import dataclass, field

import msgspec

from exporter.sources.jsonlines import DECODE_ERRORS

# The key the envelope's time is spliced under; the parser reads it where the payload has
# no timestamp of its own.
ENVELOPE_TIME = "__mlpipe_envelope_time"
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
    if stripped[:1] == b"{" and stripped[1:].lstrip()[:1] == b'"':
        return b'{"' + ENVELOPE_TIME.encode() + b'":"' + stamp + b'",' + stripped[1:]
    return content


class _Joining(_Envelope):
    """Shared by envelopes whose records may span several lines (partial + final)."""

    name = ""

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
    # One F line of an object payload, and of any other payload: two C-speed passes do a
    # chunk without partial lines or other streams (the common case).
    _OBJECT = re.compile(rb'^([^ \n]+) (?:stdout|stderr) F \{(?=[ \t]*")', re.M)
    _OTHER = re.compile(rb"^[^ \n]+ (?:stdout|stderr) F ", re.M)

    def __init__(self, streams=STREAMS, max_record_bytes: int = 1 << 20):
        super().__init__(streams, max_record_bytes)
        self._other = [s for s in (b"stdout", b"stderr") if s not in self.streams]
        self._object_sub = b'{"' + ENVELOPE_TIME.encode() + b'":"\\1",'

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
        # Physical lines are within the tailer's max_line_bytes, so without partial lines
        # no record can be too long. (" P " or another stream's name inside a payload only
        # sends the chunk the slow way.)
        if b" P " not in data and not any(b" " + s + b" " in data for s in self._other):
            spliced, n_object = self._OBJECT.subn(self._object_sub, data)
            payload, n_other = self._OTHER.subn(b"", spliced)
            if n_object + n_other == data.count(b"\n"):
                return Unwrapped(payload)
        return super().unwrap(data, final)


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
