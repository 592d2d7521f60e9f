"""gzip for each rendering, in a thread of its own.

Prometheus asks for gzip, so every rendering is compressed once; at 100 models × 100
features that is 30 MB of text and ~190 ms of zlib. zlib lets go of the GIL while it
compresses, so done here rather than in the ingest thread it costs ingestion nothing on a
second core. A rendering is published once compressed (the text and its gzip always
match); a rendering still waiting when a newer one arrives is skipped.
"""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Compressor:
    def __init__(self, publish: Callable[[bytes, bytes, float, bytes | None], None]):
        """``publish(text, gzipped, rendered_at, openmetrics)`` runs in this thread."""
        self._publish = publish
        self._cond = threading.Condition()
        self._pending: tuple | None = None
        self._stop = False
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.skipped = 0  # renderings replaced by a newer one before their turn

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="compress", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, text: bytes, rendered_at: float, openmetrics: bytes | None) -> None:
        with self._cond:
            if self._pending is not None:
                self.skipped += 1
            self._pending = (text, rendered_at, openmetrics)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                text, rendered_at, openmetrics = self._pending
                self._pending = None
            try:
                self._publish(text, gzip.compress(text, compresslevel=1), rendered_at, openmetrics)
            except Exception:  # the thread goes on: the next rendering may succeed
                self.errors += 1
                log.exception("compressing /metrics failed; the previous rendering stays")
