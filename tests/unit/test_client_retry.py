"""PlannerClient waits across a planner restart: a wait whose planner cannot be reached is
tried again for a bounded time, then fails."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import msgpack
import pytest

from faabric.errors import BrokenError
from faabric.planner.client import PlannerClient


class _Finished(http.server.BaseHTTPRequestHandler):
    """A planner that says every app has finished."""

    def do_GET(self) -> None:
        body = msgpack.packb({"app_id": 7, "finished": 1.0, "status": 1})
        self.send_response(200)
        self.send_header("Content-Type", "application/msgpack")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None: ...


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def test_a_wait_goes_on_once_the_planner_is_back() -> None:
    port = free_port()
    servers: list[http.server.HTTPServer] = []

    def come_back() -> None:
        time.sleep(0.5)  # the planner restarts
        servers.append(http.server.HTTPServer(("127.0.0.1", port), _Finished))
        servers[0].serve_forever(poll_interval=0.05)

    threading.Thread(target=come_back, daemon=True).start()
    client = PlannerClient(f"http://127.0.0.1:{port}", token="t", timeout=5)
    try:
        assert client.wait_app(7, 10, reconnect_for=10)["finished"] == 1.0
    finally:
        client.close()
        for server in servers:
            server.shutdown()
            server.server_close()


def test_a_wait_gives_up_when_the_planner_stays_away() -> None:
    client = PlannerClient(f"http://127.0.0.1:{free_port()}", token="t", timeout=5)
    began = time.monotonic()
    with pytest.raises(BrokenError, match="cannot reach the planner"):
        client.wait_app(7, 10, reconnect_for=0.5)
    assert time.monotonic() - began < 3
