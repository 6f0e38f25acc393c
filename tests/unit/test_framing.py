"""Length-prefixed frames over a connected pair of loopback TCP sockets."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from faabric.errors import BrokenError, ClosedError, TimeoutError_
from faabric.messages.control import CONTROL_CODEC, Goodbye, KeepAlive, Register, Report
from faabric.messages.types import Exited, GranuleResult
from faabric.transport.framing import FramedSocket, connect, listen

TIMEOUT = 5.0


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of TCP sockets (FramedSocket sets TCP_NODELAY, so no AF_UNIX)."""
    with listen("127.0.0.1", 0) as listener:
        client = connect("127.0.0.1", listener.getsockname()[1], timeout=TIMEOUT)
        server, _ = listener.accept()
    return client, server


@pytest.fixture
def pair() -> Iterator[tuple[FramedSocket, FramedSocket]]:
    a, b = tcp_pair()
    left = FramedSocket(a, CONTROL_CODEC, io_timeout=TIMEOUT)
    right = FramedSocket(b, CONTROL_CODEC, io_timeout=TIMEOUT)
    yield left, right
    left.close()
    right.close()


def test_round_trip_both_ways(pair: tuple[FramedSocket, FramedSocket]) -> None:
    left, right = pair
    result = GranuleResult(1, 0, "h", Exited(0), stdout=b"\xff" * 100_000)
    left.send(Register("w", 2, "0.1.0"))
    left.send(Report(result))
    assert right.recv(TIMEOUT) == Register("w", 2, "0.1.0")
    assert right.recv(TIMEOUT) == Report(result)
    right.send(KeepAlive())
    assert left.recv(TIMEOUT) == KeepAlive()


def test_plain_values(pair: tuple[FramedSocket, FramedSocket]) -> None:
    left, right = pair
    left.send({"a": (1, 2.5, b"x")})
    assert right.recv(TIMEOUT) == {"a": (1, 2.5, b"x")}


def test_recv_timeout_leaves_the_connection_usable(
    pair: tuple[FramedSocket, FramedSocket],
) -> None:
    left, right = pair
    began = time.monotonic()
    with pytest.raises(TimeoutError_):
        right.recv(0.05)
    assert time.monotonic() - began >= 0.05
    assert not right.closed
    left.send(Goodbye("bye"))
    assert right.recv(TIMEOUT) == Goodbye("bye")


def test_recv_zero_timeout_returns_a_waiting_message(
    pair: tuple[FramedSocket, FramedSocket],
) -> None:
    left, right = pair
    left.send(KeepAlive())
    deadline = time.monotonic() + TIMEOUT
    while True:  # the frame may still be in flight: poll with a deadline
        try:
            assert right.recv(0) == KeepAlive()
            break
        except TimeoutError_:
            assert time.monotonic() < deadline


def test_peer_close_is_broken(pair: tuple[FramedSocket, FramedSocket]) -> None:
    left, right = pair
    left.close()
    with pytest.raises(BrokenError, match="closed the connection"):
        right.recv(TIMEOUT)


def test_peer_close_mid_frame_is_broken() -> None:
    a, b = tcp_pair()
    right = FramedSocket(b, CONTROL_CODEC, io_timeout=TIMEOUT)
    a.sendall(struct.pack(">I", 100) + b"\x00" * 10)
    a.close()
    with pytest.raises(BrokenError):
        right.recv(TIMEOUT)
    right.close()


def test_stall_mid_frame_is_broken() -> None:
    a, b = tcp_pair()
    right = FramedSocket(b, CONTROL_CODEC, io_timeout=0.1)
    a.sendall(struct.pack(">I", 100) + b"\x00" * 10)
    with pytest.raises(BrokenError, match="stalled"):
        right.recv(TIMEOUT)
    right.close()
    a.close()


def test_oversized_frame_is_broken() -> None:
    a, b = tcp_pair()
    right = FramedSocket(b, CONTROL_CODEC, io_timeout=TIMEOUT, max_frame=64)
    a.sendall(struct.pack(">I", 65) + b"\x00" * 65)
    with pytest.raises(BrokenError, match="over the limit"):
        right.recv(TIMEOUT)
    right.close()
    a.close()


def test_oversized_message_is_not_sent() -> None:
    a, b = tcp_pair()
    small = FramedSocket(a, CONTROL_CODEC, io_timeout=TIMEOUT, max_frame=16)
    right = FramedSocket(b, CONTROL_CODEC, io_timeout=TIMEOUT)
    with pytest.raises(BrokenError, match="frame limit"):
        small.send(Goodbye("x" * 100))
    small.send(KeepAlive())  # nothing of the refused message was written
    assert right.recv(TIMEOUT) == KeepAlive()
    small.close()
    right.close()


