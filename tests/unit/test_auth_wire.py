"""The cluster token on real sockets, in-process: the planner's HTTP API and control port, a
real `Worker`, and the data plane between two workers all refuse whoever does not know it."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from planner_fakes import TIMEOUT, TOKEN, FakeWorker

from faabric.config import PlannerConfig
from faabric.errors import AuthError
from faabric.messages.control import Registered, Report
from faabric.messages.types import Batch, Exited, GranuleResult
from faabric.mpi.network import DataPlane
from faabric.planner.client import PlannerClient
from faabric.planner.http import _ROUTES
from faabric.runtime import RunningPlanner
from faabric.transport.auth import CONTROL, connect_handshake
from faabric.transport.framing import connect
from faabric.wasm.host import GuestFault
from faabric.worker.service import PlannerAddress, Worker

WRONG = "not-the-cluster-token-at-all-0000"
MODULE = b"\0asm\x01\0\0\0auth wire tests"


@pytest.fixture(scope="module")
def planner() -> Iterator[RunningPlanner]:
    config = PlannerConfig(port=0, control_port=0, keepalive_timeout=30.0)
    running = RunningPlanner(config, token=TOKEN).start()
    yield running
    running.close()


def request(planner: RunningPlanner, method: str, path: str,
            authorization: str | None) -> tuple[int, http.client.HTTPResponse, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", planner.http.port, timeout=TIMEOUT)
    headers = {} if authorization is None else {"Authorization": authorization}
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    return response.status, response, json.loads(raw) if raw else None


# -- HTTP -----------------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, f"Bearer {WRONG}", TOKEN, f"Basic {TOKEN}",
                                           "Bearer", f"Bearer {TOKEN}x"])
@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/status"), ("POST", "/v1/reset"),
                                              ("GET", "/v1/openapi.json"),
                                              ("GET", "/v1/nowhere")])
def test_requests_without_the_token_are_401(
    planner: RunningPlanner, authorization: str | None, method: str, path: str
) -> None:
    status, response, doc = request(planner, method, path, authorization)
    assert status == 401
    assert response.getheader("WWW-Authenticate") == 'Bearer realm="faabric"'
    assert set(doc) == {"error"} and "token" in doc["error"] and "\n" not in doc["error"]


def test_health_answers_anyone_and_the_scheme_is_case_blind(planner: RunningPlanner) -> None:
    assert request(planner, "GET", "/v1/health", None)[0] == 200
    assert request(planner, "GET", "/v1/health", f"Bearer {WRONG}")[0] == 200
    assert request(planner, "HEAD", "/v1/health", None)[0] == 401
    assert request(planner, "GET", "/v1/status", f"bearer {TOKEN}")[0] == 200


def test_an_unauthenticated_body_is_not_read(planner: RunningPlanner) -> None:
    with socket.create_connection(("127.0.0.1", planner.http.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"PUT /v1/modules/" + b"0" * 64 + b" HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 1000000000\r\n\r\n")
        reply = sock.makefile("rb").read()  # answered and closed without the gigabyte
    assert reply.startswith(b"HTTP/1.1 401")
    assert b"Connection: close" in reply


def test_the_client_says_its_token_was_refused(planner: RunningPlanner) -> None:
    client = PlannerClient(planner.url, token=WRONG, timeout=TIMEOUT)
    assert client.health()["status"] == "ok"
    with pytest.raises(AuthError, match=r"^the planner at http://127\.0\.0\.1:\d+ refused "
                       r"this token \(the cluster token is not valid\)$"):
        client.status()
    client.close()


def test_the_openapi_document_asks_for_the_token_everywhere_but_health() -> None:
    spec = json.loads(resources.files("faabric.planner").joinpath("openapi.json").read_text())
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert spec["security"] == [{"bearer": []}]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            if (method, path) == ("get", "/v1/health"):
                assert op["security"] == [] and "401" not in op["responses"]
            else:
                assert op["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}
    assert len(_ROUTES) == sum(len([m for m in i if m != "parameters"])
                               for i in spec["paths"].values())


# -- control port ---------------------------------------------------------------------------


def test_a_wrong_token_is_refused_on_the_control_port(
    planner: RunningPlanner, caplog: pytest.LogCaptureFixture
) -> None:
    sock = connect("127.0.0.1", planner.control.port, timeout=TIMEOUT)
    with caplog.at_level(logging.WARNING, logger="faabric.transport.auth"):
        with pytest.raises(AuthError, match=r"^the planner refused this worker's token$"):
            connect_handshake(sock, WRONG, CONTROL, peer="the planner", me="worker")
        deadline = time.monotonic() + TIMEOUT
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
    sock.close()
    (record,) = caplog.records
    assert record.getMessage().startswith("refused a control connection from 127.0.0.1:")
    assert record.getMessage().endswith("it does not know the cluster token")
    worker = FakeWorker(planner, "after", 1)  # the planner keeps serving
    assert isinstance(worker.first, Registered)
    worker.close()


class _Idle:
    def run(self, batch: Batch, index: int) -> GranuleResult:
        return GranuleResult(batch.app_id, index, "w", Exited(0))

    def stop(self, app_id: int, reason: str) -> None: ...


def test_a_worker_with_a_wrong_token_gives_up_at_once(planner: RunningPlanner) -> None:
    worker = Worker(name="w", slots=1, runner=_Idle(), reconnect_for=30.0, token=WRONG,  # type: ignore[arg-type]
                    locate_planner=lambda: PlannerAddress("127.0.0.1", planner.control.port))
    started = time.monotonic()
    with pytest.raises(AuthError, match=r"^the planner at 127\.0\.0\.1:\d+ refused this "
                       r"worker's token$"):
        worker.serve()
    worker.stop()
    assert time.monotonic() - started < 5
    assert planner.service.hosts() == []


def test_a_forged_report_for_another_workers_granule_is_ignored(
    planner: RunningPlanner, caplog: pytest.LogCaptureFixture
) -> None:
    planner.service.modules.put(*_module())
    a, b = FakeWorker(planner, "a", 1), FakeWorker(planner, "b", 1)
    client = PlannerClient(planner.url, token=TOKEN, timeout=TIMEOUT)
    try:
        app_id = client.submit({"module": _module()[0], "size": 1})["app_id"]
        placed = client.app(app_id)["placement"][0]["host"]
        runs, other = (a, b) if placed == "a" else (b, a)
        batch = runs.next_batch()
        with caplog.at_level(logging.WARNING, logger="faabric.planner.service"):
            other.send(Report(GranuleResult(app_id, 0, runs.name, Exited(0))))
            other.send(Report(GranuleResult(app_id, 0, other.name, Exited(0))))
            deadline = time.monotonic() + TIMEOUT
            while len(caplog.records) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert [r.getMessage() for r in caplog.records] == [
            f"ignored a message of worker {other.name}: the result of granule 0 of app "
            f"{app_id}, which it does not run"] * 2
        assert client.app(app_id)["finished"] is None
        runs.finish(batch)
        assert client.wait_app(app_id, TIMEOUT)["results"][0]["host"] == runs.name
    finally:
        client.close()
        a.close()
        b.close()
        planner.service.reset()


def _module() -> tuple[str, bytes]:
    import hashlib

    return hashlib.sha256(MODULE).hexdigest(), MODULE


# -- data plane -----------------------------------------------------------------------------


class _Router:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def arrive(self, *args: object) -> None:
        self.calls.append("arrive")

    def acknowledged(self, *args: object) -> None:
        self.calls.append("acknowledged")

    def failed(self, *args: object) -> None:
        self.calls.append("failed")

    def fenced(self, *args: object) -> None: ...

    def readied(self, *args: object) -> None: ...


def test_the_data_plane_refuses_workers_of_another_cluster() -> None:
    router = _Router()
    receiver, stranger = DataPlane("127.0.0.1", TOKEN), DataPlane("127.0.0.1", WRONG)
    receiver.start(router)
    try:
        stranger.learn((("r", receiver.address),))
        with pytest.raises(GuestFault, match=r"^worker r at 127\.0\.0\.1:\d+ refused this "
                           r"worker's token$"):
            stranger.announce_failure("r", 1, "forged")  # the only best-effort send
            stranger.acknowledge("r", 1, 7)
        time.sleep(0.1)
        assert router.calls == []
    finally:
        stranger.close()
        receiver.close()


def test_raw_frames_without_the_handshake_never_reach_the_router() -> None:
    router = _Router()
    receiver = DataPlane("127.0.0.1", TOKEN)
    receiver.start(router)
    ip, _, port = receiver.address.rpartition(":")
    try:
        with socket.create_connection((ip, int(port)), timeout=TIMEOUT) as sock:
            forged_ack = (2).to_bytes(1, "little") + bytes(43)
            sock.sendall(forged_ack * 16)
            sock.settimeout(TIMEOUT + 6)
            with contextlib.suppress(ConnectionResetError):  # closed with our bytes unread
                while sock.recv(4096):
                    pass  # the greeting, then the close
        assert router.calls == []
    finally:
        receiver.close()


def test_workers_of_one_cluster_still_talk() -> None:
    router, arrived = _Router(), threading.Event()
    receiver, sender = DataPlane("127.0.0.1", TOKEN), DataPlane("127.0.0.1", TOKEN)
    router.acknowledged = lambda *args: arrived.set()  # type: ignore[method-assign]
    receiver.start(router)
    try:
        sender.learn((("r", receiver.address),))
        sender.acknowledge("r", 1, 7)
        assert arrived.wait(TIMEOUT)
    finally:
        sender.close()
        receiver.close()
