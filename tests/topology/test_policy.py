"""The decision agent's policy: each rule, its configuration and its version."""

from __future__ import annotations

import pytest

from topology.agents.decision import decide, decision_batch
from topology.codec import dumps, loads
from topology.policy import CODE_GRADE, CODE_MIN_INCOME, Policy


def item(app_id=1, grade="B", annual_inc=50000.0):
    return {"id": app_id, "applicant": {"id": app_id, "grade": grade, "annual_inc": annual_inc},
            "provenance": {"topic": "applicants.raw", "partition": 0, "offset": 7, "timestamp_ms": 1},
            "ingested_at": 5}


@pytest.mark.parametrize("grade", ["E", "F", "G"])
def test_default_policy_declines_grades_e_f_g(grade):
    reasons = Policy().evaluate({"grade": grade, "annual_inc": 90000.0})
    assert reasons == [{"code": CODE_GRADE, "text": f"Grade {grade} is outside the lending policy"}]


@pytest.mark.parametrize("grade", ["A", "B", "C", "D"])
def test_default_policy_passes_grades_a_to_d(grade):
    assert Policy().evaluate({"grade": grade, "annual_inc": 90000.0}) == []


def test_income_below_minimum_is_declined_and_the_minimum_itself_passes():
    reasons = Policy().evaluate({"grade": "A", "annual_inc": 19999.99})
    assert [r["code"] for r in reasons] == [CODE_MIN_INCOME]
    assert "20,000" in reasons[0]["text"]
    assert Policy().evaluate({"grade": "A", "annual_inc": 20000.0}) == []


def test_both_rules_give_both_reasons():
    assert [r["code"] for r in Policy().evaluate({"grade": "G", "annual_inc": 100.0})] == [CODE_GRADE, CODE_MIN_INCOME]


def test_policy_from_env_and_version_follows_the_rules():
    default = Policy.from_env({})
    assert default == Policy() and default.version == Policy().version
    custom = Policy.from_env({"POLICY_DECLINE_GRADES": "d, e", "POLICY_MIN_ANNUAL_INC": "30000"})
    assert custom.decline_grades == frozenset({"D", "E"}) and custom.min_annual_inc == 30000
    assert custom.version != default.version
    assert custom.evaluate({"grade": "D", "annual_inc": 50000.0})[0]["code"] == CODE_GRADE
    none = Policy.from_env({"POLICY_DECLINE_GRADES": "", "POLICY_MIN_ANNUAL_INC": "0"})
    assert none.evaluate({"grade": "G", "annual_inc": 1.0}) == []


@pytest.mark.parametrize("env", [{"POLICY_DECLINE_GRADES": "E,Z"}, {"POLICY_MIN_ANNUAL_INC": "lots"},
                                 {"POLICY_MIN_ANNUAL_INC": "-1"}])
def test_bad_policy_configuration_is_refused(env):
    with pytest.raises(ValueError):
        Policy.from_env(env)


def test_policy_decline_is_a_final_decision_in_the_writer_contract():
    dec = decide(item(grade="F"), Policy(), decided_at=99)
    assert dec["decision"] == "decline" and dec["decided_by"] == "policy"
    assert dec["probability_of_default"] is None and dec["model_version"] is None and dec["threshold"] is None
    assert dec["policy_version"] == Policy().version and dec["decided_at"] == 99 and dec["ingested_at"] == 5
    assert decide(item(grade="A"), Policy(), decided_at=99) is None


def test_decision_batch_routes_declines_to_scored_and_others_to_eligible():
    items = [item(1, "A"), item(2, "E"), item(3, "B", 1000.0), item(4, "C")]
    src = {"topic": "applicants.clean", "partition": 2, "offset": 0, "timestamp_ms": 1}
    eligible, scored, dead, n = decision_batch([(b"1", dumps(items), src), (b"x", b"not json", src)], policy=Policy(),
                                            partitions=4, max_original=1000, per_message=500)
    assert [i["id"] for _, _, v in eligible for i in loads(v)] == [1, 4]
    assert [d["id"] for _, _, v in scored for d in loads(v)] == [2, 3]
    assert all(p == 2 for p, _, _ in eligible + scored)
    assert len(dead) == 1 and loads(dead[0][2])["reason"] == "bad internal message"
