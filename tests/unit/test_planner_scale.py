"""The planner core's scale changes (more slots for a running app) and batch submissions,
step by step with a fake clock and no I/O; the core's invariants are checked after each event.
"""

from __future__ import annotations

import pytest

from faabric.errors import InternalError
from faabric.messages.types import AppSpec, AppState, Exited, GranuleResult
from faabric.planner.core import (
    AppsSubmitted,
    AppSubmitted,
    Cancel,
    Command,
    Dispatch,
    Event,
    Finish,
    GrantScale,
    GranuleFinished,
    HostLeft,
    HostRegistered,
    PlannerCore,
    RefuseScale,
    Reject,
    Reset,
    ScaleReleased,
    ScaleRequested,
)

TIMEOUT = 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def spec(size: int) -> AppSpec:
    return AppSpec(module="ab" * 32, size=size, program=f"app{size}")


def step(core: PlannerCore, *events: Event) -> list[Command]:
    commands: list[Command] = []
    for event in events:
        commands += core.handle(event)
        core.validate()
    return commands


def placed(commands: list[Command]) -> list[tuple[str, int, tuple[int, ...]]]:
    """(host, app id, indices) of every Dispatch, in order."""
    return [
        (c.host, c.batch.app_id, c.batch.indices) for c in commands if isinstance(c, Dispatch)
    ]


def done(app_id: int, index: int, host: str) -> GranuleFinished:
    return GranuleFinished(GranuleResult(app_id, index, host, Exited(0)))


def used(core: PlannerCore) -> dict[str, int]:
    return {h.name: h.used for h in core.hosts()}


def make_core(*hosts: tuple[str, int]) -> PlannerCore:
    core = PlannerCore(clock=FakeClock(), keepalive_timeout=TIMEOUT)
    step(core, *(HostRegistered(name, slots) for name, slots in hosts))
    return core


# -- granting and refusing -----------------------------------------------------------------------

GRANTS = [
    pytest.param(
        [("a", 4), ("b", 4)], 1, 3, (("b", 3),), id="all on the app's own host"
    ),
    pytest.param(
        [("a", 4), ("b", 4), ("c", 4)], 2, 3, (("c", 2), ("b", 1)),
        id="own host first, then the most free",
    ),
    pytest.param(
        [("a", 2), ("b", 6)], 2, 4, (("b", 4),), id="fills the app's host before others",
    ),
    pytest.param(
        [("a", 3), ("b", 2)], 2, 3, (("a", 1), ("b", 2)),
        id="app spread over a: a's last slot, then b",
    ),
]


@pytest.mark.parametrize(("hosts", "size", "count", "expected"), GRANTS)
def test_grant_prefers_hosts_running_the_app(
    hosts: list[tuple[str, int]], size: int, count: int, expected: tuple[tuple[str, int], ...]
) -> None:
    core = make_core(*hosts)
    step(core, AppSubmitted(1, spec(size)))
    before = used(core)
    assert step(core, ScaleRequested(1, 7, count, "w")) == [GrantScale("w", 7, expected)]
    after = used(core)
    assert {h: after[h] - before[h] for h in after if after[h] != before[h]} == dict(expected)
    view = core.app(1)
    assert view is not None and view.scaled == tuple(sorted(expected))
    assert core.statistics().scaled_slots == count


def test_grant_counts_earlier_grants_as_running() -> None:
    core = make_core(("a", 4), ("b", 4), ("c", 4))
    step(core, AppSubmitted(1, spec(1)))  # on c
    assert step(core, ScaleRequested(1, 1, 5, "c")) == [GrantScale("c", 1, (("c", 3), ("b", 2)))]
    step(core, ScaleReleased(1, "c", 3))  # c: only the granule; b: 2 granted slots
    assert step(core, ScaleRequested(1, 2, 2, "c")) == [GrantScale("c", 2, (("b", 2),))]


REFUSALS = [
    pytest.param(ScaleRequested(1, 9, 4, "a"), "4 slots asked, 3 free", 3, id="too few free"),
    pytest.param(ScaleRequested(5, 9, 1, "a"), "app 5 is not running", 0, id="unknown app"),
    pytest.param(ScaleRequested(2, 9, 1, "a"), "app 2 is not running", 0, id="queued app"),
    pytest.param(ScaleRequested(1, 9, 0, "a"), "asked for 0 slots", 0, id="zero slots"),
    pytest.param(ScaleRequested(1, 9, -2, "a"), "asked for -2 slots", 0, id="negative"),
]


