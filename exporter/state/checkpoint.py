"""Read positions of followed files, persisted atomically.

One JSON file per source: ``{fingerprint: {"offset", "inode", "path", "seen"}}``. It is
written to a temporary file, fsynced and renamed over the old one, so a kill -9 leaves
either the old or the new checkpoint, never a torn one.
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


class CheckpointStore:
    """Offsets by file fingerprint; ``path`` None keeps them in memory only."""

    def __init__(self, path: str | None):
        self.path = path
        self.entries: dict[str, dict] = {}
        self.write_failures = 0
        self.last_write_ok = True
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
        self.entries[fingerprint] = {
            "offset": offset,
            "inode": inode,
            "path": path,
            "seen": time.time(),
        }

    def touch(self, fingerprint: str) -> None:
        if fingerprint in self.entries:
            self.entries[fingerprint]["seen"] = time.time()

    def _prune(self) -> None:
        horizon = time.time() - RETENTION_SECONDS
        stale = [k for k, v in self.entries.items() if v.get("seen", 0) < horizon]
        for k in stale:
            del self.entries[k]
        if len(self.entries) > MAX_ENTRIES:
            oldest = sorted(self.entries, key=lambda k: self.entries[k].get("seen", 0))
            for k in oldest[: len(self.entries) - MAX_ENTRIES]:
                del self.entries[k]

    def save(self) -> bool:
        """Write atomically; on failure keep going in memory and report it (False)."""
        if not self.path:
            return True
        self._prune()
        tmp = f"{self.path}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(self.entries, fh, separators=(",", ":"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
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
