"""Team messages: every one survives TEAM_CODEC (and the TEAM frames of TeamWire) unchanged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pytest

from faabric.errors import BrokenError
from faabric.messages.team import (
    TEAM_CODEC,
    Member,
    RegionId,
    TeamDone,
    TeamForget,
    TeamMessage,
    TeamOp,
    TeamRefused,
    TeamReply,
    TeamRequest,
    TeamStart,
    TeamStop,
)
from faabric.messages.types import (
    AppSpec,
    Batch,
    Cancelled,
    Exited,
    Failed,
    Outcome,
    TimedOut,
    Trapped,
)
from faabric.mpi.network import DataPlane
from faabric.snapshot import (
    PAGE_SIZE,
    DataType,
    Diff,
    MergeOp,
    MergeRegion,
    RegionMap,
    Snapshot,
    compute_diff,
    expand,
    take_snapshot,
)
from faabric.threads.wire import TeamWire

REGION = RegionId("worker-a", 17)


def memory() -> np.ndarray:
    data = np.zeros(3 * PAGE_SIZE, np.uint8)
    data[:PAGE_SIZE] = np.arange(PAGE_SIZE) % 253
    data[2 * PAGE_SIZE + 9] = 1
    return data


def snapshot() -> Snapshot:
    return take_snapshot(memory())


def byte_diff() -> Diff:
    original = memory()
    changed = original.copy()
    changed[[3, 4, 5000]] = (9, 8, 7)
    return compute_diff(changed, original, ((0, 2 * PAGE_SIZE),))


def typed_diff() -> Diff:
    """A diff with a byte-wise block and an INT32 SUM block."""
    original = memory()
    changed = original.copy()
    changed[64:68] = (1, 0, 0, 0)
    changed[PAGE_SIZE + 1] = 5
    regions = RegionMap([MergeRegion(64, 16, DataType.INT32, MergeOp.SUM)])
    diff = compute_diff(changed, original, ((0, 2 * PAGE_SIZE),), regions)
    assert len(diff.blocks) == 2
    return diff


OUTCOMES: list[Outcome] = [Exited(0), Exited(3), Trapped("unreachable"), TimedOut(2.5),
                           Failed("host lost"), Cancelled("app stopped")]


def messages() -> list[TeamMessage]:
    spec = AppSpec("ab" * 32, 2, "omp", ("-n", "4"), (("OMP_NUM_THREADS", "4"),), b"in", 30.0,
                   1 << 26)
    batch = Batch(7, spec, (0,), ("worker-a", "worker-b"),
                  (("worker-a", "10.0.0.1:7000"), ("worker-b", "10.0.0.2:7000")))
    members = (Member(2, 1024, 65536), Member(3, 2048, 131072))
    found: list[TeamMessage] = [
        TeamStart(REGION, "10.0.0.1:7000", 29.5, batch, 1, 5, members,
                  ((0, 64), (4096, 8192)), "worker-a/1/1", snapshot()),
        TeamStart(REGION, "", 0.0, batch, 0, 0, (), (), "worker-a/1/0", Snapshot(PAGE_SIZE)),
        TeamStart(REGION, "", 1.25, batch, 0, 0, (), (), "worker-a/1/0", byte_diff()),
        TeamRequest(REGION, "worker-b", 1, TeamOp.BARRIER, 2, 0, 0, byte_diff()),
        TeamRequest(REGION, "worker-b", 2, TeamOp.RELEASE, 3, 0x7FFF_FFFF, 0, typed_diff()),
        TeamRequest(REGION, "worker-b", 3, TeamOp.ORDERED_WAIT, 2, 1, 1 << 40),
        TeamReply(REGION, 1, 0, 4, (byte_diff(), typed_diff())),
        TeamReply(REGION, 2, 1),  # nothing delivered: no ticket
        TeamReply(REGION, 3, 1, 0),  # delivery 0, with no diffs in it
        TeamReply(REGION, 4, 1, (1 << 40) + 1, (byte_diff(),)),
        TeamRefused(REGION, 5, "part worker-b trapped"),
        TeamDone(REGION, "worker-b", Exited(0), b"", b"", None),
        TeamStop(REGION, "the app was stopped"),
        TeamForget("worker-a/1/0"),
    ]
    found += [TeamRequest(REGION, "w", n, op, 0, -1, -2) for n, op in enumerate(TeamOp)]
    found += [TeamDone(REGION, "worker-b", o, b"out\n", b"\xff err", byte_diff())
              for o in OUTCOMES]
    return found


@pytest.mark.parametrize("message", messages(), ids=lambda m: type(m).__name__)
def test_every_team_message_round_trips(message: TeamMessage) -> None:
    decoded = TEAM_CODEC.decode(TEAM_CODEC.encode(message))
    assert decoded == message
    assert type(decoded) is type(message)
    if isinstance(decoded, TeamRequest):
        assert type(decoded.op) is TeamOp
    if isinstance(decoded, TeamDone) and isinstance(message, TeamDone):
        assert type(decoded.outcome) is type(message.outcome)


def test_a_reply_keeps_ticket_zero_apart_from_no_ticket() -> None:
    for ticket in (None, 0, 1):
        decoded = TEAM_CODEC.decode(TEAM_CODEC.encode(TeamReply(REGION, 9, 1, ticket)))
        assert isinstance(decoded, TeamReply)
        assert decoded.ticket == ticket and type(decoded.ticket) is type(ticket)
        assert decoded.diffs == ()


def test_a_team_start_keeps_seconds_left_a_float() -> None:
    start = messages()[0]
    assert isinstance(start, TeamStart)
    decoded = TEAM_CODEC.decode(TEAM_CODEC.encode(start))
    assert isinstance(decoded, TeamStart)
    assert decoded.seconds_left == 29.5 and type(decoded.seconds_left) is float


def test_the_snapshot_of_a_team_start_restores_the_same_memory() -> None:
    start = messages()[0]
    assert isinstance(start, TeamStart)
    decoded = TEAM_CODEC.decode(memoryview(TEAM_CODEC.encode(start)))
    assert isinstance(decoded.image, Snapshot)
    assert np.array_equal(expand(decoded.image), memory())


def test_a_timed_out_outcome_keeps_a_float() -> None:
    decoded = TEAM_CODEC.decode(TEAM_CODEC.encode(TeamDone(REGION, "w", TimedOut(3.0), b"",
                                                           b"")))
    assert isinstance(decoded.outcome, TimedOut) and type(decoded.outcome.seconds) is float


@dataclass
class FakePlane:
    """Just what TeamWire uses of a DataPlane."""

    address: str = "10.0.0.1:7000"
    frames: list[tuple[str, bytes]] = field(default_factory=list)

    def send_frame(self, host: str, parts: tuple[bytes | memoryview, ...]) -> None:
        self.frames.append((host, b"".join(parts)))


def test_team_wire_encodes_a_snapshot_start_in_parts_and_others_plain() -> None:
    wire = TeamWire(cast(DataPlane, FakePlane()))
    sent = messages()
    start = sent[0]
    assert isinstance(start, TeamStart) and isinstance(start.image, Snapshot)
    parts = wire.encode(start)
    assert isinstance(parts, tuple) and parts[0] == b"\x01"
    assert parts[-1] is start.image.data  # the page data is not copied into the codec
    for message in sent[1:]:
        if isinstance(message, TeamStart) and isinstance(message.image, Snapshot):
            continue
        plain = wire.encode(message)
        assert len(plain) == 2 and plain[0] == b"\x00"
        assert TEAM_CODEC.decode(plain[1]) == message


def test_team_wire_frames_round_trip() -> None:
    plane = FakePlane()
    wire = TeamWire(cast(DataPlane, plane))
    received: list[object] = []
    route = wire.router(received.append)
    sent = messages()
    for message in sent:
        wire.send_team("worker-b", message)
    for host, payload in plane.frames:
        assert host == "worker-b"
        route(bytearray(payload))
    assert received == sent
    assert wire.address == plane.address
    assert plane.frames[0][1][:1] == b"\x01"  # the whole snapshot went raw after the codec


def test_a_malformed_team_frame_is_refused() -> None:
    wire = TeamWire(cast(DataPlane, FakePlane()))
    for payload in (b"\x07", b"\x01" + bytes(8), b"\x01" + (1).to_bytes(8, "little") + b"\xc0"):
        with pytest.raises(BrokenError):
            wire.decode(bytearray(payload))
