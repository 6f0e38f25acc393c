"""Eviction, freeze and thaw over real sockets: a client evicts a worker through the HTTP API,
fake workers claim the freeze on the control port, receive `MigrationFreeze` (with the park's
data-plane address), report their ranks parked, and the park receives `ThawApp` (with every
new host's address) once a worker joins; `StopApp` reaches the park on a reset. No worker
processes, no wasm."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from planner_fakes import TIMEOUT, TOKEN, FakeWorker

from faabric import cli
from faabric.config import PlannerConfig
from faabric.messages.control import (
    MigrationClaim,
    MigrationFreeze,
    MigrationOffer,
    MigrationPoints,
    RankMoved,
    Registered,
    RunBatch,
    StopApp,
    ThawApp,
)
from faabric.planner.client import PlannerClient
from faabric.runtime import RunningPlanner

MODULE = b"\0asm\x01\0\0\0" + b"spot wire tests"
DIGEST = hashlib.sha256(MODULE).hexdigest()


@pytest.fixture
def planner() -> Iterator[RunningPlanner]:
    config = PlannerConfig(port=0, control_port=0, keepalive_timeout=30.0)
    running = RunningPlanner(config, token=TOKEN).start()
    running.service.modules.put(DIGEST, MODULE)
    yield running
    running.close()


@pytest.fixture
def worker(planner: RunningPlanner) -> Iterator[Callable[[str, int], FakeWorker]]:
    started: list[FakeWorker] = []

    def make(name: str, slots: int) -> FakeWorker:
        address = f"10.0.1.{slots}:{2000 + len(name)}"
        started.append(FakeWorker(planner, name, slots, address))
        assert isinstance(started[-1].first, Registered)
        return started[-1]

    yield make
    for each in started:
        each.close()


@pytest.fixture
def client(planner: RunningPlanner) -> Iterator[PlannerClient]:
    planner_client = PlannerClient(planner.url, token=TOKEN, timeout=TIMEOUT)
    yield planner_client
    planner_client.close()


def validate(client: PlannerClient, schema: str, doc: Any) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    spec = client._call("GET", "/v1/openapi.json")
    root = {"$ref": f"#/components/schemas/{schema}", "components": spec["components"]}
    jsonschema.Draft202012Validator(root).validate(doc)


def wait_for(condition: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.01)
    return value


def _frozen_app(
    client: PlannerClient, worker: Callable[[str, int], FakeWorker]
) -> tuple[int, FakeWorker, FakeWorker]:
    """App 1 on b, b and app 2 on a, a; b is evicted, app 1 frozen on a."""
    a, b = worker("a", 2), worker("b", 2)
    first = int(client.submit({"module": DIGEST, "size": 2})["app_id"])
    assert isinstance(b.next_message(), RunBatch)
    client.submit({"module": DIGEST, "size": 2})
    assert isinstance(a.next_message(), RunBatch)
    b.conn.send(MigrationPoints(first))
    assert client.evict("b") == {"host": "b", "evicting": True}
    assert b.next_message() == MigrationOffer(first, 1)
    b.conn.send(MigrationClaim(first, 1))
    assert b.next_message() == MigrationFreeze(first, 1, "a", (("a", a.address),))
    for index in (0, 1):
        b.conn.send(RankMoved(first, index, 1, "a"))
    wait_for(lambda: client.app(first)["state"] == "frozen")
    return first, a, b


def test_an_evicted_app_is_frozen_and_thawed_on_a_new_worker(
    client: PlannerClient, worker: Callable[[str, int], FakeWorker]
) -> None:
    app_id, a, _ = _frozen_app(client, worker)
    hosts = {h["name"]: (h["used"], h["evicting"]) for h in client.hosts()}
    assert hosts == {"a": (2, False), "b": (0, True)}
    status = client.status()
    assert cli.format_status(status).splitlines()[2] == "  b  0/2 slots used  evicting"
    assert "app 1  main  frozen  0/2 done  [kept on a]" in cli.format_status(status)
    validate(client, "Status", status)
    c = worker("c", 4)
    thaw = a.next_message()
    assert thaw == ThawApp(app_id, 2, ("c", "c"), (("c", c.address),))
    for index in (0, 1):
        c.report_index(app_id, index)
    doc = client.wait_app(app_id, TIMEOUT)
    assert doc["state"] == "finished" and doc["status"] == 0
    assert [r["host"] for r in doc["results"]] == ["c", "c"]
    kinds = [e["kind"] for e in doc["events"]]
    assert kinds == ["evicted", "offered", "started", "frozen", "thawed"]
    request = urllib.request.Request(f"{client.url}/v1/apps/{app_id}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
        validate(client, "App", json.loads(answer.read()))  # JSON: bytes as text


def test_a_reset_stops_the_parked_ranks_on_the_park(
    client: PlannerClient, worker: Callable[[str, int], FakeWorker]
) -> None:
    app_id, a, _ = _frozen_app(client, worker)
    client.reset()
    stops = {a.next_message(), a.next_message()}
    assert stops == {StopApp(app_id), StopApp(app_id + 1)}


def test_the_cli_evicts_and_names_an_unknown_host(
    planner: RunningPlanner, worker: Callable[[str, int], FakeWorker],
    capsys: pytest.CaptureFixture[str],
) -> None:
    worker("a", 1)
    assert cli.main(["evict", "--planner", planner.url, "a"]) == 0
    assert "worker a is being evicted" in capsys.readouterr().err
    assert planner.service.hosts()[0].evicting
    assert cli.main(["evict", "--planner", planner.url, "zz"]) == 1
    assert capsys.readouterr().err.strip().endswith("no worker named zz is registered")
