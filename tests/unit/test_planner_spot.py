"""Scenarios of the planner core's evictions, freezes and thaws, and of per-app and cluster
policies, with a fake clock. Every event goes through `PlannerCore.handle` and is followed
by `validate()`.

FULL is the cluster most scenarios start from: hosts a and b of 2 slots, app 1 on b, b (at a
migration point), app 2 on a, a. When b is evicted app 1 fits nowhere else and is frozen
on a (the only host left), thawed once app 2 ends or a host joins.
"""

from __future__ import annotations

import pytest

from faabric.errors import InternalError
from faabric.messages.types import AppSpec, AppState, Exited, Failed, GranuleResult, describe
from faabric.planner.core import (
    AppSubmitted,
    Cancel,
    Command,
    Dispatch,
    Event,
    Finish,
    FreezeApp,
    GrantScale,
    GranuleFinished,
    HostEvicted,
    HostLeft,
    HostRegistered,
    MigrationClaimed,
    MigrationPointsReached,
    OfferMigration,
    PlannerCore,
    RankMovedAway,
    Reject,
    Reset,
    ScaleRequested,
    StartMigration,
    Thaw,
    WithdrawMigration,
)
from faabric.scheduling import Policy, bin_pack, compact, spot


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def spec(size: int, *, user: str = "", policy: str = "") -> AppSpec:
    return AppSpec(module="ab" * 32, size=size, program=f"app{size}", user=user, policy=policy)


def done(app_id: int, index: int, host: str) -> GranuleFinished:
    return GranuleFinished(GranuleResult(app_id, index, host, Exited(0)))


class Cluster:
    """A core, its clock, and helpers to feed it and read it back."""

    def __init__(self, policy: Policy = bin_pack) -> None:
        self.clock = FakeClock()
        self.core = PlannerCore(clock=self.clock, keepalive_timeout=1e9, policy=policy)

    def run(self, *events: Event) -> list[Command]:
        commands: list[Command] = []
        for event in events:
            self.clock.now += 1.0
            commands += self.core.handle(event)
            self.core.validate()
        return commands

    def used(self) -> dict[str, int]:
        return {h.name: h.used for h in self.core.hosts()}

    def state(self, app_id: int) -> AppState:
        view = self.core.app(app_id)
        assert view is not None
        return view.state

    def placement(self, app_id: int) -> tuple[str, ...]:
        view = self.core.app(app_id)
        assert view is not None
        return tuple(host for _, host in view.placement)

    def kinds(self, app_id: int) -> list[str]:
        view = self.core.app(app_id)
        assert view is not None
        return [str(event.kind) for event in view.events]


FULL: tuple[Event, ...] = (
    HostRegistered("a", 2),
    HostRegistered("b", 2),
    AppSubmitted(1, spec(2)),  # b, b (equal hosts: the greater name)
    AppSubmitted(2, spec(2)),  # a, a
    MigrationPointsReached(1),
)
FREEZE: tuple[Event, ...] = (
    HostEvicted("b"),
    MigrationClaimed(1, 1, "b"),
    RankMovedAway(1, 0, 1, "b", "a"),
    RankMovedAway(1, 1, 1, "b", "a"),
)


def frozen_cluster() -> Cluster:
    cluster = Cluster()
    cluster.run(*FULL, *FREEZE)
    assert cluster.state(1) is AppState.FROZEN
    return cluster


# -- eviction: moves -------------------------------------------------------------------------


def test_eviction_offers_a_move_at_once_and_the_app_moves() -> None:
    cluster = Cluster()
    cluster.run(HostRegistered("a", 4), HostRegistered("b", 4), AppSubmitted(1, spec(2)),
                MigrationPointsReached(1))
    assert cluster.placement(1) == ("b", "b")
    assert cluster.run(HostEvicted("b")) == [OfferMigration("b", 1, 1)]
    assert cluster.used() == {"a": 2, "b": 2}  # the move's slots are reserved on a
    assert [h.evicting for h in cluster.core.hosts()] == [False, True]
    placement = ("a", "a")
    assert cluster.run(MigrationClaimed(1, 1, "b")) == [
        StartMigration(h, 1, 1, placement, ("a", "b")) for h in ("a", "b")
    ]
    cluster.run(RankMovedAway(1, 0, 1, "b", "a"), RankMovedAway(1, 1, 1, "b", "a"))
    assert cluster.used() == {"a": 2, "b": 0}
    assert cluster.kinds(1) == ["evicted", "offered", "started", "migrated"]


