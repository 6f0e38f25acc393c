"""TeamSlots: one planner request when a granule's team first grows, release at its end."""

from __future__ import annotations

from dataclasses import dataclass, field

from faabric.abi import GranuleIO
from faabric.abi.state import GranuleState
from faabric.granule.team_slots import TeamSlots
from faabric.messages.control import ScaleGranted, ScaleRefused
from faabric.wasm.host import GuestMemory


@dataclass
class Call:
    state: GranuleState

    def memory(self) -> GuestMemory:
        raise AssertionError("not used")


@dataclass
class Planner:
    free: int
    requests: list[tuple[int, int]] = field(default_factory=list)
    released: list[tuple[int, int]] = field(default_factory=list)

    def request(self, app_id: int, count: int) -> ScaleGranted | ScaleRefused:
        self.requests.append((app_id, count))
        if count > self.free:
            return ScaleRefused(len(self.requests), "not enough free slots", self.free)
        self.free -= count
        return ScaleGranted(len(self.requests), (("here", count),))

    def release(self, app_id: int, count: int) -> None:
        self.released.append((app_id, count))
        self.free += count


def call(app_id: int = 7, index: int = 0) -> Call:
    return Call(GranuleState(app_id, GranuleIO(index=index, count=1)))


def test_first_growth_asks_for_a_whole_team_then_forks_ask_nothing() -> None:
    planner = Planner(free=8)
    slots = TeamSlots(planner.request, planner.release, team_size=4)
    for threads in (1, 2, 3, 1, 2, 3):
        slots.reserve(call(), threads)
    assert planner.requests == [(7, 3)]
    slots.ended(7, 0)
    assert planner.released == [(7, 3)] and planner.free == 8


def test_a_larger_team_asks_for_the_difference() -> None:
    planner = Planner(free=8)
    slots = TeamSlots(planner.request, planner.release, team_size=2)
    slots.reserve(call(), 1)
    slots.reserve(call(), 4)
    assert planner.requests == [(7, 1), (7, 3)]
    slots.ended(7, 0)
    assert planner.released == [(7, 4)]


def test_a_refusal_is_not_asked_again_and_nothing_is_released() -> None:
    planner = Planner(free=0)
    slots = TeamSlots(planner.request, planner.release, team_size=4)
    slots.reserve(call(), 3)
    slots.reserve(call(), 3)
    assert planner.requests == [(7, 3)]
    slots.ended(7, 0)
    assert planner.released == []


def test_granules_are_counted_apart() -> None:
    planner = Planner(free=8)
    slots = TeamSlots(planner.request, planner.release, team_size=2)
    slots.reserve(call(index=0), 1)
    slots.reserve(call(index=1), 1)
    assert planner.requests == [(7, 1), (7, 1)]


def test_when_a_whole_team_does_not_fit_it_asks_for_what_it_needs() -> None:
    planner = Planner(free=1)
    slots = TeamSlots(planner.request, planner.release, team_size=4)
    slots.reserve(call(), 1)
    assert planner.requests == [(7, 3), (7, 1)]
    slots.ended(7, 0)
    assert planner.released == [(7, 1)]
