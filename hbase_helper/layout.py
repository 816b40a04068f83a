"""The HBase table layout: table and family names, row keys, cell encoding, and idempotent table creation.

Main table ``decisions`` - one row per application, holding its history
-----------------------------------------------------------------------
Row key ``<h4>:<id, 20 digits>``, e.g. ``3f2a:00000000000000012345``, where
``h4`` is the first 2 bytes of ``md5(str(id))`` as 4 lower-case hex digits.

- spread: consecutive ids land on unrelated prefixes (65,536 of them, which
  also gives natural region split points: ``10``, ``20``, ... ``f0``);
- one application is one ``get``: the key is computed from the id.

Every decision of the application is one history cell in family ``d``,
qualifier ``h<order key>``, value one JSON object: the cleaned ``applicant``,
``decision``, ``decided_by``, ``probability_of_default``, ``risk_band``,
``reasons``, ``model_version``, ``policy_version``, ``threshold``, the
``provenance`` (raw ``topic``, ``partition``, ``offset``, ``timestamp_ms``,
the producer's ``source``, ``seq`` and whatever else it recorded), the times
``ingested_at``, ``decided_at``, ``saved_at`` (epoch ms), ``time_ms`` /
``time_source`` (this decision's time in the index, see below) and
``index_key``.

The order key sorts as bytes in the order of the raw records (layout 2)::

    <1 + seq, 20 digits | 0 + Kafka timestamp, 20 digits>.<offset, 20>.<partition, 10>.<topic>

- a record with the producer's sequence number (``seq``) sorts by it; a
  record without one by its Kafka record timestamp (0 when Kafka had none:
  an ingest time differs on every replay, so it cannot order); every
  sequenced record sorts after every unsequenced one; ties by offset, then
  partition and topic: a total order over raw records;
- idempotent: the qualifier is a function of the raw record only (seq and
  timestamp come from the record, topic/partition/offset are where it is),
  so a replay of the same raw record rewrites its own cell and adds nothing;
  a new raw record of the same application (a resubmission, a page the
  producer published again) adds a cell;
- the current decision is the cell with the greatest qualifier, computed by
  the reader (``decode_main_row``). Nothing is materialised: a "current"
  cell written by whichever writer came last would depend on the order of
  concurrent writers, and neither check-and-put (happybase has none; the
  embedded server refuses it) nor several cell versions (the embedded
  server keeps one) may be assumed. Writers only add cells whose content is
  a function of their raw record, so every write order gives the same row.

Rows written by layout 1 (cells ``a:applicant``, ``d:decision``,
``d:result``, ``m:meta``: one decision, overwritten by the next) are read
as a history of one entry whose order key comes from its stored
provenance; a later decision of the same application adds its history cell
beside them and the reader picks the greater. No migration is needed
(nor possible without rewriting history: the old cells kept only the last
decision, and readers of both layouts give the same answer for them).

Why one JSON cell per decision: the server's cost is per cell (Thrift
Mutation + stored cell) and the client's too (one Mutation object per
cell). One column per applicant field made a decision 53 cells: 2.0-3.1k
decisions/s through the writer; layout 1's 4 cells + 1 index cell gave
5.9-8.8k/s. Layout 2 writes 1 history cell + 1 index cell per decision (5 before):
``python -m bench.hbase_writer --quick``, layout 1 and layout 2 run in turn
five times on the same loaded 2-core machine, gave medians of 8.8k and
11.3k decisions/s (per pair, layout 2 / layout 1: 1.11-1.68x, median
1.17x). A ``get`` reads the whole history of its application. JSON keeps types exact (numbers stay numbers, missing
values are ``null``) and is readable in the HBase shell.

Index table ``decisions_by_time`` - the time-range audit
---------------------------------------------------------
Row key ``<bucket, 2 digits>|<time ms, 13 digits>|<id, 20 digits>|<version>``
with ``bucket = first 4 bytes of md5(str(id)) mod INDEX_BUCKETS`` (16).
Salting spreads writes over 16 key ranges instead of appending to one hot
region; a time range is 16 range scans merged by (time, id), still in time
order. One cell, ``i:decision`` (bare word, for server-side filters).

The version names the application version the row indexes:
``s<seq, 20 digits>`` for a record with the producer's sequence number (one
row of the applicant store), else ``r<partition>.<offset>.<topic>`` (the raw
record). The time is, first that exists:

- ``created``: the ``created_at`` the producer read from the applicant store
  (ISO-8601 or epoch ms in the provenance): the same in every copy of the
  record, so a page the producer publishes again after a crash (a new raw
  record: new offset, new Kafka timestamp) maps to the same index row;
- ``kafka``: the raw record's Kafka timestamp, the same on every replay;
- ``ingested``: ``ingested_at``, when the record had no timestamp (Kafka's
  -1, any negative value, none); the stored provenance then says
  ``"timestamp_source": "ingested"`` and keeps ``timestamp_ms`` as the
  ingest time.

So a replay never adds an index row, a resubmission (new seq) adds one,
and a scan shows each application once, at the index row of its current
decision, with its current decision: a row of an older version is skipped
(its key differs from the current decision's ``index_key``). Rows of
layout 1 (no version part) are read the same way. ``--decision`` is
decided on the index rows (server-side filter) and checked again on the
current decision.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import orjson

from credit_core.clock import MAX_TIME_MS
# The decision contract (validate_decision, DECISIONS, the id range) lives with the message it checks.
from credit_core.messages.decision import DECISIONS, DecisionError, check_id  # noqa: F401  (DECISIONS: audit)

logger = logging.getLogger(__name__)

LAYOUT_VERSION = 2
MAIN_TABLE = "decisions"
INDEX_TABLE = "decisions_by_time"
INDEX_BUCKETS = 16
# One version per cell: history is kept as distinct cells (qualifiers), never as cell versions.
FAMILIES: dict[str, dict[str, dict[str, Any]]] = {
    MAIN_TABLE: {"a": {"max_versions": 1}, "d": {"max_versions": 1}, "m": {"max_versions": 1}},
    INDEX_TABLE: {"i": {"max_versions": 1}},
}

MAX_SEQ = 2**63 - 1             # a Kafka/Java long; 20 digits in the order key

DECISION_FIELDS = ("decision", "decided_by", "probability_of_default", "risk_band", "reasons",
                    "model_version", "policy_version", "threshold")
PROVENANCE_FIELDS = ("topic", "partition", "offset", "timestamp_ms", "source", "seq")
TIME_FIELDS = ("ingested_at", "decided_at", "saved_at")
HISTORY_PREFIX = b"d:h"          # history cells: family d, qualifier h<order key>
LEGACY_COLUMNS = (b"a:applicant", b"d:decision", b"d:result", b"m:meta")   # layout 1
# What a decoded entry adds to the writer's input (the store's own fields).
STORE_FIELDS = ("saved_at", "row_key", "index_key", "time_ms", "time_source", "history_key", "history")


# -- keys ---------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_time_ms(value: Any, name: str = "time") -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be epoch milliseconds as an int, got {value!r}")
    if not 0 <= value <= MAX_TIME_MS:
        raise ValueError(f"{name} must be in 0..{MAX_TIME_MS} ms, got {value}")
    return value


def _digest(app_id: int) -> bytes:
    return hashlib.md5(str(app_id).encode("ascii"), usedforsecurity=False).digest()


def row_key(app_id: int) -> bytes:
    """Main-table row key of an application: ``<4 hex of md5(id)>:<id, 20 digits>``."""
    check_id(app_id)
    return b"%s:%020d" % (_digest(app_id)[:2].hex().encode("ascii"), app_id)


def id_from_row_key(key: bytes) -> int:
    prefix, sep, digits = key.partition(b":")
    if not sep or len(prefix) != 4 or len(digits) != 20 or not digits.isdigit():
        raise ValueError(f"not a decisions row key: {key!r}")
    return int(digits)


def bucket(app_id: int) -> int:
    """The index salt bucket of an application (0..INDEX_BUCKETS-1)."""
    check_id(app_id)
    return int.from_bytes(_digest(app_id)[:4], "big") % INDEX_BUCKETS


def index_key(app_id: int, time_ms: int, version: bytes | None = None) -> bytes:
    """Index row key: ``<bucket, 2 digits>|<time ms, 13 digits>|<id, 20 digits>[|<version>]`` (layout 1: none)."""
    check_time_ms(time_ms, "index time")
    key = b"%02d|%013d|%020d" % (bucket(app_id), time_ms, app_id)
    return key if version is None else key + b"|" + version


def parse_index_key(key: bytes) -> tuple[int, int, int]:
    """(bucket, time ms, id) of an index row key (either layout)."""
    parts = key.split(b"|", 3)
    if len(parts) not in (3, 4) or not all(p.isdigit() for p in parts[:3]) or parts[3:] == [b""]:
        raise ValueError(f"not a decisions_by_time row key: {key!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def index_scan_ranges(start_ms: int, stop_ms: int) -> list[tuple[bytes, bytes]]:
    """One (row_start, row_stop) per bucket covering index times in [start_ms, stop_ms)."""
    check_time_ms(start_ms, "start")
    check_time_ms(stop_ms, "stop")
    return [(b"%02d|%013d|" % (b, start_ms), b"%02d|%013d|" % (b, stop_ms)) for b in range(INDEX_BUCKETS)]


# -- order and time of a raw record ---------------------------------------------

def valid_seq(prov: Mapping[str, Any]) -> int | None:
    seq = prov.get("seq")
    return seq if _is_int(seq) and 0 <= seq <= MAX_SEQ else None


def kafka_time(prov: Mapping[str, Any]) -> int | None:
    """The raw record's own Kafka timestamp, or None when it had none (-1, negative, missing, replaced)."""
    ts = prov.get("timestamp_ms")
    if _is_int(ts) and 0 <= ts <= MAX_TIME_MS and prov.get("timestamp_source", "kafka") == "kafka":
        return ts
    return None


