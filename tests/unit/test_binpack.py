"""Table-driven tests of the bin-pack placement policy and the policy registry."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faabric.errors import ConfigError
from faabric.scheduling import (
    POLICIES,
    DoNotMigrate,
    HostSlots,
    NoCapacity,
    Placed,
    Placement,
    bin_pack,
    get_policy,
)
from faabric.scheduling._migrate import FreeSlots, bin_pack_migration


def hosts(*specs: tuple[str, int, int]) -> list[HostSlots]:
    return [HostSlots(name, slots, used) for name, slots, used in specs]


# fmt: off
CASES: list[tuple[str, list[HostSlots], int, Mapping[str, int], Placement]] = [
    ("fits one host", hosts(("a", 4, 0), ("b", 2, 0)), 3, {}, Placed(("a", "a", "a"))),
    ("spans hosts, most free first", hosts(("a", 3, 0), ("b", 2, 0)), 4, {},
     Placed(("a", "a", "a", "b"))),
    ("used slots are not reused", hosts(("a", 4, 3), ("b", 2, 0)), 3, {},
     Placed(("b", "b", "a"))),
    ("tie-break 1: more free slots first", hosts(("a", 4, 2), ("b", 4, 1)), 1, {},
     Placed(("b",))),
    ("tie-break 2: equal free, more total slots first", hosts(("a", 4, 2), ("b", 2, 0)), 1, {},
     Placed(("a",))),
    ("tie-break 3: equal free and total, greater name first",
     hosts(("a", 2, 0), ("c", 2, 0), ("b", 2, 0)), 5, {}, Placed(("c", "c", "b", "b", "a"))),
    ("exactly the free slots", hosts(("a", 2, 1), ("b", 2, 1)), 2, {}, Placed(("b", "a"))),
    ("scale change prefers hosts running the app", hosts(("a", 4, 3), ("b", 4, 0)), 3,
     {"a": 1}, Placed(("a", "b", "b"))),
    ("scale change orders running hosts by count", hosts(("a", 2, 0), ("b", 2, 0), ("c", 2, 0)),
     6, {"a": 1, "c": 3}, Placed(("c", "c", "a", "a", "b", "b"))),
    ("scale change: equal counts fall back to NEW order",
     hosts(("a", 4, 0), ("b", 4, 2), ("c", 8, 0)), 3, {"a": 1, "b": 1}, Placed(("a", "a", "a"))),
    ("scale change skips a full running host", hosts(("a", 2, 2), ("b", 2, 0)), 1, {"a": 2},
     Placed(("b",))),
    ("scale change ignores unknown running hosts", hosts(("a", 2, 0), ("b", 2, 0)), 1,
     {"gone": 5}, Placed(("b",))),
    ("not enough free slots", hosts(("a", 4, 2), ("b", 2, 0)), 5, {}, NoCapacity(5, 4)),
    ("scale change without capacity", hosts(("a", 2, 1)), 2, {"a": 1}, NoCapacity(2, 1)),
    ("zero-slot hosts are skipped", hosts(("z", 0, 0), ("a", 2, 0)), 2, {}, Placed(("a", "a"))),
    ("only zero-slot hosts", hosts(("a", 0, 0), ("b", 0, 0)), 1, {}, NoCapacity(1, 0)),
    ("no hosts at all", [], 1, {}, NoCapacity(1, 0)),
]
# fmt: on


@pytest.mark.parametrize(
    ("host_list", "size", "running", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bin_pack(
    host_list: list[HostSlots], size: int, running: Mapping[str, int], expected: Placement
) -> None:
    assert bin_pack(host_list, size, running) == expected


def test_input_order_does_not_matter() -> None:
    specs = [("a", 2, 0), ("b", 3, 1), ("c", 2, 0), ("d", 4, 4)]
    expected = bin_pack(hosts(*specs), 4)
    rng = random.Random(7)
    for _ in range(20):
        rng.shuffle(specs)
        assert bin_pack(hosts(*specs), 4) == expected


def test_never_over_commits() -> None:
    rng = random.Random(1234)
    for _ in range(500):
        cluster = [
            HostSlots(f"h{i}", slots, rng.randint(0, slots))
            for i, slots in enumerate(rng.randint(0, 4) for _ in range(rng.randint(0, 5)))
        ]
        size = rng.randint(1, 12)
        free = sum(h.free for h in cluster)
        match bin_pack(cluster, size):
            case Placed(placed):
                assert len(placed) == size
                per_host = Counter(placed)
                assert all(per_host[h.name] <= h.free for h in cluster)
            case NoCapacity(requested, got):
                assert (requested, got) == (size, free)
                assert free < size


@pytest.mark.parametrize("size", [0, -1])
def test_size_below_one_is_rejected(size: int) -> None:
    with pytest.raises(ValueError, match="at least one granule"):
        bin_pack(hosts(("a", 2, 0)), size)


def test_duplicate_host_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        bin_pack(hosts(("a", 2, 0), ("a", 2, 0)), 1)


def test_negative_running_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        bin_pack(hosts(("a", 2, 0)), 1, {"a": -1})


@pytest.mark.parametrize(("slots", "used"), [(-1, 0), (2, -1), (2, 3)])
def test_host_slots_must_be_consistent(slots: int, used: int) -> None:
    with pytest.raises(ValueError, match="used <= slots"):
        HostSlots("a", slots, used)


def test_registry() -> None:
    assert POLICIES["bin-pack"] is bin_pack
    assert get_policy("bin-pack") is bin_pack
    with pytest.raises(ConfigError, match=r"unknown scheduling policy 'nope'.*bin-pack"):
        get_policy("nope")


@given(
    st.lists(st.integers(0, 16), min_size=2, max_size=8),
    st.lists(st.integers(0, 7), min_size=2, max_size=12),
)
def test_free_slots_bound_never_hides_a_move_bin_pack_would_make(
    used: list[int], ranks: list[int]
) -> None:
    names = [f"h{i}" for i in range(len(used))]
    placement = [names[r % len(names)] for r in ranks]
    own = Counter(placement)
    hosts = [HostSlots(n, 16, max(u, own[n])) for n, u in zip(names, used, strict=True)]
    if not FreeSlots(hosts).may_improve(placement):
        assert isinstance(bin_pack_migration(hosts, placement), DoNotMigrate)
