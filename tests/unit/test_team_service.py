"""TeamService: routing team messages, and the snapshot service a worker keeps for the
granules of other workers (push, update with a diff, forget, app stop)."""

from __future__ import annotations

import ctypes
import mmap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pytest

from faabric.messages.team import (
    Member,
    RegionId,
    TeamDone,
    TeamForget,
    TeamOp,
    TeamRefused,
    TeamReply,
    TeamRequest,
    TeamStart,
    TeamStop,
)
from faabric.messages.types import AppSpec, Batch, Cancelled, Exited, Failed
from faabric.snapshot import (
    PAGE_SIZE,
    Diff,
    MemfdImage,
    Snapshot,
    compute_diff,
    take_snapshot,
)
from faabric.threads.host_copy import HostCopy
from faabric.threads.part_region import PartRegion
from faabric.threads.service import PartResult, TeamService
from faabric.wasm.host import GuestFault, GuestMemory

APP = 4
KEY = "host-a/4/0"
ORIGIN = "host-a"
TIMEOUT = 2.0  # bound on every wait of a test
SECONDS_LEFT = 5.0
M = TypeVar("M")


@dataclass
class Net:
    sent: list[tuple[str, object]] = field(default_factory=list)
    learned: list[tuple[tuple[str, str], ...]] = field(default_factory=list)
    unreachable: set[str] = field(default_factory=set)  # sending to these raises
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return "127.0.0.1:1"

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None:
        self.learned.append(peers)

    def send_team(self, host: str, message: object) -> None:
        if host in self.unreachable:
            raise GuestFault(f"lost the connection to worker {host}")
        with self.lock:
            self.sent.append((host, message))

    def wait_for(self, kind: type[M], count: int = 1) -> list[tuple[str, M]]:
        """The (host, message) of the first `count` messages of `kind` sent, once sent."""
        deadline = time.monotonic() + TIMEOUT
        found: list[tuple[str, M]] = []
        while time.monotonic() < deadline:
            with self.lock:
                found = [(h, m) for h, m in self.sent if isinstance(m, kind)]
            if len(found) >= count:
                return found
            time.sleep(0.005)
        raise AssertionError(f"expected {count} {kind.__name__} messages, have {len(found)}")

    def done(self, count: int) -> list[TeamDone]:
        return [m for _, m in self.wait_for(TeamDone, count)]


@dataclass
class Runs:
    memories: list[np.ndarray] = field(default_factory=list)

    deadlines: list[tuple[float, float, float]] = field(default_factory=list)

    def __call__(self, start: TeamStart, part: PartRegion, image: MemfdImage) -> PartResult:
        self.memories.append(image.view().copy())
        self.deadlines.append((time.monotonic(), part.deadline, start.seconds_left))
        return PartResult(Exited(0), b"out", b"", None)


def start(number: int, image: Snapshot | Diff) -> TeamStart:
    batch = Batch(APP, AppSpec(module="m", program="p", size=1), (0,))
    return TeamStart(RegionId(ORIGIN, number), "127.0.0.1:2", SECONDS_LEFT, batch, 0, 5,
                     (Member(2, 64, 4096),), (), KEY, image)


def memory(fill: int) -> np.ndarray:
    out = np.zeros(4 * PAGE_SIZE, np.uint8)
    out[100:200] = fill
    return out


def service() -> tuple[TeamService, Net, Runs]:
    net, runs = Net(), Runs()
    teams = TeamService("host-b", net)
    teams.serve_parts(runs)
    return teams, net, runs


def test_a_part_runs_on_the_pushed_snapshot_then_on_the_updated_one() -> None:
    teams, net, runs = service()
    first, second = memory(1), np.concatenate((memory(2), memory(0)))
    second[3 * PAGE_SIZE] = 9
    second[6 * PAGE_SIZE] = 5  # in memory that grew since the first fork
    teams.received(start(1, take_snapshot(first)))
    net.done(1)
    teams.received(start(2, compute_diff(second, first, ((0, len(second)),))))
    dones = net.done(2)
    assert all(d.outcome == Exited(0) and d.stdout == b"out" for d in dones)
    assert np.array_equal(runs.memories[0], first)
    assert np.array_equal(runs.memories[1], second)
    assert teams.kept_snapshots() == (KEY,)
    assert net.learned[0] == ((ORIGIN, "127.0.0.1:2"),)
    assert all(host == ORIGIN for host, _ in net.wait_for(TeamDone, 2))