def created_time(prov: Mapping[str, Any]) -> int | None:
    """The applicant store's ``created_at`` (epoch ms or ISO-8601, UTC when no offset), or None."""
    value = prov.get("created_at")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 13:
        value = int(value)
    if _is_int(value):
        ms = value
    elif isinstance(value, str) and 10 <= len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        ms = int(moment.timestamp() * 1000)
    else:
        return None
    return ms if 0 <= ms <= MAX_TIME_MS else None


def _topic_bytes(prov: Mapping[str, Any]) -> bytes:
    return prov["topic"].encode("utf-8", errors="surrogateescape")


def order_key(prov: Mapping[str, Any]) -> bytes:
    """The bytes that sort raw records: ``1``+seq or ``0``+Kafka time (20 digits), then offset, partition, topic."""
    seq = valid_seq(prov)
    if seq is not None:
        head = b"1%020d" % seq
    else:
        head = b"0%020d" % (kafka_time(prov) or 0)
    return head + b".%020d.%010d." % (prov["offset"], prov["partition"]) + _topic_bytes(prov)


def version_tag(prov: Mapping[str, Any]) -> bytes:
    """The application version an index row stands for: one store row (seq), else one raw record."""
    seq = valid_seq(prov)
    if seq is not None:
        return b"s%020d" % seq
    return b"r%d.%d." % (prov["partition"], prov["offset"]) + _topic_bytes(prov)


