"""A small thread-safe pool of pymysql connections, safe across fork (gunicorn workers)."""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import pymysql

from applicant_api import db

logger = logging.getLogger(__name__)

DEFAULT_SIZE = 4
DEFAULT_TIMEOUT = 10.0
DEFAULT_PING_AFTER = 30.0   # seconds idle after which a connection is pinged (reconnecting) before use
DEFAULT_LOCK_WAIT = 10      # innodb_lock_wait_timeout for pooled sessions, seconds

# Errors after which a connection cannot be trusted any more: it is closed, not returned to the pool.
BROKEN_ERRORS = (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError)


class PoolTimeout(RuntimeError):
    """No connection became free within the pool timeout."""


class ConnectionPool:
    """At most ``size`` connections, created lazily, handed out one per ``with pool.connection()``.

    Sessions run in autocommit mode (a plain read sees the latest commit) with
    READ COMMITTED isolation, UTC time zone and a bounded lock wait; writers
    call ``conn.begin()`` for a transaction.
    """

    def __init__(self, url: str, *, size: int = DEFAULT_SIZE, timeout: float = DEFAULT_TIMEOUT,
                 lock_wait: int = DEFAULT_LOCK_WAIT, connect: Callable[..., pymysql.Connection] = db.connect):
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"pool size must be an int >= 1, got {size!r}")
        if timeout <= 0:
            raise ValueError(f"pool timeout must be > 0, got {timeout!r}")
        db.parse_mysql_url(url)  # reject a bad URL now, not at the first request
        self.url = url
        self.size = size
        self.timeout = timeout
        self.lock_wait = int(lock_wait)
        self._connect = connect
        self._cond = threading.Condition()
        self._idle: list[tuple[pymysql.Connection, float]] = []
        self._open = 0
        self._pid = os.getpid()

    def _new_connection(self) -> pymysql.Connection:
        conn = self._connect(self.url, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION time_zone = '+00:00'")
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (self.lock_wait,))
        except Exception:
            conn.close()
            raise
        return conn

    def _after_fork(self) -> None:
        # A forked child shares the parent's sockets: forget them (never close: that would end the parent's sessions).
        if os.getpid() != self._pid:
            with self._cond:
                if os.getpid() != self._pid:
                    self._idle.clear()
                    self._open = 0
                    self._pid = os.getpid()

    def acquire(self) -> pymysql.Connection:
        self._after_fork()
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while True:
                if self._idle:
                    conn, last_used = self._idle.pop()
                    break
                if self._open < self.size:
                    self._open += 1
                    conn = None
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolTimeout(f"no database connection free within {self.timeout:g}s "
                                      f"(pool size {self.size})")
                self._cond.wait(remaining)
        if conn is not None and time.monotonic() - last_used > DEFAULT_PING_AFTER:
            try:
                conn.ping(reconnect=False)
            except BROKEN_ERRORS:
                logger.info("dropping a pooled MySQL connection that no longer answers")
                _close_quietly(conn)
                conn = None  # its slot is reused for a fresh connection below
        try:
            return conn if conn is not None else self._new_connection()
        except BaseException:
            if conn is not None:
                _close_quietly(conn)
            self._forget()
            raise

    def release(self, conn: pymysql.Connection, *, broken: bool = False) -> None:
        if os.getpid() != self._pid:
            return
        if broken or not conn.open:
            _close_quietly(conn)
            self._forget()
            return
        with self._cond:
            self._idle.append((conn, time.monotonic()))
            self._cond.notify()

    def _forget(self) -> None:
        with self._cond:
            self._open -= 1
            self._cond.notify()

    @contextmanager
    def connection(self) -> Iterator[pymysql.Connection]:
        """Borrow a connection; an open transaction left behind by an error is rolled back."""
        conn = self.acquire()
        try:
            yield conn
        except BROKEN_ERRORS:
            self.release(conn, broken=True)
            raise
        except BaseException:
            try:
                conn.rollback()
            except Exception:
                self.release(conn, broken=True)
                raise
            self.release(conn)
            raise
        else:
            self.release(conn)

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for conn, _ in idle:
            _close_quietly(conn)

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"size": self.size, "open": self._open, "idle": len(self._idle)}


def _close_quietly(conn: pymysql.Connection) -> None:
    try:
        conn.close()
    except Exception:
        pass
