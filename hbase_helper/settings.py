"""HBase client settings: every value from the environment, with defaults that work on the local stack."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"          # HBASE_HOST
DEFAULT_PORT = 9090                 # HBASE_PORT
DEFAULT_TABLE_PREFIX = ""           # HBASE_TABLE_PREFIX ("" = no prefix; else happybase adds "<prefix>_")
DEFAULT_PROTOCOL = "binary"         # HBASE_PROTOCOL (binary | compact)
DEFAULT_TRANSPORT = "buffered"      # HBASE_TRANSPORT (buffered | framed)
DEFAULT_POOL_SIZE = 4               # HBASE_POOL_SIZE (connections in the pool)
DEFAULT_TIMEOUT_MS = 30_000         # HBASE_TIMEOUT_MS (socket timeout per Thrift call)

PROTOCOLS = ("binary", "compact")
TRANSPORTS = ("buffered", "framed")

# field name -> environment variable
ENV_NAMES = {
    "host": "HBASE_HOST",
    "port": "HBASE_PORT",
    "table_prefix": "HBASE_TABLE_PREFIX",
    "protocol": "HBASE_PROTOCOL",
    "transport": "HBASE_TRANSPORT",
    "pool_size": "HBASE_POOL_SIZE",
    "timeout_ms": "HBASE_TIMEOUT_MS",
}
_INT_FIELDS = ("port", "pool_size", "timeout_ms")


@dataclass(frozen=True, kw_only=True)
class HBaseSettings:
    """Where the HBase Thrift (v1) server is and how to talk to it."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    table_prefix: str = DEFAULT_TABLE_PREFIX
    protocol: str = DEFAULT_PROTOCOL
    transport: str = DEFAULT_TRANSPORT
    pool_size: int = DEFAULT_POOL_SIZE
    timeout_ms: int = DEFAULT_TIMEOUT_MS

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"HBASE_HOST must be a non-empty host name, got {self.host!r}")
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{ENV_NAMES[name]} must be an int, got {value!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"HBASE_PORT must be in 1..65535, got {self.port}")
        if self.pool_size < 1:
            raise ValueError(f"HBASE_POOL_SIZE must be >= 1, got {self.pool_size}")
        if self.timeout_ms < 1:
            raise ValueError(f"HBASE_TIMEOUT_MS must be >= 1, got {self.timeout_ms}")
        if not isinstance(self.table_prefix, str):
            raise TypeError(f"HBASE_TABLE_PREFIX must be a string, got {self.table_prefix!r}")
        if self.table_prefix and (self.table_prefix[0] in "-." or not all(
                c.isascii() and (c.isalnum() or c in "_-.") for c in self.table_prefix)):
            raise ValueError("HBASE_TABLE_PREFIX may hold ASCII letters, digits, '_', '-', '.' (not first), "
                             f"got {self.table_prefix!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"HBASE_PROTOCOL must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.transport not in TRANSPORTS:
            raise ValueError(f"HBASE_TRANSPORT must be one of {', '.join(TRANSPORTS)}, got {self.transport!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "HBaseSettings":
        """Settings from ``env`` (default ``os.environ``); keyword overrides that are not None win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, var in ENV_NAMES.items():
            raw = env.get(var)
            if raw is None or (raw.strip() == "" and name != "table_prefix"):
                continue
            raw = raw.strip()
            if name in _INT_FIELDS:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise ValueError(f"{var} must be an integer, got {raw!r}") from None
            else:
                values[name] = raw
        known = {f.name for f in fields(cls)}
        for name, value in overrides.items():
            if name not in known:
                raise TypeError(f"unknown HBase setting {name!r}")
            if value is not None:
                values[name] = value
        return cls(**values)

    def with_(self, **changes: Any) -> "HBaseSettings":
        return replace(self, **changes)

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``happybase.Connection`` / ``ConnectionPool``."""
        return {
            "host": self.host,
            "port": self.port,
            "timeout": self.timeout_ms,
            "table_prefix": self.table_prefix or None,
            "protocol": self.protocol,
            "transport": self.transport,
        }

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
