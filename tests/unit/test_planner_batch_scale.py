"""Batch submission, waiting for many apps, and scale changes, end to end in-process: a real
`RunningPlanner` on ephemeral ports, `PlannerClient` over HTTP, and fake workers speaking the
control protocol over real sockets (no worker processes, no wasm)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from planner_fakes import TIMEOUT, TOKEN

from faabric.config import PlannerConfig
from faabric.errors import ApiError
from faabric.messages.control import (
    ScaleGranted,
    ScaleRefused,
    ScaleRelease,
    ScaleRequest,
    TeamKeptLocal,
    TeamResized,
)
from faabric.planner.client import PlannerClient, id_ranges
from faabric.runtime import RunningPlanner

MODULE = b"\0asm\x01\0\0\0" + b"batch and scale tests"
DIGEST = hashlib.sha256(MODULE).hexdigest()
OTHER = hashlib.sha256(b"never uploaded").hexdigest()


@pytest.fixture(scope="module")
def shared_planner() -> Iterator[RunningPlanner]:
    config = PlannerConfig(port=0, control_port=0, keepalive_timeout=30.0)
    running = RunningPlanner(config, token=TOKEN).start()
    running.service.modules.put(DIGEST, MODULE)
    yield running
    running.close()


@pytest.fixture
def planner(shared_planner: RunningPlanner) -> Iterator[RunningPlanner]:
    yield shared_planner
    deadline = time.monotonic() + TIMEOUT
    while shared_planner.service.hosts() and time.monotonic() < deadline:
        time.sleep(0.01)  # fake workers are closed
    shared_planner.service.reset()


def app(size: int = 1, **fields: Any) -> dict[str, Any]:
    return {"module": DIGEST, "size": size, **fields}


def used(planner: RunningPlanner) -> dict[str, int]:
    return {host.name: host.used for host in planner.service.hosts()}


# -- batch submission and waiting for many apps --------------------------------------------------


def test_batch_runs_every_app_and_one_wait_returns_them_all(
    client: PlannerClient, workers: Any
) -> None:
    worker = workers("w", 2)
    ids = client.submit_batch([app(program=f"p{i}") for i in range(5)])
    assert ids == list(range(ids[0], ids[0] + 5))
    docs: list[dict[str, Any]] = []
    waiting = threading.Thread(target=lambda: docs.extend(client.wait_apps(ids, TIMEOUT)))
    waiting.start()
    for _ in range(5):  # two slots: the planner sends the next app as each one finishes
        worker.finish(worker.next_batch())
    waiting.join(TIMEOUT)
    assert [d["app_id"] for d in docs] == ids
    assert [d["program"] for d in docs] == [f"p{i}" for i in range(5)]
    assert all(d["state"] == "finished" and d["status"] == 0 for d in docs)


def test_many_results_in_one_call_without_waiting(client: PlannerClient, workers: Any) -> None:
    worker = workers("w", 4)
    ids = client.submit_batch([app(), app(2)])
    worker.finish(worker.next_batch())
    assert client.apps(ids[:1], wait=TIMEOUT)[0]["state"] == "finished"
    docs = client.apps(ids)  # without waiting: as they are
    assert [d["state"] for d in docs] == ["finished", "running"]
    assert client.apps(ids[::-1], wait=0.05)[1]["finished"] is not None


def test_wait_returns_when_time_runs_out(client: PlannerClient, workers: Any) -> None:
    workers("w", 1)
    ids = client.submit_batch([app(), app()])
    start = time.monotonic()
    docs = client.apps(ids, wait=0.2)
    assert time.monotonic() - start >= 0.2
    assert [d["state"] for d in docs] == ["running", "queued"]


def test_batch_is_all_or_nothing(client: PlannerClient, workers: Any) -> None:
    workers("w", 2)
    cases = [
        ([app(), app(3)], 409, "apps[1]: not enough slots: the app needs 3, the cluster has 2"),
        ([app(), {"module": OTHER}], 404, f"apps[1]: no module {OTHER} was uploaded"),
        ([app(), app(size=0)], 400, "apps[1]: 'size' must be an integer"),
        ([], 400, "'apps' must be a list of 1 to"),
    ]
    for apps, status, reason in cases:
        with pytest.raises(ApiError) as caught:
            client.submit_batch(apps)
        assert caught.value.status == status
        assert caught.value.reason.startswith(reason)
    assert client.status()["apps"] == []


@pytest.mark.parametrize(
    ("query", "status", "reason"),
    [
        ("ids=1-x", 400, "'ids' must be app ids or ranges"),
        ("ids=5-2", 400, "'ids' must name 1 to"),
        ("ids=999999", 404, "no app 999999"),
        ("wait=1", 400, "'wait' needs 'ids'"),
        ("ids=1&wait=-1", 400, "'wait' must be from 0 to"),
    ],
)
def test_bad_id_queries(client: PlannerClient, query: str, status: int, reason: str) -> None:
    with pytest.raises(ApiError) as caught:
        client._call("GET", f"/v1/apps?{query}")
    assert (caught.value.status, caught.value.reason[: len(reason)]) == (status, reason)


def test_id_ranges() -> None:
    assert id_ranges([1, 2, 3, 7, 9, 10, 4]) == "1-3,7,9-10,4"
    assert id_ranges([5]) == "5"


# -- scale changes over the control port ---------------------------------------------------------


def test_scale_request_is_granted_and_shown_in_status(
    planner: RunningPlanner, client: PlannerClient, workers: Any
) -> None:
    worker = workers("w", 4)
    app_id = client.submit(app())["app_id"]
    batch = worker.next_batch()
    worker.send(ScaleRequest(app_id, 1, 3))
    assert worker.next_answer() == ScaleGranted(1, (("w", 3),))
    assert used(planner) == {"w": 4}
    (listed,) = client.status()["apps"]
    assert listed["scaled"] == [{"host": "w", "slots": 3}]
    assert client.app(app_id)["scaled"] == [{"host": "w", "slots": 3}]
    worker.send(ScaleRelease(app_id, 2))
    worker.send(ScaleRequest(app_id, 2, 3))  # 2 free now: refused, and told how many
    assert worker.next_answer() == ScaleRefused(2, "3 slots asked, 2 free", 2)
    worker.finish(batch)  # finishing releases the last granted slot too
    assert client.wait_app(app_id, TIMEOUT)["scaled"] == []
    assert used(planner) == {"w": 0}


def test_scale_change_spills_to_another_host(
    planner: RunningPlanner, client: PlannerClient, workers: Any
) -> None:
    small, big = workers("a", 2), workers("b", 3)
    app_id = client.submit(app())["app_id"]
    big.next_batch()  # b has the most free slots
    big.send(ScaleRequest(app_id, 7, 4))
    assert big.next_answer() == ScaleGranted(7, (("b", 2), ("a", 2)), (("a", ""),))
    assert used(planner) == {"a": 2, "b": 3}
    assert small.answers.empty()  # only the requester is told


def test_scale_change_is_answered_while_apps_wait(
    planner: RunningPlanner, client: PlannerClient, workers: Any
) -> None:
    worker = workers("w", 3)
    first = client.submit(app())["app_id"]
    worker.next_batch()
    client.submit(app(3))  # queued behind the running app
    worker.send(ScaleRequest(first, 1, 2))
    assert worker.next_answer() == ScaleGranted(1, (("w", 2),))
    worker.send(ScaleRequest(first + 99, 2, 1))
    assert worker.next_answer() == ScaleRefused(2, f"app {first + 99} is not running", 0)


def test_lost_worker_with_granted_slots_ends_the_app(
    planner: RunningPlanner, client: PlannerClient, workers: Any
) -> None:
    owner, helper = workers("a", 1), workers("b", 2)
    app_id = client.submit(app())["app_id"]
    owner_batch = helper.next_batch()  # b has more free slots
    helper.send(ScaleRequest(app_id, 1, 2))
    assert helper.next_answer() == ScaleGranted(1, (("b", 1), ("a", 1)), (("a", ""),))
    owner.close()  # the threads on a are lost
    doc = client.wait_app(app_id, TIMEOUT)
    assert doc["status"] != 0
    assert "cancelled" in doc["results"][0]["outcome"]["message"]
    assert helper.stops.get(timeout=TIMEOUT) == app_id
    helper.finish(owner_batch)


def test_team_reports_become_events_of_the_app(
    planner: RunningPlanner, client: PlannerClient, workers: Any
) -> None:
    worker = workers("w", 4)
    app_id = client.submit(app())["app_id"]
    batch = worker.next_batch()
    worker.send(TeamResized(app_id, 0, 3))
    worker.send(TeamKeptLocal(app_id, 0, 4, "across 2 hosts 0.9 s, on 1 host 0.3 s"))
    worker.send(TeamKeptLocal(app_id + 99, 0, 4, "an unknown app: ignored"))
    worker.send(ScaleRequest(app_id, 1, 1))  # answered after the reports before it
    assert isinstance(worker.next_answer(), ScaleGranted)
    events = [(e["kind"], e["threads"], e["ranks"], e["hosts"], e["epoch"], e["detail"])
              for e in client.app(app_id)["events"]]
    assert events == [
        ("resized", 3, [0], ["w"], 0, "resized: granule 0 on w runs 3 threads"),
        ("kept-local", 4, [0], ["w"], 0, "kept-local: granule 0 on w runs its 4-thread team "
         "here: across 2 hosts 0.9 s, on 1 host 0.3 s")]
    worker.finish(batch)
    client.wait_app(app_id, TIMEOUT)
    worker.send(TeamKeptLocal(app_id, 0, 4, "too late: ignored"))
    worker.send(ScaleRequest(app_id, 2, 1))
    assert isinstance(worker.next_answer(), ScaleRefused)
    assert len(client.app(app_id)["events"]) == 2
