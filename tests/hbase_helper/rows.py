"""Read-back rows of the decisions table as the tests compare them."""

from __future__ import annotations

from hbase_helper import layout


def without_store_fields(row: dict) -> dict:
    """A read-back without the fields the store adds."""
    return {k: v for k, v in row.items() if k not in layout.STORE_FIELDS}
