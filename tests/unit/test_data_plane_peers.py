"""The data plane when a peer worker restarts: a frame never goes into a dead connection,
whether the peer's address changed or its old connection was closed."""

from __future__ import annotations

import socket
import threading
import time

from faabric.mpi.network import DataPlane
from faabric.transport.auth import DATA, accept_handshake

TOKEN = "data-plane-test-token-0123456789"


class _Failures:
    """A router that records the FAILED notes it is given."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.arrived = threading.Event()

    def arrive(self, *args: object) -> None: ...

    def acknowledged(self, *args: object) -> None: ...

    def failed(self, app_id: int, reason: str) -> None:
        self.reasons.append(reason)
        self.arrived.set()

    def fenced(self, *args: object) -> None: ...

    def readied(self, *args: object) -> None: ...


def peer() -> tuple[DataPlane, _Failures]:
    plane, router = DataPlane("127.0.0.1", TOKEN), _Failures()
    plane.start(router)
    return plane, router


def test_a_peer_restarted_on_a_new_address_is_reached_there() -> None:
    sender = DataPlane("127.0.0.1", TOKEN)
    old, _ = peer()
    new, router = peer()
    try:
        sender.learn((("b", old.address),))
        sender.announce_failure("b", 1, "first")
        sender.learn((("b", new.address),))  # "b" restarted: the planner says where it is
        sender.announce_failure("b", 2, "second")
        assert router.arrived.wait(10)
        assert router.reasons == ["second"]
    finally:
        for plane in (sender, old, new):
            plane.close()


def test_a_link_closed_by_its_peer_is_dropped_before_the_next_frame() -> None:
    dying = socket.create_server(("127.0.0.1", 0))  # authenticates, then its process ends
    accepted = threading.Event()

    def serve_then_die() -> None:
        sock, _ = dying.accept()
        accept_handshake(sock, TOKEN, DATA)
        accepted.set()
        sock.recv(1 << 16)  # the first frame
        sock.close()

    threading.Thread(target=serve_then_die, daemon=True).start()
    sender = DataPlane("127.0.0.1", TOKEN)
    try:
        host, port = dying.getsockname()[:2]
        sender.learn((("b", f"{host}:{port}"),))
        sender.announce_failure("b", 1, "first")
        assert accepted.wait(10)
        dying.close()
        deadline = time.monotonic() + 10
        while sender.linked("b") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not sender.linked("b")  # so the next frame opens a new connection
    finally:
        sender.close()
