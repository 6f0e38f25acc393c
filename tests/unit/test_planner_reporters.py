"""A worker speaks only for the granules the planner placed on it: results and team reports
about any other granule change nothing and come back as one `Disregard` (a warning line)."""

from __future__ import annotations

import pytest

from faabric.messages.types import AppSpec, Exited, GranuleResult
from faabric.planner.core import (
    AppSubmitted,
    Disregard,
    Finish,
    GranuleFinished,
    HostRegistered,
    PlannerCore,
    TeamKeptOnHost,
    TeamSizeChanged,
)


@pytest.fixture
def core() -> PlannerCore:
    """Hosts a and b with one slot each, app 1 of two granules placed across them."""
    planner = PlannerCore(clock=lambda: 0.0, keepalive_timeout=5.0)
    planner.handle(HostRegistered("a", 1))
    planner.handle(HostRegistered("b", 1))
    planner.handle(AppSubmitted(1, AppSpec(module="ab" * 32, size=2, program="app")))
    return planner


def where(core: PlannerCore, index: int) -> tuple[str, str]:
    """(the host running granule `index` of app 1, the other host)."""
    view = core.app(1)
    assert view is not None
    host = dict(view.placement)[index]
    return host, ("b" if host == "a" else "a")


def result(index: int, host: str) -> GranuleFinished:
    return GranuleFinished(GranuleResult(1, index, host, Exited(0)))


def test_a_result_from_another_worker_is_disregarded(core: PlannerCore) -> None:
    runs, other = where(core, 0)
    before = (core.hosts(), core.in_flight())
    commands = core.handle(result(0, other))
    assert commands == [Disregard(other, "the result of granule 0 of app 1, which it does "
                                         "not run")]
    assert (core.hosts(), core.in_flight()) == before
    core.validate()
    assert core.handle(result(0, runs)) == []  # the real one still counts
    assert core.handle(result(1, where(core, 1)[0])) == [Finish(1)]


def test_team_reports_from_another_worker_are_disregarded(core: PlannerCore) -> None:
    runs, other = where(core, 0)
    forged = [TeamSizeChanged(1, 0, other, 8), TeamKeptOnHost(1, 0, other, 8, "forged")]
    for event in forged:
        (command,) = core.handle(event)
        assert isinstance(command, Disregard) and command.host == other
        assert "team report of granule 0 of app 1" in command.what
    view = core.app(1)
    assert view is not None and view.events == ()
    core.handle(TeamSizeChanged(1, 0, runs, 3))
    view = core.app(1)
    assert view is not None and len(view.events) == 1


def test_granules_never_placed_are_disregarded(core: PlannerCore) -> None:
    for index in (2, -1):
        (command,) = core.handle(result(index, "a"))
        assert isinstance(command, Disregard)
