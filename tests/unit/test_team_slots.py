"""TeamSlots: one planner request when a granule's team first grows, release at its end; a
team kept on its worker is reported through the link."""

from __future__ import annotations

from dataclasses import dataclass, field

from faabric.abi import GranuleIO
from faabric.abi.state import GranuleState, TeamPlan
from faabric.granule.team_slots import ElasticLink, TeamSlots
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
    elsewhere: int = 0  # free slots on the worker "there"
    requests: list[tuple[int, int]] = field(default_factory=list)
    anywhere: list[tuple[int, int]] = field(default_factory=list)  # non-local requests
    released: list[tuple[int, int]] = field(default_factory=list)

    def request(self, app_id: int, count: int, local: bool = True) -> ScaleGranted | ScaleRefused:
        if not local:
            return self._anywhere(app_id, count)
        self.requests.append((app_id, count))
        if count > self.free:
            return ScaleRefused(len(self.requests), "not enough free slots", self.free)
        self.free -= count
        return ScaleGranted(len(self.requests), (("here", count),))

    def _anywhere(self, app_id: int, count: int) -> ScaleGranted | ScaleRefused:
        self.anywhere.append((app_id, count))
        if count > self.free + self.elsewhere:
            return ScaleRefused(0, "the cluster is full", self.free + self.elsewhere)
        here = min(count, self.free)
        there = count - here
        self.free -= here
        self.elsewhere -= there
        placement = tuple((h, n) for h, n in (("here", here), ("there", there)) if n)
        return ScaleGranted(0, placement, (("there", "10.0.0.2:9"),) if there else ())

    def release(self, app_id: int, count: int) -> None:
        self.released.append((app_id, count))
        self.free += count


def call(app_id: int = 7, index: int = 0) -> Call:
    return Call(GranuleState(app_id, GranuleIO(index=index, count=1)))


def test_first_growth_asks_for_a_whole_team_then_forks_ask_nothing() -> None:
    planner = Planner(free=8)
    slots = TeamSlots(planner.request, planner.release, team_size=4, host="here")
    for threads in (1, 2, 3, 1, 2, 3):
        slots.reserve(call(), threads)
    assert planner.requests == [(7, 3)]
    slots.ended(7, 0)
    assert planner.released == [(7, 3)] and planner.free == 8


def test_a_larger_team_asks_for_the_difference() -> None:
    planner = Planner(free=8)
    slots = TeamSlots(planner.request, planner.release, team_size=2, host="here")
    slots.reserve(call(), 1)
    slots.reserve(call(), 4)
    assert planner.requests == [(7, 1), (7, 3)]
    slots.ended(7, 0)
    assert planner.released == [(7, 4)]


def test_a_refusal_is_not_asked_again_and_nothing_is_released() -> None:
    planner = Planner(free=0)
    slots = TeamSlots(planner.request, planner.release, team_size=4, host="here")
    slots.reserve(call(), 3)
    slots.reserve(call(), 3)
    assert planner.requests == [(7, 3)]
    slots.ended(7, 0)
    assert planner.released == []


def test_granules_are_counted_apart() -> None:
    planner = Planner(free=8)
    slots = TeamSlots(planner.request, planner.release, team_size=2, host="here")
    slots.reserve(call(index=0), 1)
    slots.reserve(call(index=1), 1)
    assert planner.requests == [(7, 1), (7, 1)]


def test_when_a_whole_team_does_not_fit_it_asks_for_what_it_needs() -> None:
    planner = Planner(free=1)
    slots = TeamSlots(planner.request, planner.release, team_size=4, host="here")
    slots.reserve(call(), 1)
    assert planner.requests == [(7, 3), (7, 1)]
    slots.ended(7, 0)
    assert planner.released == [(7, 1)]


def test_a_team_that_fits_here_is_planned_here() -> None:
    planner = Planner(free=3, elsewhere=4)
    slots = TeamSlots(planner.request, planner.release, team_size=4, host="here")
    assert slots.plan(7, 0, 4) == TeamPlan(4, 4)
    assert planner.anywhere == []


def test_a_team_larger_than_this_worker_spills_to_another() -> None:
    planner = Planner(free=1, elsewhere=4)
    learned: list[tuple[tuple[str, str], ...]] = []
    slots = TeamSlots(planner.request, planner.release, team_size=2, host="here",
                      learn=learned.append)
    assert slots.plan(7, 0, 4) == TeamPlan(2, 4, (("there", 2),))
    assert planner.anywhere == [(7, 3)]
    assert learned == [(("there", "10.0.0.2:9"),)]
    slots.reserve(call(), 1)  # the local pool grows to its planned size: nothing asked
    assert planner.requests == [(7, 3)] and len(planner.anywhere) == 1
    slots.ended(7, 0)
    assert planner.released == [(7, 1)]  # slots on other workers stay until the app ends


def test_a_team_larger_than_the_cluster_runs_here_oversubscribed() -> None:
    planner = Planner(free=1, elsewhere=1)
    slots = TeamSlots(planner.request, planner.release, team_size=2, host="here")
    assert slots.plan(7, 0, 8) == TeamPlan(8, 3)  # 3 threads would have had slots


def test_a_team_kept_here_is_reported_through_the_link() -> None:
    planner = Planner(free=1, elsewhere=4)
    kept: list[tuple[int, int, int, str]] = []
    link = ElasticLink(lambda app_id, count: ScaleRefused(0, "not used", 0),
                       lambda app_id, index, threads: None,
                       lambda app_id, index, threads, detail: kept.append(
                           (app_id, index, threads, detail)))
    slots = TeamSlots(planner.request, planner.release, team_size=2, host="here",
                      elastic=link)
    assert slots.plan(7, 0, 4) == TeamPlan(2, 4, (("there", 2),))
    slots.kept_local(7, 0, 4, "across 2 hosts 1.5 s, on 1 host 0.5 s")
    assert kept == [(7, 0, 4, "across 2 hosts 1.5 s, on 1 host 0.5 s")]
    assert planner.released == []  # a report only: the slots stay as they are


def test_without_a_link_or_its_report_a_kept_team_is_not_reported() -> None:
    planner = Planner(free=1)
    TeamSlots(planner.request, planner.release, team_size=2, host="here").kept_local(
        7, 0, 4, "measured")
    link = ElasticLink(lambda app_id, count: ScaleRefused(0, "not used", 0),
                       lambda app_id, index, threads: None)
    TeamSlots(planner.request, planner.release, team_size=2, host="here",
              elastic=link).kept_local(7, 0, 4, "measured")
    assert planner.requests == [] and planner.anywhere == [] and planner.released == []
