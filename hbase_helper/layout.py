"""The HBase table layout: table and family names, row keys, cell encoding, and idempotent table creation.

Main table ``decisions`` - one row per application, the truth
--------------------------------------------------------------
Row key ``<h4>:<id, 20 digits>``, e.g. ``3f2a:00000000000000012345``, where
``h4`` is the first 2 bytes of ``md5(str(id))`` as 4 lower-case hex digits.

- idempotent: the key depends on the application id only, so a replayed
  applicant overwrites its own row (every cell is always written, so nothing
  of an older version survives);
- spread: consecutive ids land on unrelated prefixes (65,536 of them, which
  also gives natural region split points: ``10``, ``20``, ... ``f0``);
- one application is one ``get``: the key is computed from the id.

Families (short names keep every stored cell small) and their four cells:

- ``a:applicant`` - the cleaned applicant record, a JSON object;
- ``d:decision`` - ``approve`` or ``decline`` as a bare word (filterable
  with ``SingleColumnValueFilter('d', 'decision', =, 'binary:decline')``);
- ``d:result`` - JSON object: ``decided_by`` (policy|model),
  ``probability_of_default``, ``risk_band``, ``reasons`` (list of
  ``{code, text, ...}``), ``model_version``, ``policy_version``, ``threshold``;
- ``m:meta`` - JSON object: ``id``, ``provenance`` (raw ``topic``,
  ``partition``, ``offset``, ``timestamp_ms``, the producer's ``source``,
  ``seq`` and whatever else it recorded, e.g. ``fetched_at``), times
  ``ingested_at``, ``decided_at``, ``saved_at`` (epoch ms) and ``index_key``
  (this row's entry in the time index).

Why a few JSON cells and not one column per field: the server's cost is per
cell (Thrift Mutation + stored cell) and the client's too (one Mutation
object per cell). One column per applicant field made a decision 53 cells:
2.0-3.1k decisions/s through the writer against the embedded server; these
4 cells (+1 in the index) gave 5.9-8.8k/s on the same loaded 2-core machine,
which the pipeline's 10k applicants/s target needs. JSON keeps types exact (numbers
stay numbers, missing values are ``null``) and is readable in the HBase shell.

Index table ``decisions_by_time`` - the time-range audit
---------------------------------------------------------
Row key ``<bucket, 2 digits>|<time ms, 13 digits>|<id, 20 digits>`` with
``bucket = first 4 bytes of md5(str(id)) mod INDEX_BUCKETS`` (16). Salting
spreads writes over 16 key ranges instead of appending to one hot region; a
time range is 16 range scans merged by (time, id), still in time order.

The time is the applicant's ``applicants.raw`` Kafka record timestamp (from
the provenance; ``ingested_at`` when a record has none). A replay re-reads
the same raw record, so it carries the same timestamp and rewrites the same
index row: no duplicates. ``decided_at`` would differ on every replay and
``saved_at`` likewise, which is why neither keys the index.

An index row (family ``i``) holds one cell, ``decision`` (bare word); the
main row key is computed from the id at the end of the index key (every cell
costs the server an insert, so the main key is not stored twice).
``--decision decline`` is decided on the index rows alone (server-side
filter), and only the matching main rows are fetched (batched multi-gets).
The main row stays the truth: an index entry whose main row now points at a
different index key (the same id published to applicants.raw
twice, so two raw timestamps) is stale and skipped by readers.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any, Iterable, Mapping

import orjson

logger = logging.getLogger(__name__)

MAIN_TABLE = "decisions"
INDEX_TABLE = "decisions_by_time"
INDEX_BUCKETS = 16
# One version per cell: a replay overwrites, the history of replays is not audit data.
FAMILIES: dict[str, dict[str, dict[str, Any]]] = {
    MAIN_TABLE: {"a": {"max_versions": 1}, "d": {"max_versions": 1}, "m": {"max_versions": 1}},
    INDEX_TABLE: {"i": {"max_versions": 1}},
}

DECISIONS = ("approve", "decline")
DECIDED_BY = ("policy", "model")
MAX_TIME_MS = 10**13 - 1        # 13 digits: good until the year 2286
MAX_ID = 10**20 - 1             # 20 digits: any unsigned 64-bit id

DECISION_FIELDS = ("decision", "decided_by", "probability_of_default", "risk_band", "reasons",
                    "model_version", "policy_version", "threshold")
PROVENANCE_FIELDS = ("topic", "partition", "offset", "timestamp_ms", "source", "seq")
TIME_FIELDS = ("ingested_at", "decided_at", "saved_at")


class DecisionError(ValueError):
    """A decision dict breaks the writer's contract; ``field`` names what is wrong."""

    def __init__(self, field: str, reason: str, app_id: Any = None):
        where = f" (application {app_id})" if app_id is not None else ""
        super().__init__(f"{field}: {reason}{where}")
        self.field = field
        self.reason = reason
        self.app_id = app_id


# -- keys ---------------------------------------------------------------------

