"""One-sided communication: the pure parts (segments, wire form, lock table) and the host
service of two worlds joined by a network that delivers at once, on plain host buffers."""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field

import pytest
from test_mpi_world import Buffers, done, fields

from faabric.mpi import rma
from faabric.mpi.matching import Envelope
from faabric.mpi.ranks import Layout
from faabric.mpi.rma import EXCLUSIVE, SHARED, UPDATE, LockTable, Request, Segments
from faabric.mpi.world import LocalWorld
from faabric.wasm.host import GuestFault

PLACEMENT = ("a", "a", "b", "b")


# -- pure parts -------------------------------------------------------------------------------


def test_segments_round_trip_and_bounds() -> None:
    segments = Segments(((0, 4), (12, 8)))
    assert Segments.parse(segments.pack()) == segments
    assert segments.total == 12
    assert segments.fit(20)
    assert not segments.fit(19)
    assert not Segments(((-4, 4),)).fit(100)
    with pytest.raises(ValueError, match="negative"):
        Segments.parse(Segments(((0, -1),)).pack())


def test_requests_and_replies_round_trip() -> None:
    request = Request(rma.PUT, 9, 0, Segments(((8, 3),)), b"abc")
    parsed = Request.parse(bytearray(request.pack()))
    assert (parsed.kind, parsed.window, parsed.segments) == (rma.PUT, 9, request.segments)
    assert bytes(parsed.data) == b"abc"
    assert rma.parse_reply(rma.pack_reply(rma.E_RANGE, b"xy"))[0] == rma.E_RANGE
    with pytest.raises(ValueError):
        Request.parse(bytearray(b"\x01\x00"))
    with pytest.raises(ValueError, match="segment count"):
        Request.parse(bytearray(request.pack()[:20]))


def test_shared_locks_are_granted_together_and_exclusive_ones_alone() -> None:
    table = LockTable()
    key = (5, 0)
    assert table.acquire(key, SHARED, "a")
    assert table.acquire(key, SHARED, "b")
    assert not table.acquire(key, EXCLUSIVE, "c")
    assert not table.acquire(key, SHARED, "d")  # behind the queued exclusive: first come
    assert table.release(key, SHARED) == []
    assert table.release(key, SHARED) == ["c"]
    assert table.release(key, EXCLUSIVE) == ["d"]
    assert table.release(key, SHARED) == []
    assert table.release(key, SHARED) is None  # not held


def test_the_update_lock_is_independent_of_the_others() -> None:
    table = LockTable()
    key = (5, 1)
    assert table.acquire(key, EXCLUSIVE, "a")
    assert table.acquire(key, UPDATE, "b")
    assert not table.acquire(key, UPDATE, "c")
    assert table.release(key, UPDATE) == ["c"]
    assert table.release(key, UPDATE) == []
    assert table.release(key, EXCLUSIVE) == []
    assert table.waiters() == []


def test_waiters_of_ended_ranks_are_dropped() -> None:
    table = LockTable()
    key = (1, 1)
    table.acquire(key, EXCLUSIVE, "keep")
    table.acquire(key, EXCLUSIVE, "gone")
    table.drop_waiters(lambda waiter: waiter == "gone")
    assert table.release(key, EXCLUSIVE) == []


# -- the host service -------------------------------------------------------------------------


@dataclass
class Wire:
    """Delivers every message at once to the world of the host it is sent to."""

    worlds: dict[str, LocalWorld] = field(default_factory=dict)

    def send(self, host: str, app_id: int, envelope: Envelope, dest: int, payload: memoryview,
             token: int) -> None:
        data = bytearray(payload)
        self.worlds[host].arrive(envelope, dest, lambda address, n: None, lambda: data, token)

    def acknowledge(self, host: str, app_id: int, token: int) -> None:
        pass

    def announce_failure(self, host: str, app_id: int, reason: str) -> None:
        self.worlds[host].fail(reason)


