"""One-sided communication of one MPI world on one worker: the windows its ranks expose, the
operations its ranks start on other ranks' windows, and those other hosts start on them.

The host serves every operation itself, without the target rank calling MPI: for a target on
this worker the origin's own thread copies between the two memories; for a target elsewhere
the origin sends a request message (on a context reserved for the host) and the target's
worker applies it on its data-plane reader thread and answers. Answers leave through a
thread of their own, so a reader never blocks on a send. Every copy into or out of a rank's
memory happens under the world's lock, after checking that the rank still exposes the window
(a rank that ends or frees its window withdraws it under the same lock), so no copy outlives
a memory. This module must not know about sockets or wasm instances.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

from faabric.mpi import memory, rma
from faabric.mpi.matching import Envelope
from faabric.mpi.ranks import Layout, Network
from faabric.mpi.rma import Request, Segments

log = logging.getLogger(__name__)

REPLIER_IDLE = 5.0  # seconds the answering thread waits for work before it ends


class WorldView(Protocol):
    """What the service needs of its `LocalWorld` (calls made with the world's lock held,
    except `break_`)."""

    @property
    def layout(self) -> Layout: ...

    def check(self) -> None: ...

    def bump(self, rank: int) -> None: ...

    def break_(self, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Exposure:
    """A rank's window here: host address and size in bytes."""

    address: int
    size: int


@dataclass(frozen=True, slots=True)
class LocalWaiter:
    """A rank of this worker waiting for a lock: its request completes when granted."""

    rank: int
    request: int


@dataclass(frozen=True, slots=True)
class RemoteWaiter:
    """A rank elsewhere waiting for a lock: answered under its operation id."""

    rank: int
    op: int


@dataclass(frozen=True, slots=True)
class Pending:
    """An operation of a local rank waiting for another host's answer."""

    rank: int
    request: int
    buffer: int  # GET: where the data lands
    capacity: int


