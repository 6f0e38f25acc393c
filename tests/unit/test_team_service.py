"""TeamService: routing team messages, and the snapshot service a worker keeps for the
granules of other workers (push, update with a diff, forget, app stop)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from faabric.messages.team import Member, RegionId, TeamDone, TeamForget, TeamStart
from faabric.messages.types import AppSpec, Batch, Exited, Failed
from faabric.snapshot import PAGE_SIZE, Diff, Snapshot, compute_diff, expand, take_snapshot
from faabric.threads.regions import PartRegion
from faabric.threads.service import PartResult, TeamService

APP = 4
KEY = "host-a/4/0"


@dataclass
class Net:
    sent: list[tuple[str, object]] = field(default_factory=list)
    learned: list[tuple[tuple[str, str], ...]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return "127.0.0.1:1"

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None:
        self.learned.append(peers)

    def send_team(self, host: str, message: object) -> None:
        with self.lock:
            self.sent.append((host, message))

    def done(self, count: int) -> list[TeamDone]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self.lock:
                found = [m for _, m in self.sent if isinstance(m, TeamDone)]
            if len(found) >= count:
                return found
            time.sleep(0.005)
        raise AssertionError(f"expected {count} TeamDone messages, have {len(found)}")


@dataclass
class Runs:
    memories: list[np.ndarray] = field(default_factory=list)

    def __call__(self, start: TeamStart, part: PartRegion, snapshot: Snapshot) -> PartResult:
        self.memories.append(expand(snapshot))
        return PartResult(Exited(0), b"out", b"", None)


def start(number: int, image: Snapshot | Diff) -> TeamStart:
    batch = Batch(APP, AppSpec(module="m", program="p", size=1), (0,))
    return TeamStart(RegionId("host-a", number), "127.0.0.1:2", batch, 0, 5,
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
    first, second = memory(1), memory(2)
    second[3 * PAGE_SIZE] = 9
    teams.received(start(1, take_snapshot(first)))
    net.done(1)
    teams.received(start(2, compute_diff(second, first, ((0, len(first)),))))
    dones = net.done(2)
    assert all(d.outcome == Exited(0) and d.stdout == b"out" for d in dones)
    assert np.array_equal(runs.memories[0], first)
    assert np.array_equal(runs.memories[1], second)
    assert teams.kept_snapshots() == (KEY,)
    assert net.learned[0] == (("host-a", "127.0.0.1:2"),)


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
