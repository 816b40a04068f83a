"""Holds the current model: one immutable Model reference, swapped atomically on reload or when the file changes."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

from risk_api import artifact as artifacts
from risk_api.scoring import Model

logger = logging.getLogger(__name__)


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ModelStore:
    """``current()`` returns the model to use for a whole request; a reload never mutates a model in use.

    Two ways to take up a new artifact: ``reload()`` (the admin endpoint) and, when ``watch_seconds`` > 0, a
    check of the file's mtime/size/inode at most every ``watch_seconds`` on the request path. A bad new file
    is logged and reported, and the old model keeps serving.
    """

    def __init__(self, path: str | os.PathLike, watch_seconds: float = 0.0,
                 model_factory: Callable[[dict[str, Any]], Model] = Model):
        if not isinstance(watch_seconds, (int, float)) or watch_seconds < 0:
            raise ValueError(f"watch_seconds must be a number >= 0, got {watch_seconds!r}")
        if not callable(model_factory):
            raise TypeError("model_factory must be callable")
        self._factory = model_factory
        self.path = os.fspath(path)
        self.watch_seconds = float(watch_seconds)
        self._lock = threading.Lock()
        self._signature = _signature(self.path)
        self._model = self._factory(artifacts.load(self.path))
        self.loaded_at = _now()
        self.reloads = 0
        self.last_error: str | None = None
        self._next_check = time.monotonic() + self.watch_seconds

    def current(self) -> Model:
        if self.watch_seconds and time.monotonic() >= self._next_check:
            self._check_file()
        return self._model

    def _check_file(self) -> None:
        if not self._lock.acquire(blocking=False):
            return                               # another thread is checking; serve the current model
        try:
            self._next_check = time.monotonic() + self.watch_seconds
            sig = _signature(self.path)
            if sig is None or sig == self._signature:
                return
            self._load_locked(sig)
        except artifacts.ArtifactError:
            pass                                 # logged in _load_locked; keep serving the old model
        finally:
            self._lock.release()

    def reload(self) -> tuple[Model, Model]:
        """Load the artifact now; return (previous, current). Raise ArtifactError and keep the old model if bad."""
        with self._lock:
            previous = self._model
            self._load_locked(_signature(self.path))
            return previous, self._model

    def _load_locked(self, sig: tuple[int, int, int] | None) -> None:
        self._signature = sig                    # a bad file is reported once, not on every check
        try:
            model = self._factory(artifacts.load(self.path))
        except artifacts.ArtifactError as exc:
            self.last_error = str(exc)
            logger.error("model reload failed, still serving %s: %s", self._model.version, exc)
            raise
        if model.version != self._model.version:
            logger.info("model %s replaced by %s", self._model.version, model.version)
        self._model = model                      # the swap: one reference assignment
        self.loaded_at = _now()
        self.reloads += 1
        self.last_error = None

    def status(self) -> dict[str, Any]:
        """Everything, the last error (with the file's path) included: for the admin route only."""
        return {**self.public_status(), "last_error": self.last_error}

    def public_status(self) -> dict[str, Any]:
        return {"model_version": self._model.version, "loaded_at": self.loaded_at, "reloads": self.reloads,
                "watch_seconds": self.watch_seconds, "reload_ok": self.last_error is None}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
