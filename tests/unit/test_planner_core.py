"""Step-driven tests of the planner's state machine, with a fake clock and no I/O.

Every event goes through `step`, which also checks the core's invariants (slot accounting,
queue contents) after it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from faabric.errors import InternalError, NotEnoughSlots
from faabric.messages.types import (
    AppSpec,
    AppState,
    Batch,
    Exited,
    Failed,
    GranuleResult,
    HostInfo,
    Outcome,
    Trapped,
)
from faabric.planner.core import (
    AppSubmitted,
    Cancel,
    Command,
    Dispatch,
    Disregard,
    Event,
    Finish,
    GranuleFinished,
    HostAlive,
    HostLeft,
    HostRegistered,
    PlannerCore,
    Reject,
    Reset,
    Statistics,
    Ticked,
)

TIMEOUT = 5.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def spec(size: int) -> AppSpec:
    return AppSpec(module="ab" * 32, size=size, program=f"app{size}")


def done(app_id: int, index: int, host: str, outcome: Outcome | None = None) -> GranuleFinished:
    return GranuleFinished(GranuleResult(app_id, index, host, outcome or Exited(0)))


def step(core: PlannerCore, *events: Event) -> list[Command]:
    """Feed events one by one, validating after each; returns all commands."""
    commands: list[Command] = []
    for event in events:
        commands += [_without_placement(c) for c in core.handle(event)]
        core.validate()
    return commands


def _without_placement(command: Command) -> Command:
    # Tables below compare per-host indices; the app-wide rank map is checked on its own.
    if isinstance(command, Dispatch):
        return Dispatch(command.host, dataclasses.replace(command.batch, placement=()))
    return command


def dispatch(host: str, app_id: int, size: int, *indices: int) -> Dispatch:
    return Dispatch(host, Batch(app_id, spec(size), indices))


def used(core: PlannerCore) -> dict[str, int]:
    return {h.name: h.used for h in core.hosts()}


def make_core(
    clock: FakeClock, *hosts: tuple[str, int], retain_finished: int = 10_000
) -> PlannerCore:
    core = PlannerCore(clock=clock, keepalive_timeout=TIMEOUT, retain_finished=retain_finished)
    step(core, *(HostRegistered(name, slots) for name, slots in hosts))
    return core


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def core(clock: FakeClock) -> PlannerCore:
    """Two hosts with two slots each."""
    return make_core(clock, ("a", 2), ("b", 2))


# -- placement and the queue -------------------------------------------------------------------


def test_every_batch_carries_the_whole_placement(core: PlannerCore) -> None:
    commands = core.handle(AppSubmitted(1, spec(4)))
    assert [c.batch.placement for c in commands if isinstance(c, Dispatch)] == [
        ("b", "b", "a", "a"),
        ("b", "b", "a", "a"),
    ]


def test_app_of_four_lands_two_plus_two(core: PlannerCore, clock: FakeClock) -> None:
    clock.now = 1.5
    # Equal free and total slots: the greater name comes first.
    assert step(core, AppSubmitted(1, spec(4))) == [
        dispatch("b", 1, 4, 0, 1),
        dispatch("a", 1, 4, 2, 3),
    ]
    assert used(core) == {"a": 2, "b": 2}
    view = core.app(1)
    assert view is not None
    assert view.state is AppState.RUNNING
    assert view.placement == ((0, "b"), (1, "b"), (2, "a"), (3, "a"))
    assert (view.submitted, view.started, view.finished) == (1.5, 1.5, None)
    assert view.results == ()


def test_queued_app_starts_when_slots_free(core: PlannerCore, clock: FakeClock) -> None:
    step(core, AppSubmitted(1, spec(4)))
    assert step(core, AppSubmitted(2, spec(2))) == []
    assert [(i.app_id, i.state) for i in core.in_flight()] == [
        (1, AppState.RUNNING),
        (2, AppState.QUEUED),
    ]
    assert step(core, done(1, 0, "b")) == []  # one free slot is not enough
    clock.now = 3.0
    assert step(core, done(1, 1, "b")) == [dispatch("b", 2, 2, 0, 1)]
    assert step(core, done(1, 2, "a")) == []
    assert step(core, done(1, 3, "a")) == [Finish(1)]
    view = core.app(2)
    assert view is not None
    assert (view.state, view.submitted, view.started) == (AppState.RUNNING, 0.0, 3.0)
    finished = core.app(1)
    assert finished is not None
    assert finished.state is AppState.FINISHED
    assert [r.index for r in finished.results] == [0, 1, 2, 3]
    assert used(core) == {"a": 0, "b": 2}


def test_strict_fifo_small_app_waits_behind_big_one(core: PlannerCore) -> None:
    step(core, AppSubmitted(1, spec(3)))  # b, b, a: one slot left on a
    assert step(core, AppSubmitted(2, spec(4))) == []
    assert step(core, AppSubmitted(3, spec(1))) == []  # would fit, but must not overtake
    assert step(core, done(1, 0, "b")) == []
    assert step(core, done(1, 1, "b"), done(1, 2, "a")) == [
        Finish(1),
        dispatch("b", 2, 4, 0, 1),
        dispatch("a", 2, 4, 2, 3),
    ]
    assert [i.state for i in core.in_flight()] == [AppState.RUNNING, AppState.QUEUED]
    assert step(core, done(2, 0, "b")) == [dispatch("b", 3, 1, 0)]


def test_queued_apps_start_as_slots_free(core: PlannerCore) -> None:
    step(core, AppSubmitted(1, spec(4)), AppSubmitted(2, spec(1)), AppSubmitted(3, spec(3)))
    assert step(core, *(done(1, i, "bbaa"[i]) for i in range(4))) == [
        dispatch("b", 2, 1, 0),  # the first freed slot is enough for app 2
        Finish(1),
        dispatch("a", 3, 3, 0, 1),
        dispatch("b", 3, 3, 2),
    ]
    assert used(core) == {"a": 2, "b": 2}


def test_several_queued_apps_start_in_one_event(core: PlannerCore) -> None:
    step(core, AppSubmitted(1, spec(4)), AppSubmitted(2, spec(1)), AppSubmitted(3, spec(3)))
    assert step(core, HostRegistered("c", 4)) == [
        dispatch("c", 2, 1, 0),
        dispatch("c", 3, 3, 0, 1, 2),
    ]


def test_joining_host_starts_queued_app(core: PlannerCore) -> None:
    step(core, AppSubmitted(1, spec(4)), AppSubmitted(2, spec(2)))
    assert step(core, HostRegistered("c", 2)) == [dispatch("c", 2, 2, 0, 1)]


def test_full_cluster_queues_instead_of_rejecting(core: PlannerCore) -> None:
    step(core, AppSubmitted(1, spec(4)))
    assert step(core, AppSubmitted(2, spec(4))) == []
    assert core.statistics().queued == 1


# -- rejection -------------------------------------------------------------------------------


def test_reject_larger_than_cluster_records_nothing(core: PlannerCore) -> None:
    step(core, AppSubmitted(1, spec(1)))
    before = (core.hosts(), core.in_flight(), core.statistics())
    commands = step(core, AppSubmitted(2, spec(5)))
    assert commands == [Reject(app_id=2, requested=5, available=4)]
    assert (core.hosts(), core.in_flight(), core.statistics()) == before
    assert core.app(2) is None
    reject = commands[0]
    assert isinstance(reject, Reject)
    assert isinstance(reject.error(), NotEnoughSlots)


def test_reject_without_hosts(clock: FakeClock) -> None:
    core = make_core(clock)
    assert step(core, AppSubmitted(1, spec(1))) == [Reject(1, 1, 0)]


# -- keep-alive -------------------------------------------------------------------------------


def test_expiry_only_after_the_timeout(core: PlannerCore, clock: FakeClock) -> None:
    clock.now = TIMEOUT
    assert step(core, Ticked()) == []
    assert core.host_names() == {"a", "b"}
    clock.now = TIMEOUT + 0.001
    assert step(core, Ticked()) == []
    assert core.host_names() == set()
    assert not core.has_host("a")


def test_keep_alive_refreshes(core: PlannerCore, clock: FakeClock) -> None:
    clock.now = 4.0
    assert step(core, HostAlive("a"), HostAlive("nobody")) == []
    clock.now = 9.0  # a: silent 5 s (kept), b: silent 9 s (expired)
    step(core, Ticked())
    assert core.host_names() == {"a"}
    clock.now = 9.1
    step(core, Ticked())
    assert core.host_names() == set()


def test_expiry_fails_granules_with_reason(core: PlannerCore, clock: FakeClock) -> None:
    step(core, AppSubmitted(1, spec(2)))  # on b
    clock.now = 4.0
    step(core, HostAlive("a"))
    clock.now = 5.5
    assert step(core, Ticked()) == [Finish(1)]
    view = core.app(1)
    assert view is not None
    reason = "worker b was lost: no keep-alive from b for 5.5 s"
    assert [r.outcome for r in view.results] == [Failed(reason), Failed(reason)]
    assert [r.host for r in view.results] == ["b", "b"]
    assert view.finished == 5.5


def test_hosts_expiring_together_get_no_new_work(clock: FakeClock) -> None:
    core = make_core(clock, ("a", 2), ("b", 2), ("c", 2))
    step(core, AppSubmitted(1, spec(2)))  # on c
    step(core, AppSubmitted(2, spec(6)), AppSubmitted(3, spec(2)))  # both queued
    clock.now = 3.0
    step(core, HostAlive("c"))
    clock.now = 6.0
    # a and b go at once: app 2 can never fit; app 3 must not be sent to a or b.
    assert step(core, Ticked()) == [Finish(2)]
    assert core.host_names() == {"c"}
    assert step(core, done(1, 0, "c"), done(1, 1, "c")) == [Finish(1), dispatch("c", 3, 2, 0, 1)]


# -- hosts lost -------------------------------------------------------------------------------


def test_host_lost_mid_run_other_apps_continue(core: PlannerCore) -> None:
    step(core, AppSubmitted(1, spec(2)), AppSubmitted(2, spec(2)))  # 1 on b, 2 on a
    assert step(core, HostLeft("b", "connection lost")) == [Finish(1)]
    view = core.app(1)
    assert view is not None
    assert {r.outcome for r in view.results} == {Failed("worker b was lost: connection lost")}
    assert [(i.app_id, i.state) for i in core.in_flight()] == [(2, AppState.RUNNING)]
    assert core.hosts() == [HostInfo("a", 2, 2)]
    assert step(core, done(2, 0, "a"), done(2, 1, "a")) == [Finish(2)]


def test_host_lost_under_part_of_an_app_ends_it_and_cancels_the_rest(core: PlannerCore) -> None:
    step(core, AppSubmitted(1, spec(4)))
    assert step(core, done(1, 0, "b")) == []
    # Granule 1 is lost with b: the app ends at once; 2 and 3 on a are cancelled.
    assert step(core, HostLeft("b", "bye")) == [Finish(1), Cancel("a", 1)]
    view = core.app(1)
    assert view is not None and view.state is AppState.FINISHED
    cancelled = Failed("cancelled: another granule of the app was lost with b")
    assert [r.outcome for r in view.results] == [
        Exited(0), Failed("worker b was lost: bye"), cancelled, cancelled,
    ]
    # The cancelled granules hold a's slots until a reports them; then the slots free.
    assert core.hosts()[0].used == 2
    step(core, AppSubmitted(2, spec(1)))
    assert core.app(2) is not None and core.app(2).state is AppState.QUEUED  # type: ignore[union-attr]
    assert step(core, done(1, 2, "a")) == [dispatch("a", 2, 1, 0)]
    assert step(core, done(1, 3, "a")) == []
    assert core.hosts()[0].used == 1
    assert [r.outcome for r in core.app(1).results][2] == cancelled  # type: ignore[union-attr]


def test_queued_app_that_no_longer_fits_fails(core: PlannerCore) -> None:
    step(core, AppSubmitted(1, spec(1)))  # on b
    step(core, AppSubmitted(2, spec(4)), AppSubmitted(3, spec(1)))  # queued
    assert step(core, HostLeft("a", "shutdown")) == [Finish(2), dispatch("b", 3, 1, 0)]
    view = core.app(2)
    assert view is not None
    assert view.state is AppState.FINISHED
    assert view.started is None
    assert view.placement == ()
    reason = "not enough slots: the app needs 4, the cluster has 2"
    assert [(r.index, r.host, r.outcome) for r in view.results] == [
        (i, "", Failed(reason)) for i in range(4)
    ]


def test_unknown_host_leaving_is_ignored(core: PlannerCore) -> None:
    assert step(core, HostLeft("nobody", "?")) == []


def test_host_name_can_return_after_loss(core: PlannerCore) -> None:
    step(core, AppSubmitted(1, spec(4)), HostLeft("b", "gone"))
    assert step(core, HostRegistered("b", 2)) == []
    assert step(core, done(1, 0, "b")) == []  # stale result from the old incarnation
    assert used(core) == {"a": 2, "b": 0}


# -- results ----------------------------------------------------------------------------------

IGNORED = [
    pytest.param(done(99, 0, "b"), id="unknown app"),
    pytest.param(done(1, 7, "b"), id="index out of range"),
    pytest.param(done(1, -1, "b"), id="negative index"),
    pytest.param(done(2, 0, "b"), id="app still queued"),
]


@pytest.mark.parametrize("event", IGNORED)
def test_stray_results_are_ignored(core: PlannerCore, event: GranuleFinished) -> None:
    step(core, AppSubmitted(1, spec(4)), AppSubmitted(2, spec(1)))
    before = (core.hosts(), core.in_flight())
    assert all(isinstance(c, Disregard) for c in step(core, event))  # a warning at most
    assert (core.hosts(), core.in_flight()) == before


def test_first_result_wins(core: PlannerCore) -> None:
    step(core, AppSubmitted(1, spec(2)))
    step(core, done(1, 0, "b", Trapped("unreachable")))
    assert step(core, done(1, 0, "b", Exited(0))) == []
    assert used(core) == {"a": 0, "b": 1}  # released once only
    assert step(core, done(1, 1, "b")) == [Finish(1)]
    assert step(core, done(1, 1, "b", Exited(3))) == []  # app already finished
    view = core.app(1)
    assert view is not None
    assert [r.outcome for r in view.results] == [Trapped("unreachable"), Exited(0)]


# -- retention, reset, statistics ------------------------------------------------------------


def run_to_end(core: PlannerCore, app_id: int) -> Sequence[Command]:
    step(core, AppSubmitted(app_id, spec(1)))
    return step(core, done(app_id, 0, "b"))


def test_retention_keeps_the_most_recent(clock: FakeClock) -> None:
    core = make_core(clock, ("b", 1), retain_finished=2)
    for app_id in range(1, 5):
        assert run_to_end(core, app_id) == [Finish(app_id)]
    assert [core.app(i) is not None for i in range(1, 5)] == [False, False, True, True]
    assert core.statistics().finished == 2


def test_apps_finished_together_outlive_a_small_limit(clock: FakeClock) -> None:
    core = make_core(clock, ("b", 2), retain_finished=1)
    step(core, AppSubmitted(1, spec(1)), AppSubmitted(2, spec(1)))
    assert step(core, HostLeft("b", "gone")) == [Finish(1), Finish(2)]
    assert core.app(1) is not None and core.app(2) is not None
    step(core, Ticked())
    assert (core.app(1), core.statistics().finished) == (None, 1)


def test_retain_none_still_shows_the_latest(clock: FakeClock) -> None:
    core = make_core(clock, ("b", 1), retain_finished=0)
    assert run_to_end(core, 1) == [Finish(1)]
    assert core.app(1) is not None
    step(core, HostAlive("b"))
    assert core.app(1) is None


def test_reset_drops_apps_and_frees_slots(core: PlannerCore) -> None:
    run_to_end(core, 1)
    step(core, AppSubmitted(2, spec(4)), AppSubmitted(3, spec(1)))
    # App 2 runs on both hosts (3 waits in the queue): its granules are stopped.
    assert step(core, Reset()) == [Finish(2), Finish(3), Cancel("a", 2), Cancel("b", 2)]
    assert [core.app(i) for i in (1, 2, 3)] == [None, None, None]
    assert core.statistics() == Statistics(2, 4, 0, 0, 0, 0)
    assert step(core, done(2, 0, "b")) == []  # granules still running somewhere: ignored
    assert len(step(core, AppSubmitted(2, spec(4)))) == 2


def test_statistics(core: PlannerCore) -> None:
    run_to_end(core, 1)
    step(core, AppSubmitted(2, spec(3)), AppSubmitted(3, spec(2)))
    assert core.statistics() == Statistics(
        hosts=2, total_slots=4, used_slots=3, queued=1, running=1, finished=1
    )


# -- preconditions and invariants ------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(HostRegistered("a", 4), id="host registered twice"),
        pytest.param(HostRegistered("c", -1), id="negative slots"),
        pytest.param(AppSubmitted(1, spec(1)), id="app id reused"),
        pytest.param(AppSubmitted(2, spec(0)), id="empty app"),
    ],
)
def test_broken_preconditions_raise(core: PlannerCore, event: Event) -> None:
    step(core, AppSubmitted(1, spec(1)))
    with pytest.raises(InternalError):
        core.handle(event)


@pytest.mark.parametrize(
    "kwargs", [{"keepalive_timeout": 0.0}, {"keepalive_timeout": 1.0, "retain_finished": -1}]
)
def test_bad_constructor_arguments(clock: FakeClock, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PlannerCore(clock=clock, **kwargs)  # type: ignore[arg-type]


def test_validate_catches_broken_slot_accounting(core: PlannerCore) -> None:
    step(core, AppSubmitted(1, spec(1)))
    core._hosts.release("b", (1, 0))  # corrupt the state behind the core's back
    with pytest.raises(InternalError, match="slot accounting"):
        core.validate()
