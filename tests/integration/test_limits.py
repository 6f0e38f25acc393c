"""Every input bounded, on real processes: oversized or lying frames on the planner's
control port and a worker's data plane, frames for apps that never start, and slow or
malformed HTTP requests cost no lasting memory or threads, close the connection with one
log line, and leave the servers serving."""

from __future__ import annotations

import json
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from faabric.transport.auth import CONTROL, DATA, connect_handshake
from tests.integration.conftest import TOKEN, Cluster, wait_until
from tests.integration.test_security import (  # noqa: F401  (the fixture)
    LoggedCluster,
    control_port,
    logged,
    logged_line,
    rss,
)

pytestmark = pytest.mark.integration

RSS_SLACK = 24 << 20
HEADER = struct.Struct("<BxxxqiiiiqI")  # the data plane's frame header
MESSAGE, TEAM, MOVE = 1, 4, 7
EARLY_BYTES = 32 << 20


def authenticated(port: int, purpose: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    connect_handshake(sock, TOKEN, purpose, peer="the server", me="test")
    sock.settimeout(15)
    return sock


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        while sock.recv(1 << 16):
            pass
    except ConnectionResetError:
        pass
    return True


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


# -- the control port -------------------------------------------------------------------------


def test_oversized_control_frames_are_refused_without_memory_growth(
    logged: Callable[[dict[str, str]], LoggedCluster], process_env: dict[str, str],  # noqa: F811
) -> None:
    cluster = logged(process_env)
    port = control_port(cluster)
    before = rss(cluster.planner.pid)
    for length in (0x3FFFFFFF, 0x3FFFFFFF, 0x3FFFFFFF, 0x3FFFFFFF, 0xFFFFFFFF):
        with authenticated(port, CONTROL) as sock:
            sock.sendall(struct.pack(">I", length) + b"\xaa" * (1 << 20))
            assert closed_by_peer(sock)
    with authenticated(port, CONTROL) as sock:  # within the limit, but a lie: 100 MiB
        sock.sendall(struct.pack(">I", 100 << 20) + b"\xbb" * (2 << 20))
    time.sleep(0.5)
    assert rss(cluster.planner.pid) - before < RSS_SLACK
    line = logged_line(cluster, "announced a frame of 1073741823 bytes")
    assert re.search(r"connection from 127\.0\.0\.1:\d+ did not register: 127\.0\.0\.1:\d+ "
                     r"announced a frame of 1073741823 bytes, over the limit of 134217728 "
                     r"bytes \(control_max_frame\)$", line.strip())
    assert not any("Traceback" in line for line in cluster.log)
    cluster.add_worker("still-serving", 1)
    assert [h["name"] for h in cluster.client().hosts()] == ["still-serving"]


# -- a worker's data plane --------------------------------------------------------------------


def listening_port(pid: int) -> int:
    """The one TCP port process `pid` listens on (a worker: its data plane)."""
    inodes = {link.readlink().name[8:-1] for link in Path(f"/proc/{pid}/fd").iterdir()
              if link.readlink().name.startswith("socket:")}
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:
            return int(fields[1].split(":")[1], 16)
    raise AssertionError("the worker listens on no port")


@pytest.fixture
def worker(logged: Callable[[dict[str, str]], LoggedCluster],  # noqa: F811
           process_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """A worker with a short stall timeout and small bounds on early frames, its stderr
    lines collected."""
    env = dict(process_env, FAABRIC_DATA_STALL_TIMEOUT="2", FAABRIC_EARLY_SECONDS="3",
               FAABRIC_EARLY_BYTES=str(EARLY_BYTES))
    cluster = logged(env)
    proc = subprocess.Popen([sys.executable, "-m", "faabric", "worker", "--planner",
                             cluster.url, "--slots", "1", "--name", "w"],
                            env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    lines: list[str] = []
    stream = proc.stderr
    assert stream is not None
    threading.Thread(target=lambda: lines.extend(stream), daemon=True).start()
    client = cluster.client()
    wait_until(lambda: [h["name"] for h in client.hosts()] == ["w"], 30, "the worker")
    client.close()
    cluster.workers["w"] = proc  # stopped with the cluster
    yield proc, lines


def seen(lines: list[str], pattern: str) -> list[str]:
    wait_until(lambda: any(re.search(pattern, line) for line in lines), 15, repr(pattern))
    return [line for line in lines if re.search(pattern, line)]


def test_oversized_and_lying_data_frames_cost_no_memory(
    worker: tuple[subprocess.Popen[str], list[str]],
) -> None:
    proc, lines = worker
    port = listening_port(proc.pid)
    before = rss(proc.pid)
    for kind, length in ((MESSAGE, 1 << 62), (TEAM, 5 << 30), (MOVE, -1), (MESSAGE, 1 << 31)):
        with authenticated(port, DATA) as sock:
            sock.sendall(HEADER.pack(kind, 1, 0, 0, 0, 0, length, 0) + b"\xcc" * (1 << 20))
            if length > 1 << 32 or length < 0:
                assert closed_by_peer(sock)
    # 2 GiB is within the limit: announced, 1 MiB sent, then silence until the stall timeout.
    with authenticated(port, DATA) as sock:
        sock.sendall(HEADER.pack(TEAM, 0, 0, 0, 0, 0, 2 << 30, 0) + b"\xdd" * (1 << 20))
        began = time.monotonic()
        assert closed_by_peer(sock)
        assert time.monotonic() - began < 10
    assert rss(proc.pid) - before < RSS_SLACK
    assert len(seen(lines, r"closed a data-plane connection from 127\.0\.0\.1:\d+: "
                           r"127\.0\.0\.1:\d+ announced a frame of")) == 3
    seen(lines, r"announced a frame of 4611686018427387904 bytes, over the limit of "
                r"4362076160 bytes \(data_max_frame\)")
    seen(lines, r"closed a data-plane connection from .*: stalled in the middle of a frame")
    assert not any("Traceback" in line for line in lines)
    assert proc.poll() is None
    authenticated(port, DATA).close()  # still serving


def test_frames_for_apps_that_never_start_are_bounded_and_dropped(
    worker: tuple[subprocess.Popen[str], list[str]],
) -> None:
    proc, lines = worker
    port = listening_port(proc.pid)
    before = rss(proc.pid)
    payload = b"\xee" * (1 << 20)
    with authenticated(port, DATA) as sock:
        for app_id in range(1000, 1300):  # 300 frames of 1 MiB for 300 unknown apps
            sock.sendall(HEADER.pack(MESSAGE, app_id, 0, 1, 0, 0, len(payload), 0) + payload)
    time.sleep(0.5)
    assert rss(proc.pid) - before < EARLY_BYTES + RSS_SLACK
    seen(lines, r"dropped app 1\d\d\d \(0 bytes of frames\): its messages arrived before any "
                r"of its ranks started here, over the 33554432 bytes kept for such apps")
    seen(lines, r"dropped app 1000 \(\d+ bytes of frames\): no rank of it started here "
                r"within 3 s of its first message \(early_seconds\)")
    assert proc.poll() is None and not any("Traceback" in line for line in lines)


# -- HTTP ---------------------------------------------------------------------------------------


def test_half_sent_http_requests_do_not_hold_threads(
    logged: Callable[[dict[str, str]], LoggedCluster], process_env: dict[str, str],  # noqa: F811
) -> None:
    cluster = logged(dict(process_env, FAABRIC_HTTP_IDLE_TIMEOUT="1",
                          FAABRIC_HTTP_HEADER_TIMEOUT="2"))
    host, port = cluster.url.removeprefix("http://").split(":")
    baseline = threads(cluster.planner.pid)
    socks = []
    for i in range(300):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nX-Part: %d" % i)  # never finished
        socks.append(sock)
    client = cluster.client()
    assert client.health()["status"] == "ok"  # served meanwhile
    began = time.monotonic()
    for sock in socks:
        assert closed_by_peer(sock)
        sock.close()
    assert time.monotonic() - began < 10
    wait_until(lambda: threads(cluster.planner.pid) <= baseline + 2, 10,
               "the planner's connection threads to end")
    assert not any("Traceback" in line for line in cluster.log)


def raw_http(url: str, data: bytes) -> tuple[int, dict[str, str]]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(1 << 16):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head
    return int(head.split()[1]), json.loads(body)


def test_malformed_http_is_answered_in_json(
    logged: Callable[[dict[str, str]], LoggedCluster], process_env: dict[str, str],  # noqa: F811
) -> None:
    cluster: Cluster = logged(process_env)
    auth = b"Authorization: Bearer " + TOKEN.encode() + b"\r\nConnection: close\r\n"
    deep = b"[" * 100_000 + b"]" * 100_000
    cases = [
        (b"\x00\x01\x02\x03 not http at all\r\n\r\n", 400, "Bad request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 400,
         "exactly one Content-Length"),
        (b"POST /v1/apps HTTP/1.1\r\n" + auth + b"Content-Length: %d\r\n\r\n" % len(deep) + deep,
         400, "nests deeper than 64 levels"),
    ]
    for data, status, says in cases:
        answered, document = raw_http(cluster.url, data)
        assert answered == status and says in document["error"]
    assert cluster.client().health()["status"] == "ok"
