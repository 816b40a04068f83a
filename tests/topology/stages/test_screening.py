"""The screening stage (the decision agent's work): policy declines are final decisions, the rest is eligible."""

from __future__ import annotations

from credit_core.jsoncodec import dumps, loads
from topology.policy import Policy
from topology.stages.screening import policy_decline, screen_batch


def item(app_id=1, grade="B", annual_inc=50000.0):
    return {"id": app_id, "applicant": {"id": app_id, "grade": grade, "annual_inc": annual_inc},
            "provenance": {"topic": "applicants.raw", "partition": 0, "offset": 7, "timestamp_ms": 1},
            "ingested_at": 5}


def test_policy_decline_is_a_final_decision_in_the_writer_contract():
    dec = policy_decline(item(grade="F"), Policy(), decided_at=99)
    assert dec["decision"] == "decline" and dec["decided_by"] == "policy"
    assert dec["probability_of_default"] is None and dec["model_version"] is None and dec["threshold"] is None
    assert dec["policy_version"] == Policy().version and dec["decided_at"] == 99 and dec["ingested_at"] == 5
    assert policy_decline(item(grade="A"), Policy(), decided_at=99) is None


def test_screen_batch_routes_declines_to_scored_and_others_to_eligible():
    items = [item(1, "A"), item(2, "E"), item(3, "B", 1000.0), item(4, "C")]
    src = {"topic": "applicants.clean", "partition": 2, "offset": 0, "timestamp_ms": 1}
    eligible, scored, dead, n = screen_batch([(b"1", dumps(items), src), (b"x", b"not json", src)], policy=Policy(),
                                            partitions=4, max_original=1000, per_message=500)
    assert [i["id"] for _, _, v in eligible for i in loads(v)] == [1, 4]
    assert [d["id"] for _, _, v in scored for d in loads(v)] == [2, 3]
    assert all(p == 2 for p, _, _ in eligible + scored)
    assert len(dead) == 1 and loads(dead[0][2])["reason"] == "bad internal message"