@pytest.fixture
def wire() -> Wire:
    wire = Wire()
    for here in ("a", "b"):
        world = wire.worlds[here] = LocalWorld(1, wire)
        world.configure(Layout(PLACEMENT, here))
        for rank, host in enumerate(PLACEMENT):
            if host == here:
                world.attach(rank, timeout=5.0)
    return wire


def wait_done(request: int) -> tuple[int, int, int, int]:
    deadline = time.monotonic() + 5.0
    while not done(request):
        assert time.monotonic() < deadline, "the request never completed"
        time.sleep(0.001)
    return fields(request)


def window(wire: Wire, mem: Buffers, rank: int, data: bytes, win: int = 7) -> int:
    address = mem.new(data)
    wire.worlds[PLACEMENT[rank]].rma.expose(rank, win, address, len(data))
    return address


@pytest.mark.parametrize("target", [1, 2])  # same host, other host
def test_put_then_get(wire: Wire, target: int) -> None:
    mem = Buffers()
    exposed = window(wire, mem, target, b"........")
    origin = wire.worlds["a"].rma
    put = mem.request()
    origin.operate(0, rma.PUT, 7, target, Segments(((1, 2), (5, 2))), mem.new(b"ABCD"), put)
    assert wait_done(put)[3] == rma.OK
    assert ctypes.string_at(exposed, 8) == b".AB..CD."
    into, get = mem.new(3), mem.request()
    origin.operate(0, rma.GET, 7, target, Segments(((4, 3),)), into, get)
    assert wait_done(get)[2:] == (3, rma.OK)
    assert ctypes.string_at(into, 3) == b".CD"


@pytest.mark.parametrize("target", [1, 2])
def test_bad_windows_and_ranges_are_errors(wire: Wire, target: int) -> None:
    mem = Buffers()
    window(wire, mem, target, b"1234")
    origin = wire.worlds["a"].rma
    outside, unknown = mem.request(), mem.request()
    origin.operate(0, rma.PUT, 7, target, Segments(((2, 3),)), mem.new(b"xyz"), outside)
    origin.operate(0, rma.GET, 8, target, Segments(((0, 1),)), mem.new(1), unknown)
    assert wait_done(outside)[3] == rma.E_RANGE
    assert wait_done(unknown)[3] == rma.E_WIN


def test_a_lock_held_from_another_host_holds_back_a_local_one(wire: Wire) -> None:
    mem = Buffers()
    window(wire, mem, 2, b"....")
    remote, local = wire.worlds["a"].rma, wire.worlds["b"].rma
    first, second, release, again = (mem.request() for _ in range(4))
    remote.lock(0, 7, 2, EXCLUSIVE, True, first)
    assert wait_done(first)[3] == rma.OK
    local.lock(3, 7, 2, SHARED, True, second)
    assert not done(second)
    remote.lock(0, 7, 2, EXCLUSIVE, False, release)
    assert wait_done(release)[3] == rma.OK
    assert wait_done(second)[3] == rma.OK
    local.lock(3, 7, 2, EXCLUSIVE, False, again)  # not the kind it holds
    assert wait_done(again)[3] == rma.E_SYNC


def test_an_ended_rank_exposes_nothing(wire: Wire) -> None:
    mem = Buffers()
    window(wire, mem, 1, b"....")
    wire.worlds["a"].detach(1)
    request = mem.request()
    wire.worlds["a"].rma.operate(0, rma.PUT, 7, 1, Segments(((0, 1),)), mem.new(b"x"), request)
    assert wait_done(request)[3] == rma.E_WIN


def test_a_malformed_request_fails_the_world(wire: Wire) -> None:
    world = wire.worlds["b"]
    world.arrive(Envelope(rma.REQUEST_CTX, 0, 1, 2), 2, lambda a, n: None,
                 lambda: bytearray(b"\x01\x02"), 0)
    assert world.failure is not None and "malformed one-sided" in world.failure
    with pytest.raises(GuestFault):
        world.rma.operate(2, rma.GET, 7, 3, Segments(()), 0, Buffers().request())