def test_the_parts_deadline_is_the_time_left_from_when_it_arrived() -> None:
    teams, net, runs = service()
    before = time.monotonic()
    teams.received(start(1, take_snapshot(memory(1))))
    net.done(1)
    [(ran, deadline, seconds_left)] = runs.deadlines
    assert seconds_left == SECONDS_LEFT
    assert before + SECONDS_LEFT <= deadline <= ran + SECONDS_LEFT


def test_forget_drops_the_snapshot_and_a_later_diff_fails_the_part() -> None:
    teams, net, _ = service()
    base = memory(1)
    teams.received(start(1, take_snapshot(base)))
    net.done(1)
    teams.received(TeamForget(KEY))
    assert teams.kept_snapshots() == ()
    teams.received(start(2, compute_diff(memory(3), base, ((0, len(base)),))))
    outcome = net.done(2)[1].outcome
    assert isinstance(outcome, Failed) and "no longer keeps" in outcome.reason


def test_stopping_the_app_deletes_its_snapshots() -> None:
    teams, net, _ = service()
    teams.received(start(1, take_snapshot(memory(1))))
    net.done(1)
    teams.stop_app(APP, "stopped by the user")
    assert teams.kept_snapshots() == ()


def test_a_worker_that_runs_no_parts_says_so() -> None:
    net = Net()
    teams = TeamService("host-b", net)
    teams.received(start(1, take_snapshot(memory(1))))
    outcome = net.done(1)[0].outcome
    assert isinstance(outcome, Failed) and "does not run team parts" in outcome.reason


def test_a_failing_part_is_reported_as_failed() -> None:
    teams, net, _ = service()

    def broken(start: TeamStart, part: PartRegion, image: MemfdImage) -> PartResult:
        raise RuntimeError("boom")

    teams.serve_parts(broken)
    teams.received(start(1, take_snapshot(memory(1))))
    outcome = net.done(1)[0].outcome
    assert isinstance(outcome, Failed) and "boom" in outcome.reason


# -- routing and the outbox ---------------------------------------------------------------------


def test_a_request_for_an_unknown_region_is_refused() -> None:
    teams, net, _ = service()
    region = RegionId("host-b", 9)  # this worker leads no such region (any more)
    teams.received(TeamRequest(region, "host-c", 4, TeamOp.BARRIER, 0, 0, 0))
    [(host, refused)] = net.wait_for(TeamRefused)
    assert host == "host-c"
    assert (refused.region, refused.request_id) == (region, 4)
    assert "ended" in refused.reason


def test_post_reports_a_message_that_could_not_go_and_goes_on() -> None:
    teams, net, _ = service()
    net.unreachable.add("gone")
    errors: list[Exception] = []
    heard = threading.Event()

    def on_error(error: Exception) -> None:
        errors.append(error)
        heard.set()

    teams.post("gone", TeamStop(RegionId("host-b", 1), "x"), on_error)
    teams.post("host-c", TeamForget("k"), on_error)  # the outbox still works after a loss
    assert heard.wait(TIMEOUT)
    assert net.wait_for(TeamForget) == [("host-c", TeamForget("k"))]
    assert len(errors) == 1 and "gone" in str(errors[0])


def test_forget_is_best_effort() -> None:
    teams, net, _ = service()
    net.unreachable.add("gone")
    teams.forget(KEY, {"gone", "host-c", "host-d"})  # does not raise, nor wait
    found = net.wait_for(TeamForget, 2)
    assert sorted(host for host, _ in found) == ["host-c", "host-d"]
    assert all(m == TeamForget(KEY) for _, m in found)


# -- parts that synchronise or are stopped ------------------------------------------------------


