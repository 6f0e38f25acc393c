"""Atomic instructions of a guest, done by the host on one copy of the memory.

While a team spans hosts, the program's atomic instructions reach the main host as
(sub-opcode, address, operands) — see toolchain/lib/omp/atomic_route.c — and are done here
on the main host's memory, one at a time (the caller serialises them). `Deferred` gathers a
host's read-modify-writes whose results the program ignores, combining those on the same
word, to send with its next request. This module knows the instructions' semantics only:
it must not synchronise, wait nor talk to other hosts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from faabric.snapshot import Diff, DiffBlock, MergeOp
from faabric.snapshot.regions import DataType
from faabric.wasm.host import GuestFault

DROPPED = 0x100  # added to a read-modify-write's code when its result is ignored
FENCE = 0x03


class Kind(Enum):
    NOTIFY = "notify"
    WAIT = "wait"
    FENCE = "fence"
    LOAD = "load"
    STORE = "store"
    ADD = "add"
    SUB = "sub"
    AND = "and"
    OR = "or"
    XOR = "xor"
    XCHG = "xchg"
    CMPXCHG = "cmpxchg"


_RMW = (Kind.ADD, Kind.SUB, Kind.AND, Kind.OR, Kind.XOR, Kind.XCHG, Kind.CMPXCHG)
_WIDTHS = (4, 8, 1, 2, 1, 2, 4)  # bytes of the seven forms of each load/store/rmw
COMBINABLE = frozenset({Kind.ADD, Kind.SUB, Kind.AND, Kind.OR, Kind.XOR})
_LAST_CODE = 0x4E


@dataclass(frozen=True, slots=True)
class Atomic:
    """One atomic instruction: its kind and access size in bytes (0 for a fence)."""

    kind: Kind
    size: int
    dropped: bool = False

    @property
    def writes(self) -> bool:
        """Whether it may change memory (and so must publish the host's writes first)."""
        return self.kind not in (Kind.LOAD, Kind.WAIT, Kind.NOTIFY)


def decode(code: int) -> Atomic:
    """The instruction of sub-opcode `code` (plus DROPPED); GuestFault for any other."""
    dropped = bool(code & DROPPED)
    op = code & ~DROPPED
    if code < 0 or op > _LAST_CODE:
        raise GuestFault(f"unknown atomic operation {code:#x}")
    if op < 0x10:
        fixed = {0x00: Atomic(Kind.NOTIFY, 4), 0x01: Atomic(Kind.WAIT, 4),
                 0x02: Atomic(Kind.WAIT, 8), FENCE: Atomic(Kind.FENCE, 0)}
        if op not in fixed or dropped:
            raise GuestFault(f"unknown atomic operation {code:#x}")
        return fixed[op]
    if op < 0x1E:
        kind, form = (Kind.LOAD, op - 0x10) if op < 0x17 else (Kind.STORE, op - 0x17)
    else:
        kind, form = _RMW[(op - 0x1E) // 7], (op - 0x1E) % 7
    if dropped and kind not in COMBINABLE:
        raise GuestFault(f"unknown atomic operation {code:#x}")
    return Atomic(kind, _WIDTHS[form], dropped)


def read(memory: np.ndarray, address: int, size: int) -> int:
    """The unsigned little-endian value of `size` bytes at `address`."""
    return int.from_bytes(memory[address:address + size].tobytes(), "little")


def perform(memory: np.ndarray, op: Atomic, address: int, a: int, b: int) -> tuple[int, bool]:
    """Do `op` at `address` of `memory`: (the value it returns, whether memory changed).
    Traps as wasm does on an unaligned or out-of-bounds access. Not for fences, waits and
    notifies (they do not touch memory)."""
    size = op.size
    if address % size:
        raise GuestFault(f"unaligned atomic access at {address:#x}")
    if address < 0 or address + size > len(memory):
        raise GuestFault(f"out of bounds atomic access at {address:#x}")
    mask = (1 << (8 * size)) - 1
    old = read(memory, address, size)
    new = _result(op.kind, old, a & mask, b & mask, mask)
    if new is None or new == old:
        return (old, False) if op.kind is not Kind.STORE else (0, False)
    memory[address:address + size] = np.frombuffer(new.to_bytes(size, "little"), np.uint8)
    return (0 if op.kind is Kind.STORE else old), True


def _result(kind: Kind, old: int, a: int, b: int, mask: int) -> int | None:
    """The new value of a word holding `old` (None: unchanged)."""
    match kind:
        case Kind.LOAD:
            return None
        case Kind.STORE | Kind.XCHG:
            return a
        case Kind.ADD:
            return (old + a) & mask
        case Kind.SUB:
            return (old - a) & mask
        case Kind.AND:
            return old & a
        case Kind.OR:
            return old | a
        case Kind.XOR:
            return old ^ a
        case Kind.CMPXCHG:
            return b if old == a else None
    raise GuestFault(f"{kind.value} is not a memory operation")


def written(size: int, writes: list[tuple[int, bytes]]) -> Diff:
    """A diff of a memory of `size` bytes holding `writes` ((address, bytes) pairs)."""
    if not writes:
        return Diff(size)
    data = b"".join(w for _, w in writes)
    block = DiffBlock(
        MergeOp.BYTEWISE, DataType.BYTES,
        np.array([at for at, _ in writes], "<u8").tobytes(),
        np.array([len(w) for _, w in writes], "<u8").tobytes(),
        data, np.packbits(np.ones(len(data), np.uint8), bitorder="little").tobytes())
    return Diff(size, (block,))


class Deferred:
    """A host's pending read-modify-writes with ignored results, combined per word.

    `add` returns False when the operation cannot join the batch (another kind of operation
    on the same word is pending, or the batch is full): send the batch, then add again.
    """

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._ops: dict[int, tuple[int, int]] = {}  # address -> (code, combined operand)

    def __bool__(self) -> bool:
        return bool(self._ops)

    def add(self, code: int, address: int, value: int) -> bool:
        op = decode(code)
        mask = (1 << (8 * op.size)) - 1
        pending = self._ops.get(address)
        if pending is None:
            if len(self._ops) >= self._limit:
                return False
            self._ops[address] = (code, value & mask)
            return True
        if pending[0] != code:
            return False
        self._ops[address] = (code, _combine(op.kind, pending[1], value & mask, mask))
        return True

    def take(self) -> tuple[tuple[int, int, int], ...]:
        """The batch as (code, address, operand) triples, in first-seen order; empties it."""
        batch = tuple((code, address, value) for address, (code, value) in self._ops.items())
        self._ops = {}
        return batch


def _combine(kind: Kind, first: int, second: int, mask: int) -> int:
    """One operand doing what `first` then `second` do."""
    match kind:
        case Kind.ADD | Kind.SUB:
            return (first + second) & mask
        case Kind.AND:
            return first & second
        case Kind.OR:
            return first | second
        case Kind.XOR:
            return first ^ second
    raise AssertionError(f"{kind} does not combine")


SPIN_GAP = 200e-6  # seconds: a request this soon after the thread's last answer may spin


class Spins:
    """Tells a thread's spin from its other requests. A request is a spin when it comes
    within SPIN_GAP of the thread's last answer and the thread's last requests repeat a
    cycle of one or two (a load of a flag; a flush then a load) with the same answers: it
    then carries as hint the answer it got last time round."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._history: dict[int, tuple[list[tuple[int, int, int, int]], float]] = {}
        self._lock = threading.Lock()

    def hint(self, thread: int, code: int, address: int, a: int) -> int | None:
        with self._lock:
            found = self._history.get(thread)
        if found is None or self._clock() - found[1] > SPIN_GAP:
            return None
        history = found[0]
        for period in (1, 2):
            if len(history) >= 2 * period and history[-period][:3] == (code, address, a) \
                    and history[-period:] == history[-2 * period:-period]:
                return history[-period][3]
        return None

    def saw(self, thread: int, code: int, address: int, a: int, value: int) -> None:
        with self._lock:
            history = self._history.get(thread, ([], 0.0))[0][-3:]
            history.append((code, address, a, value))
            self._history[thread] = (history, self._clock())