def test_an_evicted_host_gets_no_new_granules() -> None:
    cluster = Cluster()
    cluster.run(HostRegistered("a", 2), HostRegistered("b", 4), HostEvicted("b"))
    commands = cluster.run(AppSubmitted(1, spec(2)))
    assert [c.host for c in commands if isinstance(c, Dispatch)] == ["a"]
    assert cluster.run(AppSubmitted(2, spec(1))) == []  # queued: b's 4 free slots are not used
    # The cluster's usable size shrank: an app larger than a alone is refused.
    assert cluster.run(AppSubmitted(3, spec(3))) == [Reject(3, 3, 2)]
    assert cluster.core.statistics().queued == 1


def test_eviction_fails_queued_apps_that_can_no_longer_fit() -> None:
    cluster = Cluster()
    cluster.run(HostRegistered("a", 2), HostRegistered("b", 2), AppSubmitted(1, spec(4)),
                AppSubmitted(2, spec(3)))
    assert cluster.run(HostEvicted("b")) == [Finish(2)]
    assert cluster.state(1) is AppState.RUNNING  # it never reached a migration point
    assert cluster.kinds(1) == ["evicted"]


def test_evicting_twice_or_an_unknown_host_changes_nothing() -> None:
    cluster = Cluster()
    cluster.run(*FULL)
    assert cluster.run(HostEvicted("zz")) == []
    first = cluster.run(HostEvicted("b"))
    assert first == [OfferMigration("b", 1, 1)]
    assert cluster.run(HostEvicted("b")) == []
    assert cluster.kinds(1) == ["evicted", "offered"]


def test_scale_slots_never_land_on_an_evicted_host() -> None:
    cluster = Cluster()
    cluster.run(HostRegistered("a", 4), HostRegistered("b", 4), AppSubmitted(1, spec(1)),
                HostEvicted("a"))
    assert cluster.placement(1) == ("b",)
    assert cluster.run(ScaleRequested(1, 7, 3, "b")) == [GrantScale("b", 7, (("b", 3),))]
    cluster.run(HostEvicted("b"))
    commands = cluster.run(ScaleRequested(1, 8, 1, "b"))
    assert [type(c).__name__ for c in commands] == ["RefuseScale"]


def test_an_offer_to_a_host_being_evicted_is_withdrawn_and_decided_again() -> None:
    cluster = Cluster()
    cluster.run(HostRegistered("a", 2), HostRegistered("b", 2), AppSubmitted(1, spec(4)),
                MigrationPointsReached(1))
    assert cluster.run(HostRegistered("c", 4)) == [OfferMigration("b", 1, 1)]  # all to c
    # c is going away: the offer goes, and with no room left anywhere the app is frozen.
    assert cluster.run(HostEvicted("c")) == [WithdrawMigration("b", 1, 1)]
    assert cluster.used() == {"a": 2, "b": 2, "c": 0}
    assert cluster.kinds(1) == ["offered", "withdrawn"]  # it runs on none of c's slots


# -- eviction: freeze, park, thaw --------------------------------------------------------------


def test_no_room_means_a_freeze_then_parks_then_frozen_without_slots() -> None:
    cluster = Cluster()
    cluster.run(*FULL)
    assert cluster.run(HostEvicted("b")) == [OfferMigration("b", 1, 1)]
    assert cluster.used() == {"a": 2, "b": 2}  # a freeze reserves nothing
    assert cluster.run(MigrationClaimed(1, 1, "b")) == [FreezeApp("b", 1, 1, "a")]
    assert cluster.run(MigrationClaimed(1, 1, "b")) == []  # repeated: ignored
    cluster.run(RankMovedAway(1, 0, 1, "b", "a"))
    assert cluster.used() == {"a": 2, "b": 1}
    assert cluster.state(1) is AppState.RUNNING
    cluster.run(RankMovedAway(1, 1, 1, "b", "a"))
    assert cluster.state(1) is AppState.FROZEN
    assert cluster.placement(1) == ("a", "a")  # where its ranks are kept
    assert cluster.used() == {"a": 2, "b": 0}  # app 2's: the frozen app holds none
    stats = cluster.core.statistics()
    assert (stats.frozen, stats.running) == (1, 1)
    assert cluster.kinds(1) == ["evicted", "offered", "started", "frozen"]
    view = cluster.core.app(1)
    assert view is not None and view.events[-1].detail == "frozen: ranks 0-1 kept on a"
    assert [a.state for a in cluster.core.in_flight()] == [AppState.FROZEN, AppState.RUNNING]


