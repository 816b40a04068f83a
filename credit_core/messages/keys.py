"""Message keys and partitions: a message about an application is keyed by its id, on murmur2(key)'s partition."""

from __future__ import annotations

from typing import Any

from aiokafka.partitioner import murmur2

from credit_core.fields import MAX_INT, parse_int

MAX_APP_ID = MAX_INT        # the applications table's BIGINT id


def id_key(app_id: int) -> bytes:
    """The message key of an application: its id in decimal ASCII."""
    return str(app_id).encode()


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives ``key`` among ``partitions`` (0..n-1)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def is_app_id(value: Any) -> bool:
    """An int (not a bool) in 1..MAX_APP_ID."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_APP_ID


def plain_int(value: Any, *, lo: int, hi: int) -> int | None:
    """``value`` as an int in ``lo..hi`` when it is one exactly (``credit_core.fields.parse_int``), else None.

    Keys come as bytes: only ASCII ones can hold a plain decimal.
    """
    if isinstance(value, (bytes, bytearray)):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    try:
        return parse_int(value, lo=lo, hi=hi)
    except (TypeError, ValueError):
        return None
