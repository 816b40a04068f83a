"""deploy.group_watch.recovery: when a group had every partition of a lost host served again (pure)."""

import pytest

from deploy.group_watch import GroupSample, client_host, owner_again_after, recovery

A, B, C = "10.231.7.5", "10.231.7.6", "10.231.7.7"
P0, P1, P2 = ("raw", 0), ("raw", 1), ("raw", 2)


def sample(at, owners, committed, ends=None, state="Stable"):
    return GroupSample(at=at, state=state, owners=owners, committed=committed,
                       ends=ends or {p: 1000 for p in committed})


def test_served_again_once_the_lost_hosts_partitions_are_owned_elsewhere_and_consumed_past_the_event():
    samples = [
        sample(0.0, {P0: A, P1: B, P2: C}, {P0: 10, P1: 10, P2: 10}),
        sample(1.0, {P0: A, P1: B, P2: C}, {P0: 10, P1: 20, P2: 20}),             # A cut: P0 stuck
        sample(7.0, {}, {P0: 10, P1: 25, P2: 25}, state="PreparingRebalance"),
        sample(8.0, {P0: B, P1: B, P2: C}, {P0: 10, P1: 30, P2: 30}),             # moved, not consumed yet
        sample(9.0, {P0: B, P1: B, P2: C}, {P0: 40, P1: 40, P2: 40}),
    ]
    result = recovery("g", samples, event_at=0.5, host=A)
    assert result.affected == (P0,)
    assert result.reassigned_after == pytest.approx(7.5)
    assert result.served_after == pytest.approx(8.5)
    assert result.to_dict()["affected"] == ["raw/0"]


def test_a_partition_with_nothing_left_to_consume_counts_as_served_once_owned_elsewhere():
    samples = [sample(0.0, {P0: A, P1: B}, {P0: 1000, P1: 5}),
               sample(3.0, {P0: B, P1: B}, {P0: 1000, P1: 5})]
    result = recovery("g", samples, event_at=1.0, host=A)
    assert result.served_after == pytest.approx(2.0)


def test_never_served_while_the_lost_host_still_owns_its_partitions_or_the_group_is_rebalancing():
    samples = [sample(0.0, {P0: A, P1: B}, {P0: 10, P1: 10}),
               sample(2.0, {P0: A, P1: B}, {P0: 50, P1: 50}),                      # A back, still owner
               sample(3.0, {P0: B, P1: B}, {P0: 60, P1: 60}, state="CompletingRebalance")]
    result = recovery("g", samples, event_at=1.0, host=A)
    assert (result.reassigned_after, result.served_after) == (None, None)


def test_the_watch_must_have_seen_the_group_before_the_event():
    with pytest.raises(ValueError, match="too late"):
        recovery("g", [sample(5.0, {P0: A}, {P0: 1})], event_at=1.0, host=A)
    with pytest.raises(ValueError):
        recovery("g", [sample(0.0, {P0: A}, {P0: 1})], event_at=1.0, host="")


def test_client_host_drops_the_brokers_slash():
    assert client_host("/10.231.7.5") == "10.231.7.5"


def test_a_host_back_on_the_network_is_seen_owning_partitions_again():
    samples = [sample(0.0, {P0: B, P1: B}, {P0: 1, P1: 1}),
               sample(2.0, {P0: A, P1: B}, {P0: 1, P1: 1}, state="CompletingRebalance"),
               sample(3.0, {P0: A, P1: B}, {P0: 1, P1: 1})]
    assert owner_again_after(samples, since=1.0, host=A) == pytest.approx(2.0)
    assert owner_again_after(samples, since=1.0, host=C) is None
