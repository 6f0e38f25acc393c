"""Metrics without sockets: the core's tally of app events, the planner's counters of
finished apps, what the collector reads at scrape time, and the counters kept on workers
(MPI bytes by path, memory sent by the team wire)."""

from __future__ import annotations

import ctypes

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tests.unit.test_mpi_world import FakeNetwork
from tests.unit.test_planner_migration import CLAIM, OFFER, SPLIT, FakeClock, make_core, run

from faabric._util.tally import Tally
from faabric.messages.control import WorkerCounters
from faabric.messages.team import RegionId, TeamOp, TeamReply, TeamRequest
from faabric.messages.types import (
    AppSpec,
    AppState,
    Cancelled,
    Exited,
    Failed,
    GranuleResult,
    HostInfo,
    TimedOut,
    Trapped,
)
from faabric.mpi import memory
from faabric.mpi.matching import Envelope
from faabric.mpi.ranks import Layout
from faabric.mpi.world import LocalWorld
from faabric.planner._apps import AppEventKind, AppView, Statistics
from faabric.planner.core import (
    AppSubmitted,
    HostRegistered,
    PlannerCore,
    RankMovedAway,
    Reset,
    TeamSizeChanged,
)
from faabric.planner.metrics import (
    Gauges,
    PlannerCollector,
    PlannerMetrics,
    app_outcome,
    granule_outcome,
)
from faabric.snapshot import Diff
from faabric.threads.wire import _memory_kind

