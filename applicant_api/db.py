"""MySQL connections from a MYSQL_URL (mysql://user:password@host:port/database)."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

import pymysql

DEFAULT_MYSQL_URL = "mysql://credit@127.0.0.1:3307/credit"   # MYSQL_URL
DEFAULT_CONNECT_TIMEOUT = 5


def mysql_url() -> str:
    return os.environ.get("MYSQL_URL") or DEFAULT_MYSQL_URL


def parse_mysql_url(url: str) -> dict:
    """pymysql.connect keyword arguments for a mysql:// URL (password may be percent-encoded)."""
    if not isinstance(url, str):
        raise TypeError(f"MYSQL_URL must be a string, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mysql+pymysql", "mariadb"):
        raise ValueError(f"MYSQL_URL must start with mysql://, got {parts.scheme or url!r}")
    database = parts.path.lstrip("/")
    if not database:
        raise ValueError("MYSQL_URL must name a database: mysql://user:password@host:port/DATABASE")
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": database,
    }


def connect(url: str | None = None, **overrides) -> pymysql.connections.Connection:
    """A new connection. SSL is off for loopback servers (pymysql builds a context per connection, ~30 ms)."""
    kwargs = parse_mysql_url(url or mysql_url())
    kwargs.update(charset="utf8mb4", connect_timeout=DEFAULT_CONNECT_TIMEOUT, autocommit=False)
    if kwargs["host"] in ("127.0.0.1", "localhost", "::1"):
        kwargs["ssl_disabled"] = True
    kwargs.update(overrides)
    return pymysql.connect(**kwargs)
