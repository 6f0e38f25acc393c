"""Every framed input is bounded: lengths are checked before anything is allocated, buffers
grow only with the bytes that arrived, and decoding arbitrary bytes fails only with
faabric's own BrokenError (never a raw exception), on every codec and framing."""

from __future__ import annotations

import logging
import re
import socket
import struct
from collections.abc import Iterator
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_framing import tcp_pair

from faabric.errors import BrokenError, FrameTooLarge, TimeoutError_
from faabric.granule import transfer
from faabric.messages.control import CONTROL_CODEC, Register, Report
from faabric.messages.team import TEAM_CODEC
from faabric.messages.types import Exited, GranuleResult
from faabric.mpi.network import DataLimits, DataPlane
from faabric.threads.wire import TeamWire
from faabric.transport.auth import DATA, connect_handshake
from faabric.transport.framing import FramedSocket
from faabric.transport.limits import GROW_FROM, check_length, read_growing

TOKEN = "frame-limits-test-token-0123456789"
TIMEOUT = 5.0
HEADER = struct.Struct("<BxxxqiiiiqI")  # the data plane's frame header
SAMPLE = CONTROL_CODEC.encode(Report(GranuleResult(3, 1, "h", Exited(0), stdout=b"out")))


def test_a_length_over_the_limit_is_refused_naming_the_setting() -> None:
    check_length(10, 10, "x_max", "peer")
    for length in (11, -1, 1 << 62):
        with pytest.raises(FrameTooLarge, match=r"^peer announced a frame of -?\d+ bytes, "
                                                r"over the limit of 10 bytes \(x_max\)$"):
            check_length(length, 10, "x_max", "peer")


def test_a_growing_read_holds_about_what_arrived() -> None:
    sizes: list[int] = []

    def fill(view: memoryview) -> None:
        sizes.append(len(view))
        view[:] = b"\x07" * len(view)

    data = read_growing(fill, 5 * GROW_FROM + 3, b"ab")
    assert len(data) == 5 * GROW_FROM + 3 and data[:3] == b"ab\x07"
    assert sizes[0] == GROW_FROM - 2  # the first request is small, whatever was announced
    held = 2
    for size in sizes:  # every step asks for at most as much as already arrived
        assert size <= max(held, GROW_FROM)
        held += size

    def stop(view: memoryview) -> None:
        raise BrokenError("peer gone")

    with pytest.raises(BrokenError):
        read_growing(stop, 1 << 40)  # a lie of 1 TiB costs the first megabyte only


# -- decoding random bytes --------------------------------------------------------------------

CODECS = [CONTROL_CODEC, TEAM_CODEC, transfer._CODEC]


@given(st.binary(max_size=512), st.sampled_from(CODECS))
def test_any_bytes_decode_or_raise_broken(data: bytes, codec: object) -> None:
    try:
        codec.decode(data)  # type: ignore[attr-defined]
    except BrokenError:
        pass


@given(st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)), max_size=8),
       st.integers(0, len(SAMPLE)))
