"""Bounded model-version label values.

At most ``max_versions`` versions of a model are tracked at a time; traffic of any further
version is counted under ``OTHER``. A new version takes the slot of the least recently seen
one only once that one has been idle for ``idle_seconds``, so active versions (a stable and
its canary) are never evicted by a burst of new names.

Version names come from data, so they are bounded before they become label values: a name
longer than ``MAX_LABEL_CHARS`` is cut and given a hash suffix (distinct names stay
distinct), and a version literally named ``other`` is counted in the ``other`` slot, so
one exposition never holds two ``version="other"`` series.
"""

from __future__ import annotations

import hashlib

OTHER = "other"
UNKNOWN = "unknown"  # a record without a version
MAX_LABEL_CHARS = 128
_KEEP_CHARS = MAX_LABEL_CHARS - 17  # room for "~" and 16 hex digits


def bounded_label(value: str) -> str:
    """A label value of at most MAX_LABEL_CHARS characters; longer ones cut, hash-suffixed."""
    if len(value) <= MAX_LABEL_CHARS:
        return value
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return f"{value[:_KEEP_CHARS]}~{digest}"


class VersionSlots:
    def __init__(self, max_versions: int, idle_seconds: float):
        self.max_versions = max_versions
        self.idle_seconds = idle_seconds
        self.names: list[str | None] = [None] * max_versions
        self.last_seen = [0.0] * max_versions
        self.index: dict[str, int] = {}
        self.evicted: list[int] = []  # slots freed since last read; their state must reset

    @property
    def other(self) -> int:
        """The slot index that collects untracked versions."""
        return self.max_versions

    def slot(self, version: str, now: float) -> int:
        if version == OTHER:
            return self.other
        version = bounded_label(version) if version else UNKNOWN
        i = self.index.get(version)
        if i is not None:
            self.last_seen[i] = now
            return i
        free = [i for i, name in enumerate(self.names) if name is None]
        if free:
            i = free[0]
        else:
            i = min(range(self.max_versions), key=self.last_seen.__getitem__)
            if now - self.last_seen[i] < self.idle_seconds:
                return self.other
            del self.index[self.names[i]]
            self.evicted.append(i)
        self.names[i] = version
        self.index[version] = i
        self.last_seen[i] = now
        return i

    def labels(self) -> list[tuple[int, str]]:
        """(slot, version label) for every tracked slot, plus ``other``."""
        out = [(i, name) for i, name in enumerate(self.names) if name is not None]
        return [*out, (self.other, OTHER)]