SPEC = AppSpec(module="ab" * 32, size=2)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """Every sample of the registry, parsed back from the text format."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def result(index: int, outcome: object, host: str = "a", started: float = 0.0,
           finished: float = 0.0) -> GranuleResult:
    return GranuleResult(1, index, host, outcome, started=started,  # type: ignore[arg-type]
                         finished=finished)


# -- the core's tally -----------------------------------------------------------------------------


def test_the_core_counts_app_events_and_a_reset_keeps_the_counts() -> None:
    core = PlannerCore(clock=lambda: 0.0, keepalive_timeout=5.0)
    core.handle(HostRegistered("a", 4))
    core.handle(AppSubmitted(9, AppSpec(module="ab" * 32, size=1, elastic=True)))
    core.handle(TeamSizeChanged(9, 0, "a", 2))
    core.handle(TeamSizeChanged(9, 0, "a", 3))
    assert core.event_counts() == {AppEventKind.RESIZED: 2}
    core.handle(Reset())
    core.handle(AppSubmitted(10, AppSpec(module="ab" * 32, size=1, elastic=True)))
    core.handle(TeamSizeChanged(10, 0, "a", 2))
    assert core.event_counts() == {AppEventKind.RESIZED: 3}


def test_a_migration_is_counted_offered_started_and_migrated() -> None:
    clock = FakeClock()
    core = make_core(clock)
    run(core, clock, *SPLIT, OFFER.event, CLAIM.event, RankMovedAway(3, 3, 1, "a", "b"))
    assert core.event_counts() == {AppEventKind.OFFERED: 1, AppEventKind.STARTED: 1,
                                   AppEventKind.MIGRATED: 1}


# -- finished apps --------------------------------------------------------------------------------


@pytest.mark.parametrize(("outcomes", "expected"), [
    ((Exited(0), Exited(0)), "succeeded"),
    ((Exited(0), Exited(3)), "failed"),
    ((Trapped("boom"), Failed("cancelled: another granule failed")), "failed"),
    ((Cancelled("by client"), Exited(0)), "cancelled"),
])
def test_app_outcome(outcomes: tuple[object, ...], expected: str) -> None:
    assert app_outcome([result(i, o) for i, o in enumerate(outcomes)]) == expected


@pytest.mark.parametrize(("outcome", "label"), [
    (Exited(0), "succeeded"), (Exited(1), "exited"), (Trapped("x"), "trapped"),
    (TimedOut(2.0), "timed_out"), (Failed("x"), "failed"), (Cancelled("x"), "cancelled"),
])
def test_granule_outcome(outcome: object, label: str) -> None:
    assert granule_outcome(result(0, outcome)) == label


def test_a_finished_app_counts_its_outcome_granules_and_durations() -> None:
    registry = CollectorRegistry()
    metrics = PlannerMetrics(registry)
    view = AppView(
        app_id=1, spec=SPEC, state=AppState.FINISHED, placement=((0, "a"), (1, "b")),
        results=(result(0, Exited(0), "a", 100.0, 102.5), result(1, Exited(0), "b", 100.0,
                                                                   101.0)),
        submitted=10.0, started=12.0, finished=15.0,
    )
    metrics.app_finished(view)
    samples = scrape(registry)
    assert samples[("faabric_apps_finished_total", (("outcome", "succeeded"),))] == 1
    assert samples[("faabric_granules_finished_total", (("outcome", "succeeded"),))] == 2
    assert samples[("faabric_app_queue_seconds_sum", ())] == pytest.approx(2.0)
    assert samples[("faabric_app_run_seconds_sum", ())] == pytest.approx(3.0)
    assert samples[("faabric_granule_run_seconds_sum", ())] == pytest.approx(3.5)
    assert samples[("faabric_granule_run_seconds_count", ())] == 2


def test_an_app_that_never_ran_has_no_durations() -> None:
    registry = CollectorRegistry()
    metrics = PlannerMetrics(registry)
    metrics.app_finished(AppView(
        app_id=1, spec=SPEC, state=AppState.FINISHED, placement=(),
        results=(result(0, Cancelled("by client"), ""), result(1, Cancelled("by client"), "")),
        submitted=1.0, started=None, finished=2.0,
    ))
    samples = scrape(registry)
    assert samples[("faabric_apps_finished_total", (("outcome", "cancelled"),))] == 1
    assert samples[("faabric_granules_finished_total", (("outcome", "cancelled"),))] == 2
    assert samples[("faabric_app_queue_seconds_count", ())] == 0
    assert samples[("faabric_granule_run_seconds_count", ())] == 0


# -- the collector --------------------------------------------------------------------------------


def collected(gauges: Gauges, workers: dict[str, WorkerCounters]) -> Samples:
    registry = CollectorRegistry()
    metrics = PlannerMetrics(registry)
    for host, counters in workers.items():
        metrics.worker_counters(host, counters)
    registry.register(PlannerCollector(lambda: gauges, metrics))
    return scrape(registry)


def test_the_collector_reads_slots_queue_apps_and_events() -> None:
    hosts = [HostInfo("a", 4, 3), HostInfo("b", 2, 2, evicting=True)]
    statistics = Statistics(hosts=2, total_slots=6, used_slots=5, queued=2, running=1,
                            finished=7, scaled_slots=1, reserved_slots=0, frozen=1)
    events = {AppEventKind.MIGRATED: 4, AppEventKind.FROZEN: 1, AppEventKind.RESIZED: 2}
    samples = collected((hosts, statistics, events), {})
    assert samples[("faabric_slots", (("host", "a"), ("state", "used")))] == 3
    assert samples[("faabric_slots", (("host", "a"), ("state", "free")))] == 1
    assert samples[("faabric_slots", (("host", "b"), ("state", "free")))] == 0
    assert samples[("faabric_host_evicting", (("host", "b"),))] == 1
    assert samples[("faabric_host_evicting", (("host", "a"),))] == 0
    assert samples[("faabric_hosts", ())] == 2
    assert samples[("faabric_queue_length", ())] == 2
    assert samples[("faabric_apps", (("state", "running"),))] == 1
    assert samples[("faabric_apps", (("state", "frozen"),))] == 1
    assert samples[("faabric_slots_scaled", ())] == 1
    assert samples[("faabric_migrations_total", (("event", "migrated"),))] == 4
    assert samples[("faabric_migrations_total", (("event", "offered"),))] == 0
    assert samples[("faabric_evictions_total", (("event", "frozen"),))] == 1
    assert samples[("faabric_team_changes_total", (("event", "resized"),))] == 2


def test_worker_counters_are_labelled_by_host_and_dropped_with_it() -> None:
    statistics = Statistics(hosts=1, total_slots=2, used_slots=0, queued=0, running=0,
                            finished=0)
    workers = {
        "a": WorkerCounters(mpi_bytes_same_host=10, mpi_bytes_cross_host=20, snapshot_bytes=30,
                            diff_bytes=40, rank_bytes=50),
        "gone": WorkerCounters(mpi_bytes_same_host=1),
    }
    samples = collected(([HostInfo("a", 2, 0)], statistics, {}), workers)
    mpi = "faabric_mpi_bytes_sent_total"
    memory_sent = "faabric_snapshot_bytes_sent_total"
    assert samples[(mpi, (("host", "a"), ("path", "same-host")))] == 10
    assert samples[(mpi, (("host", "a"), ("path", "cross-host")))] == 20
    assert samples[(memory_sent, (("host", "a"), ("kind", "snapshot")))] == 30
    assert samples[(memory_sent, (("host", "a"), ("kind", "diff")))] == 40
    assert samples[(memory_sent, (("host", "a"), ("kind", "rank")))] == 50
    assert not any(dict(labels).get("host") == "gone" for _, labels in samples)


def test_the_latest_counters_of_a_worker_win() -> None:
    metrics = PlannerMetrics(CollectorRegistry())
    metrics.worker_counters("a", WorkerCounters(mpi_bytes_same_host=1))
    metrics.worker_counters("a", WorkerCounters(mpi_bytes_same_host=5))
    assert metrics.workers({"a"}) == {"a": WorkerCounters(mpi_bytes_same_host=5)}
    assert metrics.workers(set()) == {}
    assert metrics.workers({"a"}) == {}  # forgotten once it was gone


# -- counters kept on workers ---------------------------------------------------------------------


def test_a_world_counts_same_host_and_cross_host_bytes() -> None:
    world = LocalWorld(1, FakeNetwork())
    world.configure(Layout(("a", "a", "b"), "a"))
    for rank in (0, 1):
        world.attach(rank, timeout=5.0)
    keep = [ctypes.create_string_buffer(n) for n in (100, 7, memory.REQUEST_SIZE,
                                                       memory.REQUEST_SIZE)]
    data, small, first, second = (ctypes.addressof(b) for b in keep)
    world.isend(0, Envelope(0, 0, 0, 100), 1, data, False, first)  # to rank 1, here
    world.isend(0, Envelope(0, 0, 0, 7), 2, small, False, second)  # to rank 2, on b
    assert (world.traffic.same_host, world.traffic.cross_host) == (100, 7)


def test_the_team_wire_tells_snapshots_from_diffs() -> None:
    region = RegionId("a", 1)
    assert _memory_kind(TeamReply(region, 1, 0)) is None
    assert _memory_kind(TeamReply(region, 1, 0, diffs=(Diff(0, ()),))) == "diff"
    assert _memory_kind(TeamRequest(region, "a", 1, TeamOp.BARRIER, 0, 0, 0)) is None


def test_a_tally_adds_by_name() -> None:
    tally = Tally(("x", "y"))
    tally.add("x", 3)
    tally.add("x")
    assert tally.values() == {"x": 4, "y": 0}
    with pytest.raises(KeyError):
        tally.add("z")
