"""The tests' applicants, all from the one generator: credit_core.synthetic.applicants.

``raw_applicant`` / ``raw_applicants`` are LoanStats strings (what an export or the
topology's raw topic carries); ``clean_applicant`` is the cleaned record
(credit_core.fields.clean_record), the canonical JSON values the applicant API
stores and serves.
"""

from __future__ import annotations

from typing import Any

from credit_core.fields import MAX_INT, clean_record
from credit_core.synthetic import MEMBER_ID_OFFSET, applicants


def raw_applicant(app_id: int, **overrides: Any) -> dict[str, Any]:
    """One applicant with id ``app_id`` as LoanStats strings; deterministic per id (seeded by it)."""
    rec: dict[str, Any] = next(applicants(1, seed=app_id, first_id=app_id))
    rec.update(overrides)
    return rec


def raw_applicants(count: int, *, first_id: int = 1, seed: int = 1) -> list[dict[str, str]]:
    """``count`` applicants with ids first_id.. as LoanStats strings (one generator run: fast for thousands)."""
    return list(applicants(count, seed=seed, first_id=first_id))


def clean_applicant(app_id: int, **overrides: Any) -> dict[str, Any]:
    """The cleaned record of ``raw_applicant(app_id)``, then ``overrides`` (raw values are fine: the API and
    clean_record accept LoanStats text)."""
    if 1 <= app_id <= MAX_INT - MEMBER_ID_OFFSET - 1:
        rec = clean_record(raw_applicant(app_id))
    else:   # an id no record may have (beyond BIGINT...): applicant 1's values under it
        rec = {**clean_record(raw_applicant(1)), "id": app_id}
    rec.update(overrides)
    return rec


def clean_applicants(count: int, *, first_id: int = 1, seed: int = 1) -> list[dict[str, Any]]:
    """The cleaned records of ``raw_applicants(count, first_id=..., seed=...)``."""
    return [clean_record(rec) for rec in applicants(count, seed=seed, first_id=first_id)]
