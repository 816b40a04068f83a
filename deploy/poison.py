"""Hostile applicants.raw messages, each of which must end as exactly one dead letter: for the fault drill
(deploy.faults) and the poison tests (tests/topology/test_poison.py)."""

from __future__ import annotations

import random
from typing import Any

import orjson

from credit_core.synthetic import applicants

POISON_ID_BASE = 10**15   # far above any generated id, so a poison id never names a real applicant


def _deep(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def poison_messages(rng: random.Random) -> list[tuple[str, bytes | None, bytes | None]]:
    """(kind, key, value) of hostile applicants.raw messages; each must end as exactly one dead letter."""
    good: dict[str, Any] = next(applicants(1, seed=rng.randrange(1 << 32), first_id=POISON_ID_BASE))
    dumps = orjson.dumps

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
