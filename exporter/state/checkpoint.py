"""Read positions of followed files, persisted atomically.

One JSON file per source: ``{fingerprint: {"offset", "inode", "path", "seen"}}``. It is
written to a temporary file, fsynced and renamed over the old one, so a kill -9 leaves
either the old or the new checkpoint, never a torn one. It is written only when an offset
changed (or, for idle files, when their "seen" time is an hour old), so thousands of idle
files cost no disk writes.
"""

from __future__ import annotations

import json
import logging
import os
import time

log = logging.getLogger(__name__)

# Positions of files not seen for this long are forgotten.
RETENTION_SECONDS = 7 * 86400
MAX_ENTRIES = 10_000
# An idle file's "seen" time is refreshed this often (it only has to beat RETENTION_SECONDS).
TOUCH_SECONDS = 3600


class CheckpointStore:
    """Offsets by file fingerprint; ``path`` None keeps them in memory only."""

    def __init__(self, path: str | None):
        self.path = path
        self.entries: dict[str, dict] = {}
        self.write_failures = 0
        self.last_write_ok = True
        self.writes = 0
        self.dirty = False
        if path and os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as fh:
                    data = json.load(fh)
                if isinstance(data, dict):
                    self.entries = {k: v for k, v in data.items() if isinstance(v, dict)}
            except (OSError, ValueError) as exc:
                # A broken checkpoint must not stop the exporter: start over, loudly.
                log.error("checkpoint %s unreadable, starting from scratch: %s", path, exc)

    def offset(self, fingerprint: str) -> int | None:
        entry = self.entries.get(fingerprint)
        return int(entry["offset"]) if entry else None

    def update(self, fingerprint: str, offset: int, path: str, inode: int) -> None:
        old = self.entries.get(fingerprint)
        if old and (old["offset"], old["inode"], old["path"]) == (offset, inode, path):
            self.touch(fingerprint)
            return
        self.entries[fingerprint] = {
            "offset": offset,
            "inode": inode,
            "path": path,
            "seen": time.time(),
        }
        self.dirty = True

    def touch(self, fingerprint: str) -> None:
        entry = self.entries.get(fingerprint)
        now = time.time()
        if entry is not None and now - entry.get("seen", 0) >= TOUCH_SECONDS:
            entry["seen"] = now
            self.dirty = True

    def _prune(self) -> None:
        horizon = time.time() - RETENTION_SECONDS
        stale = [k for k, v in self.entries.items() if v.get("seen", 0) < horizon]
        for k in stale:
            del self.entries[k]
        excess = len(self.entries) - MAX_ENTRIES
        if excess > 0:
            oldest = sorted(self.entries, key=lambda k: self.entries[k].get("seen", 0))
            for k in oldest[:excess]:
                del self.entries[k]
        if stale or excess > 0:
            self.dirty = True

    def save(self) -> bool:
        """Write atomically if anything changed; on failure keep going in memory (False)."""
        if not self.path:
            return True
        self._prune()
        if not self.dirty and self.last_write_ok:
            return True
        tmp = f"{self.path}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self.entries, fh, separators=(",", ":"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            self.dirty = False
            self.writes += 1
        except OSError as exc:
            self.write_failures += 1
            if self.last_write_ok:
                log.error("cannot write checkpoint %s: %s (continuing in memory)", self.path, exc)
            self.last_write_ok = False
            return False
        if not self.last_write_ok:
            log.info("checkpoint %s writable again", self.path)
        self.last_write_ok = True
        return True
