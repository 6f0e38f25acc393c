"""The pure parts of one-sided communication (MPI windows): segment lists, the locks of each
exposed window, and the wire form of requests and replies between hosts.

A window is a context id the guest library agreed on; each rank exposes part of its memory
under it. An operation names (offset, length) segments of the target's window; locks are
granted first come, first served: shared ones together, an exclusive one alone, and the
update lock (serialising read-modify-write cycles) independently of both. This module holds
no locks, does no I/O and touches no memory: `onesided.py` does.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

RESERVED_CTX = 0x4000_0000  # contexts from here up are the host's (fmpi_host.h)
REQUEST_CTX = RESERVED_CTX  # an operation for a rank's window, from another host
REPLY_CTX = RESERVED_CTX + 1  # its answer

# fmpi_rma kinds, and the kinds of lock messages between hosts
PUT, GET, LOCK, UNLOCK = 1, 2, 3, 4
# lock kinds of fmpi_win_lock
SHARED, EXCLUSIVE, UPDATE = 1, 2, 3

# errors in a request's `error` field (fmpi_host.h)
OK, E_WIN, E_RANGE, E_SYNC = 0, 5, 6, 7

_REQUEST = struct.Struct("<iiii")  # kind, window, lock kind, number of segments
_REPLY = struct.Struct("<i")  # error
_SEGMENT = struct.Struct("<ii")  # offset, length


@dataclass(frozen=True, slots=True)
class Segments:
    """(offset, length) pairs in a target window, in the order of the operation's data."""

    pairs: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, raw: bytes) -> Segments:
        """From packed little-endian int32 pairs; ValueError for a negative length."""
        pairs = tuple(_SEGMENT.iter_unpack(raw))
        if any(length < 0 for _, length in pairs):
            raise ValueError("a segment has a negative length")
        return cls(pairs)

    def pack(self) -> bytes:
        return b"".join(_SEGMENT.pack(offset, length) for offset, length in self.pairs)

    @property
    def total(self) -> int:
        return sum(length for _, length in self.pairs)

    def fit(self, size: int) -> bool:
        """True when every segment lies inside a window of `size` bytes."""
        return all(offset >= 0 and offset + length <= size for offset, length in self.pairs)


@dataclass(frozen=True, slots=True)
class Request:
    """An operation on another host's rank: `op` is the origin's id for the answer."""

    kind: int
    window: int
    lock: int
    segments: Segments
    data: bytes | bytearray | memoryview = b""

    def pack(self) -> bytes:
        header = _REQUEST.pack(self.kind, self.window, self.lock, len(self.segments.pairs))
        return header + self.segments.pack() + bytes(self.data)

    @classmethod
    def parse(cls, payload: bytes | bytearray) -> Request:
        """ValueError if the payload is not a well-formed request."""
        if len(payload) < _REQUEST.size:
            raise ValueError("short RMA request")
        kind, window, lock, count = _REQUEST.unpack_from(payload)
        end = _REQUEST.size + count * _SEGMENT.size
        if count < 0 or end > len(payload):
            raise ValueError("RMA request with a bad segment count")
        segments = Segments.parse(bytes(payload[_REQUEST.size:end]))
        return cls(kind, window, lock, segments, memoryview(payload)[end:])


def pack_reply(error: int, data: bytes = b"") -> bytes:
    return _REPLY.pack(error) + data


def parse_reply(payload: bytes | bytearray) -> tuple[int, memoryview]:
    """(error, data); ValueError if too short."""
    if len(payload) < _REPLY.size:
        raise ValueError("short RMA reply")
    return _REPLY.unpack_from(payload)[0], memoryview(payload)[_REPLY.size:]


@dataclass(slots=True)
class _WindowLocks:
    exclusive: bool = False
    shared: int = 0
    updating: bool = False
    queue: deque[tuple[int, Hashable]] = field(default_factory=deque)  # (kind, waiter)
    updates: deque[Hashable] = field(default_factory=deque)

    def idle(self) -> bool:
        return not (self.exclusive or self.shared or self.updating or self.queue
                    or self.updates)


class LockTable:
    """The locks of every exposed window of the ranks on one host, keyed (window, rank)."""

    def __init__(self) -> None:
        self._locks: dict[tuple[int, int], _WindowLocks] = {}

    def acquire(self, key: tuple[int, int], kind: int, waiter: Hashable) -> bool:
        """True if granted now; otherwise `waiter` is queued and returned by a later
        `release` once granted."""
        locks = self._locks.setdefault(key, _WindowLocks())
        if kind == UPDATE:
            if locks.updating:
                locks.updates.append(waiter)
                return False
            locks.updating = True
            return True
        if locks.queue or not _grantable(locks, kind):
            locks.queue.append((kind, waiter))
            return False
        _take(locks, kind)
        return True

    def release(self, key: tuple[int, int], kind: int) -> list[Hashable] | None:
        """Gives a lock back; the waiters granted by it, or None if it was not held."""
        locks = self._locks.get(key)
        if locks is None or not _held(locks, kind):
            return None
        granted: list[Hashable] = []
        if kind == UPDATE:
            locks.updating = bool(locks.updates)
            if locks.updates:
                granted.append(locks.updates.popleft())
        else:
            if kind == EXCLUSIVE:
                locks.exclusive = False
            else:
                locks.shared -= 1
            while locks.queue and _grantable(locks, locks.queue[0][0]):
                next_kind, waiter = locks.queue.popleft()
                _take(locks, next_kind)
                granted.append(waiter)
        if locks.idle():
            del self._locks[key]
        return granted

    def drop(self, key: tuple[int, int]) -> None:
        """The window is gone: forget its locks and waiters."""
        self._locks.pop(key, None)

    def drop_waiters(self, gone: Callable[[Hashable], bool]) -> None:
        """Forget queued waiters that can no longer be told (their rank ended)."""
        for locks in self._locks.values():
            locks.queue = deque(item for item in locks.queue if not gone(item[1]))
            locks.updates = deque(w for w in locks.updates if not gone(w))

    def waiters(self) -> list[Hashable]:
        return [w for locks in self._locks.values()
                for w in (*(item[1] for item in locks.queue), *locks.updates)]


def _grantable(locks: _WindowLocks, kind: int) -> bool:
    if kind == SHARED:
        return not locks.exclusive
    return not locks.exclusive and locks.shared == 0


def _take(locks: _WindowLocks, kind: int) -> None:
    if kind == SHARED:
        locks.shared += 1
    else:
        locks.exclusive = True


def _held(locks: _WindowLocks, kind: int) -> bool:
    if kind == UPDATE:
        return locks.updating
    return locks.exclusive if kind == EXCLUSIVE else locks.shared > 0
