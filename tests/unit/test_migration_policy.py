"""Table-driven tests of bin-pack's migration rule (DIST_CHANGE), plus properties it must keep
for any cluster: never over-commit, only strictly better placements, fewest moves."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faabric.scheduling import (
    DoNotMigrate,
    HostSlots,
    Migration,
    Moves,
    Policy,
    bin_pack,
    bin_pack_migration,
    cross_host_links,
    get_policy,
)


def hosts(*specs: tuple[str, int, int]) -> list[HostSlots]:
    """(name, slots, used): `used` counts the app's own ranks on the host too."""
    return [HostSlots(name, slots, used) for name, slots, used in specs]


# fmt: off
CASES: list[tuple[str, list[HostSlots], tuple[str, ...], Migration]] = [
    ("2+2 over two 4-slot hosts, a's other app left: consolidate on a, moving 2",
     hosts(("a", 4, 2), ("b", 4, 4)), ("a", "a", "b", "b"),
     Moves(("a", "a", "a", "a"), (2, 3))),
    ("equal hosts: the greater name wins, its ranks stay",
     hosts(("a", 4, 2), ("b", 4, 2)), ("a", "a", "b", "b"),
     Moves(("b", "b", "b", "b"), (0, 1))),
    ("no free slot anywhere: no better placement",
     hosts(("a", 4, 4), ("b", 4, 4)), ("a", "a", "b", "b"), DoNotMigrate()),
    ("already on one host: an emptier host is not better",
     hosts(("a", 4, 2), ("b", 8, 0)), ("a", "a"), DoNotMigrate()),
    ("a single rank never moves", hosts(("a", 1, 1), ("b", 4, 0)), ("a",), DoNotMigrate()),
    ("same hosts, fewer links: 2+2 becomes 3+1 moving one rank",
     hosts(("a", 4, 3), ("b", 3, 3)), ("a", "a", "b", "b"),
     Moves(("a", "a", "b", "a"), (3,))),
    ("same hosts and links: not better",
     hosts(("a", 3, 3), ("b", 3, 3)), ("a", "b", "a", "b"), DoNotMigrate()),
    ("interleaved ranks: only the ranks on the losing host move",
     hosts(("a", 4, 2), ("b", 4, 4)), ("a", "b", "a", "b"),
     Moves(("a", "a", "a", "a"), (1, 3))),
    ("a host not in the placement takes the whole app",
     hosts(("a", 2, 2), ("b", 2, 2), ("c", 4, 0)), ("a", "a", "b", "b"),
     Moves(("c", "c", "c", "c"), (0, 1, 2, 3))),
    ("three hosts to two: ranks stay where the new counts allow",
     hosts(("a", 4, 3), ("b", 4, 2), ("c", 4, 1)), ("a", "a", "a", "b", "b", "c"),
     Moves(("a", "a", "a", "b", "b", "a"), (5,))),
    ("an old host that shrinks keeps its lowest rank",
     hosts(("a", 3, 3), ("b", 4, 1), ("c", 1, 1)), ("a", "a", "a", "b", "c"),
     Moves(("a", "b", "b", "b", "b"), (1, 2, 4))),
    ("the greedy order decides, not where the ranks were",
     hosts(("a", 3, 3), ("b", 4, 1), ("c", 4, 2)), ("a", "a", "a", "b", "c", "c"),
     Moves(("c", "c", "b", "b", "c", "c"), (0, 1, 2))),
    ("ranks on a host that is gone must move",
     hosts(("a", 2, 1)), ("a", "gone"), Moves(("a", "a"), (1,))),
    ("ranks on a host that is gone, and no room for them",
     hosts(("a", 1, 1)), ("a", "gone"), DoNotMigrate()),
    ("zero-slot hosts are ignored",
     hosts(("z", 0, 0), ("a", 4, 2), ("b", 4, 4)), ("a", "a", "b", "b"),
     Moves(("a", "a", "a", "a"), (2, 3))),
]
# fmt: on


@pytest.mark.parametrize(
    ("host_list", "placement", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bin_pack_migration(
    host_list: list[HostSlots], placement: tuple[str, ...], expected: Migration
) -> None:
    assert bin_pack_migration(host_list, placement) == expected
    assert bin_pack.migrate(host_list, placement) == expected


@pytest.mark.parametrize(
    ("host_list", "placement", "message"),
    [
        (hosts(("a", 2, 2)), (), "at least one rank"),
        (hosts(("a", 2, 2), ("a", 2, 0)), ("a",), "duplicate host names"),
        (hosts(("a", 2, 1)), ("a", "a"), "more of the app's ranks"),
    ],
)
def test_bad_requests_raise(
    host_list: list[HostSlots], placement: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        bin_pack_migration(host_list, placement)


@pytest.mark.parametrize(
    ("counts", "links"),
    [({"a": 4}, 0), ({"a": 2, "b": 2}, 4), ({"a": 3, "b": 1}, 3), ({"a": 1, "b": 1, "c": 1}, 3)],
)
def test_cross_host_links(counts: dict[str, int], links: int) -> None:
    assert cross_host_links(counts) == links


def test_the_registered_policy_places_and_migrates() -> None:
    policy: Policy = get_policy("bin-pack")
    assert policy is bin_pack and policy.name == "bin-pack"
    cluster = hosts(("a", 4, 2), ("b", 4, 4))
    assert policy.place(cluster, 2) == bin_pack(cluster, 2)
    assert policy.migrate(cluster, ("a", "a", "b", "b")) == Moves(("a",) * 4, (2, 3))


# -- properties over random clusters -----------------------------------------------------------


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[HostSlots], tuple[str, ...]]:
    """Up to five hosts, an app of 1..12 ranks on some of them, other apps' slots taken."""
    names = ["a", "b", "c", "d", "e"][: draw(st.integers(1, 5))]
    slots = {name: draw(st.integers(0, 6)) for name in names}
    capacity = [name for name in names for _ in range(slots[name])]
    if not capacity:
        capacity, slots["a"] = ["a"], 1
    ranks = draw(st.lists(st.sampled_from(capacity), min_size=1, max_size=12))
    own = Counter(ranks)
    while any(own[n] > slots[n] for n in own):  # drop ranks until every host fits its own
        ranks.pop()
        own = Counter(ranks)
    if not ranks:
        ranks, own = [capacity[0]], Counter(capacity[:1])
    used = {n: own[n] + draw(st.integers(0, slots[n] - own[n])) for n in names}
    return [HostSlots(n, slots[n], used[n]) for n in names], tuple(ranks)


def _cost(placement: tuple[str, ...]) -> tuple[int, int]:
    counts = Counter(placement)
    return len(counts), cross_host_links(counts)


@settings(max_examples=400, deadline=None)
@given(clusters())
def test_moves_are_better_fit_and_few(cluster: tuple[list[HostSlots], tuple[str, ...]]) -> None:
    host_list, old = cluster
    decision = bin_pack_migration(host_list, old)
    if isinstance(decision, DoNotMigrate):
        return
    new = decision.placement
    assert len(new) == len(old)
    assert decision.moved == tuple(i for i in range(len(old)) if new[i] != old[i])
    assert decision.moved, "a better placement moves something"
    assert _cost(new) < _cost(old)
    before, after = Counter(old), Counter(new)
    for host in host_list:  # the moved-in ranks fit the free slots
        assert after[host.name] - min(before[host.name], after[host.name]) <= host.free
    # Fewest moves for these per-host counts: every rank that could stay did.
    kept = sum(min(before[name], after[name]) for name in after)
    assert len(decision.moved) == len(old) - kept
