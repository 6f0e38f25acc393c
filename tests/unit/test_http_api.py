"""The planner's public HTTP API, end to end in-process: a real `RunningPlanner` on ephemeral
ports, clients over `http.client`/`PlannerClient`, and fake workers speaking the control
protocol over real sockets (no worker processes, no wasm)."""

from __future__ import annotations

import hashlib
import http.client
import json
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
from planner_fakes import TOKEN, FakeWorker

from faabric import __version__
from faabric.config import PlannerConfig
from faabric.errors import ApiError, ClosedError
from faabric.messages.control import (
    KeepAlive,
    Registered,
    Report,
)
from faabric.messages.types import Exited, Failed, GranuleResult, Trapped
from faabric.planner.client import PlannerClient
from faabric.planner.http import _ROUTES
from faabric.runtime import RunningPlanner

TIMEOUT = 5.0
MODULE = b"\0asm\x01\0\0\0" + b"fake module, never compiled"
DIGEST = hashlib.sha256(MODULE).hexdigest()
NEVER_UPLOADED = hashlib.sha256(b"never uploaded").hexdigest()
MAX_REQUEST = 16 << 10
MAX_MODULE = 4 << 10
SUCCESS = Exited(0)


# -- helpers --------------------------------------------------------------------------------------


def eventually(condition: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Poll `condition` until it returns a truthy value; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)


class Http:
    """One keep-alive connection to the planner, returning (status, headers, document)."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT + 10)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPResponse, Any]:
        sent = {"Authorization": f"Bearer {TOKEN}", **(headers or {})}
        self.conn.request(method, path, body=body, headers=sent)
        response = self.conn.getresponse()
        raw = response.read()
        kind = response.getheader("Content-Type", "")
        if method == "HEAD" or not raw:
            doc: Any = None
        elif kind == "application/json":
            doc = json.loads(raw)
        elif kind == "application/msgpack":
            doc = msgpack.unpackb(raw, raw=False)
        else:
            doc = raw
        return response.status, response, doc

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        status, _, doc = self.request("GET", path, **kw)
        return status, doc

    def post_json(self, path: str, doc: Any) -> tuple[int, Any]:
        status, _, out = self.request(
            "POST", path, json.dumps(doc).encode(), {"Content-Type": "application/json"}
        )
        return status, out

    def close(self) -> None:
        self.conn.close()


def start_planner(**overrides: Any) -> RunningPlanner:
    options: dict[str, Any] = {
        "port": 0,
        "control_port": 0,
        "keepalive_timeout": 30.0,
        "max_request_bytes": MAX_REQUEST,
        "max_module_bytes": MAX_MODULE,
    }
    options.update(overrides)
    return RunningPlanner(PlannerConfig(**options), token=TOKEN).start()


@pytest.fixture(scope="module")
def shared_planner() -> Iterator[RunningPlanner]:
    running = start_planner()
    yield running
    running.close()


@pytest.fixture
def planner(shared_planner: RunningPlanner) -> Iterator[RunningPlanner]:
    """The module's planner (stopping one takes ~0.5 s), clean again after each test."""
    yield shared_planner
    eventually(lambda: shared_planner.service.hosts() == [])  # fake workers are closed
    shared_planner.service.reset()


@pytest.fixture
def api(planner: RunningPlanner) -> Iterator[Http]:
    conn = Http(planner.http.port)
    yield conn
    conn.close()


@pytest.fixture
def uploaded(planner: RunningPlanner) -> str:
    planner.service.modules.put(DIGEST, MODULE)
    return DIGEST


def used_slots(planner: RunningPlanner) -> dict[str, int]:
    return {host.name: host.used for host in planner.service.hosts()}


# -- planner ---------------------------------------------------------------------------------------


def test_health_and_config(planner: RunningPlanner, api: Http) -> None:
    assert api.get("/v1/health") == (200, {"status": "ok", "version": __version__})
    status, config = api.get("/v1/config")
    assert status == 200
    assert config == {
        "version": __version__,
        "control_port": planner.control.port,
        "keepalive_timeout": 30.0,
    }


def test_client_reads_the_same_documents(client: PlannerClient, workers: Any) -> None:
    workers("w1", 3)
    assert client.health()["status"] == "ok"
    w1 = {"name": "w1", "slots": 3, "used": 0, "evicting": False}
    assert client.hosts() == [w1]
    assert client.status() == {"hosts": [w1], "apps": []}


