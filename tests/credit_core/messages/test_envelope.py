"""credit_core.messages.envelope: what the producer builds is what the cleaning stage parses."""

from __future__ import annotations

import orjson
import pytest

from credit_core.messages.envelope import Rejected, best_effort_id, build_message, parse


def test_build_then_parse_round_trips_and_moves_the_store_fields_to_the_provenance():
    applicant = {"id": 12, "grade": "B", "seq": 7, "source": "mysql", "created_at": "2024-01-01T00:00:00"}
    key, value = build_message(applicant, "2024-02-02T00:00:00Z")
    assert key == b"12"
    parsed, prov = parse(value, 10_000)
    assert parsed == {"id": 12, "grade": "B"}
    assert prov == {"seq": 7, "source": "mysql", "created_at": "2024-01-01T00:00:00",
                    "fetched_at": "2024-02-02T00:00:00Z"}


@pytest.mark.parametrize("value, reason", [(b"", "empty message"), (b"\xff{", "not UTF-8"), (b"{", "not JSON"),
                                           (b"[1]", "not a JSON object"), (b'{"applicant": 1}', "bad envelope")])
def test_unreadable_values_are_rejected_with_the_reason(value, reason):
    with pytest.raises(Rejected) as err:
        parse(value, 10_000)
    assert err.value.reason == reason


def test_a_bare_applicant_is_accepted_and_ids_are_read_only_when_exact():
    assert parse(orjson.dumps({"id": "5"}), 100) == ({"id": "5"}, None)
    with pytest.raises(Rejected, match="payload too large"):
        parse(b"{}" + b" " * 100, 50)
    assert best_effort_id({"id": "9"}, b"3") == 9 and best_effort_id({"id": "x"}, b"3") == 3
    assert best_effort_id(None, "²".encode()) is None
