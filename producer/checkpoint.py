"""The producer's durable cursor: the last applicant seq the broker acknowledged, in a small JSON file.

Writes are atomic and durable: a temp file in the same folder, fsync, os.replace,
then fsync of the folder. After any crash the file holds either the old or the
new cursor, never a torn one.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import orjson

logger = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """The checkpoint file exists but cannot be read; refusing to guess a cursor."""


class Checkpoint:
    def __init__(self, path: str | os.PathLike):
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise TypeError(f"checkpoint path must be a path, got {path!r}")
        self.path = Path(path)

    def load(self) -> int:
        """The saved cursor (0 when there is no checkpoint yet)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        try:
            after = orjson.loads(raw)["after"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {self.path} is unreadable ({exc}); fix or delete it "
                                  "(deleting it republishes everything: at-least-once)") from None
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise CheckpointError(f"checkpoint {self.path} holds a bad cursor {after!r}")
        return after

    def save(self, after: int) -> None:
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ValueError(f"cursor must be an int >= 0, got {after!r}")
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        body = orjson.dumps({"after": after, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
