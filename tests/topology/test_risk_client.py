"""topology.risk_client: one POST per batch, retries, splitting, against the real risk API under gunicorn."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from topology.risk_client import RiskClient
from tests.factories import clean_applicant


def cleaned(n, first=1):
    return [clean_applicant(i) for i in range(first, first + n)]


def client(url, token, **kw):
    return RiskClient(url, token, timeout=kw.pop("timeout", 10.0), retry_base=0.05, retry_cap=0.2)


async def _score(c, records):
    try:
        return await c.score_split(records)
    finally:
        await c.close()


def test_one_post_scores_a_batch_in_order(risk_api, risk_token):
    c = client(risk_api.url, risk_token)
    records = cleaned(300)
    answers = asyncio.run(_score(c, records))
    assert c.requests == 1
    assert [r["id"] for r, _ in answers] == [r["id"] for r in records]
    for result, refusal in answers:
        assert refusal is None and 0 <= result["probability_of_default"] <= 1
        assert result["decision"] in ("approve", "decline") and result["model_version"]


def test_a_rejected_batch_is_split_until_the_bad_applicant_is_alone(start_risk_api, risk_token):
    api = start_risk_api(RISK_MAX_BATCH="4", RISK_MAX_BODY_BYTES="20000")
    records = cleaned(10)
    records[6] = dict(records[6], emp_title="x" * 30000)   # makes any request holding it too large (413)
    c = client(api.url, risk_token)
    answers = asyncio.run(_score(c, records))
    assert c.requests > 3
    for i, (result, refusal) in enumerate(answers):
        if i == 6:
            assert result is None and "413" in refusal
        else:
            assert refusal is None and result["id"] == records[i]["id"]


def test_connection_refused_is_retried_until_the_api_is_back(own_risk_api, risk_token, caplog):
    own_risk_api.stop()
    timer = threading.Timer(1.5, lambda: own_risk_api.start(timeout=60))
    timer.start()
    c = client(own_risk_api.url, risk_token)
    with caplog.at_level(logging.WARNING, logger="topology.risk_client"):
        answers = asyncio.run(_score(c, cleaned(3)))
    timer.join()
    assert all(r is not None for r, _ in answers)
    assert c.requests > 1 and "retrying" in caplog.text


def test_a_wrong_token_waits_for_the_operator_instead_of_dead_lettering(risk_api, caplog):
    c = client(risk_api.url, "wrong-token")

    async def run():
        try:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.score_split(cleaned(2)), 1.5)
        finally:
            await c.close()
    with caplog.at_level(logging.ERROR, logger="topology.risk_client"):
        asyncio.run(run())
    assert c.requests >= 2 and "HTTP 401" in caplog.text and "RISK_API_TOKEN" in caplog.text
