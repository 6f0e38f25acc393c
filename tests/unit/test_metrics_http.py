"""GET /metrics on a real planner with a fake worker over its control port: the cluster token
is needed, the format follows `Accept`, and what workers report and apps do shows up."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.unit.planner_fakes import TOKEN, FakeWorker

from faabric.config import PlannerConfig
from faabric.messages.control import WorkerCounters
from faabric.messages.types import AppSpec
from faabric.runtime import RunningPlanner

TIMEOUT = 5.0


@pytest.fixture
def planner() -> Iterator[RunningPlanner]:
    running = RunningPlanner(PlannerConfig(port=0, control_port=0, keepalive_timeout=30.0),
                             token=TOKEN).start()
    yield running
    running.close()


def get(planner: RunningPlanner, headers: dict[str, str]) -> tuple[int, str, str]:
    """(status, content type, body) of GET /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", planner.http.port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/metrics", headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        conn.close()


def samples(planner: RunningPlanner) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, _, text = get(planner, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def eventually_sample(planner: RunningPlanner, key: tuple[str, tuple[tuple[str, str], ...]],
                      value: float) -> None:
    deadline = time.monotonic() + TIMEOUT
    while samples(planner).get(key) != value:
        if time.monotonic() > deadline:
            pytest.fail(f"{key} did not become {value} within {TIMEOUT} s")
        time.sleep(0.01)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_metrics_need_the_cluster_token(planner: RunningPlanner,
                                        headers: dict[str, str]) -> None:
    status, _, body = get(planner, headers)
    assert status == 401
    assert "faabric_" not in body


def test_the_format_follows_accept(planner: RunningPlanner) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    _, kind, body = get(planner, auth)
    assert kind.startswith("text/plain")
    assert "# TYPE faabric_hosts gauge" in body
    _, kind, body = get(planner, {**auth, "Accept": "application/openmetrics-text"})
    assert kind.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")


def test_slots_apps_and_worker_counters_show_up(planner: RunningPlanner) -> None:
    worker = FakeWorker(planner, "a", 2)
    try:
        app_id = planner.service.submit(AppSpec(module="ab" * 32, size=2))
        batch = worker.next_batch()
        assert batch.app_id == app_id
        now = samples(planner)
        assert now[("faabric_slots", (("host", "a"), ("state", "used")))] == 2
        assert now[("faabric_apps", (("state", "running"),))] == 1
        worker.send(WorkerCounters(mpi_bytes_same_host=64, mpi_bytes_cross_host=0))
        worker.finish(batch)
        finished = ("faabric_apps_finished_total", (("outcome", "succeeded"),))
        eventually_sample(planner, finished, 1)
        now = samples(planner)
        assert now[("faabric_slots", (("host", "a"), ("state", "free")))] == 2
        assert now[("faabric_granules_finished_total", (("outcome", "succeeded"),))] == 2
        key = ("faabric_mpi_bytes_sent_total", (("host", "a"), ("path", "same-host")))
        assert now[key] == 64
    finally:
        worker.close()
