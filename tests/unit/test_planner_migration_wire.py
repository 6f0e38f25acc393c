"""The planner's migration protocol over real sockets: fake workers send `MigrationPoints`,
`MigrationClaim` and `RankMoved` on the control port and receive `MigrationOffer`,
`MigrationStart` (with every involved worker's data-plane address), `MigrationCancel` and
`MigrationWithdrawn`; the HTTP API shows the moves. No worker processes, no wasm."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from planner_fakes import TIMEOUT, TOKEN, FakeWorker

from faabric.config import PlannerConfig
from faabric.messages.control import (
    MigrationCancel,
    MigrationClaim,
    MigrationOffer,
    MigrationPoints,
    MigrationStart,
    MigrationWithdrawn,
    RankMoved,
    Registered,
    Report,
)
from faabric.messages.types import Exited, GranuleResult
from faabric.planner.client import PlannerClient
from faabric.runtime import RunningPlanner

MODULE = b"\0asm\x01\0\0\0" + b"migration wire tests"
DIGEST = hashlib.sha256(MODULE).hexdigest()
OFFER_TIMEOUT = 0.2

@pytest.fixture
def planner() -> Iterator[RunningPlanner]:
    config = PlannerConfig(port=0, control_port=0, keepalive_timeout=30.0,
                           migration_offer_timeout=OFFER_TIMEOUT)
    running = RunningPlanner(config, token=TOKEN).start()
    running.service.modules.put(DIGEST, MODULE)
    yield running
    running.close()


@pytest.fixture
def worker(planner: RunningPlanner) -> Iterator[Callable[[str, int], FakeWorker]]:
    started: list[FakeWorker] = []

    def make(name: str, slots: int) -> FakeWorker:
        address = f"10.0.0.{slots}:{1000 + len(name)}"
        started.append(FakeWorker(planner, name, slots, address))
        assert isinstance(started[-1].first, Registered)
        return started[-1]

    yield make
    for each in started:
        each.close()


def _app_on_two_hosts(
    client: PlannerClient, worker: Callable[[str, int], FakeWorker]
) -> tuple[int, FakeWorker, FakeWorker]:
    a, b = worker("a", 2), worker("b", 2)
    app_id = int(client.submit({"module": DIGEST, "size": 4})["app_id"])
    assert b.next_batch().placement == ("b", "b", "a", "a")
    a.next_batch()
    b.conn.send(MigrationPoints(app_id))  # rank 0 runs on b
    return app_id, a, b


def test_offer_claim_start_and_moves(
    planner: RunningPlanner, client: PlannerClient, worker: Any
) -> None:
    app_id, a, b = _app_on_two_hosts(client, worker)
    assert b.no_more_moves()  # no slot is free yet
    c = worker("c", 4)
    assert b.next_move() == MigrationOffer(app_id, 1)
    b.conn.send(MigrationClaim(app_id, 1))
    peers = tuple((w.name, w.address) for w in (a, b, c))
    for each in (a, b, c):
        assert each.next_move() == MigrationStart(app_id, 1, ("c",) * 4, peers)
    for index, source in enumerate((b, b, a, a)):
        source.conn.send(RankMoved(app_id, index, 1, "c"))
    deadline = time.monotonic() + TIMEOUT
    while client.app(app_id)["migrations"] != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    doc = client.app(app_id)
    assert [p["host"] for p in doc["placement"]] == ["c"] * 4
    assert [e["kind"] for e in doc["events"]] == ["offered", "started", "migrated"]
    assert [app["migrations"] for app in client.status()["apps"]] == [1]
    assert {h["name"]: h["used"] for h in client.hosts()} == {"a": 0, "b": 0, "c": 4}
    a.conn.send(MigrationClaim(app_id, 1))  # too late: the migration is over
    reason = "no offer is open (epoch 1 is gone)"
    assert a.next_move() == MigrationCancel(app_id, 1, reason)  # the claimer, and
    assert c.next_move() == MigrationCancel(app_id, 1, reason)  # every host of the app
    assert b.no_more_moves()
    for index in range(4):
        c.conn.send(Report(GranuleResult(app_id, index, "c", Exited(0))))
    assert client.wait_app(app_id, TIMEOUT)["status"] == 0


def test_an_unclaimed_offer_is_withdrawn(
    planner: RunningPlanner, client: PlannerClient, worker: Any
) -> None:
    app_id, _, b = _app_on_two_hosts(client, worker)
    worker("c", 4)
    assert b.next_move() == MigrationOffer(app_id, 1)
    time.sleep(OFFER_TIMEOUT * 1.5)
    planner.service.tick()
    assert b.next_move() == MigrationWithdrawn(app_id, 1)
    assert {h["name"]: h["used"] for h in client.hosts()} == {"a": 2, "b": 2, "c": 0}
