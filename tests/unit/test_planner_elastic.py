"""The planner core's side of elastic OpenMP: "up to" scale requests are granted
min(count, free) slots, never refused; their release starts queued apps; team resizes are
recorded as app events, and so are teams kept on their worker. Fake clock, no I/O;
invariants are checked after each event."""

from __future__ import annotations

import pytest

from faabric.messages.types import AppSpec, Exited, GranuleResult
from faabric.planner.core import (
    AppEventKind,
    AppSubmitted,
    Command,
    Dispatch,
    Event,
    GrantScale,
    GranuleFinished,
    HostRegistered,
    PlannerCore,
    RefuseScale,
    ScaleReleased,
    ScaleRequested,
    TeamKeptOnHost,
    TeamSizeChanged,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def spec(size: int, *, elastic: bool = True) -> AppSpec:
    return AppSpec(module="ab" * 32, size=size, program=f"app{size}", elastic=elastic)


def make_core(*hosts: tuple[str, int]) -> PlannerCore:
    core = PlannerCore(clock=FakeClock(), keepalive_timeout=5.0)
    step(core, *(HostRegistered(name, slots) for name, slots in hosts))
    return core


def step(core: PlannerCore, *events: Event) -> list[Command]:
    commands: list[Command] = []
    for event in events:
        commands += core.handle(event)
        core.validate()
    return commands


def used(core: PlannerCore) -> dict[str, int]:
    return {h.name: h.used for h in core.hosts()}


# -- the grant rule: min(count, free), on the asking host with `local` ---------------------------

# (hosts, sizes of apps submitted before and after the elastic app 9 of size 1, request,
# expected answer). Bin-pack places each app on the host with the most free slots (then the
# most slots): the comments say where app 9 runs and what is free then.
UP_TO = [
    pytest.param([("a", 4)], [], [], ScaleRequested(9, 1, 3, "a", True, True),
                 GrantScale("a", 1, (("a", 3),)), id="all free: all asked"),
    pytest.param([("a", 4)], [2], [], ScaleRequested(9, 1, 3, "a", True, True),
                 GrantScale("a", 1, (("a", 1),)), id="some free: those"),
    pytest.param([("a", 4)], [3], [], ScaleRequested(9, 1, 3, "a", True, True),
                 GrantScale("a", 1, ()), id="none free: an empty grant"),
    pytest.param([("a", 8)], [], [], ScaleRequested(9, 1, 2, "a", True, True),
                 GrantScale("a", 1, (("a", 2),)), id="more free than asked: as asked"),
    pytest.param([("a", 4), ("b", 2)], [2], [], ScaleRequested(9, 1, 3, "a", True, True),
                 GrantScale("a", 1, (("a", 1),)),  # 9 on a; free: a 1, b 2
                 id="local: the asking host's free slots only"),
    pytest.param([("a", 2), ("b", 4)], [], [3], ScaleRequested(9, 1, 3, "b", True, True),
                 GrantScale("b", 1, ()),  # 9 on b; free: a 2, b 0
                 id="local: none here, an empty grant"),
    pytest.param([("a", 3), ("b", 4)], [], [], ScaleRequested(9, 1, 9, "b", False, True),
                 GrantScale("b", 1, (("b", 3), ("a", 3))),  # 9 on b; free: a 3, b 3
                 id="anywhere: every free slot, the app's host first"),
    pytest.param([("a", 4)], [2], [], ScaleRequested(9, 1, 3, "a", True, False),
                 RefuseScale("a", 1, "3 slots asked, 1 free", 1), id="not up to: refused"),
    pytest.param([("a", 4)], [], [], ScaleRequested(9, 1, 0, "a", True, True),
                 RefuseScale("a", 1, "asked for 0 slots", 0), id="up to nothing: refused"),
    pytest.param([("a", 4)], [], [], ScaleRequested(5, 1, 2, "a", True, True),
                 RefuseScale("a", 1, "app 5 is not running", 0), id="unknown app: refused"),
]


@pytest.mark.parametrize(("hosts", "before", "after", "request_", "expected"), UP_TO)
def test_up_to_grants_what_is_free(
    hosts: list[tuple[str, int]], before: list[int], after: list[int],
    request_: ScaleRequested, expected: GrantScale | RefuseScale,
) -> None:
    core = make_core(*hosts)
    sizes = [*before, 1, *after]
    for app_id, size in enumerate(sizes, start=9 - len(before)):
        step(core, AppSubmitted(app_id, spec(size, elastic=app_id == 9)))
    was = used(core)
    assert step(core, request_) == [expected]
    granted = dict(expected.placement) if isinstance(expected, GrantScale) else {}
    assert {h: n - was[h] for h, n in used(core).items() if n != was[h]} == granted
    view = core.app(9)
    assert view is not None and dict(view.scaled) == granted


def test_released_elastic_slots_start_a_queued_app() -> None:
    core = make_core(("a", 4))
    step(core, AppSubmitted(9, spec(1)))
    assert step(core, ScaleRequested(9, 1, 3, "a", True, True)) == [
        GrantScale("a", 1, (("a", 3),))]
    assert step(core, AppSubmitted(2, spec(2, elastic=False))) == []  # queued: nothing free
    commands = step(core, ScaleReleased(9, "a", 3))  # the region's join
    assert [(c.host, c.batch.app_id) for c in commands if isinstance(c, Dispatch)] == [("a", 2)]
    # The next region gets what is left: one slot.
    assert step(core, ScaleRequested(9, 2, 3, "a", True, True)) == [
        GrantScale("a", 2, (("a", 1),))]
    assert used(core) == {"a": 4}


def test_resizes_are_events_of_running_apps_only() -> None:
    core = make_core(("a", 4))
    step(core, AppSubmitted(9, spec(1)))
    assert step(core, TeamSizeChanged(9, 0, "a", 2), TeamSizeChanged(9, 0, "a", 4)) == []
    view = core.app(9)
    assert view is not None
    assert [(e.kind, e.threads, e.ranks, e.hosts, e.epoch) for e in view.events] == [
        (AppEventKind.RESIZED, 2, (0,), ("a",), 0), (AppEventKind.RESIZED, 4, (0,), ("a",), 0)]
    assert view.events[-1].detail == "resized: granule 0 on a runs 4 threads"
    step(core, GranuleFinished(GranuleResult(9, 0, "a", Exited(0))))
    assert step(core, TeamSizeChanged(9, 0, "a", 1), TeamSizeChanged(7, 0, "a", 2)) == []
    view = core.app(9)
    assert view is not None and len(view.events) == 2  # late and unknown: ignored


def test_kept_local_teams_are_events_of_running_apps_only() -> None:
    core = make_core(("a", 2), ("b", 4))
    step(core, AppSubmitted(9, spec(1, elastic=False)))  # on b: the most free slots
    measured = "across 2 hosts 1.20 s, on 1 host 0.40 s"
    assert step(core, TeamKeptOnHost(9, 0, "b", 4, measured)) == []
    view = core.app(9)
    assert view is not None
    assert [(e.kind, e.threads, e.ranks, e.hosts, e.epoch) for e in view.events] == [
        (AppEventKind.KEPT_LOCAL, 4, (0,), ("b",), 0)]
    assert view.events[-1].detail == (
        f"kept-local: granule 0 on b runs its 4-thread team here: {measured}")
    assert used(core) == {"a": 0, "b": 1}  # a report only: no slot changes hands
    step(core, GranuleFinished(GranuleResult(9, 0, "b", Exited(0))))
    assert step(core, TeamKeptOnHost(9, 0, "b", 4, measured),
                TeamKeptOnHost(7, 0, "b", 2, measured)) == []
    view = core.app(9)
    assert view is not None and len(view.events) == 1  # late and unknown: ignored


def test_a_queued_app_gets_no_kept_local_event() -> None:
    core = make_core(("a", 1))
    step(core, AppSubmitted(1, spec(1, elastic=False)), AppSubmitted(2, spec(1)))
    assert step(core, TeamKeptOnHost(2, 0, "a", 4, "measured")) == []
    view = core.app(2)
    assert view is not None and view.events == ()