def _openapi_path(pattern: re.Pattern[str]) -> str:
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.pattern.strip("^$")).replace("\\", "")


def test_openapi_describes_every_route(api: Http) -> None:
    status, spec = api.get("/v1/openapi.json")
    assert status == 200
    assert spec["openapi"].startswith("3.1")
    for method, pattern, name in _ROUTES:
        path = _openapi_path(pattern)
        assert path in spec["paths"], f"{name}: {path} is not described"
        assert method.lower() in spec["paths"][path], f"{method} {path} is not described"
    described = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert described == {(m, _openapi_path(p)) for m, p, _ in _ROUTES}
    statuses = {
        code
        for item in spec["paths"].values()
        for method, op in item.items()
        if method != "parameters"
        for code in op["responses"]
    }
    assert {"200", "201", "202", "400", "404", "409", "411", "413", "500"} <= statuses
    assert "MethodNotAllowed" in spec["components"]["responses"]
    for name in ("AppSpec", "App", "GranuleResult", "Host", "InFlightApp", "Status", "Config"):
        assert name in spec["components"]["schemas"]


def _validator(spec: dict[str, Any], schema: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    root = {"$ref": f"#/components/schemas/{schema}", "components": spec["components"]}
    return jsonschema.Draft202012Validator(root)


def test_documents_match_the_openapi_schemas(api: Http, workers: Any, uploaded: str) -> None:
    _, spec = api.get("/v1/openapi.json")
    worker = workers("w1", 2)
    _validator(spec, "Config").validate(api.get("/v1/config")[1])
    status, app = api.post_json("/v1/apps", {"module": uploaded, "size": 2})
    assert status == 202
    _validator(spec, "App").validate(app)
    _validator(spec, "Status").validate(api.get("/v1/status")[1])
    batch = worker.next_batch()
    worker.report(batch, 0, Trapped("unreachable"), stdout=b"out", output=b"\x00\xff")
    worker.report(batch, 1, Exited(3))
    status, app = api.get(f"/v1/apps/{app['app_id']}?wait={TIMEOUT}")
    assert status == 200
    _validator(spec, "App").validate(app)
    _validator(spec, "AppSpec").validate({"module": uploaded, "size": 2, "env": {"A": "b"}})


# -- modules ---------------------------------------------------------------------------------------


def test_upload_module_then_again(api: Http, client: PlannerClient) -> None:
    module = MODULE + b"upload test"
    digest = hashlib.sha256(module).hexdigest()
    path = f"/v1/modules/{digest}"
    status, response, _ = api.request("HEAD", path)
    assert status == 404
    status, _, doc = api.request("PUT", path, module, {"Content-Type": "application/wasm"})
    assert (status, doc) == (201, {"module": digest})
    status, _, doc = api.request("PUT", path, module, {"Content-Type": "application/wasm"})
    assert (status, doc) == (200, {"module": digest})
    assert api.request("HEAD", path)[0] == 200
    status, response, body = api.request("GET", path)
    assert status == 200
    assert response.getheader("Content-Type") == "application/wasm"
    assert body == module
    assert client.fetch_module(digest) == module
    assert client.upload_module(module) == digest


def test_upload_rejects_a_digest_mismatch(api: Http) -> None:
    other = hashlib.sha256(b"other").hexdigest()
    status, _, doc = api.request("PUT", f"/v1/modules/{other}", MODULE)
    assert status == 400
    assert "mismatch" in doc["error"]
    assert api.request("HEAD", f"/v1/modules/{other}")[0] == 404


@pytest.mark.parametrize("digest", ["abc", "A" * 64, "g" * 64, DIGEST + "0"])
@pytest.mark.parametrize("method", ["PUT", "GET", "HEAD"])
def test_bad_module_digest_is_400(api: Http, method: str, digest: str) -> None:
    body = MODULE if method == "PUT" else None
    status, _, doc = api.request(method, f"/v1/modules/{digest}", body)
    assert status == 400
    if method != "HEAD":
        assert "sha256" in doc["error"]


def test_oversized_module_is_413(api: Http) -> None:
    data = bytes(MAX_MODULE + 1)
    digest = hashlib.sha256(data).hexdigest()
    status, response, doc = api.request("PUT", f"/v1/modules/{digest}", data)
    assert status == 413
    assert str(MAX_MODULE) in doc["error"]
    assert response.getheader("Connection") == "close"
    # http.client reconnects after a `Connection: close`; the planner still serves.
    assert api.get("/v1/health")[0] == 200


def test_get_unknown_module_is_404(api: Http) -> None:
    status, doc = api.get(f"/v1/modules/{NEVER_UPLOADED}")
    assert status == 404
    assert NEVER_UPLOADED in doc["error"]


# -- submission errors -----------------------------------------------------------------------------


def test_malformed_json_is_400_and_the_connection_stays_usable(api: Http) -> None:
    status, response, doc = api.request(
        "POST", "/v1/apps", b'{"module": ', {"Content-Type": "application/json"}
    )
    assert status == 400
    assert "not valid" in doc["error"]
    assert response.getheader("Connection") is None
    sock = api.conn.sock
    assert api.get("/v1/health")[0] == 200
    assert api.conn.sock is sock  # the same connection served the next request


def test_malformed_msgpack_is_400(api: Http) -> None:
    status, _, doc = api.request(
        "POST", "/v1/apps", b"\xc1", {"Content-Type": "application/msgpack"}
    )
    assert status == 400
    assert "error" in doc


def test_oversized_body_is_413_and_closed_cleanly(api: Http) -> None:
    body = json.dumps({"module": DIGEST, "args": ["x" * MAX_REQUEST]}).encode()
    status, response, doc = api.request(
        "POST", "/v1/apps", body, {"Content-Type": "application/json"}
    )
    assert status == 413
    assert f"limit of {MAX_REQUEST}" in doc["error"]
    assert response.getheader("Connection") == "close"
    assert api.get("/v1/health")[0] == 200


def test_chunked_body_is_411(planner: RunningPlanner) -> None:
    with socket.create_connection(("127.0.0.1", planner.http.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"POST /v1/apps HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode() +
            b"2\r\n{}\r\n0\r\n\r\n"
        )
        reply = sock.makefile("rb").read()
    assert reply.startswith(b"HTTP/1.1 411")
    assert b"Content-Length" in reply


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "JSON object"),
        (None, "JSON object"),
        ({"module": DIGEST, "colour": "red"}, "unknown field(s): colour"),
        ({}, "'module'"),
        ({"module": "abc"}, "'module'"),
        ({"module": 5}, "'module'"),
        ({"module": DIGEST, "size": 0}, "'size'"),
        ({"module": DIGEST, "size": "2"}, "'size'"),
        ({"module": DIGEST, "size": 2.0}, "'size'"),
        ({"module": DIGEST, "size": True}, "'size'"),
        ({"module": DIGEST, "size": 100_001}, "'size'"),
        ({"module": DIGEST, "program": ""}, "'program'"),
        ({"module": DIGEST, "program": 1}, "'program'"),
        ({"module": DIGEST, "args": "a b"}, "'args'"),
        ({"module": DIGEST, "args": [1]}, "'args'"),
        ({"module": DIGEST, "env": ["A=b"]}, "'env'"),
        ({"module": DIGEST, "env": {"A": 1}}, "'env'"),
        ({"module": DIGEST, "input": 5}, "'input'"),
        ({"module": DIGEST, "input": "not base64!"}, "'input'"),
        ({"module": DIGEST, "timeout": 0}, "'timeout'"),
        ({"module": DIGEST, "timeout": "1"}, "'timeout'"),
        ({"module": DIGEST, "timeout": False}, "'timeout'"),
        ({"module": DIGEST, "memory_limit": 1024}, "'memory_limit'"),
        ({"module": DIGEST, "memory_limit": 1.5}, "'memory_limit'"),
        ({"module": DIGEST, "policy": "fifo"},
         "'policy' must be one of bin-pack, compact, spot, whole-vm (or empty for the cluster's)"),
        ({"module": DIGEST, "policy": 1}, "'policy'"),
        ({"module": DIGEST, "user": 7}, "'user'"),
        ({"module": DIGEST, "user": "u" * 257}, "'user'"),
    ],
)
def test_bad_submission_is_400(
    planner: RunningPlanner, api: Http, uploaded: str, doc: Any, message: str
) -> None:
    status, out = api.post_json("/v1/apps", doc)
    assert status == 400
    assert message in out["error"]
    assert planner.service.in_flight() == []
    assert api.get("/v1/health")[0] == 200  # keep-alive still usable


