"""The planner's Prometheus metrics: what `GET /metrics` answers.

`PlannerMetrics` holds what grows as things happen: counters and histograms of finished apps
and granules (fed by the service when the core finishes an app) and the latest counters
each worker reported (`WorkerCounters`). `PlannerCollector` reads the rest at scrape time:
slots by host, the queue, apps by state and the core's tally of app events (migrations,
evictions, team changes), in one call under the service's lock. Both live in the
`CollectorRegistry` the composition root made for this planner. This module must not change
planner state, nor keep any beyond counts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from faabric.messages.control import WorkerCounters
from faabric.messages.types import (
    Cancelled,
    Exited,
    Failed,
    GranuleResult,
    HostInfo,
    TimedOut,
    Trapped,
)
from faabric.planner._apps import AppEventKind, AppView, Statistics

# Seconds: apps and granules run from milliseconds to hours.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600)
MIGRATION_EVENTS = (AppEventKind.OFFERED, AppEventKind.STARTED, AppEventKind.MIGRATED,
                    AppEventKind.WITHDRAWN, AppEventKind.CANCELLED, AppEventKind.ABANDONED)
EVICTION_EVENTS = (AppEventKind.EVICTED, AppEventKind.STRANDED, AppEventKind.FROZEN,
                   AppEventKind.THAWED)
TEAM_EVENTS = (AppEventKind.RESIZED, AppEventKind.KEPT_LOCAL)
Gauges = tuple[list[HostInfo], Statistics, Mapping[AppEventKind, int]]


class PlannerMetrics:
    """Counts of finished apps and granules, and the workers' latest counters."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._apps = Counter("faabric_apps_finished", "Apps that finished, by outcome",
                             ["outcome"], registry=registry)
        self._granules = Counter("faabric_granules_finished",
                                 "Granules of finished apps, by outcome", ["outcome"],
                                 registry=registry)
        self._queued = Histogram("faabric_app_queue_seconds",
                                 "Seconds finished apps waited in the queue before they ran",
                                 buckets=DURATION_BUCKETS, registry=registry)
        self._ran = Histogram("faabric_app_run_seconds",
                              "Seconds finished apps ran, from dispatch to their last result",
                              buckets=DURATION_BUCKETS, registry=registry)
        self._granule_seconds = Histogram("faabric_granule_run_seconds",
                                          "Seconds granules of finished apps ran on workers",
                                          buckets=DURATION_BUCKETS, registry=registry)
        self._lock = threading.Lock()
        self._workers: dict[str, WorkerCounters] = {}

    def app_finished(self, view: AppView) -> None:
        """Count a finished app and its granules."""
        self._apps.labels(app_outcome(view.results)).inc()
        if view.started is not None and view.finished is not None:
            self._queued.observe(max(0.0, view.started - view.submitted))
            self._ran.observe(max(0.0, view.finished - view.started))
        for result in view.results:
            self._granules.labels(granule_outcome(result)).inc()
            if result.finished > result.started > 0:
                self._granule_seconds.observe(result.finished - result.started)

    def worker_counters(self, host: str, counters: WorkerCounters) -> None:
        """Keep the latest counters worker `host` reported."""
        with self._lock:
            self._workers[host] = counters

    def workers(self, live: Collection[str]) -> dict[str, WorkerCounters]:
        """The latest counters of the workers in `live`; those of others are forgotten."""
        with self._lock:
            for gone in [name for name in self._workers if name not in live]:
                del self._workers[gone]
            return dict(self._workers)


class PlannerCollector:
    """Reads the planner's state at scrape time (`gauges`: one call under its lock)."""

    def __init__(self, gauges: Callable[[], Gauges], metrics: PlannerMetrics) -> None:
        self._gauges = gauges
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        hosts, statistics, events = self._gauges()
        yield from host_families(hosts)
        yield from app_families(statistics)
        yield from event_families(events)
        yield from worker_families(self._metrics.workers({h.name for h in hosts}))