def entry_time(decision: Mapping[str, Any]) -> tuple[int, str]:
    """(time ms, source) that keys a decision's index row: created_at, else Kafka time, else ingested_at."""
    prov = decision.get("provenance") or {}
    created = created_time(prov)
    if created is not None:
        return created, "created"
    ts = kafka_time(prov)
    if ts is not None:
        return ts, "kafka"
    return decision["ingested_at"], "ingested"


def index_time(decision: Mapping[str, Any]) -> int:
    """The stable time that keys a decision's index row (see entry_time)."""
    return entry_time(decision)[0]


# -- values -------------------------------------------------------------------

def decode_value(raw: bytes) -> Any:
    """A JSON cell's value; a cell that is not JSON (written by another tool) comes back as text."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")


# -- rows ---------------------------------------------------------------------

RESULT_FIELDS = tuple(name for name in DECISION_FIELDS if name != "decision")
_NO_PROVENANCE = dict.fromkeys(PROVENANCE_FIELDS)


def _dumps(value: Any, app_id: int, what: str) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError
        raise DecisionError(what, f"not JSON-serialisable: {exc}", app_id) from None


def _stored_provenance(decision: Mapping[str, Any], time_source: str) -> dict[str, Any]:
    prov = {**_NO_PROVENANCE, **decision["provenance"]}
    if time_source == "ingested" and prov.get("timestamp_source") != "ingested":
        # Kafka gave no usable timestamp: say so, keep what it gave, time the record by its ingestion.
        if prov.get("timestamp_ms") is not None:
            prov["kafka_timestamp_ms"] = prov["timestamp_ms"]
        prov["timestamp_ms"] = decision["ingested_at"]
        prov["timestamp_source"] = "ingested"
    return prov


def encode_rows(decision: Mapping[str, Any], saved_at: int
                ) -> tuple[tuple[bytes, dict[bytes, bytes]], tuple[bytes, dict[bytes, bytes]]]:
    """((main row key, {history column: value}), (index row key, cells)) of a validated decision."""
    app_id = decision["id"]
    prov = decision["provenance"]
    time_ms, time_source = entry_time(decision)
    digest = _digest(app_id)
    main_key = b"%s:%020d" % (digest[:2].hex().encode("ascii"), app_id)
    idx_key = b"%02d|%013d|%020d|%s" % (int.from_bytes(digest[:4], "big") % INDEX_BUCKETS, time_ms, app_id,
                                        version_tag(prov))
    entry = {
        "id": app_id,
        "applicant": decision["applicant"],
        "decision": decision["decision"],
        **{name: decision.get(name) for name in RESULT_FIELDS},
        "provenance": _stored_provenance(decision, time_source),
        "ingested_at": decision["ingested_at"],
        "decided_at": decision["decided_at"],
        "saved_at": saved_at,
        "time_ms": time_ms,
        "time_source": time_source,
        "index_key": idx_key.decode("utf-8", errors="surrogateescape"),
    }
    if entry["reasons"] is None:
        entry["reasons"] = []
    try:
        value = orjson.dumps(entry)
    except TypeError:  # orjson.JSONEncodeError: name the part that cannot be written
        _dumps(entry["applicant"], app_id, "applicant")
        _dumps({name: entry[name] for name in RESULT_FIELDS}, app_id, "result")
        value = _dumps(entry, app_id, "provenance")
    return ((main_key, {HISTORY_PREFIX + order_key(prov): value}),
            (idx_key, {b"i:decision": decision["decision"].encode("ascii")}))


def encode_main_row(decision: Mapping[str, Any], saved_at: int) -> tuple[bytes, dict[bytes, bytes]]:
    """(row key, cells) a validated decision adds to its main row: its one history cell."""
    return encode_rows(decision, saved_at)[0]


def encode_index_row(decision: Mapping[str, Any]) -> tuple[bytes, dict[bytes, bytes]]:
    """(row key, cells) of a validated decision's time-index row."""
    return encode_rows(decision, 0)[1]


