"""The planner core's `AppCancelled` event, step by step with a fake clock and no I/O: a
cancelled app finishes at once, its workers are told to stop its granules, and its slots go
to the next app as the workers confirm. Every event is followed by `validate()`.
"""

from __future__ import annotations

from faabric.messages.types import (
    AppSpec,
    AppState,
    Cancelled,
    Exited,
    GranuleResult,
    Outcome,
    describe,
)
from faabric.planner.core import (
    NO_HOST,
    AppCancelled,
    AppSubmitted,
    Cancel,
    Command,
    Dispatch,
    Event,
    Finish,
    GranuleFinished,
    HostEvicted,
    HostRegistered,
    MigrationClaimed,
    MigrationPointsReached,
    OfferMigration,
    PlannerCore,
    RankMovedAway,
    ScaleRequested,
    Thaw,
    WithdrawMigration,
)

BY_CLIENT = "by client"


class Cluster:
    """A core on a fake clock that advances one second per event."""

    def __init__(self, *hosts: tuple[str, int]) -> None:
        self.now = 0.0
        self.core = PlannerCore(clock=lambda: self.now, keepalive_timeout=1e9)
        self.run(*(HostRegistered(name, slots) for name, slots in hosts))

    def run(self, *events: Event) -> list[Command]:
        commands: list[Command] = []
        for event in events:
            self.now += 1.0
            commands += self.core.handle(event)
            self.core.validate()
        return commands

    def used(self) -> dict[str, int]:
        return {h.name: h.used for h in self.core.hosts()}

    def state(self, app_id: int) -> AppState:
        view = self.core.app(app_id)
        assert view is not None
        return view.state

    def outcomes(self, app_id: int) -> list[tuple[str, Outcome]]:
        view = self.core.app(app_id)
        assert view is not None
        return [(r.host, r.outcome) for r in view.results]


def spec(size: int) -> AppSpec:
    return AppSpec(module="ab" * 32, size=size, program=f"app{size}")


def report(app_id: int, index: int, host: str, outcome: Outcome | None = None) -> GranuleFinished:
    return GranuleFinished(GranuleResult(app_id, index, host, outcome or Exited(0)))


def dispatched(commands: list[Command]) -> list[tuple[int, str]]:
    return [(c.batch.app_id, c.host) for c in commands if isinstance(c, Dispatch)]


def test_a_running_app_finishes_at_once_and_its_workers_are_told_to_stop() -> None:
    cluster = Cluster(("a", 2), ("b", 2))
    cluster.run(AppSubmitted(1, spec(4)))
    cluster.run(report(1, 0, "b"))  # granule 0 already ended: it keeps its result
    assert cluster.run(AppCancelled(1, BY_CLIENT)) == [Finish(1), Cancel("a", 1), Cancel("b", 1)]
    assert cluster.state(1) is AppState.FINISHED
    cancelled = Cancelled(BY_CLIENT)
    assert cluster.outcomes(1) == [("b", Exited(0)), ("b", cancelled), ("a", cancelled),
                                   ("a", cancelled)]
    assert describe(cancelled) == "cancelled: by client"
    view = cluster.core.app(1)
    assert view is not None and view.finished == cluster.now


def test_the_slots_go_to_the_next_app_as_the_workers_confirm() -> None:
    cluster = Cluster(("a", 2))
    cluster.run(AppSubmitted(1, spec(2)), AppSubmitted(2, spec(2)))
    assert cluster.state(2) is AppState.QUEUED
    assert dispatched(cluster.run(AppCancelled(1, BY_CLIENT))) == []
    assert cluster.used() == {"a": 2}  # until a says the granules stopped
    stopped = Cancelled("the app was stopped")
    assert dispatched(cluster.run(report(1, 0, "a", stopped))) == []
    assert dispatched(cluster.run(report(1, 1, "a", stopped))) == [(2, "a")]
    assert cluster.outcomes(1) == [("a", Cancelled(BY_CLIENT))] * 2  # the first result wins
    assert cluster.state(2) is AppState.RUNNING


def test_a_queued_app_leaves_the_queue_and_the_next_one_may_start() -> None:
    cluster = Cluster(("a", 4))
    cluster.run(AppSubmitted(1, spec(3)), AppSubmitted(2, spec(2)), AppSubmitted(3, spec(1)))
    assert cluster.state(3) is AppState.QUEUED  # strict FIFO: behind app 2
    commands = cluster.run(AppCancelled(2, BY_CLIENT))
    assert commands[0] == Finish(2)
    assert dispatched(commands) == [(3, "a")]
    assert not any(isinstance(c, Cancel) for c in commands)  # nothing ran anywhere
    assert cluster.outcomes(2) == [(NO_HOST, Cancelled(BY_CLIENT))] * 2


