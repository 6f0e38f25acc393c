"""Worlds: a world lives while ranks of its app may still run here, and no longer."""

from __future__ import annotations

from dataclasses import dataclass, field

from faabric.mpi.worlds import Membership, Worlds


@dataclass
class FakeNetwork:
    failures: list[tuple[str, int, str]] = field(default_factory=list)

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None:
        pass

    def announce_failure(self, host: str, app_id: int, reason: str) -> None:
        self.failures.append((host, app_id, reason))


def worlds(net: FakeNetwork) -> Worlds:
    return Worlds("a", net)  # type: ignore[arg-type]


def test_the_world_goes_when_its_last_local_rank_leaves() -> None:
    net = FakeNetwork()
    reg = worlds(net)
    member = Membership(1, ("a", "a", "b"), ())
    first = reg.join(member, 0, timeout=5)
    assert reg.join(member, 1, timeout=5) is first
    reg.leave(first, 0, None)
    reg.leave(first, 1, None)
    late = reg.join(member, 0, timeout=5)
    assert late is not first and late.failure is not None  # ended: a late rank fails at once


def test_a_stopped_app_is_forgotten_although_some_ranks_never_ran() -> None:
    net = FakeNetwork()
    reg = worlds(net)
    member = Membership(2, ("a", "a"), ())
    world = reg.join(member, 0, timeout=5)
    reg.stop(2, "the app was stopped")
    assert world.failure == "the app was stopped"
    reg.leave(world, 0, "was cancelled")
    assert reg.join(member, 1, timeout=5) is not world


def test_a_rank_that_ends_badly_breaks_the_world_on_the_other_hosts() -> None:
    net = FakeNetwork()
    reg = worlds(net)
    world = reg.join(Membership(3, ("a", "b"), ()), 0, timeout=5)
    reg.leave(world, 0, "trapped: boom")
    assert net.failures == [("b", 3, "rank 0 trapped: boom")]


def test_a_rank_that_never_started_breaks_the_world_everywhere() -> None:
    net = FakeNetwork()
    reg = worlds(net)
    member = Membership(4, ("a", "b"), (("a", "127.0.0.1:1"), ("b", "127.0.0.1:2")))
    reg.never_started(member, 0, "could not start: module unavailable")
    assert net.failures == [("b", 4, "rank 0 could not start: module unavailable")]