def _json_cell(cells: Mapping[bytes, bytes], column: bytes) -> dict[str, Any]:
    raw = cells.get(column)
    if raw is None:
        return {}
    value = decode_value(raw)
    return value if isinstance(value, dict) else {}


def _entry(value: Mapping[str, Any], app_id: int, history_key: str) -> dict[str, Any]:
    """A history cell's JSON in the writer's input shape plus the store's fields."""
    out: dict[str, Any] = {"id": value.get("id", app_id), "applicant": value.get("applicant") or {},
                           "decision": value.get("decision")}
    for name in RESULT_FIELDS:
        out[name] = value.get(name, [] if name == "reasons" else None)
    out["provenance"] = {**_NO_PROVENANCE, **(value.get("provenance") or {})}
    for name in ("ingested_at", "decided_at", "saved_at", "time_ms", "time_source", "index_key"):
        out[name] = value.get(name)
    out["history_key"] = history_key
    return out


def _legacy_entry(cells: Mapping[bytes, bytes], app_id: int) -> tuple[bytes, dict[str, Any]]:
    """(order key, entry) of a layout-1 row (cells a:applicant, d:decision, d:result, m:meta)."""
    result = _json_cell(cells, b"d:result")
    meta = _json_cell(cells, b"m:meta")
    word = cells.get(b"d:decision")
    value = {**result, "id": meta.get("id", app_id), "applicant": _json_cell(cells, b"a:applicant"),
             "decision": word.decode("ascii", errors="replace") if word is not None else None,
             **{k: meta.get(k) for k in ("provenance", "ingested_at", "decided_at", "saved_at", "index_key")}}
    prov = value.get("provenance") or {}
    try:
        okey = order_key(prov)
    except (KeyError, TypeError, AttributeError):
        okey = b""                          # no usable provenance: older than anything else
    if value["index_key"]:
        try:
            value["time_ms"] = parse_index_key(value["index_key"].encode())[1]
        except ValueError:
            pass
    return okey, _entry(value, app_id, "legacy")


