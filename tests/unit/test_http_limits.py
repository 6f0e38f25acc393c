"""The planner's HTTP server within bounds: idle and header deadlines, exactly one
Content-Length, bounded bodies and nesting, and a JSON error for everything it refuses."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from faabric.config import PlannerConfig
from faabric.planner.http_limits import document_depth, json_depth
from faabric.runtime import RunningPlanner

TOKEN = "http-limits-test-token-0123456789"
AUTH = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
IDLE, HEADERS = 0.5, 1.0


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    config = PlannerConfig(port=0, control_port=0, http_idle_timeout=IDLE,
                           http_header_timeout=HEADERS, max_request_bytes=1 << 20)
    planner = RunningPlanner(config, token=TOKEN).start()
    yield planner.http.port
    planner.close()


def exchange(port: int, data: bytes, wait: float = 5.0) -> tuple[bytes, float]:
    """Send `data`, read until the server closes; the answer and when it closed."""
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(1 << 16):
            answer += chunk
    return answer, time.monotonic() - began


def refused(port: int, data: bytes) -> tuple[int, dict[str, str]]:
    """The status and JSON body of the server's answer to `data`; it must close after."""
    answer, _ = exchange(port, data)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), answer
    assert "Content-Type: application/json" in lines
    assert "Connection: close" in lines
    document = json.loads(body)
    assert set(document) == {"error"}
    return int(lines[0].split()[1]), document


def post(body: bytes, content_type: str = "application/json") -> bytes:
    return (b"POST /v1/apps HTTP/1.1\r\n" + AUTH + b"Content-Type: " + content_type.encode()
            + b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


@pytest.mark.parametrize(("request_bytes", "status", "says"), [
    (b"\x00\xff\x13garbage\r\n\r\n", 400, "Bad request syntax"),
    (b"GET\r\n\r\n", 400, "Bad request syntax"),
    (b"GET /v1/health HTTP/9.9\r\n\r\n", 505, "Invalid HTTP version"),
    (b"BREW /v1/health HTTP/1.1\r\n\r\n", 501, "Unsupported method"),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "Request-URI Too Long"),
    (b"GET /v1/health HTTP/1.1\r\nX: " + b"y" * 70_000 + b"\r\n\r\n", 431, "Line too long"),
    (b"GET /v1/health HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431, "Too many headers"),
    (b"GET /v1/health HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 400,
     "exactly one Content-Length"),
    (b"POST /v1/apps HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}", 400,
     "exactly one Content-Length"),
    (b"POST /v1/apps HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}", 400, "bad Content-Length"),
    (b"POST /v1/apps HTTP/1.1\r\nContent-Length: 1_0\r\n\r\n{}", 400, "bad Content-Length"),
    (b"POST /v1/apps HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411,
     "send a Content-Length"),
    (b"POST /v1/apps HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400,
     "not both"),
    (b"POST /v1/apps HTTP/1.1\r\n" + AUTH + b"Content-Length: 2000000\r\n\r\n", 413,
     "exceeds the limit of 1048576 bytes"),
    (post(b"[" * 65 + b"]" * 65), 400, "nests deeper than 64 levels"),
    (post(b"[" * 200_000 + b"]" * 200_000), 400, "nests deeper than 64 levels"),
    (post(b'{"a": ' * 100 + b"1" + b"}" * 100), 400, "nests deeper than 64 levels"),
    (post(msgpack.packb([[[[[[[[[0]]]]]]]]] * 1) * 1), 400, "is not valid"),
    (post(b"\x91" * 100 + b"\x00", "application/msgpack"), 400, "nests deeper than 64"),
    (post(b"{not json"), 400, "the body is not valid"),
])
def test_what_the_server_refuses_is_answered_in_json_and_the_connection_closed(
    port: int, request_bytes: bytes, status: int, says: str,
) -> None:
    answered, document = refused(port, request_bytes)
    assert answered == status
    assert says in document["error"]


def test_the_server_keeps_serving_after_refusing(port: int) -> None:
    refused(port, b"\x16\x03\x01 tls hello?\r\n\r\n")
    answer, _ = exchange(port, b"GET /v1/health HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_silent_connection_is_dropped_after_the_idle_timeout(port: int) -> None:
    answer, took = exchange(port, b"")
    assert answer == b"" and IDLE * 0.8 < took < IDLE + 2


def test_a_half_sent_request_is_dropped(port: int) -> None:
    answer, took = exchange(port, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
    assert answer == b"" and took < HEADERS + 2


def test_a_request_dripping_in_is_dropped_at_the_header_deadline(port: int) -> None:
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            for byte in b"GET /v1/health HTTP/1.1\r\n" + b"X-Slow: " + b"z" * 100:
                sock.sendall(bytes([byte]))
                time.sleep(IDLE / 3)
        except OSError:
            pass  # the server closed first
        assert sock.recv(100) == b""
    assert time.monotonic() - began < HEADERS + IDLE + 2


def test_a_body_that_stops_half_way_is_dropped(port: int) -> None:
    answer, took = exchange(port, b"POST /v1/apps HTTP/1.1\r\n" + AUTH
                            + b"Content-Length: 100\r\n\r\n{\"size\": ")
    assert b" 408 " in answer.split(b"\r\n", 1)[0] and took < IDLE + 2


def test_keep_alive_requests_still_work(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/v1/health")
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["status"] == "ok"
            time.sleep(IDLE / 2)  # pauses shorter than the idle timeout keep it open
    finally:
        conn.close()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=5),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(alphabet='[]{}"\\k', max_size=3), inner, max_size=3),
    max_leaves=30,
)


@given(JSON)
def test_the_nesting_measured_before_parsing_is_the_documents(document: object) -> None:
    text = json.dumps(document).encode()
    assert json_depth(text) == document_depth(json.loads(text))