@pytest.mark.parametrize(("event", "reason", "free"), REFUSALS)
def test_refusals_change_nothing(event: ScaleRequested, reason: str, free: int) -> None:
    core = make_core(("a", 2), ("b", 2))
    step(core, AppSubmitted(1, spec(1)), AppSubmitted(2, spec(4)))  # 2 waits for 1
    before = (core.hosts(), core.in_flight(), core.statistics())
    assert step(core, event) == [RefuseScale("a", 9, reason, free)]
    assert (core.hosts(), core.in_flight(), core.statistics()) == before


def test_finished_app_is_refused() -> None:
    core = make_core(("a", 2))
    step(core, AppSubmitted(1, spec(1)), done(1, 0, "a"))
    assert step(core, ScaleRequested(1, 3, 1, "a")) == [
        RefuseScale("a", 3, "app 1 is not running", 0)
    ]


def test_scale_change_does_not_queue_behind_waiting_apps() -> None:
    core = make_core(("a", 4))
    step(core, AppSubmitted(1, spec(2)), AppSubmitted(2, spec(3)))  # 2 queued: needs 3 of 2
    assert step(core, ScaleRequested(1, 1, 2, "a")) == [GrantScale("a", 1, (("a", 2),))]
    assert used(core) == {"a": 4}
    # App 2 now waits for the granted slots too; releasing them lets it start.
    assert step(core, done(1, 0, "a")) == []
    assert placed(step(core, ScaleReleased(1, "a", 2))) == [("a", 2, (0, 1, 2))]


# -- releasing -----------------------------------------------------------------------------------

RELEASES = [
    pytest.param(ScaleReleased(1, "a", 1), {"a": 3}, (("a", 1),), id="part"),
    pytest.param(ScaleReleased(1, "a", 2), {"a": 2}, (), id="all"),
    pytest.param(ScaleReleased(1, "a", 9), {"a": 2}, (), id="more than held"),
    pytest.param(ScaleReleased(1, "b", 1), {"a": 4}, (("a", 2),), id="other host"),
    pytest.param(ScaleReleased(7, "a", 1), {"a": 4}, (("a", 2),), id="unknown app"),
    pytest.param(ScaleReleased(1, "a", 0), {"a": 4}, (("a", 2),), id="nothing"),
    pytest.param(ScaleReleased(1, "a", -1), {"a": 4}, (("a", 2),), id="negative"),
]


@pytest.mark.parametrize(("event", "expected_used", "scaled"), RELEASES)
def test_release(
    event: ScaleReleased, expected_used: dict[str, int], scaled: tuple[tuple[str, int], ...]
) -> None:
    core = make_core(("a", 4))
    step(core, AppSubmitted(1, spec(2)), ScaleRequested(1, 1, 2, "a"))
    assert step(core, event) == []
    assert used(core) == expected_used
    view = core.app(1)
    assert view is not None and view.scaled == scaled


def test_finishing_releases_every_granted_slot() -> None:
    core = make_core(("a", 2), ("b", 2))
    step(core, AppSubmitted(1, spec(1)), ScaleRequested(1, 1, 3, "b"))
    step(core, AppSubmitted(2, spec(2)))  # queued: one slot free
    assert used(core) == {"a": 2, "b": 2}
    commands = step(core, done(1, 0, "b"))
    assert commands[0] == Finish(1)
    assert placed(commands) == [("b", 2, (0, 1))]
    view = core.app(1)
    assert view is not None and view.scaled == () and view.state is AppState.FINISHED
    assert core.statistics().scaled_slots == 0
    assert step(core, ScaleReleased(1, "a", 1)) == []  # late release: ignored
    assert used(core) == {"a": 0, "b": 2}


def test_losing_granted_slots_ends_the_app() -> None:
    core = make_core(("a", 2), ("b", 2))
    step(core, AppSubmitted(1, spec(2)))  # both on b
    step(core, ScaleRequested(1, 1, 1, "b"))  # on a
    assert step(core, HostLeft("a", "gone")) == [Finish(1), Cancel("b", 1)]
    view = core.app(1)
    assert view is not None and view.scaled == ()
    assert used(core) == {"b": 2}  # cancelled granules hold their slots until reported


