"""Deterministic raw applicants (LoanStats-style strings) and dirty payloads, for the tests and the benchmark."""

from __future__ import annotations

import logging
import random
from typing import Any, Iterator

from topology.codec import dumps

logger = logging.getLogger(__name__)

GRADE_MIX = (("A", 19), ("B", 29), ("C", 28), ("D", 14), ("E", 7), ("F", 2), ("G", 1))
_GRADES = [g for g, w in GRADE_MIX for _ in range(w)]


def raw_applicant(app_id: int, rng: random.Random) -> dict[str, Any]:
    """One clean-able applicant as the LendingClub export spells it (percent signs, ' 36 months', blanks)."""
    grade = rng.choice(_GRADES)
    sub = rng.randint(1, 5)
    s = "ABCDEFG".index(grade) * 5 + sub - 1
    loan = round(rng.uniform(1000, 40000) / 25) * 25
    funded = loan if rng.random() < 0.9 else max(500, loan - 25 * rng.randint(1, 20))
    return {
        "id": str(app_id), "member_id": str(app_id + 1_000_000),
        "loan_amnt": str(loan), "funded_amnt": str(funded), "funded_amnt_inv": str(funded),
        "term": rng.choice((" 36 months", " 60 months")),
        "int_rate": f" {5.6 + 0.66 * s:.2f}%", "installment": f"{loan / 36:.2f}",
        "grade": grade, "sub_grade": f"{grade}{sub}", "emp_title": "Engineer",
        "emp_length": rng.choice(("10+ years", "< 1 year", "3 years", "n/a")),
        "home_ownership": rng.choice(("RENT", "MORTGAGE", "OWN")),
        "annual_inc": f"{rng.lognormvariate(11.08, 0.55):.2f}",
        "verification_status": "Verified", "issue_d": "Dec-2016", "purpose": "debt_consolidation",
        "addr_state": "CA", "dti": f"{rng.uniform(0, 39.99):.2f}", "delinq_2yrs": str(rng.randint(0, 2)),
        "earliest_cr_line": "Aug-2003", "inq_last_6mths": str(rng.randint(0, 3)),
        "open_acc": str(rng.randint(2, 30)), "pub_rec": "0", "revol_bal": str(rng.randint(0, 50000)),
        "revol_util": f"{rng.uniform(0, 100):.1f}%", "total_acc": str(rng.randint(5, 60)),
        "bc_open_to_buy": "" if rng.random() < 0.05 else str(rng.randint(0, 20000)),
        "bc_util": "" if rng.random() < 0.05 else f"{rng.uniform(0, 100):.1f}",
        "total_il_high_credit_limit": "" if rng.random() < 0.05 else str(rng.randint(0, 80000)),
    }


def envelope(applicant: dict[str, Any], seq: int, source: str = "testdata") -> bytes:
    """The producer's message value: applicant plus provenance."""
    return dumps({"applicant": applicant,
                  "provenance": {"source": source, "seq": seq, "fetched_at": "2024-01-01T00:00:00Z"}})


# Dirty payloads: (kind, value bytes maker). Each keeps the application id in the key.
DIRTY_KINDS = ("not_json", "not_utf8", "letters_in_dti", "bad_grade", "huge", "not_object", "missing_id",
               "funded_gt_loan")


def dirty_value(kind: str, app_id: int, rng: random.Random, huge_bytes: int = 1 << 20) -> bytes:
    base = raw_applicant(app_id, rng)
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
        return dumps([app_id, "not", "an", "object"])
    elif kind == "missing_id":
        base.pop("id")
    elif kind == "funded_gt_loan":
        base["funded_amnt"] = str(float(base["loan_amnt"]) + 100)
    else:
        raise ValueError(f"unknown dirty kind {kind!r}")
    return envelope(base, app_id)


