"""Frames for an app with no rank on this worker yet: kept (a rank may start soon), but only
within a byte budget and a time limit; past either the app is dropped here and a rank of it
starting later fails at once, saying why."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import pytest

from faabric.mpi.early import APP_OVERHEAD, EarlyArrivals, EarlyLimits
from faabric.mpi.matching import Envelope
from faabric.mpi.network import PayloadReader
from faabric.mpi.worlds import Membership, Worlds


@dataclass
class FakeNetwork:
    failures: list[tuple[str, int, str]] = field(default_factory=list)

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None:
        pass

    def announce_failure(self, host: str, app_id: int, reason: str) -> None:
        self.failures.append((host, app_id, reason))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(limits: EarlyLimits) -> tuple[Worlds, Clock]:
    clock = Clock()
    return Worlds("a", FakeNetwork(), clock=clock, early=limits), clock  # type: ignore[arg-type]


def deliver(worlds: Worlds, app_id: int, payload: bytes, dest: int = 0) -> None:
    """One MESSAGE frame for rank `dest` of the app, its payload read from a socket."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(payload)
        worlds.arrive(app_id, Envelope(0, 1, 7, len(payload)), dest, 0,
                      PayloadReader(ours, len(payload)))


def test_the_accounting_charges_each_app_and_frees_it_when_it_starts() -> None:
    early = EarlyArrivals(EarlyLimits(max_bytes=3 * APP_OVERHEAD, max_seconds=10))
    assert early.admit(1, 100, now=0.0)
    assert early.admit(1, 100, now=1.0)
    assert early.held == APP_OVERHEAD + 200
    assert not early.admit(2, 2 * APP_OVERHEAD, now=2.0)  # over the budget
    assert early.admit(2, 0, now=2.0)
    assert early.next_expiry() == 10.0 and early.expired(10.5) == [1]
    assert early.forget(1) == APP_OVERHEAD + 200
    assert early.held == APP_OVERHEAD and 1 not in early and 2 in early


def test_a_message_that_arrives_before_its_rank_starts_is_delivered() -> None:
    worlds, _ = make(EarlyLimits())
    deliver(worlds, 5, b"early bird")
    world = worlds.join(Membership(5, ("a", "b"), ()), 0, timeout=5)
    assert world.failure is None
    assert world._ranks[0].queues.arrived[0].payload.data == b"early bird"  # type: ignore[union-attr]
    assert worlds._early.held == 0


def test_frames_over_the_byte_budget_drop_the_app_and_its_rank_fails_saying_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worlds, _ = make(EarlyLimits(max_bytes=64 << 10, max_seconds=60))
    deliver(worlds, 9, b"x" * (32 << 10))
    deliver(worlds, 9, b"x" * (40 << 10))  # over: the app goes, with what it held
    deliver(worlds, 9, b"x" * 10)  # and later frames are dropped too
    assert worlds._early.held == 0 and 9 not in worlds._worlds
    assert [r.getMessage() for r in caplog.records] == [
        f"dropped app 9 ({(32 << 10) + APP_OVERHEAD} bytes of frames): its messages arrived "
        "before any of its ranks started here, over the 65536 bytes kept for such apps "
        "(early_bytes)"]
    world = worlds.join(Membership(9, ("a", "b"), ()), 0, timeout=5)
    assert world.failure is not None and "early_bytes" in world.failure


def test_frames_kept_too_long_drop_the_app(caplog: pytest.LogCaptureFixture) -> None:
    worlds, clock = make(EarlyLimits(max_bytes=1 << 20, max_seconds=30))
    deliver(worlds, 3, b"y" * 1000)
    clock.now += 20
    deliver(worlds, 4, b"z" * 1000)
    clock.now += 11
    worlds.sweep()
    assert 3 not in worlds._worlds and 4 in worlds._worlds
    assert worlds._early.held == APP_OVERHEAD + 1000
    assert "no rank of it started here within 30 s of its first message (early_seconds)" \
        in caplog.records[-1].getMessage()
    world = worlds.join(Membership(4, ("a",), ()), 0, timeout=5)  # started in time
    assert world.failure is None and worlds._early.held == 0


def test_the_sweeper_drops_waiting_apps_on_its_own() -> None:
    worlds = Worlds("a", FakeNetwork(),  # type: ignore[arg-type]
                    early=EarlyLimits(max_bytes=1 << 20, max_seconds=0.2))
    deliver(worlds, 11, b"w" * 100)
    sweeper = worlds._sweeper
    assert sweeper is not None
    sweeper.join(timeout=5)
    assert not sweeper.is_alive() and 11 not in worlds._worlds and worlds._sweeper is None