def test_garbage_frame_is_broken() -> None:
    a, b = tcp_pair()
    right = FramedSocket(b, CONTROL_CODEC, io_timeout=TIMEOUT)
    a.sendall(struct.pack(">I", 1) + b"\xc1")
    with pytest.raises(BrokenError, match="malformed"):
        right.recv(TIMEOUT)
    right.close()
    a.close()


def test_concurrent_senders_do_not_interleave(
    pair: tuple[FramedSocket, FramedSocket],
) -> None:
    left, right = pair
    threads, per_thread = 8, 200
    received: list[object] = []

    def read() -> None:
        for _ in range(threads * per_thread):
            received.append(right.recv(TIMEOUT))

    reader = threading.Thread(target=read)
    reader.start()

    def send(sender: int) -> None:
        for i in range(per_thread):
            # big enough that one sendall can be split by the kernel
            left.send(Goodbye(f"{sender}:{i}:" + "x" * (1000 + sender * 997)))

    senders = [threading.Thread(target=send, args=(t,)) for t in range(threads)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(TIMEOUT * 4)
    reader.join(TIMEOUT * 4)
    assert not reader.is_alive()
    assert len(received) == threads * per_thread
    by_sender: dict[int, list[int]] = {}
    for message in received:
        assert isinstance(message, Goodbye)
        sender, index, padding = message.reason.split(":")
        assert padding == "x" * (1000 + int(sender) * 997)
        by_sender.setdefault(int(sender), []).append(int(index))
    assert by_sender == {t: list(range(per_thread)) for t in range(threads)}


def test_close_is_idempotent_then_closed_error(
    pair: tuple[FramedSocket, FramedSocket],
) -> None:
    left, _ = pair
    left.close()
    left.close()
    assert left.closed
    with pytest.raises(ClosedError):
        left.send(KeepAlive())
    with pytest.raises(ClosedError):
        left.recv(TIMEOUT)
    with pytest.raises(ClosedError):
        left.recv(None)


def test_send_to_a_closed_peer_is_broken(pair: tuple[FramedSocket, FramedSocket]) -> None:
    left, right = pair
    right.close()
    deadline = time.monotonic() + TIMEOUT
    with pytest.raises(BrokenError):  # the first sends may still be buffered
        while time.monotonic() < deadline:
            left.send(Goodbye("x" * 65536))


def test_peer_name() -> None:
    a, b = tcp_pair()
    framed = FramedSocket(a, CONTROL_CODEC)
    assert framed.peer == f"127.0.0.1:{b.getsockname()[1]}"
    framed.close()
    b.close()


def test_connect_refused_is_broken() -> None:
    with listen("127.0.0.1", 0) as listener:
        port = listener.getsockname()[1]
    with pytest.raises(BrokenError, match=f"cannot connect to 127.0.0.1:{port}"):
        connect("127.0.0.1", port, timeout=TIMEOUT)


def test_recv_without_timeout_waits_longer_than_io_timeout() -> None:
    a, b = tcp_pair()
    left = FramedSocket(a, CONTROL_CODEC, io_timeout=0.1)
    right = FramedSocket(b, CONTROL_CODEC, io_timeout=0.1)
    timer = threading.Timer(0.3, left.send, args=(KeepAlive(),))
    timer.start()
    try:
        assert right.recv(None) == KeepAlive()
    finally:
        timer.join(TIMEOUT)
        left.close()
        right.close()


def test_several_messages_in_one_write(pair: tuple[FramedSocket, FramedSocket]) -> None:
    left, right = pair
    big = Report(GranuleResult(1, 0, "h", Exited(0), stdout=b"\x01" * 200_000))
    messages = [KeepAlive(), Goodbye("a"), big, Goodbye("b"), *([KeepAlive()] * 500)]
    left.send_many(messages)
    assert [right.recv(TIMEOUT) for _ in messages] == messages
    # Everything buffered was consumed: the next recv waits for the wire again.
    with pytest.raises(TimeoutError_):
        right.recv(0.01)


def test_frames_split_across_reads_are_joined() -> None:
    a, b = tcp_pair()
    receiver = FramedSocket(b, CONTROL_CODEC, io_timeout=TIMEOUT)
    body = CONTROL_CODEC.encode(Goodbye("split"))
    wire = (struct.pack(">I", len(body)) + body) * 2
    for cut in (2, len(wire) // 2 + 1):  # inside the header, then inside the second body
        a.sendall(wire[:cut])
        time.sleep(0.02)
        a.sendall(wire[cut:])
        assert [receiver.recv(TIMEOUT) for _ in range(2)] == [Goodbye("split")] * 2
    a.close()
    receiver.close()
