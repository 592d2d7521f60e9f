"""Reference profiles built off the ingest thread, so a large reference never delays
listening, health checks or the serving metrics.

``get`` answers at once: the profile if it is built, else None and a ``building`` status
(and the build is queued). One background thread builds the queue in order; when a build
finishes, ``changed`` is set and the ingest thread installs it (a rebuild of the state that
keeps the model's serving counters). ``background=False`` builds inline (the ``profile``
command and in-process tests).
"""

from __future__ import annotations

import logging
import queue
import threading

from exporter.config import Model
from exporter.sources.reference import ReferenceError, load_or_build
from exporter.state.reference import ReferenceProfile, ReferenceStatus, reference_key

log = logging.getLogger(__name__)


class ReferenceBuilds:
    def __init__(self, state_dir: str | None, background: bool = False):
        self.state_dir = state_dir
        self.background = background
        self.changed = threading.Event()
        self._done: dict[tuple, tuple[ReferenceProfile | None, ReferenceStatus]] = {}
        self._queued: set[tuple] = set()
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def get(self, model: Model) -> tuple[ReferenceProfile | None, ReferenceStatus | None]:
        if model.reference is None:
            return None, None
        key = reference_key(model)
        with self._lock:
            if key in self._done:
                return self._done[key]
            if self.background:
                if key not in self._queued:
                    self._queued.add(key)
                    self._queue.put((key, model))
                    self._start()
                return None, ReferenceStatus(False, building=True)
        result = self._build(model)
        with self._lock:
            self._done[key] = result
        return result

    def _build(self, model: Model) -> tuple[ReferenceProfile | None, ReferenceStatus]:
        try:
            ref = load_or_build(model, self.state_dir)
        except ReferenceError as exc:
            log.error("%s; skew for this model is unavailable", exc)
            return None, ReferenceStatus(False, error=str(exc))
        except Exception as exc:  # a bug or an unreadable file: reported, never fatal
            log.exception("building the reference of model %s failed", model.name)
            return None, ReferenceStatus(False, error=f"{type(exc).__name__}: {exc}")
        return ref, ReferenceStatus(True, rows=ref.rows)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="references", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                key, model = self._queue.get(timeout=1.0)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            log.info("building the reference profile of model %s", model.name)
            result = self._build(model)
            with self._lock:
                self._done[key] = result
                self._queued.discard(key)
            self.changed.set()

    def forget(self, keep: set[tuple]) -> None:
        """Drop built profiles no model uses any more (memory stays bounded by the config)."""
        with self._lock:
            for key in [k for k in self._done if k not in keep]:
                del self._done[key]