@pytest.mark.parametrize("wait", ["abc", "-1", "601", "nan"])
def test_bad_wait_is_400(api: Http, uploaded: str, wait: str) -> None:
    status, doc = api.post_json(f"/v1/apps?wait={wait}", {"module": uploaded})
    assert status == 400
    assert "'wait'" in doc["error"]
    assert api.get("/v1/health")[0] == 200


def test_unknown_module_is_404(api: Http, workers: Any) -> None:
    workers("w1", 1)
    status, doc = api.post_json("/v1/apps", {"module": NEVER_UPLOADED})
    assert status == 404
    assert "PUT it first" in doc["error"]


def test_too_many_granules_is_409_and_nothing_is_scheduled(
    planner: RunningPlanner, api: Http, workers: Any, uploaded: str
) -> None:
    a, b = workers("a", 2), workers("b", 2)
    status, doc = api.post_json("/v1/apps", {"module": uploaded, "size": 5})
    assert status == 409
    assert "not enough slots" in doc["error"]
    assert used_slots(planner) == {"a": 0, "b": 0}
    assert api.get("/v1/apps") == (200, [])
    assert a.batches.empty() and b.batches.empty()


def test_client_raises_api_error(client: PlannerClient, uploaded: str) -> None:
    with pytest.raises(ApiError) as info:
        client.submit({"module": uploaded, "size": 1})
    assert info.value.status == 409
    assert "not enough slots" in info.value.reason


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("DELETE", "/v1/apps", 405),
        ("PUT", "/v1/health", 405),
        ("POST", "/v1/status", 405),
        ("GET", "/v1/reset", 405),
        ("GET", "/v1/nope", 404),
        ("GET", "/v1/apps/1/results", 404),
        ("GET", "/", 404),
        ("GET", "/v1/apps/abc", 400),
        ("GET", "/v1/apps/123", 404),
    ],
)
def test_routing_errors(api: Http, method: str, path: str, status: int) -> None:
    got, _, doc = api.request(method, path)
    assert got == status
    assert isinstance(doc["error"], str)
    assert api.get("/v1/health")[0] == 200


