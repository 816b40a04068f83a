"""HBase client settings: every value from the environment, with defaults that work on the local stack."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from credit_core.config import Parser, Settings, choice, integer, setting, text

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


class _TablePrefix(Parser):
    expected = "a table name prefix"

    def check(self, value: Any) -> str:
        value = super().check(value)
        if value and (value[0] in "-." or not all(c.isascii() and (c.isalnum() or c in "_-.") for c in value)):
            raise ValueError(f"may hold ASCII letters, digits, '_', '-', '.' (not first), got {value!r}")
        return value


@dataclass(frozen=True, kw_only=True)
class HBaseSettings(Settings):
    """Where the HBase Thrift (v1) server is and how to talk to it."""

    host: str = setting("HBASE_HOST", DEFAULT_HOST, parse=text(nonempty=True))
    port: int = setting("HBASE_PORT", DEFAULT_PORT, parse=integer(min=1, max=65535))
    table_prefix: str = setting("HBASE_TABLE_PREFIX", DEFAULT_TABLE_PREFIX, parse=_TablePrefix(), empty=True)
    protocol: str = setting("HBASE_PROTOCOL", DEFAULT_PROTOCOL, parse=choice(*PROTOCOLS))
    transport: str = setting("HBASE_TRANSPORT", DEFAULT_TRANSPORT, parse=choice(*TRANSPORTS))
    pool_size: int = setting("HBASE_POOL_SIZE", DEFAULT_POOL_SIZE, parse=integer(min=1))
    timeout_ms: int = setting("HBASE_TIMEOUT_MS", DEFAULT_TIMEOUT_MS, parse=integer(min=1))

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
