"""Bounded reads of request bodies: the size limit holds whatever the transfer encoding (chunked bodies declare no length)."""

from __future__ import annotations

import logging
from typing import BinaryIO

logger = logging.getLogger(__name__)

_READ_SIZE = 64 * 1024


def read_body(stream: BinaryIO, limit: int) -> bytes | None:
    """At most ``limit`` bytes of ``stream``; None when it holds more (the caller answers 413).

    A declared Content-Length over the limit is refused before this by werkzeug (MAX_CONTENT_LENGTH);
    a chunked body declares nothing and the WSGI server passes it through whole, so it is counted
    here, and never more than ``limit`` + one read is held in memory.
    """
    parts: list[bytes] = []
    size = 0
    while True:
        part = stream.read(min(_READ_SIZE, limit + 1 - size))
        if not part:
            return b"".join(parts)
        size += len(part)
        if size > limit:
            return None
        parts.append(part)