def test_errors_answer_msgpack_when_asked(api: Http) -> None:
    accept = {"Accept": "application/msgpack"}
    status, response, doc = api.request("GET", "/v1/nope", headers=accept)
    assert status == 404
    assert response.getheader("Content-Type") == "application/msgpack"
    assert doc == {"error": "no such endpoint: /v1/nope"}


# -- running apps ----------------------------------------------------------------------------------


def test_app_of_four_lands_two_and_two(
    planner: RunningPlanner, api: Http, workers: Any, uploaded: str
) -> None:
    a, b = workers("a", 2), workers("b", 2)
    spec = {"module": uploaded, "size": 4, "program": "prog", "args": ["x"], "env": {"K": "v"}}
    status, app = api.post_json("/v1/apps", spec)
    assert status == 202
    assert app["state"] == "running"
    assert app["status"] is None and app["finished"] is None
    hosts = {p["index"]: p["host"] for p in app["placement"]}
    assert sorted(hosts) == [0, 1, 2, 3]
    assert sorted(hosts.values()) == ["a", "a", "b", "b"]
    assert used_slots(planner) == {"a": 2, "b": 2}
    batch_a, batch_b = a.next_batch(), b.next_batch()
    assert sorted(batch_a.indices + batch_b.indices) == [0, 1, 2, 3]
    assert {i: "a" for i in batch_a.indices} | {i: "b" for i in batch_b.indices} == hosts
    assert batch_a.app_id == app["app_id"]
    assert batch_a.spec.program == "prog"
    assert batch_a.spec.args == ("x",)
    assert batch_a.spec.env == (("K", "v"),)
    a.finish(batch_a)
    b.finish(batch_b, Exited(7))
    status, done = api.get(f"/v1/apps/{app['app_id']}?wait={TIMEOUT}")
    assert status == 200
    assert done["state"] == "finished"
    assert done["status"] == 7
    assert [r["index"] for r in done["results"]] == [0, 1, 2, 3]
    assert used_slots(planner) == {"a": 0, "b": 0}


