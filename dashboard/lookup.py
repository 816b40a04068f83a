"""Where an application is: its audit record in HBase, else its dead letters, else nowhere yet.

The audit record comes from hbase_helper.audit; "nowhere yet" means in flight, or never published."""

from __future__ import annotations

import logging
import threading
from typing import Any, Mapping

from dashboard.deadletters import DeadLetterStore, detail
from hbase_helper.audit import get_decision
from hbase_helper.settings import HBaseSettings

logger = logging.getLogger(__name__)

POOL_SIZE = 2
HISTORY_KEYS = ("decision", "decided_by", "probability_of_default", "risk_band", "reasons", "model_version",
                "policy_version", "threshold", "ingested_at", "decided_at", "saved_at", "time_ms", "time_source")


class AuditReader:
    """Reads decisions from HBase through a small pool made on first use (tables are never created here)."""

    def __init__(self, settings: HBaseSettings):
        self.settings = settings
        self._pool = None
        self._lock = threading.Lock()

    def _connection(self):
        from hbase_helper.pool import make_pool

        with self._lock:
            if self._pool is None:
                self._pool = make_pool(self.settings.with_(pool_size=POOL_SIZE), ensure=False)
            return self._pool.connection()

    def _forget(self) -> None:
        with self._lock:
            self._pool = None

    def read(self, app_id: int) -> dict[str, Any] | None:
        """The application's current decision with its history, None when HBase holds none (or no table yet)."""
        try:
            with self._connection() as conn:
                return get_decision(conn, app_id)
        except Exception as exc:
            if _no_table(exc):
                return None
            self._forget()
            raise

    def ping(self) -> None:
        """One real request (list the tables); raises when HBase does not answer."""
        try:
            with self._connection() as conn:
                conn.tables()
        except Exception:
            self._forget()
            raise


def _no_table(exc: BaseException) -> bool:
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(message, bytes):
        message = message.decode("utf-8", errors="replace")
    return "TableNotFound" in message or "table not found" in message.lower()


def outcome_of(decision: Mapping[str, Any]) -> str:
    """approved, declined_model or declined_policy for a stored decision."""
    if decision.get("decision") == "approve":
        return "approved"
    return "declined_policy" if decision.get("decided_by") == "policy" else "declined_model"


def audit_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """An HBase decision row as the lookup shows it: the current decision whole, the history without the
    applicant repeated."""
    current = {k: v for k, v in row.items() if k not in ("history", "index_key", "history_key")}
    current["outcome"] = outcome_of(row)
    current["reasons"] = [_reason(r) for r in row.get("reasons") or []]
    history = []
    for entry in row.get("history") or []:
        item = {k: entry.get(k) for k in HISTORY_KEYS}
        item["outcome"] = outcome_of(entry)
        item["reasons"] = [_reason(r) for r in entry.get("reasons") or []]
        provenance = entry.get("provenance") if isinstance(entry.get("provenance"), Mapping) else {}
        item["provenance"] = {k: provenance.get(k) for k in ("topic", "partition", "offset", "seq", "source")}
        history.append(item)
    current["history"] = history
    return current


def _reason(reason: Any) -> dict[str, Any]:
    if isinstance(reason, Mapping):
        return {"code": reason.get("code"), "text": reason.get("text"),
                **{k: v for k, v in reason.items() if k not in ("code", "text")}}
    return {"code": str(reason), "text": None}


def lookup(app_id: int, reader: AuditReader, store: DeadLetterStore) -> dict[str, Any]:
    """Where application ``app_id`` is: {"id", "status", "audit", "dead_letters", "message"}.

    status: approved | declined_model | declined_policy (its audit record in HBase), dead_lettered (in the DLQ,
    not in HBase), not_seen (in neither: in flight, or never published). Raises when HBase does not answer.
    """
    row = reader.read(app_id)
    summaries, whole = store.for_id(app_id)
    letters = [detail(d) for d in reversed(whole)] or list(reversed(summaries))
    dlq = store.status_json()
    if row is not None:
        view = audit_view(row)
        message = "stored in HBase"
        if letters:
            message += f"; it was also dead-lettered {len(summaries)} time(s) (replayed since)"
        return {"id": app_id, "status": view["outcome"], "audit": view, "dead_letters": letters,
                "message": message}
    if summaries:
        latest = summaries[-1]
        return {"id": app_id, "status": "dead_lettered", "audit": None, "dead_letters": letters,
                "message": f"in the DLQ: dead-lettered at stage {latest['stage']}: {latest['reason']}"}
    read = dlq["records"]
    return {"id": app_id, "status": "not_seen", "audit": None, "dead_letters": [],
            "message": (f"not in HBase and not among the {read} dead letters read so far: in flight, or not "
                        "published yet" + ("" if dlq["connected"] else " (the DLQ reader is not connected)"))}