def host_families(hosts: list[HostInfo]) -> Iterator[Metric]:
    """Slots by host and state, hosts being evicted, and the number of hosts."""
    slots = GaugeMetricFamily("faabric_slots", "Slots of each registered worker, by state",
                              labels=["host", "state"])
    evicting = GaugeMetricFamily("faabric_host_evicting",
                                 "1 for a worker announced for eviction, else 0", labels=["host"])
    for host in hosts:
        slots.add_metric([host.name, "used"], host.used)
        slots.add_metric([host.name, "free"], max(0, host.slots - host.used))
        evicting.add_metric([host.name], int(host.evicting))
    yield slots
    yield evicting
    yield GaugeMetricFamily("faabric_hosts", "Registered workers", value=len(hosts))


def app_families(statistics: Statistics) -> Iterator[Metric]:
    """The queue, in-flight apps by state, and slots held outside of placements."""
    yield GaugeMetricFamily("faabric_queue_length", "Apps waiting for slots",
                            value=statistics.queued)
    apps = GaugeMetricFamily("faabric_apps", "Apps in flight, by state", labels=["state"])
    for state, count in (("queued", statistics.queued), ("running", statistics.running),
                         ("frozen", statistics.frozen)):
        apps.add_metric([state], count)
    yield apps
    yield GaugeMetricFamily("faabric_slots_scaled", "Slots held by scale changes (threads)",
                            value=statistics.scaled_slots)
    yield GaugeMetricFamily("faabric_slots_reserved",
                            "Slots reserved on new hosts for ranks about to move",
                            value=statistics.reserved_slots)


def event_families(events: Mapping[AppEventKind, int]) -> Iterator[Metric]:
    """The core's tally of app events, split into migrations, evictions and team changes."""
    for name, text, kinds in (
        ("faabric_migrations", "Migration steps (freezes of evicted apps included), by event",
         MIGRATION_EVENTS),
        ("faabric_evictions", "What evictions did to apps, by event", EVICTION_EVENTS),
        ("faabric_team_changes", "Changes of elastic OpenMP teams, by event", TEAM_EVENTS),
    ):
        family = CounterMetricFamily(name, text, labels=["event"])
        for kind in kinds:
            family.add_metric([kind.value], events.get(kind, 0))
        yield family


def worker_families(workers: Mapping[str, WorkerCounters]) -> Iterator[Metric]:
    """The counters workers reported, by host."""
    mpi = CounterMetricFamily("faabric_mpi_bytes_sent",
                              "Payload bytes of MPI sends, by sending worker and path",
                              labels=["host", "path"])
    memory = CounterMetricFamily("faabric_snapshot_bytes_sent",
                                 "Bytes of memory images sent between workers, by sender and kind",
                                 labels=["host", "kind"])
    for host, c in sorted(workers.items()):
        mpi.add_metric([host, "same-host"], c.mpi_bytes_same_host)
        mpi.add_metric([host, "cross-host"], c.mpi_bytes_cross_host)
        memory.add_metric([host, "snapshot"], c.snapshot_bytes)
        memory.add_metric([host, "diff"], c.diff_bytes)
        memory.add_metric([host, "rank"], c.rank_bytes)
    yield mpi
    yield memory


def app_outcome(results: Collection[GranuleResult]) -> str:
    """"succeeded" if every granule exited with 0, "cancelled" if a client cancelled the
    app, else "failed"."""
    if any(isinstance(r.outcome, Cancelled) for r in results):
        return "cancelled"
    if all(r.outcome == Exited(0) for r in results):
        return "succeeded"
    return "failed"


def granule_outcome(result: GranuleResult) -> str:
    """succeeded, exited (non-zero), trapped, timed_out, failed or cancelled."""
    match result.outcome:
        case Exited(0):
            return "succeeded"
        case Exited():
            return "exited"
        case Trapped():
            return "trapped"
        case TimedOut():
            return "timed_out"
        case Failed():
            return "failed"
        case Cancelled():
            return "cancelled"
