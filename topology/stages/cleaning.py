"""Cleaning (the FilterBolt): parse, clean and validate each raw applicant; the rest becomes a dead letter.

The cleaning and validation rules are ``credit_core.fields.clean_record``
(strip ``%`` and `` months``, empty bc_open_to_buy / bc_util /
total_il_high_credit_limit -> 0, ids, numbers and ranges, term, grade,
funded_amnt <= loan_amnt).  Nothing is raised out of ``clean_batch``: any
failure, even an unexpected one, becomes a dead letter (stage ``filter``).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from credit_core.clock import now_ms
from credit_core.fields import RecordError, clean_record
from credit_core.messages.dead_letter import dead_letter
from credit_core.messages.envelope import Rejected, best_effort_id, parse
from credit_core.messages.item import clean_item
from credit_core.messages.keys import id_key, partition_for
from topology.stages.batching import CLEAN, Incoming, Outgoing, Tally, pack

logger = logging.getLogger(__name__)

STAGE = "filter"   # the stage's name in dead letters and logs (the Storm topology's FilterBolt)


def clean_one(key: bytes | None, value: bytes | None, src: Mapping[str, Any], *, max_bytes: int,
              ingested_at: int) -> dict[str, Any]:
    """The clean item for one raw message; raises Rejected."""
    applicant, prov = parse(value, max_bytes)
    try:
        rec = clean_record(applicant)
    except RecordError as exc:
        raise Rejected("invalid applicant", exc.as_list(), best_effort_id(applicant, key), applicant) from None
    return clean_item(rec, prov, src, ingested_at)


def clean_batch(messages: Iterable[Incoming], *, partitions: int, max_bytes: int, max_original: int,
                per_message: int, tally: Tally | None = None) -> tuple[list[Outgoing], list[Outgoing], int]:
    """(messages for applicants.clean, messages for the DLQ, applicants kept) for raw (key, value, source) tuples.

    Every message ends in exactly one of the two lists, whatever its bytes.  ``tally`` counts the kept ones.
    """
    ingested_at = now_ms()
    clean: list[tuple[int, dict[str, Any]]] = []
    origins: dict[int, Incoming] = {}
    dead: list[Outgoing] = []
    for key, value, src in messages:
        try:
            item = clean_one(key, value, src, max_bytes=max_bytes, ingested_at=ingested_at)
            ikey = id_key(item["id"])
            # Keyed by its id, the raw record already sits on murmur2(id)'s partition (the producer's
            # partitioner); hashing again in Python cost ~2% of the worker.
            clean.append((src["partition"] % partitions if key == ikey else partition_for(ikey, partitions), item))
            origins[id(item)] = (key, value, src)
            continue
        except Rejected as exc:
            reason, errors, app_id, applicant = exc.reason, exc.errors, exc.app_id, exc.applicant
        except Exception as exc:  # a bug must not lose the record or stop the stream
            logger.exception("filter failed on %s", src)
            reason, errors, app_id, applicant = "internal error", [{"field": "$", "reason": repr(exc)}], None, None
        if app_id is None:
            app_id = best_effort_id(None, key)
        dead.append(dead_letter(stage=STAGE, reason=reason, errors=errors, original=value, key=key, src=src,
                                app_id=app_id, partitions=partitions, max_original=max_original,
                                applicant=applicant if len(value or b"") <= max_original else None))
    out, rejects = pack(clean, per_message)
    for _, item, why in rejects:
        key, value, src = origins[id(item)]
        dead.append(dead_letter(stage=STAGE, reason="clean record cannot be sent",
                                errors=[{"field": "$", "reason": why}], original=value, key=key, src=src,
                                app_id=item["id"], partitions=partitions, max_original=max_original))
    kept = len(clean) - len(rejects)
    if tally is not None:
        tally[(CLEAN, "")] += kept
    return out, dead, kept