def history_entries(key: bytes, cells: Mapping[bytes, bytes]) -> list[dict[str, Any]]:
    """Every decision stored in a main row, oldest raw record first (layout 1 cells included)."""
    app_id = id_from_row_key(key)
    found: dict[bytes, dict[str, Any]] = {}
    for column, raw in cells.items():
        if column.startswith(HISTORY_PREFIX):
            value = decode_value(raw)
            okey = column[len(HISTORY_PREFIX):]
            found[okey] = _entry(value if isinstance(value, dict) else {}, app_id,
                                 okey.decode("utf-8", errors="replace"))
    if any(column in cells for column in LEGACY_COLUMNS):
        okey, entry = _legacy_entry(cells, app_id)
        found.setdefault(okey, entry)       # the same raw record saved again by layout 2 supersedes it
    return [found[k] for k in sorted(found)]


def decode_main_row(key: bytes, cells: Mapping[bytes, bytes], *, history: bool = True) -> dict[str, Any] | None:
    """The application's current decision (greatest order key) in the writer's input shape, plus
    ``saved_at``, ``row_key``, ``index_key``, ``time_ms``, ``time_source``, ``history_key`` and, unless
    ``history`` is false, ``history`` (every decision, oldest first). None for a row with no decision.
    """
    entries = history_entries(key, cells)
    if not entries:
        return None
    out = dict(entries[-1])
    out["row_key"] = key.decode("ascii", errors="replace")
    if history:
        out["history"] = entries
    return out


def decode_index_row(key: bytes, cells: Mapping[bytes, bytes]) -> dict[str, Any]:
    _, time_ms, app_id = parse_index_key(key)
    return {
        "index_key": key,
        "time_ms": time_ms,
        "id": app_id,
        "decision": cells.get(b"i:decision", b"").decode("ascii", errors="replace"),
        "row": cells.get(b"i:row") or row_key(app_id),   # i:row: rows written before it was dropped
    }


# -- tables -------------------------------------------------------------------

def _as_text(name: bytes | str) -> str:
    return name.decode("utf-8") if isinstance(name, bytes) else name


def ensure_tables(connection, tables: Iterable[str] = (MAIN_TABLE, INDEX_TABLE)) -> list[str]:
    """Create the missing tables with their families; return the names created now.

    Idempotent and safe when several workers race: a table another worker
    created in between (AlreadyExists, or an IOError saying it exists) is fine.
    An existing table that lacks one of the layout's families is an error.
    """
    from hbase_helper.thrift_types import AlreadyExists, HBaseIOError

    existing = {_as_text(n) for n in connection.tables()}
    created = []
    for name in tables:
        families = FAMILIES[name]
        if name not in existing:
            try:
                connection.create_table(name, families)
                created.append(name)
                logger.info("created HBase table %s (families %s)", name, ", ".join(families))
                continue
            except AlreadyExists:
                logger.info("HBase table %s was created concurrently", name)
            except HBaseIOError as exc:
                if "exist" not in str(getattr(exc, "message", exc)).lower():
                    raise
                logger.info("HBase table %s was created concurrently", name)
        have = {_as_text(f).rstrip(":") for f in connection.table(name).families()}
        missing = sorted(set(families) - have)
        if missing:
            raise RuntimeError(f"HBase table {name} exists without column families {missing}; "
                               f"it was not created by this layout")
    return created
