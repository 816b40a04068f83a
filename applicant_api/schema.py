"""The applications table: one column per application field, plus the paging sequence, source and time."""

from __future__ import annotations

from credit_core.fields import FIELDS, Field

TABLE = "applications"

_SQL_TYPES = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "percent": "DOUBLE",
    "term": "SMALLINT",
    "emp_length": "TINYINT",
    "grade": "CHAR(1)",
    "sub_grade": "CHAR(2)",
    "text": "VARCHAR(255)",
    "month": "CHAR(7)",
}


def _column(field: Field) -> str:
    null = "NOT NULL" if field.required else "NULL"
    return f"`{field.name}` {_SQL_TYPES[field.kind]} {null}"


def create_table_sql() -> str:
    columns = ",\n  ".join(_column(f) for f in FIELDS)
    return (
        f"CREATE TABLE IF NOT EXISTS `{TABLE}` (\n"
        "  `seq` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,\n"
        f"  {columns},\n"
        "  `true_pd` DOUBLE NULL COMMENT 'synthetic data only: the ground-truth probability of default',\n"
        "  `source` VARCHAR(64) NOT NULL DEFAULT 'api',\n"
        "  `created_at` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),\n"
        "  PRIMARY KEY (`seq`),\n"
        "  UNIQUE KEY `uq_applications_id` (`id`)\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )


def init_db(conn) -> None:
    """Create the schema if missing (idempotent)."""
    with conn.cursor() as cur:
        cur.execute(create_table_sql())
    conn.commit()


def reset_db(url: str) -> None:
    """Drop and recreate the applications table: a clean slate for the main job, tests and benches."""
    from applicant_api.db import connect

    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS `{TABLE}`")
        conn.commit()
        init_db(conn)
    finally:
        conn.close()
