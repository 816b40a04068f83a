"""The "orjson" faust codec (``value_serializer="orjson"``): ``credit_core.jsoncodec`` for faust."""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from credit_core.jsoncodec import dumps, loads

CODEC_NAME = "orjson"


class OrjsonCodec(codecs.Codec):
    """faust codec: ``value_serializer="orjson"``."""

    def _dumps(self, obj: Any) -> bytes:
        return dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return loads(s)


def register() -> str:
    """Register the codec with faust (idempotent); return its name."""
    codecs.register(CODEC_NAME, OrjsonCodec())
    return CODEC_NAME
