"""JSON through orjson: plain functions for the hot path and the same codec registered with faust as "orjson"."""

from __future__ import annotations

import decimal
import logging
from typing import Any

import orjson
from faust.serializers import codecs

logger = logging.getLogger(__name__)

CODEC_NAME = "orjson"


def _default(obj: Any) -> Any:
    # orjson cannot serialise Decimal (pymysql hands them out); numbers stay numbers.
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(obj: Any) -> bytes:
    """Serialise to compact JSON bytes."""
    return orjson.dumps(obj, default=_default)


loads = orjson.loads


class OrjsonCodec(codecs.Codec):
    """faust codec: ``value_serializer="orjson"``."""

    def _dumps(self, obj: Any) -> bytes:
        return dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return loads(s)


codecs.register(CODEC_NAME, OrjsonCodec())