def test_the_frozen_app_thaws_when_slots_free_and_its_results_finish_it() -> None:
    cluster = frozen_cluster()
    assert cluster.run(done(2, 0, "a")) == []  # one slot is not enough
    assert cluster.run(done(2, 1, "a")) == [Finish(2), Thaw("a", 1, 2, ("a", "a"))]
    assert cluster.state(1) is AppState.RUNNING
    assert cluster.used() == {"a": 2, "b": 0}
    assert cluster.kinds(1)[-1] == "thawed"
    assert cluster.run(done(1, 0, "a"), done(1, 1, "a")) == [Finish(1)]
    view = cluster.core.app(1)
    assert view is not None and [r.outcome for r in view.results] == [Exited(0)] * 2


def test_a_joining_host_thaws_the_frozen_app_there() -> None:
    cluster = frozen_cluster()
    assert cluster.run(HostRegistered("c", 4)) == [Thaw("a", 1, 2, ("c", "c"))]
    assert cluster.used() == {"a": 2, "b": 0, "c": 2}
    cluster.run(done(1, 0, "c"), done(1, 1, "c"))
    assert cluster.state(1) is AppState.FINISHED


def test_frozen_apps_go_before_the_queue() -> None:
    cluster = frozen_cluster()
    assert cluster.run(AppSubmitted(3, spec(2))) == []  # queued
    assert cluster.run(done(2, 0, "a"), done(2, 1, "a")) == [
        Finish(2), Thaw("a", 1, 2, ("a", "a"))
    ]
    assert cluster.state(3) is AppState.QUEUED
    commands = cluster.run(done(1, 0, "a"), done(1, 1, "a"))
    assert commands[0] == Finish(1) and isinstance(commands[1], Dispatch)


def test_losing_the_park_fails_the_frozen_app_naming_it() -> None:
    cluster = frozen_cluster()
    assert cluster.run(HostLeft("a", "its connection closed")) == [Finish(1), Finish(2)]
    view = cluster.core.app(1)
    assert view is not None and view.state is AppState.FINISHED
    assert {describe(r.outcome) for r in view.results} == {
        "failed: worker a was lost while it kept the frozen app: its connection closed"
    }
    assert cluster.core.statistics().frozen == 0


def test_the_thaw_is_followed_until_the_park_has_sent_every_rank() -> None:
    cluster = frozen_cluster()
    assert cluster.run(HostRegistered("c", 4)) == [Thaw("a", 1, 2, ("c", "c"))]
    cluster.run(RankMovedAway(1, 0, 2, "a", "c"))  # the park sent rank 0: no slot changes
    assert cluster.used() == {"a": 2, "b": 0, "c": 2}
    # The park dies before sending rank 1: it fails, its slot on c is freed, rank 0 is
    # cancelled where it runs, and the app ends at once instead of waiting forever.
    commands = cluster.run(HostLeft("a", "its connection closed"))
    assert Finish(1) in commands and Cancel("c", 1) in commands
    view = cluster.core.app(1)
    assert view is not None and view.state is AppState.FINISHED
    assert describe(view.results[1].outcome) == (
        "failed: worker a was lost before it sent rank 1 to its new host: its connection "
        "closed")
    assert cluster.used() == {"b": 0, "c": 1}  # rank 0 holds its slot until c reports
    cluster.run(done(1, 0, "c"))
    assert cluster.used() == {"b": 0, "c": 0}


def test_a_thaw_is_complete_once_every_rank_is_sent_or_has_ended() -> None:
    cluster = frozen_cluster()
    cluster.run(HostRegistered("c", 4))
    cluster.run(RankMovedAway(1, 0, 2, "a", "c"), done(1, 1, "c"))  # rank 1 reported first
    cluster.run(HostLeft("a", "gone"))  # too late to matter: both ranks left the park
    assert cluster.state(1) is AppState.RUNNING
    cluster.run(done(1, 0, "c"))
    assert cluster.state(1) is AppState.FINISHED


