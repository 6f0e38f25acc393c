"""The worker's side of elastic OpenMP: `TeamSlots.elastic_fork/elastic_join` lend each
region the slots free on this worker (one "up to" request per fork), give them back at the
join and report size changes; `TeamFunctions` only lets elastic apps call them. The planner
is a fake."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from faabric.abi import GranuleIO
from faabric.abi.state import GranuleState, TeamContext
from faabric.granule.team_slots import ElasticLink, TeamSlots
from faabric.messages.control import ScaleGranted, ScaleRefused
from faabric.messages.types import AppSpec, Batch
from faabric.threads.team_functions import TeamFunctions
from faabric.wasm.host import GuestFault, GuestMemory


@dataclass
class Planner:
    """Slots free on the worker "here"; records every call."""

    free: int
    connected: bool = True
    up_to: list[int] = field(default_factory=list)  # counts of up-to requests
    exact: list[int] = field(default_factory=list)  # counts of ordinary local requests
    released: list[int] = field(default_factory=list)
    resized: list[tuple[int, int, int]] = field(default_factory=list)

    def request(self, app_id: int, count: int, local: bool = True) -> ScaleGranted | ScaleRefused:
        self.exact.append(count)
        if count > self.free:
            return ScaleRefused(0, "not enough free slots", self.free)
        self.free -= count
        return ScaleGranted(0, (("here", count),))

    def request_up_to(self, app_id: int, count: int) -> ScaleGranted | ScaleRefused:
        self.up_to.append(count)
        if not self.connected:
            return ScaleRefused(0, "lost the planner", 0)
        granted = min(count, self.free)
        self.free -= granted
        return ScaleGranted(0, (("here", granted),) if granted else ())

    def release(self, app_id: int, count: int) -> None:
        self.released.append(count)
        self.free += count

    def slots(self, team_size: int = 4) -> TeamSlots:
        link = ElasticLink(self.request_up_to,
                           lambda app_id, index, threads: self.resized.append(
                               (app_id, index, threads)))
        return TeamSlots(self.request, self.release, team_size=team_size, host="here",
                         elastic=link)


@dataclass
class Call:
    state: GranuleState

    def memory(self) -> GuestMemory:
        raise AssertionError("not used")


def call(elastic: bool = True, app_id: int = 7, index: int = 0) -> Call:
    batch = Batch(app_id, AppSpec(module="ab" * 32, size=1, elastic=elastic), (index,))
    team = TeamContext(batch, index, deadline=1e9)
    return Call(GranuleState(app_id, GranuleIO(index=index, count=1), team=team))


# (free slots before each fork, threads each region runs with, resizes reported)
PLANS = [
    pytest.param([3, 3, 3], [4, 4, 4], [4], id="room for all: one resize, from 1"),
    pytest.param([1, 1, 3, 3], [2, 2, 4, 4], [2, 4], id="grows once slots free up"),
    pytest.param([3, 0, 2], [4, 1, 3], [4, 1, 3], id="shrinks to what is free"),
    pytest.param([0, 0], [1, 1], [], id="never room: one thread, nothing to report"),
    pytest.param([9], [4], [4], id="never more than wanted"),
]


@pytest.mark.parametrize(("free", "threads", "resizes"), PLANS)
def test_each_fork_gets_the_free_slots_and_the_join_gives_them_back(
    free: list[int], threads: list[int], resizes: list[int]
) -> None:
    planner = Planner(free=0)
    slots = planner.slots()
    for free_now, expected in zip(free, threads, strict=True):
        planner.free = free_now
        assert slots.elastic_fork(7, 0, 4) == expected
        assert planner.free == free_now - (expected - 1)  # lent until the join
        slots.elastic_join(7, 0, expected)
        assert planner.free == free_now  # given back
    assert planner.up_to == [3] * len(free)  # one request per fork, for the missing threads
    assert planner.exact == []
    assert planner.resized == [(7, 0, n) for n in resizes]


def test_threads_started_in_a_region_use_its_lent_slots() -> None:
    planner = Planner(free=3)
    slots = planner.slots()
    assert slots.elastic_fork(7, 0, 4) == 4
    for running in (1, 2, 3):  # the pool starts its workers: nothing more is asked
        slots.reserve(call(), running)
    assert planner.exact == []
    slots.elastic_join(7, 0, 4)
    assert planner.released == [3]


def test_slots_held_for_the_granule_count_before_asking() -> None:
    planner = Planner(free=4)
    slots = planner.slots(team_size=2)
    slots.reserve(call(), 1)  # a pthread: one slot held for the granule's life
    assert planner.exact == [1]
    assert slots.elastic_fork(7, 0, 4) == 4
    assert planner.up_to == [2]  # 3 threads missing, 1 of them held
    slots.elastic_join(7, 0, 4)
    assert planner.released == [2]
    planner.free = 0
    assert slots.elastic_fork(7, 0, 2) == 2  # the held slot is enough: nothing asked
    assert planner.up_to == [2]
    slots.elastic_join(7, 0, 2)
    slots.ended(7, 0)
    assert planner.released == [2, 1]


def test_a_granule_ending_inside_a_region_gives_back_its_lent_slots() -> None:
    planner = Planner(free=3)
    slots = planner.slots()
    assert slots.elastic_fork(7, 0, 4) == 4
    slots.ended(7, 0)
    assert planner.released == [3] and planner.free == 3
    slots.elastic_join(7, 0, 4)  # too late: nothing left to give back
    assert planner.released == [3]


def test_without_the_planner_a_region_runs_alone() -> None:
    planner = Planner(free=3, connected=False)
    slots = planner.slots()
    assert slots.elastic_fork(7, 0, 4) == 1
    slots.elastic_join(7, 0, 1)
    assert planner.released == [] and planner.resized == []


def test_granules_are_lent_to_apart() -> None:
    planner = Planner(free=3)
    slots = planner.slots()
    assert slots.elastic_fork(7, 0, 4) == 4
    assert slots.elastic_fork(7, 1, 4) == 1  # granule 0 holds every free slot
    slots.elastic_join(7, 1, 1)
    slots.elastic_join(7, 0, 4)
    assert planner.released == [3]
    assert planner.resized == [(7, 0, 4)]


def test_a_fork_inside_an_elastic_region_is_a_guest_fault() -> None:
    slots = Planner(free=3).slots()
    slots.elastic_fork(7, 0, 4)
    with pytest.raises(GuestFault):
        slots.elastic_fork(7, 0, 4)


def test_only_elastic_apps_reach_the_elastic_functions() -> None:
    planner = Planner(free=3)
    functions = TeamFunctions(elastic=planner.slots())
    assert functions.elastic(call(elastic=True)) == 1
    assert functions.elastic(call(elastic=False)) == 0
    assert TeamFunctions().elastic(call(elastic=True)) == 0
    assert functions.elastic_fork(call(), 4) == 4
    functions.elastic_join(call(), 4)
    assert planner.released == [3]
    with pytest.raises(GuestFault):
        functions.elastic_fork(call(elastic=False), 4)