def messages(first_id: int, count: int, *, seed: int = 1, dirty_every: int = 0,
             huge_bytes: int = 1 << 20) -> Iterator[tuple[bytes, bytes, str | None]]:
    """(key, value, dirty kind or None) for ids first_id..first_id+count-1; every ``dirty_every``-th is dirty."""
    rng = random.Random(seed)
    k = 0
    for app_id in range(first_id, first_id + count):
        key = str(app_id).encode()
        if dirty_every and (app_id - first_id) % dirty_every == dirty_every - 1:
            kind = DIRTY_KINDS[k % len(DIRTY_KINDS)]
            k += 1
            yield key, dirty_value(kind, app_id, rng, huge_bytes), kind
        else:
            yield key, envelope(raw_applicant(app_id, rng), app_id), None


POISON_ID_BASE = 10**15   # far above any generated id, so a poison id never names a real applicant


def _deep(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def poison_messages(rng: random.Random) -> list[tuple[str, bytes | None, bytes | None]]:
    """(kind, key, value) of hostile applicants.raw messages; each must end as exactly one dead letter."""
    good = raw_applicant(POISON_ID_BASE, rng)

    def pid(n: int) -> bytes:
        return str(POISON_ID_BASE + n).encode()

    def env(applicant: dict[str, Any], seq: Any = 1) -> bytes:
        return dumps({"applicant": applicant, "provenance": {"source": "poison", "seq": seq}})

    def with_id(value: Any) -> dict[str, Any]:
        return {**good, "id": value}

    def raw_field(name: str, fragment: str) -> bytes:
        fields = ",".join(f'"{k}":{dumps(v).decode()}' for k, v in good.items() if k != name)
        return ('{"applicant":{' + fields + f',"{name}":' + fragment + "}}").encode()

    return [
        ("garbage with a 25-digit key", b"1234567890123456789012345", b"garbage"),
        ("empty value", pid(1), b""),
        ("null value", pid(2), None),
        ("not UTF-8", pid(3), b'{"applicant": {"id": "' + pid(3) + b'", "emp_title": "\xff\xfe"}}'),
        ("JSON string", pid(4), b'"just a string"'),
        ("JSON array", pid(5), b"[1, 2, 3]"),
        ("truncated JSON", pid(6), b'{"applicant": {"id": "' + pid(6) + b'"'),
        ("nested 300 deep", pid(7), raw_field("emp_title", _deep(300))),
        ("nested 2000 deep", pid(8), ("[" * 2000 + "]" * 2000).encode()),
        ("id 2^64 as a number", b"18446744073709551616", raw_field("id", "18446744073709551616")),
        ("id 2^64 as digits", b"18446744073709551616", env(with_id("18446744073709551616"))),
        ("id 30 digits", pid(9), env(with_id("1" * 30))),
        ("superscript id", "²".encode(), env(with_id("²"))),
        ("Arabic-Indic id", "١".encode(), env(with_id("١"))),
        ("fullwidth id", "１２".encode(), env(with_id("１２"))),
        ("underscored id", b"1_000", env(with_id("1_000"))),
        ("negative id", b"-5", env(with_id(-5))),
        ("float id", pid(10), raw_field("id", "10.5")),
        ("infinite number", pid(11), raw_field("loan_amnt", "1e400")),
        ("letters in dti", pid(12), env({**with_id(str(POISON_ID_BASE + 12)), "dti": "12.x5"})),
        ("bad grade", pid(13), env({**with_id(str(POISON_ID_BASE + 13)), "grade": "Z"})),
        ("funded above loan", pid(14), env({**with_id(str(POISON_ID_BASE + 14)), "funded_amnt": "99999999"})),
        ("applicant not an object", pid(15), b'{"applicant": [1, 2]}'),
        ("missing id", b"", env({k: v for k, v in good.items() if k != "id"})),
        ("binary key and value", bytes(range(256))[:40], bytes(range(256))),
        ("huge field", pid(16), env({**with_id(str(POISON_ID_BASE + 16)), "emp_title": "x" * (2 << 20)})),
    ]
