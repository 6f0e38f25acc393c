"""Table-driven tests of the compact and spot policies and of `evacuate`, plus properties they
must keep on any cluster: never over-commit, never use a host being evicted, keep users
apart (compact), only empty hosts (compact) or leave evicted ones (spot)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faabric.errors import ConfigError
from faabric.scheduling import (
    POLICIES,
    Compact,
    DoNotMigrate,
    HostSlots,
    Migration,
    Moves,
    MustFreeze,
    NoCapacity,
    Placed,
    Placement,
    Policy,
    bin_pack,
    bin_pack_migration,
    compact,
    compact_migration,
    evacuate,
    get_policy,
    policy_for,
    spot,
    spot_migration,
)


def host(
    name: str, slots: int, used: int, *users: str, evicting: bool = False
) -> HostSlots:
    return HostSlots(name, slots, used, evicting, frozenset(users))


ALICE = Compact(user="alice")

# fmt: off
COMPACT_PLACE: list[tuple[str, list[HostSlots], int, dict[str, int], Placement]] = [
    ("the fullest host first",
     [host("a", 4, 1, "alice"), host("b", 4, 3, "alice"), host("c", 4, 0)], 3, {},
     Placed(("b", "a", "a"))),
    ("another user's host is never used, even if it is the fullest",
     [host("a", 4, 1, "alice"), host("b", 4, 3, "bob")], 3, {}, Placed(("a", "a", "a"))),
    ("a host shared by alice and bob is closed to alice too",
     [host("a", 4, 2, "alice", "bob"), host("b", 4, 0)], 2, {}, Placed(("b", "b"))),
    ("empty hosts: more slots first, then the smaller name",
     [host("a", 2, 0), host("b", 4, 0), host("c", 4, 0)], 5, {},
     Placed(("b", "b", "b", "b", "c"))),
    ("a host being evicted is skipped",
     [host("a", 4, 3, "alice", evicting=True), host("b", 4, 0)], 1, {}, Placed(("b",))),
    ("a scale change tops up the hosts running the app first",
     [host("a", 4, 3, "alice"), host("b", 4, 1, "alice")], 2, {"b": 1},
     Placed(("b", "b"))),
    ("no room on allowed hosts: the free slots counted are the allowed ones",
     [host("a", 4, 3, "alice"), host("b", 8, 0, "bob")], 2, {}, NoCapacity(2, 1)),
]

COMPACT_MIGRATE: list[tuple[str, list[HostSlots], tuple[str, ...], Migration]] = [
    ("a host that runs only the app empties onto the fullest allowed host (ties: name)",
     [host("a", 4, 2, "alice"), host("b", 4, 2, "alice"), host("c", 4, 1, "alice")],
     ("a", "a", "c"), Moves(("a", "a", "a"), (2,))),
    ("the fewest ranks move: one from b, not three from a",
     [host("a", 4, 3, "alice"), host("b", 4, 1, "alice"), host("c", 4, 2, "alice")],
     ("a", "b", "a", "a"), Moves(("a", "a", "a", "a"), (1,))),
    ("the fullest host takes them, not the one running the app",
     [host("a", 4, 2, "alice"), host("b", 4, 1, "alice"), host("c", 4, 3, "alice")],
     ("a", "b"), Moves(("a", "c"), (1,))),
    ("a host with other granules cannot be emptied by moving the app",
     [host("a", 4, 4, "alice"), host("b", 4, 1, "alice")],
     ("a", "a", "a", "b"), DoNotMigrate()),
    ("another user's room is not taken",
     [host("a", 4, 2, "alice"), host("b", 4, 1, "bob")], ("a", "a"), DoNotMigrate()),
    ("moving onto an empty host empties nothing",
     [host("a", 4, 2, "alice"), host("b", 4, 0)], ("a", "a"), DoNotMigrate()),
    ("a host being evicted takes nothing but may be emptied",
     [host("a", 4, 2, "alice", evicting=True), host("b", 4, 2, "alice"),
      host("c", 4, 3, "alice", evicting=True)],
     ("a", "a"), Moves(("b", "b"), (0, 1))),
    ("a whole app moves to empty its host, several targets, fullest first",
     [host("a", 3, 3, "alice"), host("b", 4, 3, "alice"), host("c", 4, 2, "alice")],
     ("a", "a", "a"), Moves(("b", "c", "c"), (0, 1, 2))),
]

SPOT_MIGRATE: list[tuple[str, list[HostSlots], tuple[str, ...], Migration]] = [
    ("nothing on an evicted host: no move, even to consolidate",
     [host("a", 4, 2), host("b", 4, 2), host("c", 4, 0, evicting=True)],
     ("a", "a", "b", "b"), DoNotMigrate()),
    ("ranks on the evicted host move, the others stay",
     [host("a", 4, 2), host("b", 4, 2, evicting=True), host("c", 4, 0)],
     ("a", "a", "b", "b"), Moves(("a", "a", "a", "a"), (2, 3))),
    ("ranks on the evicted host move where there is room",
     [host("a", 3, 2), host("b", 4, 2, evicting=True), host("c", 4, 0)],
     ("a", "a", "b", "b"), Moves(("c", "c", "c", "c"), (0, 1, 2, 3))),
    ("re-placed from scratch: the emptier host takes the whole app",
     [host("a", 4, 3), host("b", 4, 1, evicting=True), host("c", 4, 0)],
     ("a", "b"), Moves(("c", "c"), (0, 1))),
    ("no room off the evicted host: freeze",
     [host("a", 2, 2), host("b", 2, 2, evicting=True)], ("b", "b"), MustFreeze()),
    ("its own slots count as free",
     [host("a", 4, 4), host("b", 4, 2, evicting=True)], ("a", "a", "b", "b"), MustFreeze()),
    ("its own slots count as free, and suffice",
     [host("a", 4, 3), host("b", 4, 1, evicting=True)], ("a", "a", "b"),
     Moves(("a", "a", "a"), (2,))),
]
# fmt: on


@pytest.mark.parametrize(
    ("name", "hosts", "size", "running", "expected"), COMPACT_PLACE,
    ids=[c[0] for c in COMPACT_PLACE],
)
def test_compact_places(
    name: str, hosts: list[HostSlots], size: int, running: dict[str, int], expected: Placement
) -> None:
    assert ALICE.place(hosts, size, running) == expected


@pytest.mark.parametrize(
    ("name", "hosts", "placement", "expected"), COMPACT_MIGRATE,
    ids=[c[0] for c in COMPACT_MIGRATE],
)
def test_compact_migrates_only_to_empty_a_host(
    name: str, hosts: list[HostSlots], placement: tuple[str, ...], expected: Migration
) -> None:
    assert ALICE.migrate(hosts, placement) == expected
    assert compact_migration(hosts, placement, "alice") == expected


@pytest.mark.parametrize(
    ("name", "hosts", "placement", "expected"), SPOT_MIGRATE, ids=[c[0] for c in SPOT_MIGRATE]
)
def test_spot_moves_apps_off_evicted_hosts(
    name: str, hosts: list[HostSlots], placement: tuple[str, ...], expected: Migration
) -> None:
    assert spot.migrate(hosts, placement) == expected
    assert spot_migration(hosts, placement) == expected


def test_spot_places_like_bin_pack_without_evicted_hosts() -> None:
    hosts = [host("a", 4, 0, evicting=True), host("b", 2, 0), host("c", 3, 1)]
    assert spot.place(hosts, 3) == bin_pack.place(hosts, 3) == Placed(("c", "c", "b"))
    assert spot.place(hosts, 5) == NoCapacity(5, 4)
    assert spot.place(hosts, 1, {"b": 1}) == Placed(("b",))


def test_bin_pack_never_uses_a_host_being_evicted() -> None:
    hosts = [host("a", 8, 0, evicting=True), host("b", 4, 2), host("c", 4, 2)]
    assert bin_pack.place(hosts, 2) == Placed(("c", "c"))
    # Without the eviction the empty host a would take the whole app.
    assert bin_pack_migration(hosts, ("b", "b", "c", "c")) == Moves(("c",) * 4, (0, 1))
    evicted = [host("a", 4, 2, evicting=True), host("b", 4, 2)]
    assert bin_pack_migration(evicted, ("a", "a", "b", "b")) == Moves(("b",) * 4, (0, 1))
    full = [host("a", 4, 2, evicting=True), host("b", 2, 1)]
    assert bin_pack_migration(full, ("a", "a", "b")) == DoNotMigrate()


# fmt: off
EVACUATE: list[tuple[str, Policy, list[HostSlots], tuple[str, ...], Moves | MustFreeze]] = [
    ("bin-pack: the evicted ranks go where the app runs first",
     bin_pack, [host("a", 4, 2), host("b", 4, 2, evicting=True), host("c", 8, 0)],
     ("a", "a", "b", "b"), Moves(("a", "a", "a", "a"), (2, 3))),
    ("bin-pack: then to the emptiest host",
     bin_pack, [host("a", 3, 2), host("b", 4, 2, evicting=True), host("c", 8, 0)],
     ("a", "a", "b", "b"), Moves(("a", "a", "a", "c"), (2, 3))),
    ("compact: never to another user's host",
     ALICE, [host("a", 4, 2, "alice", evicting=True), host("b", 4, 0, "bob"),
             host("c", 4, 3, "alice")],
     ("a", "a"), MustFreeze()),
    ("no room: freeze", bin_pack, [host("a", 2, 2, evicting=True), host("b", 2, 1)],
     ("a", "a"), MustFreeze()),
]
# fmt: on


@pytest.mark.parametrize(
    ("name", "policy", "hosts", "placement", "expected"), EVACUATE, ids=[c[0] for c in EVACUATE]
)
def test_evacuate_moves_only_the_evicted_ranks(
    name: str,
    policy: Policy,
    hosts: list[HostSlots],
    placement: tuple[str, ...],
    expected: Moves | MustFreeze,
) -> None:
    assert evacuate(policy, hosts, placement) == expected


def test_evacuate_needs_a_rank_to_move() -> None:
    with pytest.raises(ValueError, match="evicted"):
        evacuate(bin_pack, [host("a", 2, 2)], ("a", "a"))


def test_policies_are_registered_and_bound_per_app() -> None:
    assert sorted(POLICIES) == ["bin-pack", "compact", "spot", "whole-vm"]
    assert get_policy("compact") is compact and get_policy("spot") is spot
    assert policy_for("whole-vm", "bob", bin_pack) is get_policy("whole-vm")
    assert policy_for("", "alice", bin_pack) is bin_pack
    assert policy_for("", "alice", compact) == Compact(user="alice")
    assert policy_for("compact", "bob", spot) == Compact(user="bob")
    assert policy_for("spot", "bob", compact) is spot
    with pytest.raises(ConfigError, match="unknown scheduling policy 'fifo'"):
        policy_for("fifo", "", bin_pack)


# -- properties over random clusters -----------------------------------------------------------


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[HostSlots], tuple[str, ...]]:
    """Up to five hosts, some being evicted, of two users; an app of alice on some of them."""
    names = ["a", "b", "c", "d", "e"][: draw(st.integers(1, 5))]
    slots = {name: draw(st.integers(1, 6)) for name in names}
    capacity = [name for name in names for _ in range(slots[name])]
    ranks = draw(st.lists(st.sampled_from(capacity), min_size=1, max_size=10))
    own = Counter(ranks)
    while any(own[n] > slots[n] for n in own):  # drop ranks until every host fits its own
        ranks.pop()
        own = Counter(ranks)
    if not ranks:
        ranks, own = [capacity[0]], Counter(capacity[:1])
    hosts = []
    for name in names:
        others = draw(st.integers(0, slots[name] - own[name]))
        users = {"alice"} if own[name] else set()
        if others:
            users.add(draw(st.sampled_from(["alice", "bob"])))
        hosts.append(HostSlots(name, slots[name], own[name] + others, draw(st.booleans()),
                               frozenset(users)))
    return hosts, tuple(ranks)


def _fits(hosts: list[HostSlots], old: tuple[str, ...], new: tuple[str, ...]) -> None:
    by_name = {h.name: h for h in hosts}
    before, after = Counter(old), Counter(new)
    for name, count in after.items():
        arrivals = count - min(before[name], count)
        assert arrivals <= by_name[name].free, (name, arrivals)
        assert not arrivals or not by_name[name].evicting


@settings(max_examples=300, deadline=None)
@given(clusters())
def test_spot_leaves_evicted_hosts_or_freezes(
    cluster: tuple[list[HostSlots], tuple[str, ...]],
) -> None:
    hosts, old = cluster
    evicting = {h.name for h in hosts if h.evicting}
    decision = spot_migration(hosts, old)
    if evicting.isdisjoint(old):
        assert decision == DoNotMigrate()
        return
    room = sum(h.free + Counter(old)[h.name] for h in hosts if not h.evicting)
    if isinstance(decision, MustFreeze):
        assert room < len(old)
        return
    assert isinstance(decision, Moves)
    assert evicting.isdisjoint(decision.placement)
    assert decision.moved == tuple(i for i, h in enumerate(old) if decision.placement[i] != h)
    _fits(hosts, old, decision.placement)


@settings(max_examples=300, deadline=None)
@given(clusters())
def test_compact_moves_empty_one_more_host_of_the_user(
    cluster: tuple[list[HostSlots], tuple[str, ...]],
) -> None:
    hosts, old = cluster
    decision = compact_migration(hosts, old, "alice")
    if not isinstance(decision, Moves):
        return
    new = decision.placement
    assert decision.moved == tuple(i for i, h in enumerate(old) if new[i] != h)
    _fits(hosts, old, new)
    used = {h.name: h.used - Counter(old)[h.name] + Counter(new)[h.name] for h in hosts}
    assert sum(n == 0 for n in used.values()) == sum(h.used == 0 for h in hosts) + 1
    arrived = {new[i] for i in decision.moved}
    assert all({"alice"} >= next(h for h in hosts if h.name == a).users for a in arrived)
    # fewest moves: no host the app alone fills holds fewer of its ranks and could empty
    assert len(decision.moved) == min(Counter(old)[old[i]] for i in decision.moved)


@settings(max_examples=300, deadline=None)
@given(clusters(), st.integers(1, 8))
def test_compact_placements_keep_users_apart(
    cluster: tuple[list[HostSlots], tuple[str, ...]], size: int
) -> None:
    hosts, _ = cluster
    placed = Compact(user="bob").place(hosts, size)
    if isinstance(placed, NoCapacity):
        allowed = [h for h in hosts if not h.evicting and h.users <= {"bob"}]
        assert placed.free == sum(h.free for h in allowed) < size
        return
    by_name = {h.name: h for h in hosts}
    for name, count in Counter(placed.hosts).items():
        assert by_name[name].users <= {"bob"} and not by_name[name].evicting
        assert count <= by_name[name].free