def test_losing_the_granule_host_releases_slots_elsewhere() -> None:
    core = make_core(("a", 2), ("b", 2))
    step(core, AppSubmitted(1, spec(2)), ScaleRequested(1, 1, 2, "b"))  # granules b, grant a
    assert step(core, HostLeft("b", "gone")) == [Finish(1)]
    assert used(core) == {"a": 0}


def test_reset_releases_granted_slots() -> None:
    core = make_core(("a", 4))
    step(core, AppSubmitted(1, spec(1)), ScaleRequested(1, 1, 3, "a"))
    assert step(core, Reset()) == [Finish(1), Cancel("a", 1)]
    assert used(core) == {"a": 0}
    assert step(core, ScaleReleased(1, "a", 3)) == []


def test_a_local_request_is_granted_only_on_the_asking_host() -> None:
    core = make_core(("a", 4), ("b", 2))
    step(core, AppSubmitted(1, spec(3)))  # lands on a: the most free slots
    (granted,) = step(core, ScaleRequested(1, 1, 1, "b", local=True))
    assert isinstance(granted, GrantScale) and granted.placement == (("b", 1),)
    (refused,) = step(core, ScaleRequested(1, 2, 2, "b", local=True))
    assert isinstance(refused, RefuseScale) and refused.free == 1


def test_in_flight_listing_shows_granted_slots() -> None:
    core = make_core(("a", 2), ("b", 2))
    step(core, AppSubmitted(1, spec(1)), ScaleRequested(1, 1, 2, "b"))
    assert [(i.app_id, i.scaled) for i in core.in_flight()] == [(1, (("a", 1), ("b", 1)))]


def test_validate_catches_broken_scale_accounting() -> None:
    core = make_core(("a", 4))
    step(core, AppSubmitted(1, spec(1)), ScaleRequested(1, 1, 2, "a"))
    core._hosts.revoke("a", 1, 1)  # corrupt the state behind the core's back
    with pytest.raises(InternalError, match="slot accounting"):
        core.validate()


# -- batch submission --------------------------------------------------------------------------


def test_batch_places_apps_in_order() -> None:
    core = make_core(("a", 2), ("b", 1))
    commands = step(core, AppsSubmitted(((1, spec(1)), (2, spec(2)), (3, spec(1)))))
    assert placed(commands) == [("a", 1, (0,)), ("a", 2, (0,)), ("b", 2, (1,))]
    assert [(i.app_id, i.state) for i in core.in_flight()] == [
        (1, AppState.RUNNING), (2, AppState.RUNNING), (3, AppState.QUEUED),
    ]


def test_batch_is_all_or_nothing() -> None:
    core = make_core(("a", 2))
    before = (core.hosts(), core.in_flight(), core.statistics())
    commands = step(core, AppsSubmitted(((1, spec(1)), (2, spec(3)), (3, spec(4)))))
    assert commands == [Reject(app_id=2, requested=3, available=2)]
    assert (core.hosts(), core.in_flight(), core.statistics()) == before
    assert core.app(1) is None


@pytest.mark.parametrize(
    "apps",
    [
        pytest.param(((1, spec(1)), (1, spec(1))), id="same id twice"),
        pytest.param(((2, spec(1)), (5, spec(1))), id="id in use"),
        pytest.param(((3, spec(1)), (4, spec(0))), id="empty app"),
    ],
)
def test_batch_preconditions(apps: tuple[tuple[int, AppSpec], ...]) -> None:
    core = make_core(("a", 2))
    step(core, AppSubmitted(5, spec(1)))
    with pytest.raises(InternalError):
        core.handle(AppsSubmitted(apps))
    assert core.app(3) is None


def test_settled() -> None:
    core = make_core(("a", 1))
    step(core, AppSubmitted(1, spec(1)), AppSubmitted(2, spec(1)))
    assert (core.settled(1), core.settled(2), core.settled(3)) == (False, False, True)
    step(core, done(1, 0, "a"))
    assert (core.settled(1), core.settled(2)) == (True, False)