def check_id(app_id: Any) -> int:
    if isinstance(app_id, bool) or not isinstance(app_id, int):
        raise TypeError(f"application id must be an int, got {type(app_id).__name__} {app_id!r}")
    if not 1 <= app_id <= MAX_ID:
        raise ValueError(f"application id must be in 1..{MAX_ID}, got {app_id}")
    return app_id


def check_time_ms(value: Any, name: str = "time") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
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


def index_key(app_id: int, time_ms: int) -> bytes:
    """Index row key: ``<bucket, 2 digits>|<time ms, 13 digits>|<id, 20 digits>``."""
    check_time_ms(time_ms, "index time")
    return b"%02d|%013d|%020d" % (bucket(app_id), time_ms, app_id)


def _keys(app_id: int, time_ms: int) -> tuple[bytes, bytes]:
    """(row_key, index_key) of an application and its index time from one md5 (the writer's hot path)."""
    check_id(app_id)
    check_time_ms(time_ms, "index time")
    digest = _digest(app_id)
    return (b"%s:%020d" % (digest[:2].hex().encode("ascii"), app_id),
            b"%02d|%013d|%020d" % (int.from_bytes(digest[:4], "big") % INDEX_BUCKETS, time_ms, app_id))


def parse_index_key(key: bytes) -> tuple[int, int, int]:
    """(bucket, time ms, id) of an index row key."""
    parts = key.split(b"|")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a decisions_by_time row key: {key!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def index_scan_ranges(start_ms: int, stop_ms: int) -> list[tuple[bytes, bytes]]:
    """One (row_start, row_stop) per bucket covering index times in [start_ms, stop_ms)."""
    check_time_ms(start_ms, "start")
    check_time_ms(stop_ms, "stop")
    return [(b"%02d|%013d|" % (b, start_ms), b"%02d|%013d|" % (b, stop_ms)) for b in range(INDEX_BUCKETS)]


# -- values -------------------------------------------------------------------

def decode_value(raw: bytes) -> Any:
    """A JSON cell's value; a cell that is not JSON (written by another tool) comes back as text."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")


def index_time(decision: Mapping[str, Any]) -> int:
    """The stable time that keys an application's index row (raw record time, else ingested_at)."""
    ts = (decision.get("provenance") or {}).get("timestamp_ms")
    if isinstance(ts, int) and not isinstance(ts, bool) and 0 <= ts <= MAX_TIME_MS:
        return ts
    return decision["ingested_at"]


def _finite_or_none(decision: Mapping[str, Any], name: str, app_id: int, lo=None, hi=None) -> None:
    value = decision.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DecisionError(name, f"must be a finite number or null, got {value!r}", app_id)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise DecisionError(name, f"must be in {lo}..{hi}, got {value!r}", app_id)


def _str_or_none(decision: Mapping[str, Any], name: str, app_id: int) -> None:
    value = decision.get(name)
    if value is not None and not isinstance(value, str):
        raise DecisionError(name, f"must be a string or null, got {value!r}", app_id)


def _int_field(mapping: Mapping[str, Any], name: str, app_id: int, *, prefix: str = "",
               nullable: bool = False) -> None:
    value = mapping.get(name)
    if value is None and nullable:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DecisionError(prefix + name, f"must be a non-negative int, got {value!r}", app_id)


_STR = frozenset((str,))


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def validate_decision(decision: Any) -> int:
    """Check a decision dict against the writer's contract; return its id or raise DecisionError."""
    if not _is_mapping(decision):
        raise DecisionError("decision", f"must be a dict, got {type(decision).__name__}")
    app_id = decision.get("id")
    try:
        check_id(app_id)
    except (TypeError, ValueError) as exc:
        raise DecisionError("id", str(exc)) from None
    applicant = decision.get("applicant")
    if not _is_mapping(applicant):
        raise DecisionError("applicant", "must be a dict of cleaned fields", app_id)
    if "" in applicant or not set(map(type, applicant)) <= _STR:   # the usual case in C: plain str keys
        for key in applicant:
            if not isinstance(key, str) or not key:
                raise DecisionError("applicant", f"field names must be non-empty strings, got {key!r}", app_id)
    if applicant.get("id", app_id) != app_id:
        raise DecisionError("applicant.id", f"{applicant.get('id')!r} differs from the decision's id", app_id)
    if decision.get("decision") not in DECISIONS:
        raise DecisionError("decision", f"must be one of {', '.join(DECISIONS)}, got {decision.get('decision')!r}",
                            app_id)
    if decision.get("decided_by") not in DECIDED_BY:
        raise DecisionError("decided_by",
                            f"must be one of {', '.join(DECIDED_BY)}, got {decision.get('decided_by')!r}", app_id)
    pd = decision.get("probability_of_default")
    if not (pd is None or (type(pd) is float and 0.0 <= pd <= 1.0)):   # NaN and inf take the full check
        _finite_or_none(decision, "probability_of_default", app_id, 0, 1)
    threshold = decision.get("threshold")
    if not (threshold is None or (type(threshold) is float and -math.inf < threshold < math.inf)):
        _finite_or_none(decision, "threshold", app_id)
    for name in ("risk_band", "model_version", "policy_version"):
        value = decision.get(name)
        if value is not None and type(value) is not str:
            _str_or_none(decision, name, app_id)
    reasons = decision.get("reasons", [])
    if not isinstance(reasons, list) or not all(_is_mapping(r) and isinstance(r.get("code"), str)
                                                for r in reasons):
        raise DecisionError("reasons", "must be a list of objects with a string 'code'", app_id)
    prov = decision.get("provenance")
    if not _is_mapping(prov):
        raise DecisionError("provenance", "must be a dict (topic, partition, offset, timestamp_ms, ...)", app_id)
    if not isinstance(prov.get("topic"), str) or not prov["topic"]:
        raise DecisionError("provenance.topic", f"must be a topic name, got {prov.get('topic')!r}", app_id)
    _int_field(prov, "partition", app_id, prefix="provenance.")
    _int_field(prov, "offset", app_id, prefix="provenance.")
    _int_field(prov, "timestamp_ms", app_id, prefix="provenance.", nullable=True)
    for key, value in prov.items():  # the producer's own fields (source, seq, fetched_at...) are kept as given
        if not isinstance(key, str) or not (value is None or isinstance(value, (str, int, float))):
            raise DecisionError(f"provenance.{key}", f"must be a JSON scalar, got {value!r}", app_id)
    for name in ("ingested_at", "decided_at"):
        value = decision.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIME_MS:
            raise DecisionError(name, f"must be epoch milliseconds (int), got {value!r}", app_id)
    return app_id


# -- rows ---------------------------------------------------------------------

RESULT_FIELDS = tuple(name for name in DECISION_FIELDS if name != "decision")
_NO_PROVENANCE = dict.fromkeys(PROVENANCE_FIELDS)


def _dumps(value: Any, app_id: int, what: str) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError
        raise DecisionError(what, f"not JSON-serialisable: {exc}", app_id) from None


def encode_main_row(decision: Mapping[str, Any], saved_at: int) -> tuple[bytes, dict[bytes, bytes]]:
    """(row key, cells) of a validated decision's main row; DecisionError when a value is not JSON."""
    return encode_rows(decision, saved_at)[0]


def encode_rows(decision: Mapping[str, Any], saved_at: int
                ) -> tuple[tuple[bytes, dict[bytes, bytes]], tuple[bytes, dict[bytes, bytes]]]:
    """((row key, cells) of the main row, (row key, cells) of the index row) of a validated decision."""
    app_id = decision["id"]
    main_key, idx_key = _keys(app_id, index_time(decision))
    prov = decision["provenance"]
    result = {name: decision.get(name) for name in RESULT_FIELDS}
    if result["reasons"] is None:
        result["reasons"] = []
    meta = {
        "id": app_id,
        "provenance": {**_NO_PROVENANCE, **prov},
        "ingested_at": decision["ingested_at"],
        "decided_at": decision["decided_at"],
        "saved_at": saved_at,
        "index_key": idx_key.decode("ascii"),
    }
    word = decision["decision"].encode("ascii")
    return (main_key, {
        b"a:applicant": _dumps(decision["applicant"], app_id, "applicant"),
        b"d:decision": word,
        b"d:result": _dumps(result, app_id, "result"),
        b"m:meta": _dumps(meta, app_id, "provenance"),
    }), (idx_key, {b"i:decision": word})


def encode_index_row(decision: Mapping[str, Any]) -> tuple[bytes, dict[bytes, bytes]]:
    """(row key, cells) of a validated decision's time-index row."""
    app_id = decision["id"]
    idx_key = _keys(app_id, index_time(decision))[1]
    return idx_key, {b"i:decision": decision["decision"].encode("ascii")}


def _json_cell(cells: Mapping[bytes, bytes], column: bytes) -> dict[str, Any]:
    raw = cells.get(column)
    if raw is None:
        return {}
    value = decode_value(raw)
    return value if isinstance(value, dict) else {}


def decode_main_row(key: bytes, cells: Mapping[bytes, bytes]) -> dict[str, Any]:
    """A main row back in the writer's input shape, plus ``saved_at``, ``row_key`` and ``index_key``."""
    result = _json_cell(cells, b"d:result")
    meta = _json_cell(cells, b"m:meta")
    app_id = meta.get("id")
    if app_id is None:
        app_id = id_from_row_key(key)
    decision = cells.get(b"d:decision")
    out: dict[str, Any] = {
        "id": app_id,
        "applicant": _json_cell(cells, b"a:applicant"),
        "decision": decision.decode("ascii", errors="replace") if decision is not None else None,
    }
    for name in RESULT_FIELDS:
        out[name] = result.get(name, [] if name == "reasons" else None)
    prov = meta.get("provenance") or {}
    out["provenance"] = {**{name: None for name in PROVENANCE_FIELDS}, **prov}
    for name in TIME_FIELDS:
        out[name] = meta.get(name)
    out["row_key"] = key.decode("ascii", errors="replace")
    out["index_key"] = meta.get("index_key")
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
    import happybase  # noqa: F401  (loads the Hbase_thrift module)
    from Hbase_thrift import AlreadyExists, IOError as HBaseIOError

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
