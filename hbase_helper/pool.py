"""happybase connection pools built from settings, created lazily, with the tables ensured on first use."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Iterator

import happybase

from hbase_helper.layout import ensure_tables
from hbase_helper.settings import HBaseSettings

logger = logging.getLogger(__name__)

_pools: dict[HBaseSettings, happybase.ConnectionPool] = {}
_lock = threading.Lock()


def make_pool(settings: HBaseSettings | None = None, *, ensure: bool = True) -> happybase.ConnectionPool:
    """A new pool of ``settings.pool_size`` connections; connects once and (by default) ensures the tables.

    Raises (thriftpy2 transport errors, socket errors) when HBase does not answer.
    """
    settings = settings or HBaseSettings.from_env()
    if not isinstance(settings, HBaseSettings):
        raise TypeError(f"settings must be HBaseSettings, got {type(settings).__name__}")
    pool = happybase.ConnectionPool(settings.pool_size, **settings.connection_kwargs())
    if ensure:
        with pool.connection() as conn:
            ensure_tables(conn)
    logger.info("HBase pool of %d connection(s) to %s (table prefix %r)", settings.pool_size,
                settings.address, settings.table_prefix)
    return pool


def get_pool(settings: HBaseSettings | None = None) -> happybase.ConnectionPool:
    """The process-wide pool for ``settings`` (from the environment by default), created on first call.

    A failed creation is not cached: the next call tries again.
    """
    settings = settings or HBaseSettings.from_env()
    pool = _pools.get(settings)
    if pool is None:
        with _lock:
            pool = _pools.get(settings)
            if pool is None:
                pool = _pools[settings] = make_pool(settings)
    return pool


def drop_pool(settings: HBaseSettings | None = None) -> None:
    """Forget the pool for ``settings`` (its connections close when collected)."""
    with _lock:
        _pools.pop(settings or HBaseSettings.from_env(), None)


@contextlib.contextmanager
def connect(settings: HBaseSettings | None = None) -> Iterator[happybase.Connection]:
    """One plain connection (for CLIs and tests), closed on exit; tables are not created."""
    settings = settings or HBaseSettings.from_env()
    conn = happybase.Connection(autoconnect=False, **settings.connection_kwargs())
    try:
        conn.open()
        yield conn
    finally:
        conn.close()
