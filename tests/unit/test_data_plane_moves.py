"""The data plane's MOVE frames: a migrating rank reaches its new worker, or fails in time."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from faabric.mpi import network
from faabric.mpi.network import DataPlane
from faabric.transport.auth import DATA, accept_handshake
from faabric.wasm.host import GuestFault

TOKEN = "data-plane-test-token-0123456789"


class _Router:
    def arrive(self, *args: object) -> None: ...

    def acknowledged(self, *args: object) -> None: ...

    def failed(self, *args: object) -> None: ...

    def fenced(self, *args: object) -> None: ...

    def readied(self, *args: object) -> None: ...


def test_a_rank_frame_arrives_whole() -> None:
    got: list[bytes] = []
    arrived = threading.Event()
    receiver, sender = DataPlane("127.0.0.1", TOKEN), DataPlane("127.0.0.1", TOKEN)
    receiver.start(_Router(), moves=lambda payload: (got.append(bytes(payload)), arrived.set()))
    try:
        sender.learn((("r", receiver.address),))
        memory = bytes(range(256)) * 4096
        sender.send_rank("r", (b"meta", memoryview(memory)))
        assert arrived.wait(10)
        assert got == [b"meta" + memory]
    finally:
        sender.close()
        receiver.close()


def test_a_worker_that_stops_reading_fails_the_move_after_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(network, "MOVE_TIMEOUT", 0.5)
    monkeypatch.setattr(network, "MOVE_MIN_RATE", 1e12)
    silent = socket.create_server(("127.0.0.1", 0))  # authenticates, then never reads
    held: list[socket.socket] = []

    def authenticate() -> None:
        sock, _ = silent.accept()
        accept_handshake(sock, TOKEN, DATA)
        held.append(sock)

    threading.Thread(target=authenticate, daemon=True).start()
    sender = DataPlane("127.0.0.1", TOKEN)
    try:
        sender.learn((("stuck", f"127.0.0.1:{silent.getsockname()[1]}"),))
        started = time.monotonic()
        with pytest.raises(GuestFault, match="lost the connection to worker stuck"):
            sender.send_rank("stuck", (b"meta", memoryview(bytes(64 << 20))))
        assert time.monotonic() - started < 10
    finally:
        sender.close()
        silent.close()
        for sock in held:
            sock.close()
