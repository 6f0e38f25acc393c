"""The migration protocol of MPI worlds (mpi/migration.py), two hosts wired in-process."""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass, field

import pytest

from faabric.mpi import memory
from faabric.mpi.matching import Envelope, Pattern
from faabric.mpi.migration import CalledOff, Leave, Migrations, Start, Stay
from faabric.mpi.moving import RankRecord
from faabric.mpi.ranks import Layout
from faabric.mpi.world import LocalWorld
from faabric.wasm.host import GuestFault

APP = 7
OLD = ("A", "B")
NEW = ("A", "A")


@dataclass
class Wire:
    """Carries messages, fences and ready notes between the two hosts' worlds."""

    hosts: dict[str, Migrations] = field(default_factory=dict)
    worlds: dict[str, LocalWorld] = field(default_factory=dict)
    notes: list[tuple[str, str, int, str]] = field(default_factory=list)

    def send(self, host: str, app_id: int, envelope: Envelope, dest: int, payload: memoryview,
             token: int) -> None:
        data = bytearray(payload)
        self.worlds[host].arrive(envelope, dest, lambda a, n: memory.write(a, data, n),
                                 lambda: data, token)

    def acknowledge(self, host: str, app_id: int, token: int) -> None:
        self.worlds[host].acknowledged(token)

    def announce_failure(self, host: str, app_id: int, reason: str) -> None:
        self.worlds[host].fail(reason)

    def fence(self, host: str, app_id: int, epoch: int, sender: str) -> None:
        self.notes.append(("fence", host, epoch, sender))
        self.hosts[host].fenced(epoch, sender)

    def ready(self, host: str, app_id: int, epoch: int, sender: str) -> None:
        self.notes.append(("ready", host, epoch, sender))
        self.hosts[host].readied(epoch, sender)


@dataclass
class Planner:
    claims: list[tuple[int, int]] = field(default_factory=list)
    points_seen: list[int] = field(default_factory=list)

    def points(self, app_id: int) -> None:
        self.points_seen.append(app_id)

    def claim(self, app_id: int, epoch: int) -> None:
        self.claims.append((app_id, epoch))


def _hosts(planner: Planner) -> tuple[Wire, dict[str, LocalWorld], dict[str, Migrations]]:
    wire = Wire()
    for name in ("A", "B"):
        world = LocalWorld(APP, wire)
        world.configure(Layout(OLD, name))
        wire.worlds[name] = world
        wire.hosts[name] = Migrations(world, name, wire, planner)
    wire.worlds["A"].attach(0, 5.0)
    wire.worlds["B"].attach(1, 5.0)
    return wire, wire.worlds, wire.hosts


def _in_thread(call: object) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []

    def body() -> None:
        try:
            out.append(call())  # type: ignore[operator]
        except GuestFault as fault:
            out.append(fault)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, out


def test_offers_are_given_every_kth_barrier_and_points_declared_once() -> None:
    planner = Planner()
    _, _, moves = _hosts(planner)
    moves["A"].period = 2
    moves["A"].set_offer(3)
    assert [moves["A"].offered(at_barrier=True) for _ in range(4)] == [0, 3, 0, 3]
    assert moves["A"].offered(at_barrier=False) == 3  # explicit points ignore the period
    moves["A"].drop_offer(3)
    assert moves["A"].offered(at_barrier=False) == 0
    assert planner.points_seen == [APP]


