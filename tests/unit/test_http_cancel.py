"""Cancelling apps over the HTTP API, in-process: `DELETE /v1/apps/{id}`, apps bound to their
client's connection (`cancel_on_disconnect`), and clients that go away while they wait. A
real `RunningPlanner` on ephemeral ports and fake workers over real sockets."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from planner_fakes import TOKEN, FakeWorker

from faabric.config import PlannerConfig
from faabric.errors import ApiError
from faabric.messages.types import Cancelled, Exited
from faabric.planner.client import PlannerClient
from faabric.runtime import RunningPlanner

TIMEOUT = 5.0
MODULE = b"\0asm\x01\0\0\0" + b"fake module for the cancel tests"
DIGEST = hashlib.sha256(MODULE).hexdigest()
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Workers = Callable[[str, int], FakeWorker]


def eventually(condition: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)
    return value


@pytest.fixture(scope="module")
def shared_planner() -> Iterator[RunningPlanner]:
    running = RunningPlanner(PlannerConfig(port=0, control_port=0, keepalive_timeout=30.0),
                             token=TOKEN).start()
    running.service.modules.put(DIGEST, MODULE)
    yield running
    running.close()


@pytest.fixture
def planner(shared_planner: RunningPlanner) -> Iterator[RunningPlanner]:
    yield shared_planner
    eventually(lambda: shared_planner.service.hosts() == [])
    shared_planner.service.reset()


def used(planner: RunningPlanner) -> dict[str, int]:
    return {host.name: host.used for host in planner.service.hosts()}


def state(planner: RunningPlanner, app_id: int) -> str:
    view = planner.service.app(app_id)
    assert view is not None
    return str(view.state)


def request(planner: RunningPlanner, method: str, path: str,
            body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", planner.http.port, timeout=TIMEOUT)
    try:
        payload = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=payload, headers=AUTH)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_delete_ends_a_running_app_at_once_and_stops_its_granules(
    planner: RunningPlanner, client: PlannerClient, workers: Workers
) -> None:
    worker = workers("w1", 2)
    app_id = client.submit({"module": DIGEST, "size": 2})["app_id"]
    queued = client.submit({"module": DIGEST, "size": 1})["app_id"]
    batch = worker.next_batch()
    status, doc = request(planner, "DELETE", f"/v1/apps/{app_id}")
    assert status == 200
    assert (doc["state"], doc["status"], doc["cancelled"]) == ("finished", 143, True)
    assert [r["outcome"] for r in doc["results"]] == [
        {"kind": "cancelled", "message": "cancelled: by client"}] * 2
    assert worker.stops.get(timeout=TIMEOUT) == app_id
    assert used(planner) == {"w1": 2}  # until the worker says its granules stopped
    for index in batch.indices:
        worker.report(batch, index, Cancelled("the app was stopped"))
    assert worker.next_batch().app_id == queued  # the freed slots go to the next app
    assert [r["outcome"] for r in client.app(app_id)["results"]] == [  # the cancellation stands
        r["outcome"] for r in doc["results"]]


def test_delete_is_idempotent_and_keeps_a_finished_app_as_it_was(
    planner: RunningPlanner, client: PlannerClient, workers: Workers
) -> None:
    worker = workers("w1", 1)
    app_id = client.submit({"module": DIGEST})["app_id"]
    batch = worker.next_batch()
    worker.report(batch, 0, Exited(0), stdout=b"done\n")
    client.wait_app(app_id, TIMEOUT)
    doc = client.cancel(app_id)
    assert (doc["status"], doc["cancelled"]) == (0, False)
    assert doc["results"][0]["stdout"] == b"done\n"
    assert client.cancel(app_id)["cancelled"] is False
    assert worker.stops.empty()


def test_delete_a_queued_app(planner: RunningPlanner, client: PlannerClient,
                             workers: Workers) -> None:
    workers("w1", 1)
    client.submit({"module": DIGEST})
    app_id = client.submit({"module": DIGEST})["app_id"]
    doc = client.cancel(app_id)
    assert doc["cancelled"] and doc["started"] is None
    assert [r["host"] for r in doc["results"]] == [""]
    assert state(planner, app_id) == "finished"


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/v1/apps/999", 404, "no app 999 (never submitted, or reset)"),
    ("/v1/apps/abc", 400, "an app id is a positive integer"),
])
def test_delete_errors_are_json(planner: RunningPlanner, path: str, status: int,
                                message: str) -> None:
    assert request(planner, "DELETE", path) == (status, {"error": message})


def test_client_cancel_of_an_unknown_app_raises(client: PlannerClient) -> None:
    with pytest.raises(ApiError) as info:
        client.cancel(424242)
    assert info.value.status == 404


def test_a_bad_cancel_on_disconnect_is_400(planner: RunningPlanner) -> None:
    status, doc = request(planner, "POST", "/v1/apps?cancel_on_disconnect=maybe",
                          {"module": DIGEST})
    assert status == 400 and "cancel_on_disconnect" in doc["error"]


def test_a_bound_app_is_cancelled_when_its_client_closes_the_connection(
    planner: RunningPlanner, workers: Workers
) -> None:
    worker = workers("w1", 1)
    bound = PlannerClient(planner.url, token=TOKEN, timeout=TIMEOUT)
    app_id = bound.submit({"module": DIGEST}, cancel_on_disconnect=True)["app_id"]
    worker.next_batch()
    assert state(planner, app_id) == "running"
    bound.close()
    assert worker.stops.get(timeout=TIMEOUT) == app_id
    view = planner.service.app(app_id)
    assert view is not None
    assert [r.outcome for r in view.results] == [Cancelled("by client (its connection closed)")]


def test_a_client_closing_during_a_bound_wait_cancels_at_once(
    planner: RunningPlanner, client: PlannerClient, workers: Workers
) -> None:
    worker = workers("w1", 1)
    app_id = client.submit({"module": DIGEST})["app_id"]
    worker.next_batch()
    conn = http.client.HTTPConnection("127.0.0.1", planner.http.port, timeout=TIMEOUT)
    conn.request("GET", f"/v1/apps/{app_id}?wait=60&cancel_on_disconnect=true", headers=AUTH)
    time.sleep(0.2)  # the request is waiting
    started = time.monotonic()
    conn.close()
    assert worker.stops.get(timeout=TIMEOUT) == app_id
    assert time.monotonic() - started < 2.0  # not when the 60 s wait runs out
    assert state(planner, app_id) == "finished"


def test_without_the_flag_a_client_may_go_away_and_the_app_runs_on(
    planner: RunningPlanner, client: PlannerClient, workers: Workers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = workers("w1", 1)
    app_id = client.submit({"module": DIGEST})["app_id"]
    batch = worker.next_batch()
    conn = http.client.HTTPConnection("127.0.0.1", planner.http.port, timeout=TIMEOUT)
    conn.request("GET", f"/v1/apps/{app_id}?wait=60", headers=AUTH)
    time.sleep(0.2)
    with caplog.at_level(logging.DEBUG, logger="faabric.planner.http"):
        conn.close()
        worker.report(batch, 0, Exited(0))  # the waiting request wakes to a closed socket
        assert client.wait_app(app_id, TIMEOUT)["status"] == 0
        time.sleep(0.2)
    assert worker.stops.empty()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_waiting_client_that_goes_away_is_not_an_internal_error(
    planner: RunningPlanner, client: PlannerClient, workers: Workers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = workers("w1", 1)
    app_id = client.submit({"module": DIGEST})["app_id"]
    batch = worker.next_batch()
    errors: list[BaseException] = []

    def wait_then_vanish() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", planner.http.port, timeout=TIMEOUT)
        try:
            conn.request("GET", f"/v1/apps/{app_id}?wait=60", headers=AUTH)
            assert conn.sock is not None
            conn.sock.shutdown(2)  # gone before the answer comes
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with caplog.at_level(logging.DEBUG):
        thread = threading.Thread(target=wait_then_vanish)
        thread.start()
        thread.join(TIMEOUT)
        worker.report(batch, 0, Exited(0))
        client.wait_app(app_id, TIMEOUT)
        time.sleep(0.2)
    assert not errors
    assert not [r for r in caplog.records if "internal error" in r.getMessage()]
    assert not [r for r in caplog.records if r.exc_info]
