"""The scoring stage (the submit agent's work): model decisions and per-applicant dead letters."""

from __future__ import annotations

import asyncio

from topology.stages.scoring import outcome, score_items
from topology.risk_client import RiskClient
from tests.factories import clean_applicant


def cleaned(n, first=1):
    return [clean_applicant(i) for i in range(first, first + n)]


def items(records, partition=0):
    return [(partition, {"id": r["id"], "applicant": r, "ingested_at": 1,
                         "provenance": {"topic": "applicants.raw", "partition": partition, "offset": r["id"],
                                        "timestamp_ms": 1, "source": "t", "seq": 1}})
            for r in records]


def client(url, token, **kw):
    return RiskClient(url, token, timeout=kw.pop("timeout", 10.0), retry_base=0.05, retry_cap=0.2)


def test_score_items_makes_model_decisions_and_dead_letters_per_applicant_errors(risk_api, risk_token):
    good = cleaned(5)
    bad = dict(good[0], id=999, dti="not a number")   # the API rejects this one applicant
    c = client(risk_api.url, risk_token)

    async def run():
        try:
            return await score_items(c, items(good + [bad]), batch_size=500, policy_version="policy-x",
                                      partitions=4, max_original=100000)
        finally:
            await c.close()
    scored, dead = asyncio.run(run())
    assert [d["id"] for _, d in scored] == [r["id"] for r in good]
    for _, d in scored:
        assert d["decided_by"] == "model" and d["policy_version"] == "policy-x" and d["reasons"] is not None
    assert len(dead) == 1
    from credit_core.jsoncodec import loads
    rec = loads(dead[0][2])
    assert rec["stage"] == "submit" and rec["id"] == 999 and rec["reason"] == "risk API rejected the applicant"
    assert rec["errors"][0]["field"] == "dti"


def test_outcome_dead_letters_unusable_results():
    item = items(cleaned(1))[0][1]
    for result in ({"id": item["id"], "decision": "maybe", "probability_of_default": 0.1},
                   {"id": item["id"], "decision": "approve", "probability_of_default": 1.5},
                   {"id": item["id"] + 1, "decision": "approve", "probability_of_default": 0.1}):
        dec, failure = outcome(item, result, None, policy_version="p", decided_at=1)
        assert dec is None and failure[0]
