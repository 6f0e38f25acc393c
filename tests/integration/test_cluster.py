"""A real planner and real worker processes on 127.0.0.1 running real compiled guests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import wasmtime

from faabric.errors import ApiError
from tests.integration.conftest import Cluster, wait_until

pytestmark = pytest.mark.integration


def app(module: str, size: int = 1, **extra: Any) -> dict[str, Any]:
    return {"module": module, "size": size, "program": "guest", **extra}


def run(cluster: Cluster, data: bytes, size: int = 1, **extra: Any) -> dict[str, Any]:
    client = cluster.client()
    try:
        digest = client.upload_module(data)
        return client.submit(app(digest, size, **extra), wait=60)
    finally:
        client.close()


def test_four_granules_land_two_per_host_and_all_outputs_return(
    two_hosts: Cluster, wasm: dict[str, bytes]
) -> None:
    doc = run(two_hosts, wasm["hello"], 4, args=["x"], env={"GREETING": "hi"})
    assert doc["state"] == "finished" and doc["status"] == 0
    hosts = [p["host"] for p in doc["placement"]]
    assert sorted(hosts) == ["host-a", "host-a", "host-b", "host-b"]
    for result in doc["results"]:
        out = result["stdout"].decode()
        assert f"granule {result['index']} of 4" in out
        assert "argv[1]=x" in out and "GREETING=hi" in out
        assert result["stderr"] == b"to stderr\n"
        assert result["host"] == hosts[result["index"]]


def test_second_app_waits_in_the_queue_then_runs(
    two_hosts: Cluster, wasm: dict[str, bytes]
) -> None:
    client = two_hosts.client()
    digest = client.upload_module(wasm["spin"])
    first = client.submit(app(digest, 4, args=["600"]))
    second = client.submit(app(digest, 2, args=["10"]))
    assert client.app(second["app_id"])["state"] == "queued"
    assert [a["state"] for a in client.status()["apps"]] == ["running", "queued"]
    done_first = client.wait_app(first["app_id"], 30)
    done_second = client.wait_app(second["app_id"], 30)
    assert done_first["status"] == 0 and done_second["status"] == 0
    assert done_second["started"] >= done_first["results"][0]["finished"] - 0.5
    client.close()


def test_app_larger_than_cluster_is_refused_and_nothing_is_scheduled(
    two_hosts: Cluster, wasm: dict[str, bytes]
) -> None:
    client = two_hosts.client()
    digest = client.upload_module(wasm["noop"])
    with pytest.raises(ApiError) as info:
        client.submit(app(digest, 5))
    assert info.value.status == 409
    assert "not enough slots" in info.value.reason
    assert all(h["used"] == 0 for h in client.hosts())
    assert client.status()["apps"] == []
    client.close()


@pytest.mark.parametrize(
    ("guest", "extra", "kind", "message"),
    [
        ("trap", {}, "trapped", "out of bounds"),
        ("loop", {"timeout": 1.0}, "timed_out", "timed out after 1 s"),
        ("exit_code", {"args": ["7"]}, "exited", "exited with 7"),
    ],
)
def test_guest_failures_become_results_and_the_cluster_keeps_serving(
    two_hosts: Cluster, wasm: dict[str, bytes], guest: str, extra: dict[str, Any],
    kind: str, message: str,
) -> None:
    doc = run(two_hosts, wasm[guest], 1, **extra)
    outcome = doc["results"][0]["outcome"]
    assert outcome["kind"] == kind
    assert message in outcome["message"]
    assert doc["status"] != 0
    assert run(two_hosts, wasm["hello"], 2)["status"] == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not wasm at all", "not a WebAssembly module"),
        (wasmtime.wat2wasm('(module (func (export "f")))'), "_start"),
    ],
)
def test_bad_modules_fail_their_granules_with_a_clear_reason(
    two_hosts: Cluster, wasm: dict[str, bytes], data: bytes, message: str
) -> None:
    doc = run(two_hosts, data, 2)
    assert doc["status"] != 0
    for result in doc["results"]:
        assert result["outcome"]["kind"] == "failed"
        assert message in result["outcome"]["message"]
    assert run(two_hosts, wasm["hello"], 1)["status"] == 0


def test_killed_worker_fails_its_granules_and_other_apps_go_on(
    make_cluster: Callable[..., Cluster], wasm: dict[str, bytes]
) -> None:
    cluster = make_cluster({"host-a": 2, "host-b": 2}, keepalive=1.0)
    client = cluster.client()
    digest = client.upload_module(wasm["spin"])
    doomed = client.submit(app(digest, 4, args=["20000"]))
    wait_until(lambda: all(h["used"] == 2 for h in client.hosts()), 10, "granules to start")
    killed_at = time.monotonic()
    cluster.kill_worker("host-b")
    doc = client.wait_app(doomed["app_id"], 15)
    assert doc["finished"] is not None, "the app must end when its worker dies"
    assert time.monotonic() - killed_at < 5
    lost = [r for r in doc["results"] if r["host"] == "host-b"]
    assert len(lost) == 2
    for result in lost:
        assert result["outcome"]["kind"] == "failed"
        assert "host-b" in result["outcome"]["message"]
    for result in doc["results"]:
        if result["host"] == "host-a":
            assert result["outcome"]["kind"] == "failed"
            assert "cancelled" in result["outcome"]["message"]
    assert [h["name"] for h in client.hosts()] == ["host-a"]
    # host-a's slots stay held while the cancelled granules run on; a new worker joins and
    # a fresh app runs on it.
    cluster.add_worker("host-c", 2)
    after = client.submit(app(digest, 2, args=["10"]), wait=30)
    assert after["status"] == 0
    assert {p["host"] for p in after["placement"]} == {"host-c"}
    client.close()


def test_status_shows_hosts_and_where_an_app_runs(
    two_hosts: Cluster, wasm: dict[str, bytes], run_cli: Callable[..., Any]
) -> None:
    client = two_hosts.client()
    digest = client.upload_module(wasm["spin"])
    running = client.submit(app(digest, 3, args=["1500"]))
    wait_until(lambda: client.app(running["app_id"])["state"] == "running", 10, "app to run")
    result = run_cli("status", "--planner", two_hosts.url)
    lines = result.stdout.splitlines()
    assert lines[0] == "2 hosts"
    used = sorted(line.split()[1] for line in lines[1:3])
    assert used == ["1/2", "2/2"], lines
    app_line = next(line for line in lines if f"app {running['app_id']}" in line)
    assert "running" in app_line and "0/3 done" in app_line
    assert "host-a: " in app_line and "host-b: " in app_line
    client.wait_app(running["app_id"], 30)
    client.close()


def test_malformed_and_oversized_requests_get_4xx(two_hosts: Cluster) -> None:
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(two_hosts.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    auth = {"Authorization": f"Bearer {two_hosts.token}"}
    headers = {"Content-Type": "application/json", **auth}
    conn.request("POST", "/v1/apps", body=b"{not json", headers=headers)
    response = conn.getresponse()
    assert response.status == 400 and b"error" in response.read()
    conn.request("POST", "/v1/apps", body=b"",
                 headers={"Content-Length": str(1 << 40), **auth})
    response = conn.getresponse()
    assert response.status == 413
    response.read()
    conn.close()
    assert two_hosts.client().health()["status"] == "ok"
