"""The planner's host table: capacity views and the change counters the migration round uses
to skip apps whose answer cannot have changed."""

from __future__ import annotations

from faabric.planner._hosts import HostTable


def table() -> HostTable:
    hosts = HostTable()
    hosts.add("a", 4, now=0.0)
    hosts.add("b", 2, now=0.0)
    return hosts


def test_capacity_follows_claims_and_releases() -> None:
    hosts = table()
    hosts.claim("a", (1, 0))
    hosts.claim("a", (1, 1))
    first = hosts.all_capacity()
    assert [(h.name, h.used) for h in first] == [("a", 2), ("b", 0)]
    assert hosts.all_capacity() == first
    hosts.release("a", (1, 0))
    assert [(h.name, h.used, h.free) for h in hosts.all_capacity()] == [
        ("a", 1, 3), ("b", 0, 2)]
    assert hosts.free_slots() == 5


def test_claims_change_the_version_but_give_no_host_more_room() -> None:
    hosts = table()
    version, roomier = hosts.version, hosts.roomier_version
    hosts.claim("b", (1, 0))
    hosts.grant("a", 2, 1)
    assert hosts.version > version
    assert hosts.roomier_version == roomier
    assert hosts.gains_since(roomier) == []


def test_gains_name_the_hosts_that_freed_slots_in_order() -> None:
    hosts = table()
    hosts.claim("b", (1, 0))
    hosts.claim("a", (1, 1))
    since = hosts.roomier_version
    hosts.release("b", (1, 0))
    hosts.release("a", (1, 1))
    hosts.add("c", 8, now=1.0)
    hosts.evict("a")
    assert hosts.gains_since(since) == ["b", "a", "c", "a"]
    assert hosts.room("a") == 0  # being evicted: no room for anything new
    assert hosts.room("c") == 8


def test_a_reset_gains_every_host_and_old_versions_are_forgotten() -> None:
    hosts = table()
    since = hosts.roomier_version
    hosts.release_all()
    assert hosts.gains_since(since) == [None]
    for _ in range(20_000):
        hosts.claim("a", (2, 0))
        hosts.release("a", (2, 0))
    assert hosts.gains_since(since) is None
    assert hosts.gains_since(hosts.roomier_version) == []
