"""The data routes (all behind the token): pipeline and business figures, dead letters, application lookup."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, request

from credit_core.messages.keys import MAX_APP_ID
from dashboard import views
from dashboard.deadletters import detail, reason_of, stage_of, summary
from dashboard.http import CHALLENGE, authorized, json_error, json_response
from dashboard.lookup import lookup as find_application
from dashboard.state import state

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

LATEST_DEAD_LETTERS = 20      # shown on the pipeline view
MAX_DEAD_LETTERS = 200        # at most this many per /api/deadletters


@bp.before_request
def require_token():
    if not authorized():
        return json_error(401, "a valid bearer token or login session is required", CHALLENGE)
    return None


def _stale_after() -> float:
    return max(5.0, 3 * state().settings.scrape_interval + state().settings.scrape_timeout)


@bp.get("/pipeline")
def pipeline():
    st = state()

    def compute():
        now = time.time()
        body = views.pipeline(st.history.view(), now, st.settings.history_seconds, _stale_after())
        body["dead_letters"] = {"by_stage_reason": st.store.groups()[:50],
                                "latest": [summary(d) for d in st.store.latest(LATEST_DEAD_LETTERS)],
                                "reader": st.store.status_json()}
        body["infrastructure"] = {"kafka": _kafka_status(st.store.status_json()),
                                  "hbase": st.collectors.hbase_status()}
        return body

    return json_response(st.cached("pipeline", compute))


def _kafka_status(reader: dict) -> dict:
    error = reader["error"]
    if reader["connected"] and reader["topic_exists"] is False:
        error = "connected; the DLQ topic does not exist yet"
    up = True if reader["connected"] else (False if reader["error"] else None)   # None: not tried yet
    return {"up": up, "error": error}


@bp.get("/business")
def business():
    st = state()
    return json_response(st.cached("business", lambda: views.business(st.history.view(), time.time(),
                                                                       st.settings.history_seconds)))


@bp.get("/deadletters")
def deadletters():
    """The latest dead letters whole (newest first): ?limit=N (<= 200), ?stage=, ?reason= filter them."""
    limit = request.args.get("limit", "50")
    if not limit.isascii() or not limit.isdigit() or not 1 <= int(limit) <= MAX_DEAD_LETTERS:
        return json_error(400, f"limit must be a whole number in 1..{MAX_DEAD_LETTERS}")
    stage, reason = request.args.get("stage"), request.args.get("reason")
    found = [d for d in state().store.latest(state().settings.dlq_keep)
             if (stage is None or stage_of(d) == stage) and (reason is None or reason_of(d) == reason)]
    return json_response({"dead_letters": [detail(d) for d in found[:int(limit)]],
                          "reader": state().store.status_json()})


@bp.get("/lookup/<app_id>")
def lookup(app_id: str):
    """Where application ``app_id`` is: its audit record, its dead letters, or nowhere yet."""
    if not app_id.isascii() or not app_id.isdigit() or len(app_id) > 20 or not 1 <= int(app_id) <= MAX_APP_ID:
        return json_error(400, f"an application id is a whole number in 1..{MAX_APP_ID}")
    st = state()
    try:
        return json_response(find_application(int(app_id), st.reader, st.store))
    except Exception as exc:  # HBase down: say so, keep serving
        logger.warning("lookup of %s: HBase failed: %s", app_id, exc)
        return json_error(503, f"the audit store (HBase) did not answer: {type(exc).__name__}",
                          {"Retry-After": "2"})