def test_wait_returns_as_soon_as_the_last_result_arrives(
    api: Http, workers: Any, uploaded: str
) -> None:
    worker = workers("w", 2)
    wait = 20.0

    def report_later() -> None:
        batch = worker.next_batch()
        worker.report(batch, 0)
        time.sleep(0.2)  # the waiter must still be waiting for granule 1
        worker.report(batch, 1, Exited(0), stdout=b"done\n")

    reporter = threading.Thread(target=report_later)
    reporter.start()
    began = time.monotonic()
    status, app = api.post_json(f"/v1/apps?wait={wait:g}", {"module": uploaded, "size": 2})
    took = time.monotonic() - began
    reporter.join(TIMEOUT)
    assert status == 200
    assert app["state"] == "finished" and app["status"] == 0
    assert app["results"][1]["stdout"] == "done\n"
    assert 0.2 <= took < 3.0


def test_wait_times_out_with_202(api: Http, workers: Any, uploaded: str) -> None:
    workers("w", 1)
    began = time.monotonic()
    status, app = api.post_json("/v1/apps?wait=0.3", {"module": uploaded})
    assert time.monotonic() - began >= 0.3
    assert status == 202
    assert app["state"] == "running"
    status, same = api.get(f"/v1/apps/{app['app_id']}?wait=0.1")
    assert status == 200
    assert same["finished"] is None


def test_second_app_is_queued_until_slots_free(
    planner: RunningPlanner, api: Http, client: PlannerClient, workers: Any, uploaded: str
) -> None:
    worker = workers("w", 2)
    first = client.submit({"module": uploaded, "size": 2})
    second = client.submit({"module": uploaded, "size": 2})
    assert second["state"] == "queued"
    assert second["placement"] == [] and second["started"] is None
    status, apps = api.get("/v1/apps")
    assert status == 200
    assert [(a["app_id"], a["state"]) for a in apps] == [
        (first["app_id"], "running"),
        (second["app_id"], "queued"),
    ]
    assert [a["state"] for a in client.status()["apps"]] == ["running", "queued"]
    batch = worker.next_batch()
    assert batch.app_id == first["app_id"]
    worker.report(batch, 0)
    assert client.app(second["app_id"])["state"] == "queued"  # needs both slots
    worker.report(batch, 1)
    queued_batch = worker.next_batch()
    assert queued_batch.app_id == second["app_id"]
    assert client.app(second["app_id"])["state"] == "running"
    worker.finish(queued_batch)
    done = client.wait_app(second["app_id"], TIMEOUT)
    assert done["state"] == "finished"
    assert client.status()["apps"] == []


def test_msgpack_keeps_bytes_json_replaces_invalid_utf8(
    api: Http, client: PlannerClient, workers: Any, uploaded: str
) -> None:
    worker = workers("w", 1)
    raw = b"ok \xff\xfe end"
    app = client.submit({"module": uploaded, "input": b"\x00\x01"})
    batch = worker.next_batch()
    assert batch.spec.input == b"\x00\x01"
    worker.report(batch, 0, stdout=raw, stderr=b"\x80", output=b"\x00\xff")
    packed = client.app(app["app_id"], wait=TIMEOUT)["results"][0]
    assert (packed["stdout"], packed["stderr"], packed["output"]) == (raw, b"\x80", b"\x00\xff")
    status, doc = api.get(f"/v1/apps/{app['app_id']}")
    assert status == 200
    result = doc["results"][0]
    assert result["stdout"] == "ok \ufffd\ufffd end"
    assert result["stderr"] == "\ufffd"
    assert result["output"] == "AP8="
    assert result["outcome"] == {"kind": "exited", "code": 0, "message": "exited with 0"}


def test_json_input_is_base64(api: Http, workers: Any, uploaded: str) -> None:
    worker = workers("w", 1)
    status, _ = api.post_json("/v1/apps", {"module": uploaded, "input": "AAH/"})
    assert status == 202
    assert worker.next_batch().spec.input == b"\x00\x01\xff"


def test_msgpack_request_body(api: Http, workers: Any, uploaded: str) -> None:
    worker = workers("w", 1)
    body = msgpack.packb({"module": uploaded, "input": b"\xff"}, use_bin_type=True)
    status, response, doc = api.request(
        "POST", "/v1/apps", body, {"Content-Type": "application/msgpack"}
    )
    assert status == 202
    assert response.getheader("Content-Type") == "application/json"
    assert doc["state"] == "running"
    assert worker.next_batch().spec.input == b"\xff"


