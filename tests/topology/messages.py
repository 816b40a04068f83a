"""applicants.raw messages for the topology tests: the producer's envelope around the factory's applicants
(tests.factories), and dirty payloads whose kinds each end as one dead letter.

The hostile messages of the fault drill and the poison tests are deploy.poison.poison_messages.
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

from credit_core.synthetic import applicants
from credit_core.messages.envelope import build_message
from tests.factories import raw_applicant

FETCHED_AT = "2024-01-01T00:00:00Z"


def envelope(applicant: dict[str, Any], seq: Any, source: str = "testdata") -> bytes:
    """The message value the producer publishes for ``applicant`` (its contract: credit_core.messages.envelope)."""
    return build_message({**applicant, "seq": seq, "source": source, "created_at": None}, FETCHED_AT)[1]


# Dirty payloads: each keeps the application id in the key and ends as one dead letter.
DIRTY_KINDS = ("not_json", "not_utf8", "letters_in_dti", "bad_grade", "huge", "not_object", "missing_id",
               "funded_gt_loan")


def dirty_value(kind: str, app_id: int, base: dict[str, Any] | None = None, huge_bytes: int = 1 << 20) -> bytes:
    """The value of a ``kind`` dirty message for ``app_id`` (``base``: the applicant it spoils)."""
    base = dict(base) if base is not None else raw_applicant(app_id)
    if kind == "not_json":
        return b'{"applicant": {"id": "' + str(app_id).encode() + b'", '
    if kind == "not_utf8":
        return b'{"applicant": {"id": "' + str(app_id).encode() + b'", "emp_title": "\xff\xfe"}}'
    if kind == "letters_in_dti":
        base["dti"] = "12.x5"
    elif kind == "bad_grade":
        base["grade"], base["sub_grade"] = "Z", ""
    elif kind == "huge":
        base["emp_title"] = "x" * (huge_bytes + 10)
    elif kind == "not_object":
        return orjson.dumps([app_id, "not", "an", "object"])
    elif kind == "missing_id":   # the producer cannot build one (its key is the id): its envelope, id removed
        value = orjson.loads(envelope(base, app_id))
        del value["applicant"]["id"]
        return orjson.dumps(value)
    elif kind == "funded_gt_loan":
        base["funded_amnt"] = str(float(base["loan_amnt"]) + 100)
    else:
        raise ValueError(f"unknown dirty kind {kind!r}")
    return envelope(base, app_id)


def messages(first_id: int, count: int, *, seed: int = 1, dirty_every: int = 0,
             huge_bytes: int = 1 << 20) -> Iterator[tuple[bytes, bytes, str | None]]:
    """(key, value, dirty kind or None) for ids first_id..first_id+count-1; every ``dirty_every``-th is dirty."""
    k = 0
    for n, applicant in enumerate(applicants(count, seed=seed, first_id=first_id)):
        app_id = first_id + n
        key = str(app_id).encode()
        if dirty_every and n % dirty_every == dirty_every - 1:
            kind = DIRTY_KINDS[k % len(DIRTY_KINDS)]
            k += 1
            yield key, dirty_value(kind, app_id, applicant, huge_bytes), kind
        else:
            yield key, envelope(applicant, app_id), None