class OneSided:
    """The windows of one world on this worker, and the operations on them."""

    def __init__(self, app_id: int, network: Network, lock: threading.Lock,
                 world: WorldView) -> None:
        self._app_id = app_id
        self._network = network
        self._lock = lock
        self._world = world
        self._exposed: dict[tuple[int, int], Exposure] = {}  # (window, rank)
        self._locks = rma.LockTable()
        self._pending: dict[int, Pending] = {}
        self._ops = 0
        self._replier = _Replier(network, app_id, world.break_)

    # -- windows ------------------------------------------------------------------------------

    def expose(self, rank: int, window: int, address: int, size: int) -> None:
        with self._lock:
            self._exposed[(window, rank)] = Exposure(address, size)

    def withdraw(self, rank: int, window: int) -> None:
        with self._lock:
            self._exposed.pop((window, rank), None)
            self._locks.drop((window, rank))

    def forget(self, rank: int) -> None:
        """Rank `rank` is ending or leaving: nothing may touch its memory any more. Call with
        the world's lock held."""
        for key in [key for key in self._exposed if key[1] == rank]:
            del self._exposed[key]
            self._locks.drop(key)
        self._pending = {op: p for op, p in self._pending.items() if p.rank != rank}
        self._locks.drop_waiters(lambda w: isinstance(w, LocalWaiter) and w.rank == rank)

    # -- from local origins -------------------------------------------------------------------

    def operate(self, rank: int, kind: int, window: int, target: int, segments: Segments,
                address: int, request: int) -> None:
        """PUT the bytes at `address` into, or GET them from, `target`'s window."""
        if self._world.layout.is_local(target):
            with self._lock:
                self._world.check()
                error = self._access(kind, window, target, segments, address)
                memory.complete(request, target, 0, segments.total, error)
                self._world.bump(rank)
            return
        data = memory.read(address, segments.total) if kind == rma.PUT else b""
        self._send(rank, target, Request(kind, window, 0, segments, data),
                   Pending(rank, request, address, segments.total if kind == rma.GET else 0))

    def lock(self, rank: int, window: int, target: int, kind: int, acquire: bool,
             request: int) -> None:
        """Ask for, or give back, a lock on `target`'s window; `request` completes when it is
        granted or given back."""
        if not self._world.layout.is_local(target):
            message = Request(rma.LOCK if acquire else rma.UNLOCK, window, kind, Segments(()))
            self._send(rank, target, message, Pending(rank, request, 0, 0))
            return
        with self._lock:
            self._world.check()
            waiter = LocalWaiter(rank, request)
            error, granted = self._locking(window, target, kind, acquire, waiter)
            if acquire and not granted:
                memory.set_pending(request, 1)
                return
            memory.complete(request, target, 0, 0, error)
            self._world.bump(rank)

    def _send(self, rank: int, target: int, message: Request, pending: Pending) -> None:
        with self._lock:
            self._world.check()
            self._ops = self._ops % 0x7FFF_FFFF + 1
            op = self._ops
            self._pending[op] = pending
            memory.set_pending(pending.request, op)
        payload = message.pack()
        envelope = Envelope(rma.REQUEST_CTX, rank, op, len(payload))
        self._network.send(self._world.layout.placement[target], self._app_id, envelope,
                           target, memoryview(payload), 0)

    # -- from other hosts ---------------------------------------------------------------------

    def arrive(self, envelope: Envelope, dest: int, payload: bytearray) -> None:
        """A request for local rank `dest`'s window, or the answer to a local rank's."""
        try:
            if envelope.ctx == rma.REPLY_CTX:
                self._answered(envelope.tag, payload)
            elif envelope.ctx == rma.REQUEST_CTX:
                self._serve(envelope.source, envelope.tag, dest, Request.parse(payload))
            else:
                raise ValueError(f"unknown reserved context {envelope.ctx}")
        except ValueError as exc:
            self._world.break_(f"a malformed one-sided message arrived: {exc}")

    def _serve(self, source: int, op: int, dest: int, message: Request) -> None:
        data = b""
        with self._lock:
            if message.kind in (rma.LOCK, rma.UNLOCK):
                error, granted = self._locking(message.window, dest, message.lock,
                                               message.kind == rma.LOCK,
                                               RemoteWaiter(source, op))
                if message.kind == rma.LOCK and not granted:
                    return
            else:
                error, data = self._remote_access(message, dest)
        self._replier.post(self._world.layout, source, op, rma.pack_reply(error, data))

    def _answered(self, op: int, payload: bytearray) -> None:
        error, data = rma.parse_reply(payload)
        with self._lock:
            pending = self._pending.pop(op, None)
            if pending is None:  # its rank ended meanwhile
                return
            n = min(len(data), pending.capacity)
            if n and error == rma.OK:
                memory.write(pending.buffer, bytes(data[:n]), n)
            memory.complete(pending.request, 0, 0, n, error)
            self._world.bump(pending.rank)

    # -- applying, with the world's lock held ---------------------------------------------------

    def _access(self, kind: int, window: int, target: int, segments: Segments,
                address: int) -> int:
        exposure = self._exposed.get((window, target))
        if exposure is None:
            return rma.E_WIN
        if not segments.fit(exposure.size):
            return rma.E_RANGE
        at = address
        for offset, length in segments.pairs:
            there = exposure.address + offset
            if kind == rma.PUT:
                memory.copy(there, at, length)
            else:
                memory.copy(at, there, length)
            at += length
        return rma.OK

    def _remote_access(self, message: Request, dest: int) -> tuple[int, bytes]:
        exposure = self._exposed.get((message.window, dest))
        if exposure is None:
            return rma.E_WIN, b""
        segments = message.segments
        if not segments.fit(exposure.size):
            return rma.E_RANGE, b""
        if message.kind == rma.GET:
            return rma.OK, b"".join(memory.read(exposure.address + offset, length)
                                    for offset, length in segments.pairs)
        if message.kind != rma.PUT or len(message.data) != segments.total:
            raise ValueError("an RMA request whose data does not match its segments")
        at = 0
        for offset, length in segments.pairs:
            memory.write(exposure.address + offset, bytes(message.data[at:at + length]), length)
            at += length
        return rma.OK, b""

    def _locking(self, window: int, target: int, kind: int, acquire: bool,
                 waiter: Hashable) -> tuple[int, bool]:
        """(error, granted now) of a lock request; a release grants queued waiters."""
        key = (window, target)
        if key not in self._exposed:
            return rma.E_WIN, True
        if kind not in (rma.SHARED, rma.EXCLUSIVE, rma.UPDATE):
            return rma.E_SYNC, True
        if acquire:
            return rma.OK, self._locks.acquire(key, kind, waiter)
        granted = self._locks.release(key, kind)
        if granted is None:
            return rma.E_SYNC, True
        for other in granted:
            self._grant(other, target)
        return rma.OK, True

    def _grant(self, waiter: Hashable, target: int) -> None:
        if isinstance(waiter, LocalWaiter):
            memory.complete(waiter.request, target)
            self._world.bump(waiter.rank)
        elif isinstance(waiter, RemoteWaiter):
            self._replier.post(self._world.layout, waiter.rank, waiter.op,
                               rma.pack_reply(rma.OK))


class _Replier:
    """Sends answers to other hosts from a thread of its own, started when needed and ended
    when idle, so that the data-plane reader that served a request never waits on a send."""

    def __init__(self, network: Network, app_id: int, fail: Callable[[str], None]) -> None:
        self._network = network
        self._app_id = app_id
        self._fail = fail
        self._queue: queue.SimpleQueue[tuple[str, int, int, bytes]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False

    def post(self, layout: Layout, rank: int, op: int, payload: bytes) -> None:
        self._queue.put((layout.placement[rank], rank, op, payload))
        with self._lock:
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._loop, name="mpi-rma-replies", daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                host, rank, op, payload = self._queue.get(timeout=REPLIER_IDLE)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._running = False
                        return
                continue
            envelope = Envelope(rma.REPLY_CTX, rank, op, len(payload))
            try:
                self._network.send(host, self._app_id, envelope, rank, memoryview(payload), 0)
            except Exception as exc:  # the origin would otherwise wait until its deadline
                log.warning("could not answer a one-sided operation: %s", exc)
                self._fail(f"a one-sided answer to worker {host} failed: {exc}")