def test_closed_worker_fails_its_granules(
    planner: RunningPlanner, client: PlannerClient, workers: Any, uploaded: str
) -> None:
    a, b = workers("a", 1), workers("b", 1)
    app = client.submit({"module": uploaded, "size": 2})
    batch_a, batch_b = a.next_batch(), b.next_batch()
    a.finish(batch_a)
    eventually(lambda: client.app(app["app_id"])["results"])  # a's result is recorded
    b.close()  # mid-run: its granule has no result
    done = client.wait_app(app["app_id"], TIMEOUT)
    assert done["state"] == "finished"
    assert done["status"] != 0
    lost = done["results"][batch_b.indices[0]]
    assert lost["outcome"]["kind"] == "failed"
    assert "worker b" in lost["outcome"]["message"]
    assert lost["status"] == 1
    assert done["results"][batch_a.indices[0]]["status"] == 0
    eventually(lambda: used_slots(planner) == {"a": 0})


def test_lost_worker_cancels_the_rest_of_the_app(
    planner: RunningPlanner, client: PlannerClient, workers: Any, uploaded: str
) -> None:
    a, b = workers("a", 1), workers("b", 1)
    app = client.submit({"module": uploaded, "size": 2})
    batch_a, batch_b = a.next_batch(), b.next_batch()
    b.close()  # a's granule is still running
    done = client.wait_app(app["app_id"], TIMEOUT)
    assert done["state"] == "finished"
    assert done["status"] == 1
    assert "worker b was lost" in done["results"][batch_b.indices[0]]["outcome"]["message"]
    cancelled = done["results"][batch_a.indices[0]]["outcome"]
    assert cancelled["kind"] == "failed"
    assert "lost with b" in cancelled["message"]
    assert a.stops.get(timeout=TIMEOUT) == app["app_id"]
    assert used_slots(planner) == {"a": 1}  # held until a's granule really stops
    a.report(batch_a, batch_a.indices[0], Failed("cancelled"))
    eventually(lambda: used_slots(planner) == {"a": 0})
    assert client.app(app["app_id"])["results"] == done["results"]  # the first result wins


def test_silent_worker_expires_and_its_granules_fail() -> None:
    planner = start_planner(keepalive_timeout=0.5)
    try:
        client = PlannerClient(planner.url, token=TOKEN, timeout=TIMEOUT)
        planner.service.modules.put(DIGEST, MODULE)
        silent = FakeWorker(planner, "silent", 1)
        assert isinstance(silent.first, Registered)
        assert silent.first.keepalive_interval == pytest.approx(0.5 / 3)
        app = client.submit({"module": DIGEST})
        silent.next_batch()
        began = time.monotonic()
        done = client.wait_app(app["app_id"], TIMEOUT)
        assert time.monotonic() - began < 3.0
        assert done["results"][0]["outcome"]["kind"] == "failed"
        assert "silent" in done["results"][0]["outcome"]["message"]
        assert done["status"] == 1
        assert client.hosts() == []
        eventually(lambda: silent.conn.closed or not silent._reader.is_alive())
        silent.close()
        client.close()
    finally:
        planner.close()


def test_worker_sending_keepalives_stays() -> None:
    planner = start_planner(keepalive_timeout=0.5)
    try:
        worker = FakeWorker(planner, "alive", 1)
        deadline = time.monotonic() + 1.2  # over two keep-alive timeouts
        while time.monotonic() < deadline:
            worker.conn.send(KeepAlive())
            time.sleep(0.1)
        assert [h.name for h in planner.service.hosts()] == ["alive"]
        worker.close()
    finally:
        planner.close()


def test_a_worker_registering_under_a_taken_name_replaces_the_old_one(
    planner: RunningPlanner, client: PlannerClient, uploaded: str
) -> None:
    first = FakeWorker(planner, "w", 1, incarnation="one")
    app = client.submit({"module": uploaded})
    first.next_batch()
    second = FakeWorker(planner, "w", 1, incarnation="two")  # "w" restarted
    try:
        assert type(second.first).__name__ == "Registered"
        first.next_message()  # its batch
        refusal = first.next_message()  # the old one is told, so a duplicate would stop
        assert type(refusal).__name__ == "Refused"
        assert "registered again" in refusal.reason
        done = client.app(app["app_id"], wait=5)
        assert done["results"][0]["outcome"] == {
            "kind": "failed",
            "message": "failed: worker w was lost: it registered again, restarted"}
        assert [h.name for h in planner.service.hosts()] == ["w"]
    finally:
        first.close()
        second.close()


