"""A migrating MPI rank on the wire: what its old worker sends to its new one.

The package holds the rank's batch (with the new placement and the hosts' data-plane
addresses), its suspended instance (memory, stack pointer, unwind area), its matching
state and what it has produced so far (stdout, stderr, output), so the new worker can
resume it inside the migration call it left from. One MOVE frame carries the encoded
description followed by the raw memory, which is never copied into the encoding. This
module holds values and their encoding only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from faabric.errors import BrokenError
from faabric.messages.codec import Codec
from faabric.messages.types import AppSpec, Batch
from faabric.mpi.moving import ArrivedRecord, PostedRecord, RankRecord

_LENGTH = struct.Struct("<Q")


@dataclass(frozen=True, slots=True)
class RankPackage:
    """A rank on its way to `batch.placement[index]` under migration `epoch`; or, `frozen`,
    to a worker that keeps it until the app is thawed (its placement is then the old one)."""

    batch: Batch
    index: int
    epoch: int
    stack_pointer: int
    area: int
    record: RankRecord
    stdout: bytes
    stderr: bytes
    output: bytes
    started: float
    seconds_left: float
    frozen: bool = False
    clock: int = 0  # its monotonic clock (ns) when it left
    left_at: int = 0  # wall-clock time (ns) when it left
    truncated: bool = False  # stdout or stderr went over the output limit before it left


_CODEC = Codec([RankPackage, Batch, AppSpec, RankRecord, PostedRecord, ArrivedRecord])


def encode(package: RankPackage, memory: bytes | bytearray | memoryview
           ) -> tuple[bytes | memoryview, ...]:
    """The parts of one MOVE frame's payload."""
    meta = _CODEC.encode(package)
    return _LENGTH.pack(len(meta)) + meta, memoryview(memory)


def decode(payload: bytearray | memoryview) -> tuple[RankPackage, memoryview]:
    """The package and its memory (a view into `payload`).

    Raises:
        BrokenError: the payload is not a rank package.
    """
    if len(payload) < _LENGTH.size:
        raise BrokenError("a migrating rank's frame is too short")
    (length,) = _LENGTH.unpack_from(payload)
    end = _LENGTH.size + length
    if end > len(payload):
        raise BrokenError("a migrating rank's frame is cut short")
    package = _CODEC.decode(bytes(payload[_LENGTH.size:end]))
    if not isinstance(package, RankPackage):
        raise BrokenError(f"expected a rank package, got {type(package).__name__}")
    return package, memoryview(payload)[end:]


@dataclass(frozen=True, slots=True)
class RankLeft:
    """How a granule's run ends on a worker when its rank migrated: it went on elsewhere."""

    app_id: int
    index: int
    epoch: int
    to: str
