"""Restarts in the planner core, step by step with a fake clock and no I/O: apps recovered
from the journal, and workers that register while still running granules (after a planner
restart, or after the planner had declared them lost)."""

from __future__ import annotations

import pytest
from test_planner_core import FakeClock, done, make_core, spec, step, used

from faabric.errors import InternalError
from faabric.messages.types import AppState, Cancelled, Exited, Failed, GranuleResult
from faabric.planner._rejoin import RESTARTED
from faabric.planner.core import (
    AppsRecovered,
    AppSubmitted,
    Cancel,
    Dispatch,
    Disregard,
    Finish,
    HostAlive,
    HostRegistered,
    PlannerCore,
    RecoveredApp,
    Ticked,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def fresh(clock: FakeClock) -> PlannerCore:
    return make_core(clock)


def test_an_app_in_flight_at_the_restart_fails_saying_so(clock: FakeClock) -> None:
    core = fresh(clock)
    clock.now = 7.0
    assert step(core, AppsRecovered((RecoveredApp(4, spec(2), 1.0, None),))) == []
    view = core.app(4)
    assert view is not None and view.state is AppState.FINISHED
    assert view.finished == 7.0 and view.submitted == 1.0
    assert [r.outcome for r in view.results] == [Failed(RESTARTED)] * 2
    assert core.settled(4)


def test_a_finished_app_keeps_its_results_and_missing_ones_fail(clock: FakeClock) -> None:
    core = fresh(clock)
    kept = GranuleResult(3, 1, "a", Exited(0), stdout=b"hi")
    step(core, AppsRecovered((RecoveredApp(3, spec(2), 1.0, 2.0, (kept,)),)))
    view = core.app(3)
    assert view is not None and view.finished == 2.0
    assert view.results[1] == kept
    assert view.results[0].outcome == Failed(RESTARTED)


def test_a_recovered_id_cannot_be_submitted_again(clock: FakeClock) -> None:
    core = make_core(clock, ("a", 1))
    step(core, AppsRecovered((RecoveredApp(1, spec(1), 0.0, None),)))
    with pytest.raises(InternalError):
        core.handle(AppSubmitted(1, spec(1)))


def test_granules_still_running_after_a_restart_hold_their_slots_until_reported(
    clock: FakeClock,
) -> None:
    core = fresh(clock)
    step(core, AppsRecovered((RecoveredApp(5, spec(3), 0.0, None),)))
    commands = step(core, HostRegistered("a", 2, ((5, 0), (5, 1))))
    assert commands == [Cancel("a", 5)]
    assert used(core) == {"a": 2}
    # A new app waits for those slots rather than landing on a busy worker.
    assert step(core, AppSubmitted(6, spec(1))) == []
    commands = step(core, done(5, 0, "a", Cancelled("the app was stopped")))
    assert [type(c) for c in commands] == [Dispatch]
    assert used(core) == {"a": 2}
    step(core, done(5, 1, "a", Cancelled("the app was stopped")))
    assert used(core) == {"a": 1}
    view = core.app(5)
    assert view is not None  # the results it ended with at the restart stay
    assert [r.outcome for r in view.results] == [Failed(RESTARTED)] * 3


def test_granules_of_apps_the_planner_never_knew_hold_slots_until_reported(
    clock: FakeClock,
) -> None:
    core = fresh(clock)
    assert step(core, HostRegistered("a", 1, ((99, 0),))) == [Cancel("a", 99)]
    assert used(core) == {"a": 1}
    step(core, done(99, 0, "a", Cancelled("the app was stopped")))
    assert used(core) == {"a": 0}


def test_a_worker_reporting_more_granules_than_slots_counts_only_its_slots(
    clock: FakeClock,
) -> None:
    core = fresh(clock)
    commands = step(core, HostRegistered("a", 1, ((8, 0), (8, 1), (9, 0))))
    assert commands == [Cancel("a", 8), Cancel("a", 9)]
    assert used(core) == {"a": 1}


def test_a_lost_worker_that_rejoins_is_counted_from_what_it_runs(clock: FakeClock) -> None:
    core = make_core(clock, ("a", 2), ("b", 2))
    step(core, AppSubmitted(1, spec(2)), AppSubmitted(2, spec(2)))
    on_a = sorted((app_id, i) for app_id in (1, 2)
                  for i, host in core.app(app_id).placement  # type: ignore[union-attr]
                  if host == "a")
    clock.now = 9.0
    step(core, HostAlive("b"))
    clock.now = 10.0  # "a" froze: no keep-alive for 10 s
    step(core, Ticked())
    assert "a" not in used(core)
    # "a" wakes up and rejoins, its granules still running.
    commands = step(core, HostRegistered("a", 2, tuple(on_a)))
    assert commands == [Cancel("a", app_id) for app_id in sorted({a for a, _ in on_a})]
    assert used(core)["a"] == 2
    assert step(core, AppSubmitted(3, spec(2))) == []  # waits: "a" is busy, "b" too
    for app_id, index in on_a:
        step(core, done(app_id, index, "a", Cancelled("the app was stopped")))
    third = core.app(3)  # "a" is free again ("b" still holds its cancelled granules)
    assert third is not None and third.state is AppState.RUNNING
    assert {host for _, host in third.placement} == {"a"}


def test_a_report_of_a_granule_not_listed_at_registration_is_disregarded(
    clock: FakeClock,
) -> None:
    core = fresh(clock)
    step(core, AppsRecovered((RecoveredApp(5, spec(1), 0.0, None),)), HostRegistered("a", 1))
    commands = step(core, done(5, 0, "a"))
    assert [type(c) for c in commands] == [Disregard]
    assert used(core) == {"a": 0}


def test_recovered_apps_count_towards_retention(clock: FakeClock) -> None:
    core = make_core(clock, ("a", 1), retain_finished=1)
    step(core, AppsRecovered(tuple(RecoveredApp(i, spec(1), 0.0, 1.0) for i in (1, 2, 3))))
    commands = step(core, AppSubmitted(4, spec(1)), done(4, 0, "a"))
    assert Finish(4) in commands
    assert [core.app(i) is None for i in (1, 2, 3, 4)] == [True, True, True, False]
