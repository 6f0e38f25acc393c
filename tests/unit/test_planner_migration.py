"""Table-driven scenarios of the planner core's migrations (DIST_CHANGE), with a fake clock.

Every event goes through `PlannerCore.handle` and is followed by `validate()`. Two starting
clusters: SPLIT (hosts a, b of 4 slots; apps 1 on b,b and 2 on a,a; app 3 on b,b,a,a has
reached a migration point) and GROW (hosts a, b of 2 slots; app 1 on b,b,a,a at a migration
point; a 4-slot host c joins and app 1 is offered to move there).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

import pytest

from faabric.errors import InternalError
from faabric.messages.types import AppSpec, AppState, Batch, Exited, GranuleResult, describe
from faabric.planner.core import (
    AppEventKind,
    AppSubmitted,
    Cancel,
    CancelMigration,
    Command,
    Dispatch,
    Event,
    Finish,
    GrantScale,
    GranuleFinished,
    HostLeft,
    HostRegistered,
    MigrationClaimed,
    MigrationPointsReached,
    OfferMigration,
    PlannerCore,
    RankMovedAway,
    Reset,
    ScaleRequested,
    StartMigration,
    Ticked,
    WithdrawMigration,
)
from faabric.planner.views import app_document, app_info_document
from faabric.scheduling import (
    DoNotMigrate,
    HostSlots,
    Migration,
    Moves,
    Placement,
    bin_pack,
)
from faabric.scheduling._placement import NOT_RUNNING

OFFER_TIMEOUT = 30.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def spec(size: int, migrate_every: int = 1) -> AppSpec:
    return AppSpec(module="ab" * 32, size=size, program=f"app{size}", migrate_every=migrate_every)


def done(app_id: int, index: int, host: str) -> GranuleFinished:
    return GranuleFinished(GranuleResult(app_id, index, host, Exited(0)))


def make_core(clock: FakeClock) -> PlannerCore:
    # Hosts never expire here: only migration offers do.
    return PlannerCore(
        clock=clock, keepalive_timeout=1e9, migration_offer_timeout=OFFER_TIMEOUT
    )


def run(core: PlannerCore, clock: FakeClock, *events: Event) -> list[Command]:
    commands: list[Command] = []
    for event in events:
        commands += core.handle(event)
        core.validate()
    return commands


def used(core: PlannerCore) -> dict[str, int]:
    return {h.name: h.used for h in core.hosts()}


def starts(app_id: int, epoch: int, placement: tuple[str, ...]) -> tuple[Command, ...]:
    involved = ("a", "b") if set(placement) <= {"a", "b"} else ("a", "b", "c")
    return tuple(StartMigration(h, app_id, epoch, placement, involved) for h in involved)


def cancels(app_id: int, epoch: int, reason: str, *hosts: str) -> tuple[Command, ...]:
    return tuple(CancelMigration(h, app_id, epoch, reason) for h in hosts)


SPLIT: tuple[Event, ...] = (
    HostRegistered("a", 4),
    HostRegistered("b", 4),
    AppSubmitted(1, spec(2)),  # b, b
    AppSubmitted(2, spec(2)),  # a, a
    AppSubmitted(3, spec(4)),  # b, b, a, a: the app that may move
    MigrationPointsReached(3),  # no slot is free: nothing to offer yet
)


def grow(migrate_every: int = 1, points: bool = True) -> tuple[Event, ...]:
    reached: tuple[Event, ...] = (MigrationPointsReached(1),) if points else ()
    return (
        HostRegistered("a", 2),
        HostRegistered("b", 2),
        AppSubmitted(1, spec(4, migrate_every)),  # b, b, a, a
        *reached,
    )


@dataclass(frozen=True)
class Step:
    event: Event
    expect: tuple[Command, ...]
    at: float | None = None  # the clock before the event, if it moves


@dataclass(frozen=True)
class Scenario:
    name: str
    setup: tuple[Event, ...]
    steps: tuple[Step, ...]
    used: dict[str, int]
    placement: tuple[str, ...]  # of the watched app (3 in SPLIT, 1 in GROW)
    kinds: tuple[str, ...]  # its event kinds, in order
    migrations: int = 0
    state: AppState = AppState.RUNNING
    app_id: int = field(default=0)

    def watched(self) -> int:
        return self.app_id or (3 if self.setup is SPLIT else 1)


P1 = ("b", "b", "a", "b")  # SPLIT, once app 1 freed one slot on b: 3+1, fewer links
P2 = ("b", "b", "b", "b")  # SPLIT, once app 1 is gone: all on b
PC = ("c", "c", "c", "c")  # GROW: all on the new host
SPLIT_AB = ("b", "b", "a", "a")
OFFER = Step(done(1, 0, "b"), (OfferMigration("b", 3, 1),))
CLAIM = Step(MigrationClaimed(3, 1, "b"), starts(3, 1, P1))
GROW_OFFER = Step(HostRegistered("c", 4), (OfferMigration("b", 1, 1),))
GROW_CLAIM = Step(MigrationClaimed(1, 1, "b"), starts(1, 1, PC))

# fmt: off
SCENARIOS = [
    Scenario("offer after a granule of another app finishes", SPLIT, (OFFER,),
             {"a": 4, "b": 4}, SPLIT_AB, ("offered",)),
    Scenario("claim starts the move on every old and new host", SPLIT, (OFFER, CLAIM),
             {"a": 4, "b": 4}, SPLIT_AB, ("offered", "started")),
    Scenario("a moved rank frees its old slot; the migration completes", SPLIT,
             (OFFER, CLAIM, Step(RankMovedAway(3, 3, 1, "a", "b"), ())),
             {"a": 3, "b": 4}, P1, ("offered", "started", "migrated"), migrations=1),
    Scenario("a moved app is offered again when more slots free", SPLIT,
             (OFFER, CLAIM, Step(RankMovedAway(3, 3, 1, "a", "b"), ()),
              Step(done(1, 1, "b"), (Finish(1), OfferMigration("b", 3, 2)))),
             {"a": 3, "b": 4}, P1, ("offered", "started", "migrated", "offered"), migrations=1),
    Scenario("a stale epoch is cancelled on every host; the offer stays", SPLIT,
             (OFFER,
              Step(MigrationClaimed(3, 7, "b"),
                   cancels(3, 7, "epoch 7 is stale (epoch 1 is open)", "a", "b")),
              CLAIM),
             {"a": 4, "b": 4}, SPLIT_AB, ("offered", "cancelled", "started")),
    Scenario("a claim without an offer is cancelled", SPLIT,
             (Step(MigrationClaimed(3, 1, "b"),
                   cancels(3, 1, "no offer is open (epoch 1 is gone)", "a", "b")),),
             {"a": 4, "b": 4}, SPLIT_AB, ("cancelled",)),
    Scenario("a claim for an unknown app goes back to the claimer", SPLIT,
             (Step(MigrationClaimed(9, 1, "a"), cancels(9, 1, "app 9 is unknown", "a")),),
             {"a": 4, "b": 4}, SPLIT_AB, ()),
    Scenario("a claim from a host without rank 0 is cancelled", SPLIT,
             (OFFER,
              Step(MigrationClaimed(3, 1, "a"),
                   cancels(3, 1, "a does not run rank 0 of app 3", "a", "b"))),
             {"a": 4, "b": 4}, SPLIT_AB, ("offered", "cancelled")),
    Scenario("a repeated claim is ignored", SPLIT,
             (OFFER, CLAIM, Step(MigrationClaimed(3, 1, "b"), ())),
             {"a": 4, "b": 4}, SPLIT_AB, ("offered", "started")),
    Scenario("move reports that do not match are ignored", SPLIT,
             (OFFER, CLAIM,
              Step(RankMovedAway(3, 3, 2, "a", "b"), ()),  # another epoch
              Step(RankMovedAway(3, 2, 1, "a", "b"), ()),  # a rank that does not move
              Step(RankMovedAway(3, 3, 1, "b", "a"), ())),  # the wrong way round
             {"a": 4, "b": 4}, SPLIT_AB, ("offered", "started")),
    Scenario("an unclaimed offer expires on Ticked and is offered again later", SPLIT,
             (OFFER,
              Step(Ticked(), (), at=OFFER_TIMEOUT),
              Step(Ticked(), (WithdrawMigration("b", 3, 1),), at=OFFER_TIMEOUT + 0.5),
              Step(done(2, 0, "a"), (OfferMigration("b", 3, 2),))),
             {"a": 3, "b": 4}, SPLIT_AB, ("offered", "withdrawn", "offered")),
    Scenario("a rank that ends withdraws the offer", SPLIT,
             (OFFER, Step(done(3, 2, "a"), (WithdrawMigration("b", 3, 1),))),
             {"a": 3, "b": 3}, SPLIT_AB, ("offered", "withdrawn")),
    Scenario("a rank that ends on its new host before the old one reports", SPLIT,
             (OFFER, CLAIM, Step(done(3, 3, "b"), ()),
              Step(RankMovedAway(3, 3, 1, "a", "b"), ())),
             {"a": 3, "b": 3}, P1, ("offered", "started", "migrated"), migrations=1),
    Scenario("an old host lost mid-migration ends the app and frees the new slots", SPLIT,
             (OFFER, CLAIM,
              Step(HostLeft("a", "gone"), (Finish(2), Finish(3), Cancel("b", 3)))),
             {"b": 3}, SPLIT_AB, ("offered", "started", "abandoned"),
             state=AppState.FINISHED),
    Scenario("a new host lost before the claim: the offer is withdrawn, the app goes on",
             grow(), (GROW_OFFER, Step(HostLeft("c", "gone"), (WithdrawMigration("b", 1, 1),))),
             {"a": 2, "b": 2}, SPLIT_AB, ("offered", "withdrawn")),
    Scenario("a new host lost after the claim ends the app", grow(),
             (GROW_OFFER, GROW_CLAIM,
              Step(HostLeft("c", "gone"), (Finish(1), Cancel("a", 1), Cancel("b", 1)))),
             {"a": 2, "b": 2}, SPLIT_AB, ("offered", "started", "abandoned"),
             state=AppState.FINISHED),
    Scenario("a new host lost after a rank arrived there ends the app", grow(),
             (GROW_OFFER, GROW_CLAIM, Step(RankMovedAway(1, 0, 1, "b", "c"), ()),
              Step(HostLeft("c", "gone"), (Finish(1), Cancel("a", 1), Cancel("b", 1)))),
             {"a": 2, "b": 1}, ("c", "b", "a", "a"), ("offered", "started", "abandoned"),
             state=AppState.FINISHED),
    Scenario("rank 0's host lost while offered: no withdrawal is sent to it", grow(),
             (GROW_OFFER, Step(HostLeft("b", "gone"), (Finish(1), Cancel("a", 1)))),
             {"a": 2, "c": 0}, SPLIT_AB, ("offered", "withdrawn"), state=AppState.FINISHED),
    Scenario("a queued app takes the reserved slots back", grow(),
             (GROW_OFFER,
              Step(AppSubmitted(2, spec(4)),
                   (WithdrawMigration("b", 1, 1),
                    Dispatch("c", Batch(2, spec(4), (0, 1, 2, 3), PC))))),
             {"a": 2, "b": 2, "c": 4}, SPLIT_AB, ("offered", "withdrawn")),
    Scenario("a scale request withdraws the offer first", grow(),
             (GROW_OFFER,
              Step(ScaleRequested(1, 5, 2, "b"),
                   (WithdrawMigration("b", 1, 1), GrantScale("b", 5, (("c", 2),))))),
             {"a": 2, "b": 2, "c": 2}, SPLIT_AB, ("offered", "withdrawn")),
    Scenario("reset mid-migration stops the app on its new hosts too", grow(),
             (GROW_OFFER, GROW_CLAIM,
              Step(Reset(), (Finish(1), Cancel("a", 1), Cancel("b", 1), Cancel("c", 1)))),
             {"a": 0, "b": 0, "c": 0}, (), ()),
    Scenario("every rank moves to the new host", grow(),
             (GROW_OFFER, GROW_CLAIM,
              *(Step(RankMovedAway(1, i, 1, h, "c"), ()) for i, h in enumerate(SPLIT_AB))),
             {"a": 0, "b": 0, "c": 4}, PC, ("offered", "started", "migrated"), migrations=1),
    Scenario("migrate_every=0: never offered", grow(migrate_every=0),
             (Step(HostRegistered("c", 4), ()),),
             {"a": 2, "b": 2, "c": 0}, SPLIT_AB, ()),
    Scenario("no migration point reached: never offered", grow(points=False),
             (Step(HostRegistered("c", 4), ()),),
             {"a": 2, "b": 2, "c": 0}, SPLIT_AB, ()),
    Scenario("slots free before the point: offered when it is reached", grow(points=False),
             (Step(HostRegistered("c", 4), ()),
              Step(MigrationPointsReached(1), (OfferMigration("b", 1, 1),))),
             {"a": 2, "b": 2, "c": 4}, SPLIT_AB, ("offered",)),
    Scenario("points of an unknown app are ignored", grow(points=False),
             (Step(MigrationPointsReached(9), ()), Step(HostRegistered("c", 4), ())),
             {"a": 2, "b": 2, "c": 0}, SPLIT_AB, ()),
]
# fmt: on


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    clock = FakeClock()
    core = make_core(clock)
    run(core, clock, *scenario.setup)
    for number, step in enumerate(scenario.steps):
        if step.at is not None:
            clock.now = step.at
        got = run(core, clock, step.event)
        assert tuple(got) == step.expect, f"step {number}: {step.event}"
    assert used(core) == scenario.used
    view = core.app(scenario.watched())
    if scenario.setup is not SPLIT and not scenario.placement:
        assert view is None  # dropped by a reset
        return
    assert view is not None
    assert tuple(host for _, host in view.placement) == scenario.placement
    assert tuple(str(e.kind) for e in view.events) == scenario.kinds
    assert (view.migrations, view.state) == (scenario.migrations, scenario.state)


# -- details the table does not show -----------------------------------------------------------


def test_events_say_which_ranks_go_where_and_statistics_count_reserved_slots() -> None:
    clock = FakeClock()
    core = make_core(clock)
    run(core, clock, *SPLIT)
    clock.now = 2.0
    run(core, clock, OFFER.event)
    assert core.statistics().reserved_slots == 1
    clock.now = 3.0
    run(core, clock, CLAIM.event, RankMovedAway(3, 3, 1, "a", "b"))
    assert core.statistics().reserved_slots == 0
    view = core.app(3)
    assert view is not None
    offered, started, migrated = view.events
    assert (offered.time, offered.kind, offered.epoch) == (2.0, AppEventKind.OFFERED, 1)
    assert offered.detail == "offered: rank 3 a -> b"
    assert (offered.ranks, offered.hosts) == ((3,), ("a", "b"))
    assert (started.time, started.kind, started.ranks) == (3.0, AppEventKind.STARTED, (3,))
    assert migrated.detail == "migrated: rank 3 now on b"
    assert core.in_flight()[-1].migrations == 1


def test_a_lost_new_host_fails_the_app_naming_it() -> None:
    clock = FakeClock()
    core = make_core(clock)
    run(core, clock, *grow(), GROW_OFFER.event, GROW_CLAIM.event, HostLeft("c", "gone"))
    view = core.app(1)
    assert view is not None
    messages = {describe(r.outcome) for r in view.results}
    assert all("lost with c" in m for m in messages), messages
    assert view.events[-1].detail == "abandoned: worker c was lost"


def test_cancelled_ranks_free_their_old_slots_whoever_reports_them() -> None:
    clock = FakeClock()
    core = make_core(clock)
    run(core, clock, *grow(), GROW_OFFER.event, GROW_CLAIM.event, HostLeft("c", "gone"))
    assert used(core) == {"a": 2, "b": 2}
    # Every rank was cancelled where it ran: ranks 0, 1 report from b, ranks 2, 3 from a.
    run(core, clock, done(1, 0, "b"), done(1, 1, "b"), done(1, 2, "a"), done(1, 3, "a"))
    assert used(core) == {"a": 0, "b": 0}


def test_a_move_report_for_a_forgotten_app_frees_the_slot() -> None:
    clock = FakeClock()
    core = make_core(clock)
    run(core, clock, *grow(), GROW_OFFER.event, GROW_CLAIM.event, Reset())
    assert run(core, clock, RankMovedAway(1, 0, 1, "b", "c")) == []
    assert used(core) == {"a": 0, "b": 0, "c": 0}


def test_offer_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="migration_offer_timeout"):
        PlannerCore(clock=FakeClock(), keepalive_timeout=1.0, migration_offer_timeout=0)


def test_app_documents_with_events_match_the_openapi_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    spec_doc = json.loads(resources.files("faabric.planner").joinpath("openapi.json").read_text())
    clock = FakeClock()
    core = make_core(clock)
    run(core, clock, *SPLIT, OFFER.event, CLAIM.event, RankMovedAway(3, 3, 1, "a", "b"))
    view = core.app(3)
    assert view is not None
    doc = app_document(view, binary=False, wall_offset=100.0)
    assert doc["migrations"] == 1
    assert [e["kind"] for e in doc["events"]] == ["offered", "started", "migrated"]
    assert doc["events"][0]["time"] == 100.0
    for schema, value in (("App", doc), ("InFlightApp", app_info_document(core.in_flight()[-1]))):
        root = {"$ref": f"#/components/schemas/{schema}", "components": spec_doc["components"]}
        jsonschema.Draft202012Validator(root).validate(value)


@dataclass(frozen=True)
class FixedMoves:
    """A policy that places like bin-pack but always answers `decision` to a migration."""

    decision: Migration
    name: str = "fixed"

    def place(
        self, hosts: Sequence[HostSlots], size: int, running: Mapping[str, int] = NOT_RUNNING
    ) -> Placement:
        return bin_pack.place(hosts, size, running)

    def migrate(self, hosts: Sequence[HostSlots], placement: Sequence[str]) -> Migration:
        return self.decision


@pytest.mark.parametrize(
    "decision",
    [
        Moves(("c", "c", "c"), (0, 1, 2)),  # a rank short
        Moves(("b", "b", "a", "a"), ()),  # nothing moves
        Moves(("c", "b", "a", "a"), (1,)),  # `moved` does not match the placement
        Moves(("a", "a", "a", "a"), (0, 1)),  # a is full
    ],
)
def test_a_policy_that_breaks_the_rules_is_an_internal_error(decision: Migration) -> None:
    clock = FakeClock()
    core = PlannerCore(clock=clock, keepalive_timeout=1e9, policy=FixedMoves(decision))
    run(core, clock, *grow())
    with pytest.raises(InternalError, match="policy"):
        core.handle(HostRegistered("c", 4))


def test_the_policy_decides_whether_to_move() -> None:
    clock = FakeClock()
    core = PlannerCore(clock=clock, keepalive_timeout=1e9, policy=FixedMoves(DoNotMigrate()))
    run(core, clock, *grow())
    assert run(core, clock, HostRegistered("c", 4)) == []
    moving = FixedMoves(Moves(("b", "b", "c", "a"), (2,)))
    core = PlannerCore(clock=clock, keepalive_timeout=1e9, policy=moving)
    run(core, clock, *grow())
    assert run(core, clock, HostRegistered("c", 4)) == [OfferMigration("b", 1, 1)]
    assert used(core) == {"a": 2, "b": 2, "c": 1}