def test_reset_while_frozen_stops_the_parked_ranks() -> None:
    cluster = frozen_cluster()
    assert cluster.run(Reset()) == [Finish(1), Finish(2), Cancel("a", 1), Cancel("a", 2)]
    assert cluster.core.app(1) is None
    assert cluster.used() == {"a": 0, "b": 0}
    # The cluster goes on: b stays evicted, a takes new apps.
    commands = cluster.run(AppSubmitted(3, spec(2)))
    assert [c.host for c in commands if isinstance(c, Dispatch)] == ["a"]


def test_a_rank_that_ends_while_freezing_ends_the_app() -> None:
    cluster = Cluster()
    cluster.run(*FULL, *FREEZE[:3])  # rank 0 is parked on a, rank 1 still on b
    failed = GranuleResult(1, 1, "b", Failed("rank 1 could not move to worker a"))
    assert cluster.run(GranuleFinished(failed)) == [Finish(1), Cancel("a", 1)]
    view = cluster.core.app(1)
    assert view is not None
    assert describe(view.results[0].outcome) == (
        "failed: cancelled: rank 1 ended while the app was being frozen")
    assert cluster.used() == {"a": 2, "b": 0}
    assert cluster.kinds(1)[-1] == "abandoned"


def test_losing_the_park_while_freezing_ends_the_app() -> None:
    cluster = Cluster()
    cluster.run(*FULL, *FREEZE[:3])
    assert cluster.run(HostLeft("a", "gone")) == [Finish(1), Cancel("b", 1), Finish(2)]
    view = cluster.core.app(1)
    assert view is not None
    assert describe(view.results[0].outcome).startswith("failed: worker a was lost")
    assert cluster.used() == {"b": 1}  # rank 1's slot, until b confirms it stopped
    cluster.run(GranuleFinished(GranuleResult(1, 1, "b", Failed("stopped"))))
    assert cluster.used() == {"b": 0}


def test_a_freeze_offer_becomes_a_move_when_room_appears() -> None:
    cluster = Cluster()
    cluster.run(*FULL, HostEvicted("b"))
    assert cluster.run(HostRegistered("c", 4)) == [
        WithdrawMigration("b", 1, 1), OfferMigration("b", 1, 2)
    ]
    assert cluster.used() == {"a": 2, "b": 2, "c": 2}
    assert cluster.run(MigrationClaimed(1, 1, "b"))[0].__class__.__name__ == "CancelMigration"
    commands = cluster.run(MigrationClaimed(1, 2, "b"))
    assert {type(c).__name__ for c in commands} == {"StartMigration"}


def test_a_freeze_offer_is_withdrawn_when_a_rank_ends() -> None:
    cluster = Cluster()
    cluster.run(*FULL, HostEvicted("b"))
    assert cluster.run(done(1, 1, "b")) == [WithdrawMigration("b", 1, 1)]
    assert cluster.kinds(1) == ["evicted", "offered", "withdrawn"]
    refused = cluster.run(MigrationClaimed(1, 1, "b"))
    assert [type(c).__name__ for c in refused] == ["CancelMigration"]


def test_with_no_host_to_keep_it_the_app_is_stranded_once() -> None:
    cluster = Cluster()
    cluster.run(HostRegistered("b", 2), AppSubmitted(1, spec(2)), MigrationPointsReached(1))
    assert cluster.run(HostEvicted("b")) == []
    cluster.run(MigrationPointsReached(1), AppSubmitted(2, spec(1)))
    assert cluster.kinds(1) == ["evicted", "stranded"]
    assert cluster.state(1) is AppState.RUNNING  # it ends with its host
    assert cluster.run(HostLeft("b", "reclaimed"))[0] == Finish(1)


def test_stale_and_misdirected_freeze_claims_are_refused() -> None:
    cluster = Cluster()
    cluster.run(*FULL, HostEvicted("b"))
    stale = cluster.run(MigrationClaimed(1, 5, "b"))
    assert [(type(c).__name__, c.host) for c in stale] == [("CancelMigration", "b")]
    wrong = cluster.run(MigrationClaimed(1, 1, "a"))
    assert [c.host for c in wrong] == ["a", "b"]
    assert cluster.run(MigrationClaimed(1, 1, "b")) == [FreezeApp("b", 1, 1, "a")]
    # Reports that do not match the freeze are ignored.
    cluster.run(RankMovedAway(1, 0, 1, "b", "c"), RankMovedAway(1, 0, 9, "b", "a"))
    assert cluster.used() == {"a": 2, "b": 2}


