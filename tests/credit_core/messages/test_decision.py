"""credit_core.messages.decision: the builder's output is what the writer's contract accepts."""

from __future__ import annotations

import pytest

from credit_core.messages.decision import (DecisionError, decision, decision_event, decision_item_error,
                                           validate_decision)


def item():
    return {"id": 3, "applicant": {"id": 3, "grade": "A"}, "ingested_at": 1,
            "provenance": {"topic": "applicants.raw", "partition": 0, "offset": 4, "timestamp_ms": 1}}


def test_a_built_decision_validates_and_its_event_leaves_the_applicant_out():
    dec = decision(item(), verdict="approve", decided_by="model", reasons=[], policy_version="p",
                   probability_of_default=0.1, decided_at=5)
    assert validate_decision(dec) == 3 and dec["decision"] == "approve"
    event = decision_event(dec, saved_at=9)
    assert "applicant" not in event and event["saved_at"] == 9 and event["decided_at"] == 5


def test_bad_verdicts_and_items_are_refused():
    with pytest.raises(ValueError):
        decision(item(), verdict="maybe", decided_by="model", reasons=[], policy_version="p")
    with pytest.raises(DecisionError, match="decided_by"):
        validate_decision({**decision(item(), verdict="decline", decided_by="policy", reasons=[],
                                      policy_version="p"), "decided_by": "x"})
    assert decision_item_error([1]) and decision_item_error({"id": 0}) and decision_item_error(item()) is None
