"""The lending policy (topology.policy): each rule, its configuration and its version."""

from __future__ import annotations

import pytest

from topology.policy import CODE_GRADE, CODE_MIN_INCOME, Policy


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
