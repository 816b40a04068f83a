"""JSON through orjson: compact bytes out, any JSON in; ``Decimal`` (what pymysql hands out) becomes a float.

The faust codec of the same name is registered by the topology's worker app (``topology.worker.codec``),
not here: importing this module has no side effect.
"""

from __future__ import annotations

import decimal
from typing import Any

import orjson


def _default(obj: Any) -> Any:
    # orjson cannot serialise Decimal (pymysql hands them out); numbers stay numbers.
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(obj: Any) -> bytes:
    """Serialise to compact JSON bytes (TypeError for what orjson cannot write: ints over 64 bits, deep nesting)."""
    return orjson.dumps(obj, default=_default)


loads = orjson.loads
