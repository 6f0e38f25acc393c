"""Eviction, freeze and thaw over real sockets: a client evicts a worker through the HTTP API,
fake workers claim the freeze on the control port, receive `MigrationFreeze` (with the park's
data-plane address), report their ranks parked, and the park receives `ThawApp` (with every
new host's address) once a worker joins; `StopApp` reaches the park on a reset. No worker
processes, no wasm."""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from planner_fakes import TIMEOUT

from faabric import __version__, cli
from faabric.config import PlannerConfig
from faabric.errors import TimeoutError_, TransportError
from faabric.messages.control import (
    CONTROL_CODEC,
    MigrationClaim,
    MigrationFreeze,
    MigrationOffer,
    MigrationPoints,
    RankMoved,
    Register,
    Registered,
    Report,
    RunBatch,
    StopApp,
    ThawApp,
)
from faabric.messages.types import Exited, GranuleResult
from faabric.planner.client import PlannerClient
from faabric.runtime import RunningPlanner
from faabric.transport.framing import FramedSocket, connect

MODULE = b"\0asm\x01\0\0\0" + b"spot wire tests"
DIGEST = hashlib.sha256(MODULE).hexdigest()


class Worker:
    """A fake worker that records every message from the planner."""

    def __init__(self, planner: RunningPlanner, name: str, slots: int) -> None:
        self.name = name
        self.address = f"10.0.1.{slots}:{2000 + len(name)}"
        sock = connect("127.0.0.1", planner.control.port, timeout=TIMEOUT)
        self.conn = FramedSocket(sock, CONTROL_CODEC, io_timeout=TIMEOUT)
        self.conn.send(Register(name, slots, __version__, self.address))
        assert isinstance(self.conn.recv(TIMEOUT), Registered)
        self.inbox: queue.Queue[Any] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self.conn.closed:
            try:
                self.inbox.put(self.conn.recv(timeout=0.05))
            except TimeoutError_:
                continue
            except TransportError:
                return

    def next(self) -> Any:
        return self.inbox.get(timeout=TIMEOUT)

    def report(self, app_id: int, index: int) -> None:
        self.conn.send(Report(GranuleResult(app_id, index, self.name, Exited(0))))

    def close(self) -> None:
        self.conn.close()
        self._reader.join(timeout=TIMEOUT)


@pytest.fixture
def planner() -> Iterator[RunningPlanner]:
    config = PlannerConfig(port=0, control_port=0, keepalive_timeout=30.0)
    running = RunningPlanner(config).start()
    running.service.modules.put(DIGEST, MODULE)
    yield running
    running.close()


@pytest.fixture
def worker(planner: RunningPlanner) -> Iterator[Callable[[str, int], Worker]]:
    started: list[Worker] = []

    def make(name: str, slots: int) -> Worker:
        started.append(Worker(planner, name, slots))
        return started[-1]

    yield make
    for each in started:
        each.close()


@pytest.fixture
def client(planner: RunningPlanner) -> Iterator[PlannerClient]:
    planner_client = PlannerClient(planner.url, timeout=TIMEOUT)
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
    client: PlannerClient, worker: Callable[[str, int], Worker]
) -> tuple[int, Worker, Worker]:
    """App 1 on b, b and app 2 on a, a; b is evicted, app 1 frozen on a."""
    a, b = worker("a", 2), worker("b", 2)
    first = int(client.submit({"module": DIGEST, "size": 2})["app_id"])
    assert isinstance(b.next(), RunBatch)
    client.submit({"module": DIGEST, "size": 2})
    assert isinstance(a.next(), RunBatch)
    b.conn.send(MigrationPoints(first))
    assert client.evict("b") == {"host": "b", "evicting": True}
    assert b.next() == MigrationOffer(first, 1)
    b.conn.send(MigrationClaim(first, 1))
    assert b.next() == MigrationFreeze(first, 1, "a", (("a", a.address),))
    for index in (0, 1):
        b.conn.send(RankMoved(first, index, 1, "a"))
    wait_for(lambda: client.app(first)["state"] == "frozen")
    return first, a, b


def test_an_evicted_app_is_frozen_and_thawed_on_a_new_worker(
    client: PlannerClient, worker: Callable[[str, int], Worker]
) -> None:
    app_id, a, _ = _frozen_app(client, worker)
    hosts = {h["name"]: (h["used"], h["evicting"]) for h in client.hosts()}
    assert hosts == {"a": (2, False), "b": (0, True)}
    status = client.status()
    assert cli.format_status(status).splitlines()[2] == "  b  0/2 slots used  evicting"
    assert "app 1  main  frozen  0/2 done  [kept on a]" in cli.format_status(status)
    validate(client, "Status", status)
    c = worker("c", 4)
    thaw = a.next()
    assert thaw == ThawApp(app_id, 2, ("c", "c"), (("c", c.address),))
    for index in (0, 1):
        c.report(app_id, index)
    doc = client.wait_app(app_id, TIMEOUT)
    assert doc["state"] == "finished" and doc["status"] == 0
    assert [r["host"] for r in doc["results"]] == ["c", "c"]
    kinds = [e["kind"] for e in doc["events"]]
    assert kinds == ["evicted", "offered", "started", "frozen", "thawed"]
    with urllib.request.urlopen(f"{client.url}/v1/apps/{app_id}", timeout=TIMEOUT) as answer:
        validate(client, "App", json.loads(answer.read()))  # JSON: bytes as text


def test_a_reset_stops_the_parked_ranks_on_the_park(
    client: PlannerClient, worker: Callable[[str, int], Worker]
) -> None:
    app_id, a, _ = _frozen_app(client, worker)
    client.reset()
    stops = {a.next(), a.next()}
    assert stops == {StopApp(app_id), StopApp(app_id + 1)}


def test_the_cli_evicts_and_names_an_unknown_host(
    planner: RunningPlanner, worker: Callable[[str, int], Worker],
    capsys: pytest.CaptureFixture[str],
) -> None:
    worker("a", 1)
    assert cli.main(["evict", "--planner", planner.url, "a"]) == 0
    assert "worker a is being evicted" in capsys.readouterr().err
    assert planner.service.hosts()[0].evicting
    assert cli.main(["evict", "--planner", planner.url, "zz"]) == 1
    assert capsys.readouterr().err.strip().endswith("no worker named zz is registered")