@dataclass
class Blocking:
    """A part's run that restores a copy of the memory and then runs `body` on the region,
    once `gate` is open; `entered` is set when it started. `on_stop_first` sets the part's
    on_stop (to note the reasons, and open the gate) before it waits at the gate."""

    body: Callable[[PartRegion], PartResult]
    on_stop_first: bool = True
    gate: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    stops: list[str] = field(default_factory=list)
    mappings: list[mmap.mmap] = field(default_factory=list)

    def __call__(self, start: TeamStart, part: PartRegion, image: MemfdImage) -> PartResult:
        if self.on_stop_first:
            part.when_stopped(self.stopped)
        memory = image.view().copy()  # a stopped app's image may be closed meanwhile
        self.entered.set()
        assert self.gate.wait(TIMEOUT), "the test never opened the gate"
        if not self.on_stop_first:
            part.when_stopped(self.stopped)
        part.copy = self._restore(memory)
        return self.body(part)

    def stopped(self, reason: str) -> None:
        self.stops.append(reason)
        self.gate.set()  # like a real cancel, it ends what the part's threads wait for

    def _restore(self, image: np.ndarray) -> HostCopy:
        mapping = mmap.mmap(-1, len(image))
        self.mappings.append(mapping)  # kept alive while the copy tracks it
        base = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
        np.frombuffer(mapping, np.uint8)[:] = image

        def grow(size: int) -> None:
            raise AssertionError(f"no test grows the memory (asked for {size})")

        return HostCopy(lambda: GuestMemory(base, len(image)), grow, image.copy(), ())


def barrier_then_exit(part: PartRegion) -> PartResult:
    """A thread reaching a barrier: Cancelled(reason) if the wait failed."""
    try:
        part.barrier(2)
    except GuestFault as fault:
        return PartResult(Cancelled(str(fault)), b"", b"", None)
    return PartResult(Exited(0), b"", b"", part.last_writes())


def served(body: Callable[[PartRegion], PartResult], on_stop_first: bool = True
           ) -> tuple[TeamService, Net, Blocking]:
    net, run = Net(), Blocking(body, on_stop_first)
    teams = TeamService("host-b", net)
    teams.serve_parts(run)
    return teams, net, run


def test_a_stop_right_after_the_start_fails_the_parts_waits() -> None:
    teams, net, run = served(barrier_then_exit, on_stop_first=False)
    region = RegionId(ORIGIN, 1)
    teams.received(start(1, take_snapshot(memory(1))))
    teams.received(TeamStop(region, "the granule ended"))  # before the part did anything
    run.gate.set()
    [done] = net.done(1)
    assert done.region == region and done.outcome == Cancelled("the granule ended")
    assert not any(isinstance(m, TeamRequest) for _, m in net.sent)  # it did not even ask


def test_a_stop_while_the_part_runs_calls_its_on_stop() -> None:
    teams, net, run = served(barrier_then_exit)
    teams.received(start(1, take_snapshot(memory(1))))
    assert run.entered.wait(TIMEOUT)
    teams.received(TeamStop(RegionId(ORIGIN, 1), "the app was stopped"))
    [done] = net.done(1)
    assert run.stops == ["the app was stopped"]
    assert done.outcome == Cancelled("the app was stopped")


def test_a_stop_before_on_stop_is_set_still_reaches_it() -> None:
    teams, net, run = served(barrier_then_exit, on_stop_first=False)
    teams.received(start(1, take_snapshot(memory(1))))
    teams.received(TeamStop(RegionId(ORIGIN, 1), "the granule ended"))
    run.gate.set()
    net.done(1)
    assert run.stops == ["the granule ended"]


def test_stopping_the_app_stops_its_running_parts() -> None:
    teams, net, run = served(barrier_then_exit)
    teams.received(start(1, take_snapshot(memory(1))))
    assert run.entered.wait(TIMEOUT)
    teams.stop_app(APP + 1, "another app")  # not this one
    assert run.stops == []
    teams.stop_app(APP, "stopped by the user")
    assert net.done(1)[0].outcome == Cancelled("stopped by the user")
    assert run.stops == ["stopped by the user"]


@pytest.mark.parametrize("refused", [False, True])
def test_answers_to_a_parts_request_reach_its_waiting_thread(refused: bool) -> None:
    def single(part: PartRegion) -> PartResult:
        try:
            return PartResult(Exited(part.single(3)), b"", b"", None)
        except GuestFault as fault:
            return PartResult(Failed(str(fault)), b"", b"", None)

    teams, net, run = served(single)
    region = RegionId(ORIGIN, 1)
    teams.received(start(1, take_snapshot(memory(1))))
    run.gate.set()
    [(host, request)] = net.wait_for(TeamRequest)
    assert host == ORIGIN and request.op == TeamOp.SINGLE and request.value == 3
    if refused:
        teams.received(TeamRefused(region, request.request_id, "the region broke"))
        expected: Exited | Failed = Failed("the region broke")
    else:
        teams.received(TeamReply(RegionId(ORIGIN, 2), request.request_id, 1))  # not its own
        teams.received(TeamReply(region, request.request_id, 7))
        expected = Exited(7)
    assert net.done(1)[0].outcome == expected