def test_a_moving_rank_takes_its_queues_and_the_other_waits_until_it_is_in() -> None:
    planner = Planner()
    wire, worlds, moves = _hosts(planner)
    ram = ctypes.create_string_buffer(4096)  # rank 1's memory on B
    base = ctypes.addressof(ram)
    # A message from rank 0 to rank 1 that nobody received yet, and a posted receive.
    payload = bytearray(b"hello")
    worlds["B"].arrive(Envelope(0, 0, 5, 5), 1, lambda a, n: None, lambda: payload, 0)
    worlds["B"].irecv(1, Pattern(0, 0, 9), base + 100, 16, base + 200)
    rank0, out0 = _in_thread(lambda: moves["A"].enter(0, 1, 0))
    rank1, out1 = _in_thread(lambda: moves["B"].enter(1, 1, base))
    wait = threading.Event()
    while not planner.claims:
        wait.wait(0.01)
    assert planner.claims == [(APP, 1)]
    for name in ("A", "B"):
        moves[name].decided(1, Start(NEW))
    rank1.join(5)
    (leave,) = out1
    assert isinstance(leave, Leave) and leave.host == "A"
    record: RankRecord = leave.record
    assert [a.data for a in record.arrived] == [b"hello"]
    assert [(p.buffer, p.request, p.tag) for p in record.posted] == [(100, 200, 9)]
    assert rank0.is_alive()  # it waits for the moved rank to be in place
    # Rank 1 resumes on A with a memory somewhere else.
    ram2 = ctypes.create_string_buffer(4096)
    worlds["A"].put_rank(1, record, ctypes.addressof(ram2))
    moves["A"].arrived(1, 1, Start(NEW))
    rank0.join(5)
    assert out0 == [Stay(True)]
    assert worlds["A"].layout == Layout(NEW, "A")
    # The moved queues work at the new address: the message 0 -> 1 with tag 9 lands in ram2.
    request = ctypes.addressof(ram2) + 200
    data = ctypes.create_string_buffer(b"payload!")
    send_request = ctypes.create_string_buffer(memory.REQUEST_SIZE)
    worlds["A"].isend(0, Envelope(0, 0, 9, 8), 1, ctypes.addressof(data), False,
                      ctypes.addressof(send_request))
    assert ctypes.c_int32.from_address(request).value == 1
    assert ram2.raw[100:108] == b"payload!"
    assert ("fence", "A", 1, "B") in wire.notes and ("fence", "B", 1, "A") in wire.notes


def test_a_called_off_migration_leaves_everything_where_it_was() -> None:
    planner = Planner()
    _, worlds, moves = _hosts(planner)
    rank0, out0 = _in_thread(lambda: moves["A"].enter(0, 2, 0))
    rank1, out1 = _in_thread(lambda: moves["B"].enter(1, 2, 0))
    for name in ("A", "B"):
        moves[name].decided(2, CalledOff("stale"))
    rank0.join(5)
    rank1.join(5)
    assert out0 == out1 == [Stay(False)]
    assert worlds["A"].layout == Layout(OLD, "A")


def test_a_failed_world_stops_ranks_waiting_at_a_migration_point() -> None:
    planner = Planner()
    _, worlds, moves = _hosts(planner)
    rank0, out0 = _in_thread(lambda: moves["A"].enter(0, 3, 0))
    worlds["A"].fail("rank 1 trapped")
    rank0.join(5)
    assert isinstance(out0[0], GuestFault) and "rank 1 trapped" in str(out0[0])


@pytest.mark.parametrize("epoch", [1, 5])
def test_a_lone_rank_times_out_waiting_for_the_planner(epoch: int) -> None:
    planner = Planner()
    _, worlds, moves = _hosts(planner)
    worlds["A"].attach(0, 0.2)
    with pytest.raises(GuestFault, match="timed out during a migration"):
        moves["A"].enter(0, epoch, 0)


def test_a_freeze_sends_every_rank_to_the_park_host_after_the_fences() -> None:
    from faabric.mpi.migration import Freeze

    planner = Planner()
    wire, _, moves = _hosts(planner)
    rank0, out0 = _in_thread(lambda: moves["A"].enter(0, 4, 0))
    rank1, out1 = _in_thread(lambda: moves["B"].enter(1, 4, 0))
    for name in ("A", "B"):
        moves[name].decided(4, Freeze("C"))
    rank0.join(5)
    rank1.join(5)
    assert [type(o) for o in out0 + out1] == [Leave, Leave]
    assert all(isinstance(o, Leave) and o.host == "C" for o in out0 + out1)
    assert {n[0] for n in wire.notes} == {"fence"}  # nobody stays, so nobody says ready