def test_reset_forgets_apps_and_frees_slots(
    planner: RunningPlanner, api: Http, client: PlannerClient, workers: Any, uploaded: str
) -> None:
    worker = workers("w", 1)
    running = client.submit({"module": uploaded})
    queued = client.submit({"module": uploaded})
    worker.next_batch()
    waiter: queue.Queue[tuple[int, Any]] = queue.Queue()
    other = Http(planner.http.port)
    thread = threading.Thread(
        target=lambda: waiter.put(other.get(f"/v1/apps/{queued['app_id']}?wait=20"))
    )
    thread.start()
    eventually(lambda: planner.service.in_flight())
    status, _, doc = api.request("POST", "/v1/reset")
    assert (status, doc) == (200, {"status": "reset"})
    assert waiter.get(timeout=TIMEOUT)[0] == 404  # the waiter woke up at once
    thread.join(TIMEOUT)
    other.close()
    assert api.get(f"/v1/apps/{running['app_id']}")[0] == 404
    assert api.get("/v1/apps") == (200, [])
    assert used_slots(planner) == {"w": 0}
    assert DIGEST in planner.service.modules  # modules survive a reset
    # a late report for a forgotten app is ignored
    worker.conn.send(Report(GranuleResult(running["app_id"], 0, "w", Exited(0))))
    assert client.hosts() == [{"name": "w", "slots": 1, "used": 0, "evicting": False}]


def test_new_worker_gets_registered_before_work(
    planner: RunningPlanner, client: PlannerClient, workers: Any, uploaded: str
) -> None:
    workers("busy", 1)
    client.submit({"module": uploaded})
    queued = client.submit({"module": uploaded})
    assert queued["state"] == "queued"
    late = FakeWorker(planner, "late", 1)
    try:
        assert isinstance(late.first, Registered), late.first
    finally:
        late.close()


def test_failed_outcome_document(client: PlannerClient, workers: Any, uploaded: str) -> None:
    worker = workers("w", 1)
    app = client.submit({"module": uploaded})
    worker.finish(worker.next_batch(), Failed("no _start"))
    done = client.wait_app(app["app_id"], TIMEOUT)
    assert done["results"][0]["outcome"] == {
        "kind": "failed",
        "message": "failed: no _start",
    }


def test_closed_framed_socket_refuses(planner: RunningPlanner) -> None:
    worker = FakeWorker(planner, "x", 1)
    worker.close()
    with pytest.raises(ClosedError):
        worker.conn.send(KeepAlive())
    eventually(lambda: planner.service.hosts() == [])


# -- eviction ----------------------------------------------------------------------------------


def test_evicting_an_unknown_host_is_404(api: Http, client: PlannerClient) -> None:
    status, _, doc = api.request("POST", "/v1/hosts/nope/evict")
    assert (status, doc) == (404, {"error": "no worker named nope is registered"})
    with pytest.raises(ApiError, match="no worker named a b is registered"):
        client.evict("a b")
    status, _, _ = api.request("GET", "/v1/hosts/nope/evict")
    assert status == 405


def test_evicting_a_host_is_idempotent_and_shown(
    api: Http, client: PlannerClient, workers: Any, uploaded: str
) -> None:
    _, spec = api.get("/v1/openapi.json")
    workers("w1", 2)
    workers("w2", 2)
    for _ in range(2):
        status, _, doc = api.request("POST", "/v1/hosts/w2/evict")
        assert (status, doc) == (200, {"host": "w2", "evicting": True})
        _validator(spec, "Evicting").validate(doc)
    assert [(h["name"], h["evicting"]) for h in client.hosts()] == [
        ("w1", False), ("w2", True)
    ]
    _validator(spec, "Status").validate(api.get("/v1/status")[1])
    # Nothing new lands on w2, though it has more free slots than w1 has left.
    status, app = api.post_json("/v1/apps", {"module": uploaded, "size": 2})
    assert status == 202 and {p["host"] for p in app["placement"]} == {"w1"}
    status, app = api.post_json("/v1/apps", {"module": uploaded, "size": 3})
    assert status == 409  # larger than the workers not being evicted


def test_a_submission_names_its_policy_and_user(
    planner: RunningPlanner, api: Http, workers: Any, uploaded: str
) -> None:
    workers("w1", 2)
    doc = {"module": uploaded, "size": 1, "policy": "compact", "user": "alice"}
    status, app = api.post_json("/v1/apps", doc)
    assert status == 202
    view = planner.service.app(app["app_id"])
    assert view is not None and (view.spec.policy, view.spec.user) == ("compact", "alice")