def test_cancelling_unknown_or_finished_apps_changes_nothing() -> None:
    cluster = Cluster(("a", 2))
    assert cluster.run(AppCancelled(9, BY_CLIENT)) == []
    cluster.run(AppSubmitted(1, spec(1)), report(1, 0, "a"))
    assert cluster.run(AppCancelled(1, BY_CLIENT)) == []
    assert cluster.outcomes(1) == [("a", Exited(0))]
    cluster.run(AppSubmitted(2, spec(2)))
    assert cluster.run(AppCancelled(2, BY_CLIENT)) == [Finish(2), Cancel("a", 2)]
    assert cluster.run(AppCancelled(2, "again")) == []  # the first cancellation stands
    assert cluster.outcomes(2) == [("a", Cancelled(BY_CLIENT))] * 2


def test_a_migration_offer_is_withdrawn_and_its_reserved_slot_freed() -> None:
    cluster = Cluster(("a", 2), ("b", 2))
    placed = dispatched(cluster.run(AppSubmitted(1, spec(1)), AppSubmitted(2, spec(1)),
                                    AppSubmitted(3, spec(2)), MigrationPointsReached(3)))
    assert placed == [(1, "b"), (2, "a"), (3, "b"), (3, "a")]  # app 3 spans a and b
    commands = cluster.run(report(1, 0, "b"))  # room on b: app 3 could run on b alone
    assert commands == [Finish(1), OfferMigration("b", 3, 1)]
    assert cluster.used() == {"a": 2, "b": 2}  # the offer holds a slot on b
    commands = cluster.run(AppCancelled(3, BY_CLIENT))
    assert commands == [WithdrawMigration("b", 3, 1), Finish(3), Cancel("a", 3), Cancel("b", 3)]
    view = cluster.core.app(3)
    assert view is not None and [str(e.kind) for e in view.events] == ["offered", "withdrawn"]
    assert cluster.used() == {"a": 2, "b": 1}  # app 3's running granules, until confirmed


def test_scale_change_slots_are_released_at_once() -> None:
    cluster = Cluster(("a", 4))
    cluster.run(AppSubmitted(1, spec(1)), ScaleRequested(1, 7, 2, "a"))
    assert cluster.used() == {"a": 3}
    cluster.run(AppCancelled(1, BY_CLIENT))
    assert cluster.used() == {"a": 1}  # the granule's own slot, until a confirms
    cluster.run(report(1, 0, "a", Cancelled("the app was stopped")))
    assert cluster.used() == {"a": 0}


def frozen() -> Cluster:
    """App 1 frozen on a (b evicted), app 2 running on a: see test_planner_spot.py."""
    cluster = Cluster(("a", 2), ("b", 2))
    cluster.run(AppSubmitted(1, spec(2)), AppSubmitted(2, spec(2)), MigrationPointsReached(1),
                HostEvicted("b"), MigrationClaimed(1, 1, "b"), RankMovedAway(1, 0, 1, "b", "a"),
                RankMovedAway(1, 1, 1, "b", "a"))
    assert cluster.state(1) is AppState.FROZEN
    return cluster


def test_a_frozen_app_ends_and_its_keeper_drops_its_ranks() -> None:
    cluster = frozen()
    assert cluster.run(AppCancelled(1, BY_CLIENT)) == [Finish(1), Cancel("a", 1)]
    assert cluster.outcomes(1) == [("a", Cancelled(BY_CLIENT))] * 2
    assert cluster.core.statistics().frozen == 0
    assert cluster.used() == {"a": 2, "b": 0}  # app 2's: a frozen app held none
    # Slots freeing up later thaw nothing.
    assert not any(isinstance(c, Thaw) for c in cluster.run(report(2, 0, "a"),
                                                            report(2, 1, "a")))


def test_a_thawing_app_frees_the_slots_of_ranks_its_keeper_had_not_sent() -> None:
    cluster = frozen()
    assert cluster.run(HostRegistered("c", 4)) == [Thaw("a", 1, 2, ("c", "c"))]
    cluster.run(RankMovedAway(1, 0, 2, "a", "c"))  # rank 0 left the keeper, rank 1 not yet
    commands = cluster.run(AppCancelled(1, BY_CLIENT))
    assert commands[0] == Finish(1)
    assert set(commands[1:]) == {Cancel("a", 1), Cancel("c", 1)}
    assert cluster.outcomes(1) == [("c", Cancelled(BY_CLIENT)), ("a", Cancelled(BY_CLIENT))]
    assert cluster.used() == {"a": 2, "b": 0, "c": 1}  # rank 0 runs on c until c confirms
    cluster.run(report(1, 0, "c", Cancelled("the app was stopped")))
    assert cluster.used() == {"a": 2, "b": 0, "c": 0}
