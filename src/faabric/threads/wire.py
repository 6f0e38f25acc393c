"""Team messages on the data plane: one TEAM frame each, encoded with the team codec.

A `TeamStart` carrying a whole snapshot travels in two pieces: the message (with an empty
snapshot of the same size) and the snapshot's tables through the codec, then the snapshot's
page data raw. msgpack would copy a large payload several times while holding the GIL,
long enough to starve the worker's keep-alives; raw bytes go straight to the socket. Every
other message is codec bytes only. It counts the bytes of memory it sends (whole snapshots,
diffs) for the worker's metrics. This module only translates between `TeamService` and
`DataPlane`; it must not interpret the messages otherwise.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable

from faabric._util.tally import Tally
from faabric.errors import BrokenError
from faabric.messages.codec import Codec
from faabric.messages.team import TEAM_CODEC, TeamDone, TeamReply, TeamRequest, TeamStart
from faabric.mpi.network import DataPlane
from faabric.snapshot import Diff, Snapshot

_PLAIN, _SPLIT = b"\x00", b"\x01"
_LENGTH = struct.Struct("<Q")


class TeamWire:
    """A `TeamNet` over a worker's data plane."""

    def __init__(self, plane: DataPlane, codec: Codec = TEAM_CODEC) -> None:
        self._plane = plane
        self._codec = codec
        self.sent = Tally(("snapshot", "diff"))  # frame bytes of memory sent to other workers

    @property
    def address(self) -> str:
        return self._plane.address

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None:
        self._plane.learn(peers)

    def send_team(self, host: str, message: object) -> None:
        parts = self.encode(message)
        self._plane.send_frame(host, parts)
        kind = _memory_kind(message)
        if kind is not None:
            self.sent.add(kind, sum(len(part) for part in parts))

    def encode(self, message: object) -> tuple[bytes, ...]:
        """The payload of the frame carrying `message`."""
        if isinstance(message, TeamStart) and isinstance(message.image, Snapshot):
            snapshot = message.image
            head = self._codec.encode(
                dataclasses.replace(message, image=Snapshot(snapshot.size)))
            tables = self._codec.encode(
                (snapshot.chunks, snapshot.bitmaps, snapshot.encodings, snapshot.ends))
            return (_SPLIT, _LENGTH.pack(len(head)), head, _LENGTH.pack(len(tables)), tables,
                    snapshot.data)
        return (_PLAIN, self._codec.encode(message))

    def decode(self, payload: bytearray) -> object:
        """The message a frame's payload carries; BrokenError if it is malformed."""
        view = memoryview(payload)
        if view[:1] == _PLAIN:
            return self._codec.decode(view[1:])
        if view[:1] != _SPLIT:
            raise BrokenError("malformed team frame")
        at = 1
        parts = []
        for _ in range(2):
            if at + _LENGTH.size > len(view):
                raise BrokenError("truncated team frame")
            (length,) = _LENGTH.unpack_from(view, at)
            parts.append(self._codec.decode(view[at + 8:at + 8 + length]))
            at += 8 + length
        start, tables = parts
        if not isinstance(start, TeamStart) or not isinstance(tables, tuple) \
                or len(tables) != 4 or not all(isinstance(t, bytes) for t in tables):
            raise BrokenError("malformed team frame")
        chunks, bitmaps, encodings, ends = tables
        snapshot = Snapshot(start.image.size, chunks, bitmaps, encodings, ends,
                            bytes(view[at:]))
        return dataclasses.replace(start, image=snapshot)

    def router(self, received: Callable[[object], None]) -> Callable[[bytearray], None]:
        """The data plane's TEAM frame handler, decoding for `received`."""
        return lambda payload: received(self.decode(payload))


def _memory_kind(message: object) -> str | None:
    """"snapshot" for a message carrying a whole memory, "diff" for one carrying changes to
    one, None for the rest (the team's synchronisation)."""
    match message:
        case TeamStart(image=Snapshot()):
            return "snapshot"
        case TeamStart():
            return "diff"
        case TeamRequest(diff=Diff()) | TeamDone(diff=Diff()):
            return "diff"
        case TeamReply(diffs=diffs) if diffs:
            return "diff"
    return None