def test_the_park_is_the_emptiest_live_host() -> None:
    cluster = Cluster()
    cluster.run(HostRegistered("a", 2), HostRegistered("b", 2), HostRegistered("c", 3),
                AppSubmitted(1, spec(3)),  # c, c, c
                AppSubmitted(2, spec(2)),  # b, b
                AppSubmitted(3, spec(1)),  # a
                MigrationPointsReached(1), HostEvicted("c"))
    assert cluster.placement(1) == ("c", "c", "c")
    assert cluster.run(MigrationClaimed(1, 1, "c")) == [FreezeApp("c", 1, 1, "a")]


# -- policies per cluster and per app -----------------------------------------------------------


GROW: tuple[Event, ...] = (
    HostRegistered("a", 2),
    HostRegistered("b", 2),
)


@pytest.mark.parametrize(
    ("cluster_policy", "app_policy", "offered"),
    [(bin_pack, "", True), (spot, "", False), (bin_pack, "spot", False), (spot, "bin-pack", True)],
)
def test_the_app_policy_overrides_the_cluster_one(
    cluster_policy: Policy, app_policy: str, offered: bool
) -> None:
    cluster = Cluster(cluster_policy)
    cluster.run(*GROW, AppSubmitted(1, spec(4, policy=app_policy)), MigrationPointsReached(1))
    commands = cluster.run(HostRegistered("c", 4))  # bin-pack consolidates; spot does not
    assert (commands == [OfferMigration("b", 1, 1)]) is offered


def test_an_unknown_app_policy_is_the_shells_to_refuse() -> None:
    cluster = Cluster()
    with pytest.raises(InternalError, match="unknown scheduling policy"):
        cluster.core.handle(AppSubmitted(1, spec(1, policy="fifo")))
    assert cluster.core.app(1) is None


def test_compact_keeps_users_apart() -> None:
    cluster = Cluster(compact)
    cluster.run(HostRegistered("a", 4), HostRegistered("b", 4))
    cluster.run(AppSubmitted(1, spec(2, user="alice")))
    cluster.run(AppSubmitted(2, spec(2, user="bob")))
    cluster.run(AppSubmitted(3, spec(2, user="alice")))
    assert [cluster.placement(i) for i in (1, 2, 3)] == [("a", "a"), ("b", "b"), ("a", "a")]
    assert cluster.run(AppSubmitted(4, spec(3, user="bob"))) == []  # 4 free, 2 for bob
    cluster.run(done(1, 0, "a"), done(1, 1, "a"))
    assert cluster.state(4) is AppState.QUEUED  # a still runs alice's app 3
    commands = cluster.run(done(2, 0, "b"), done(2, 1, "b"))
    assert [c.host for c in commands if isinstance(c, Dispatch)] == ["b"]


def test_a_compact_app_in_a_bin_pack_cluster_avoids_other_users() -> None:
    cluster = Cluster()
    cluster.run(HostRegistered("a", 4), HostRegistered("b", 4))
    cluster.run(AppSubmitted(1, spec(2, user="bob")))  # bin-pack: b
    cluster.run(AppSubmitted(2, spec(2, user="alice", policy="compact")))
    cluster.run(AppSubmitted(3, spec(1, user="alice")))  # bin-pack: the emptiest, b
    assert [cluster.placement(i) for i in (1, 2, 3)] == [("b", "b"), ("a", "a"), ("b",)]


def test_compact_migrations_empty_a_host() -> None:
    cluster = Cluster(compact)
    cluster.run(HostRegistered("a", 4), HostRegistered("b", 2),
                AppSubmitted(1, spec(3)),  # a, a, a
                AppSubmitted(2, spec(3)),  # a, b, b
                MigrationPointsReached(2))
    assert cluster.placement(2) == ("a", "b", "b")
    assert cluster.run(done(1, 0, "a"), done(1, 1, "a")) == [OfferMigration("a", 2, 1)]
    cluster.run(MigrationClaimed(2, 1, "a"), RankMovedAway(2, 1, 1, "b", "a"),
                RankMovedAway(2, 2, 1, "b", "a"))
    assert cluster.placement(2) == ("a", "a", "a")
    assert cluster.used() == {"a": 4, "b": 0}