def test_damaged_messages_decode_or_raise_broken(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(SAMPLE)
    for at, value in edits:
        data[at] = value
    try:
        CONTROL_CODEC.decode(bytes(data[:cut]))
    except BrokenError:
        pass


def test_deeply_nested_extensions_raise_broken() -> None:
    inner = CONTROL_CODEC.encode(Register("w", 1, "v"))
    for _ in range(5000):  # each level a dataclass extension holding the previous one
        body = b"\x92\xa8Register" + inner  # fixarray(2): tag, one "field"
        inner = b"\xc9" + struct.pack(">I", len(body)) + b"\x01" + body
    with pytest.raises(BrokenError, match="dataclasses nest deeper than 32 levels"):
        CONTROL_CODEC.decode(inner)


@given(st.binary(max_size=512))
def test_team_frames_and_moving_ranks_decode_or_raise_broken(data: bytes) -> None:
    wire = TeamWire(cast(DataPlane, None))
    for decode in (wire.decode, transfer.decode):
        try:
            decode(bytearray(data))
        except BrokenError:
            pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_a_framed_socket_reading_random_bytes_raises_only_faabric_errors(data: bytes) -> None:
    a, b = tcp_pair()
    reader = FramedSocket(b, CONTROL_CODEC, io_timeout=TIMEOUT, max_frame=1 << 16)
    try:
        a.sendall(data)
        a.close()
        for _ in range(len(data) + 1):
            reader.recv(TIMEOUT)
    except (BrokenError, TimeoutError_):
        pass
    finally:
        reader.close()


def test_a_framed_socket_refuses_a_huge_length_before_reading_it() -> None:
    a, b = tcp_pair()
    reader = FramedSocket(b, CONTROL_CODEC, io_timeout=TIMEOUT, max_frame=1 << 20)
    a.sendall(struct.pack(">I", 0x3FFFFFFF))
    with pytest.raises(FrameTooLarge, match=r"announced a frame of 1073741823 bytes, over the "
                                            r"limit of 1048576 bytes \(control_max_frame\)"):
        reader.recv(TIMEOUT)
    reader.close()
    a.close()


# -- the data plane ---------------------------------------------------------------------------


class NullRouter:
    def arrive(self, *args: object) -> None:
        raise AssertionError("no message should arrive")

    def acknowledged(self, app_id: int, token: int) -> None:
        pass

    def failed(self, app_id: int, reason: str) -> None:
        pass

    def fenced(self, app_id: int, epoch: int, host: str) -> None:
        pass

    def readied(self, app_id: int, epoch: int, host: str) -> None:
        pass


TEAM_FRAMES: list[bytearray] = []


@pytest.fixture
def plane() -> Iterator[DataPlane]:
    data_plane = DataPlane("127.0.0.1", TOKEN, DataLimits(max_frame=1 << 20, stall_timeout=0.5))
    data_plane.start(NullRouter(), TEAM_FRAMES.append)
    yield data_plane
    data_plane.close()


def open_link(plane: DataPlane) -> socket.socket:
    host, _, port = plane.address.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    connect_handshake(sock, TOKEN, DATA, peer="the plane", me="test")
    sock.settimeout(TIMEOUT)
    return sock


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize(("kind", "length", "says"), [
    (1, (1 << 20) + 1, r"over the limit of 1048576 bytes \(data_max_frame\)"),  # MESSAGE
    (4, 1 << 62, r"over the limit of 1048576 bytes \(data_max_frame\)"),  # TEAM
    (7, -5, r"announced a frame of -5 bytes"),  # MOVE
    (3, 1 << 31, r"a note's fixed limit"),  # FAILED
    (2, 8, r"an acknowledgement carries nothing"),  # ACK
    (99, 0, r"a frame of unknown kind 99"),
])
def test_the_data_plane_closes_a_connection_announcing_a_bad_frame(
    plane: DataPlane, caplog: pytest.LogCaptureFixture, kind: int, length: int, says: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="faabric.mpi.network")
    sock = open_link(plane)
    sock.sendall(HEADER.pack(kind, 1, 0, 0, 0, 0, length, 0))
    assert closed(sock)
    sock.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("closed a data-plane connection from 127.0.0.1:")
    assert re.search(says, lines[0])
    again = open_link(plane)  # and it keeps serving
    again.sendall(HEADER.pack(2, 1, 0, 0, 0, 0, 0, 0))
    again.close()


def test_the_data_plane_closes_a_connection_stalled_half_way(
    plane: DataPlane, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="faabric.mpi.network")
    TEAM_FRAMES.clear()
    sock = open_link(plane)
    sock.sendall(HEADER.pack(4, 0, 0, 0, 0, 0, 100, 0) + b"x" * 10)  # then nothing
    assert closed(sock)
    assert not TEAM_FRAMES
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "stalled in the middle of a frame"]
