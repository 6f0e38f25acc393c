"""LocalWorld: matching, copies, completion, failure and detaching, on plain host buffers."""

from __future__ import annotations

import ctypes
import struct
import threading
from dataclasses import dataclass, field

import pytest

from faabric.mpi import memory
from faabric.mpi.matching import ANY, Envelope, Pattern
from faabric.mpi.ranks import Layout
from faabric.mpi.world import EAGER_LIMIT, PULL_LIMIT, LocalWorld
from faabric.wasm.host import GuestFault


@dataclass
class FakeNetwork:
    sent: list[tuple[str, Envelope, int, bytes, int]] = field(default_factory=list)
    acks: list[tuple[str, int]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def send(self, host: str, app_id: int, envelope: Envelope, dest: int, payload: memoryview,
             token: int) -> None:
        self.sent.append((host, envelope, dest, bytes(payload), token))

    def acknowledge(self, host: str, app_id: int, token: int) -> None:
        self.acks.append((host, token))

    def announce_failure(self, host: str, app_id: int, reason: str) -> None:
        self.failures.append((host, reason))


class Buffers:
    """Host memory standing in for ranks' linear memories."""

    def __init__(self) -> None:
        self._keep: list[ctypes.Array[ctypes.c_char]] = []

    def new(self, data: bytes | int) -> int:
        buf = ctypes.create_string_buffer(data)
        self._keep.append(buf)
        return ctypes.addressof(buf)

    def request(self) -> int:
        return self.new(memory.REQUEST_SIZE)


def done(request: int) -> bool:
    return ctypes.c_int32.from_address(request).value == 1


def fields(request: int) -> tuple[int, int, int, int]:
    """(source, tag, length, error) of a completed request."""
    source, tag, length, error = struct.unpack("<iiii", ctypes.string_at(request + 4, 16))
    return source, tag, length, error


@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork()


@pytest.fixture
def world(net: FakeNetwork) -> LocalWorld:
    world = LocalWorld(1, net)
    world.configure(Layout(("a", "a", "a", "b"), "a"))
    for rank in (0, 1, 2):
        world.attach(rank, timeout=5.0)
    return world


def send(world: LocalWorld, mem: Buffers, src: int, dest: int, tag: int, data: bytes,
         sync: bool = False) -> int:
    request = mem.request()
    world.isend(src, Envelope(0, src, tag, len(data)), dest, mem.new(data), sync, request)
    return request


def recv(world: LocalWorld, rank: int, source: int, tag: int, cap: int,
         mem: Buffers) -> tuple[int, int]:
    buf, request = mem.new(cap), mem.request()
    world.irecv(rank, Pattern(0, source, tag), buf, cap, request)
    return buf, request


def test_small_message_is_buffered_until_received(world: LocalWorld) -> None:
    mem = Buffers()
    sent = send(world, mem, 1, 0, 7, b"hello")
    assert done(sent)
    buf, got = recv(world, 0, 1, 7, 16, mem)
    assert done(got) and fields(got) == (1, 7, 5, memory.OK)
    assert ctypes.string_at(buf, 5) == b"hello"


def test_posted_receive_gets_the_message_directly(world: LocalWorld) -> None:
    mem = Buffers()
    buf, got = recv(world, 2, ANY, ANY, 8, mem)
    assert not done(got)
    send(world, mem, 0, 2, 3, b"abc")
    assert done(got) and fields(got) == (0, 3, 3, memory.OK)
    assert ctypes.string_at(buf, 3) == b"abc"


def test_large_message_waits_in_the_sender_then_moves_once(world: LocalWorld) -> None:
    mem = Buffers()
    data = bytes(range(256)) * (EAGER_LIMIT // 256 + 1)
    sent = send(world, mem, 1, 0, 0, data)
    assert not done(sent)
    buf, got = recv(world, 0, 1, 0, len(data), mem)
    assert done(sent) and done(got)
    assert ctypes.string_at(buf, len(data)) == data


def test_messages_from_one_sender_do_not_overtake(world: LocalWorld) -> None:
    mem = Buffers()
    for tag, text in ((1, b"first"), (1, b"second"), (2, b"other")):
        send(world, mem, 1, 0, tag, text)
    first, _a = recv(world, 0, ANY, 1, 8, mem)
    second, b = recv(world, 0, 1, ANY, 8, mem)
    assert ctypes.string_at(first, 5) == b"first"
    assert ctypes.string_at(second, 6) == b"second"
    assert fields(b)[1] == 1


def test_receives_match_in_the_order_they_were_posted(world: LocalWorld) -> None:
    mem = Buffers()
    _one, r1 = recv(world, 0, ANY, ANY, 8, mem)
    _two, r2 = recv(world, 0, ANY, ANY, 8, mem)
    send(world, mem, 2, 0, 5, b"x")
    assert done(r1) and not done(r2)


def test_contexts_do_not_mix(world: LocalWorld) -> None:
    mem = Buffers()
    request = mem.request()
    world.isend(1, Envelope(9, 1, 0, 1), 0, mem.new(b"z"), False, request)
    _, got = recv(world, 0, ANY, ANY, 4, mem)
    assert not done(got)


def test_truncation_reports_the_full_length(world: LocalWorld) -> None:
    mem = Buffers()
    send(world, mem, 1, 0, 0, b"0123456789")
    buf, got = recv(world, 0, 1, 0, 4, mem)
    assert fields(got) == (1, 0, 10, memory.E_TRUNCATE)
    assert ctypes.string_at(buf, 4) == b"0123"


def test_probe_sees_without_taking(world: LocalWorld) -> None:
    mem = Buffers()
    status = mem.request()
    assert not world.iprobe(0, Pattern(0, ANY, ANY), False, status)
    send(world, mem, 2, 0, 4, b"abcdef")
    assert world.iprobe(0, Pattern(0, ANY, 4), False, status)
    assert fields(status)[:3] == (2, 4, 6)
    _, got = recv(world, 0, 2, 4, 8, mem)
    assert done(got)


def test_cancel_withdraws_a_pending_receive(world: LocalWorld) -> None:
    mem = Buffers()
    _, got = recv(world, 0, 1, 0, 8, mem)
    assert world.cancel(0, got)
    send(world, mem, 1, 0, 0, b"late")
    assert not done(got)
    assert not world.cancel(0, got)


def test_synchronous_send_completes_only_when_matched(world: LocalWorld) -> None:
    mem = Buffers()
    sent = send(world, mem, 1, 0, 0, b"s", sync=True)
    assert not done(sent)
    recv(world, 0, 1, 0, 4, mem)
    assert done(sent)


def test_sends_to_another_host_go_to_the_network(world: LocalWorld, net: FakeNetwork) -> None:
    mem = Buffers()
    sent = send(world, mem, 0, 3, 2, b"far")
    assert done(sent)
    assert net.sent == [("b", Envelope(0, 0, 2, 3), 3, b"far", 0)]


def test_remote_synchronous_send_completes_on_acknowledgement(
    world: LocalWorld, net: FakeNetwork
) -> None:
    mem = Buffers()
    sent = send(world, mem, 0, 3, 2, b"far", sync=True)
    token = net.sent[0][4]
    assert token > 0 and not done(sent)
    world.acknowledged(token)
    assert done(sent)


def test_arrivals_from_another_host(world: LocalWorld, net: FakeNetwork) -> None:
    mem = Buffers()
    buf, got = recv(world, 0, 3, 1, 8, mem)
    payload = b"direct"

    def read_into(address: int, n: int) -> None:
        ctypes.memmove(address, payload, n)

    world.arrive(Envelope(0, 3, 1, 6), 0, read_into, lambda: bytearray(payload), token=5)
    assert done(got) and ctypes.string_at(buf, 6) == b"direct"
    assert net.acks == [("b", 5)]
    world.arrive(Envelope(0, 3, 1, 3), 0, read_into, lambda: bytearray(b"buf"), token=0)
    buf2, _got2 = recv(world, 0, 3, 1, 8, mem)
    assert ctypes.string_at(buf2, 3) == b"buf"


def test_failure_wakes_a_blocked_wait(world: LocalWorld, net: FakeNetwork) -> None:
    mem = Buffers()
    recv(world, 0, 1, 0, 8, mem)
    seen = world.completions(0)
    errors: list[str] = []

    def waiter() -> None:
        try:
            world.wait_change(0, seen)
        except GuestFault as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=waiter)
    thread.start()
    world.break_("rank 1 trapped: boom")
    thread.join(5)
    assert errors == ["rank 1 trapped: boom"]
    assert net.failures == [("b", "rank 1 trapped: boom")]
    with pytest.raises(GuestFault, match="rank 1 trapped"):
        send(world, mem, 2, 0, 0, b"x")


def test_wait_times_out_at_the_rank_deadline(net: FakeNetwork) -> None:
    now = [0.0]
    world = LocalWorld(2, net, clock=lambda: now[0])
    world.configure(Layout(("a",), "a"))
    world.attach(0, timeout=1.0)
    now[0] = 2.0
    with pytest.raises(GuestFault, match="timed out"):
        world.wait_change(0, world.completions(0))


def test_a_leaving_sender_leaves_its_large_messages_behind(world: LocalWorld) -> None:
    mem = Buffers()
    data = b"q" * (EAGER_LIMIT + 1)
    source = mem.new(data)
    request = mem.request()
    world.isend(1, Envelope(0, 1, 0, len(data)), 0, source, False, request)
    world.detach(1)
    ctypes.memset(source, 0, len(data))  # the sender's memory is gone
    buf, got = recv(world, 0, 1, 0, len(data), mem)
    assert done(got) and ctypes.string_at(buf, len(data)) == data


def wait_in_thread(world: LocalWorld, rank: int) -> threading.Thread:
    """Rank `rank` blocked in wait_change, as a guest waiting for a receive is."""
    seen = world.completions(rank)
    thread = threading.Thread(target=world.wait_change, args=(rank, seen))
    thread.start()
    while not world._rank(rank).in_wait:  # until it sleeps
        threading.Event().wait(0.001)
    return thread


def test_a_waiting_receiver_copies_a_large_message_itself(world: LocalWorld) -> None:
    mem = Buffers()
    data = bytes(range(256)) * (PULL_LIMIT // 256)
    buf, got = recv(world, 0, 1, 0, len(data), mem)
    waiter = wait_in_thread(world, 0)
    sent = send(world, mem, 1, 0, 0, data)
    assert not done(sent)  # handed to rank 0, whose thread copies it
    waiter.join(5)
    assert not waiter.is_alive()
    assert done(sent) and done(got) and fields(got)[2] == len(data)
    assert ctypes.string_at(buf, len(data)) == data


def test_a_sender_that_waits_first_copies_what_it_handed_over(world: LocalWorld) -> None:
    mem = Buffers()
    data = b"s" * PULL_LIMIT
    buf, got = recv(world, 0, 1, 0, len(data), mem)
    world._rank(0).in_wait = True  # rank 0 sleeps, but rank 1 gets to wait first
    seen = world.completions(1)
    sent = send(world, mem, 1, 0, 0, data)
    world._rank(0).in_wait = False
    assert not done(sent)
    world.wait_change(1, seen)  # returns once rank 1 copied it itself
    assert done(sent) and done(got)
    assert ctypes.string_at(buf, len(data)) == data


def test_a_leaving_sender_completes_what_it_handed_over(world: LocalWorld) -> None:
    mem = Buffers()
    data = b"z" * PULL_LIMIT
    buf, got = recv(world, 0, 1, 0, len(data), mem)
    world._rank(0).in_wait = True  # as if rank 0 slept in wait_change
    sent = send(world, mem, 1, 0, 0, data)
    world._rank(0).in_wait = False
    world.detach(1)
    assert done(sent) and done(got)
    assert ctypes.string_at(buf, len(data)) == data


def test_a_blocked_probe_wakes_when_a_message_arrives(world: LocalWorld) -> None:
    mem = Buffers()
    status = mem.request()
    found: list[bool] = []
    prober = threading.Thread(
        target=lambda: found.append(world.iprobe(0, Pattern(0, 1, 3), True, status)))
    prober.start()
    while not world._rank(0).waiting:
        threading.Event().wait(0.001)
    send(world, mem, 1, 0, 3, b"hello")
    prober.join(0.25)  # well before the wait's 0.5 s slice would end
    assert found == [True] and fields(status)[:3] == (1, 3, 5)


def test_clean_ending_needs_finalize_after_init(world: LocalWorld) -> None:
    assert world.ended_cleanly(0)
    world.mark(0, initialised=True)
    assert not world.ended_cleanly(0)
    world.mark(0, finalised=True)
    assert world.ended_cleanly(0)
