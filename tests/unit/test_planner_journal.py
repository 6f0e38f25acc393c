"""The planner's journal (SQLite) on its own, and a planner service restarted on it: ids never
repeat, apps in flight at the restart end failed, finished ones keep their results."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from faabric.errors import ConfigError
from faabric.messages.control import CONTROL_CODEC
from faabric.messages.types import AppSpec, AppState, Cancelled, Exited, Failed, GranuleResult
from faabric.planner._rejoin import RESTARTED
from faabric.planner.journal import PRUNE_EVERY, Journal
from faabric.planner.service import PlannerService
from faabric.transport.framing import FramedSocket

SPEC = AppSpec(module="cd" * 32, size=2, program="prog", args=("x",), input=b"\0in")


PEERS: list[socket.socket] = []  # the workers' ends of the connections, kept open, unread


def service(journal: Journal | None) -> PlannerService:
    """A planner service with one worker "a" of 4 slots."""
    made = PlannerService(clock=time.monotonic, keepalive_timeout=5.0, retain_finished=100,
                          max_module_bytes=1 << 20, journal=journal)
    with socket.create_server(("127.0.0.1", 0)) as server:
        PEERS.append(socket.create_connection(server.getsockname()))
        ours, _ = server.accept()
    assert made.register("a", 4, FramedSocket(ours, CONTROL_CODEC)) is None
    return made


def test_apps_and_results_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / "planner.db"
    journal = Journal(path, retain=10)
    journal.submitted([(1, SPEC), (2, SPEC)], 100.0)
    result = GranuleResult(1, 0, "a", Exited(3), stdout=b"out", finished=101.0)
    journal.finished(1, [result], 102.0)
    journal.close()
    again = Journal(path, retain=10)
    try:
        assert again.last_id() == 2
        apps = again.load()
        assert [(a.app_id, a.spec, a.submitted, a.finished) for a in apps] == [
            (1, SPEC, 100.0, 102.0), (2, SPEC, 100.0, None)]
        assert apps[0].results == (result,) and apps[1].results == ()
    finally:
        again.close()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_journal_in_use_is_refused(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "planner.db", retain=10)
    try:
        with pytest.raises(ConfigError, match="in use by another planner"):
            Journal(tmp_path / "planner.db", retain=10)
    finally:
        journal.close()


def test_old_finished_apps_are_pruned_but_the_last_id_stays(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "planner.db", retain=3)
    try:
        for app_id in range(1, PRUNE_EVERY + 1):
            journal.submitted([(app_id, SPEC)], 1.0)
            journal.finished(app_id, [], 2.0)
        journal.submitted([(PRUNE_EVERY + 1, SPEC)], 1.0)  # in flight: never pruned
        assert [a.app_id for a in journal.load()] == [
            PRUNE_EVERY - 2, PRUNE_EVERY - 1, PRUNE_EVERY, PRUNE_EVERY + 1]
        journal.forget_apps()
        assert journal.load() == [] and journal.last_id() == PRUNE_EVERY + 1
    finally:
        journal.close()


def test_a_restarted_planner_fails_apps_in_flight_and_never_reuses_ids(tmp_path: Path) -> None:
    path = tmp_path / "planner.db"
    first = Journal(path, retain=100)
    before = service(first)
    ids = before.submit_all([SPEC, SPEC])
    assert ids == [1, 2]
    before.cancel(2, "by client")  # finished before the "crash"
    first.close()  # the planner dies: nothing else is written
    second = Journal(path, retain=100)
    try:
        after = service(second)
        view = after.app(1)
        assert view is not None and view.state is AppState.FINISHED
        assert [r.outcome for r in view.results] == [Failed(RESTARTED)] * 2
        cancelled = after.app(2)
        assert cancelled is not None and cancelled.results[0].outcome == Cancelled("by client")
        assert after.wait(1, timeout=5.0) == view  # a waiting client gets it at once
        assert after.submit(SPEC) == 3
    finally:
        second.close()
    third = Journal(path, retain=100)  # the failure was recorded: it stays a failure
    try:
        view = service(third).app(1)
        assert view is not None and view.results[0].outcome == Failed(RESTARTED)
    finally:
        third.close()


def test_without_a_journal_ids_start_past_any_an_earlier_planner_used() -> None:
    first = service(None).submit(SPEC)
    assert first > time.time() * 1e6 - 60e6  # microseconds since the epoch, about
    assert service(None).submit(SPEC) > first


def test_a_write_after_close_is_logged_not_raised(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    journal = Journal(tmp_path / "planner.db", retain=10)
    journal.close()
    journal.submitted([(1, SPEC)], 1.0)  # a worker reporting while the planner stops
    assert "a write failed" in caplog.text


def test_a_reset_forgets_the_apps_but_not_the_ids(tmp_path: Path) -> None:
    path = tmp_path / "planner.db"
    first = Journal(path, retain=100)
    before = service(first)
    app_id = before.submit(SPEC)
    before.reset()
    first.close()
    second = Journal(path, retain=100)
    try:
        after = service(second)
        assert after.app(app_id) is None
        assert after.submit(SPEC) == app_id + 1
    finally:
        second.close()
