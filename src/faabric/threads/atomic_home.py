"""The main host's side of the program's atomic operations in a team that spans hosts.

Every atomic instruction of the program, from any host of the region, is done here on the
main host's memory, one at a time under the region's publishing lock: so all hosts see one
order of them (sequential consistency for atomics). Each is also a synchronisation point:
the requester's writes are published first and, once done, it is handed every write
published before (release and acquire). Before doing one, the main host's memory takes in
everything published so far, so an atomic operation sees plain writes made before it; the
words it changes are published at once as a small diff of the main host.

A request that repeats its thread's last one with nothing changed (a spin on a flag: a load
or failed compare-exchange seeing the same value again, a flush with nothing new either way)
and a wait on an unchanged word are parked, not answered: they are answered once something
is published, when notified, or after `PARK_SLICE`; so a spinning thread costs one message
per change, not one per loop. This module must not send messages (answers go through
callbacks, as the coordinator's do).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from faabric.snapshot import Diff
from faabric.threads.atomic_ops import Atomic, Kind, decode, perform, read, written
from faabric.threads.coordinator import Answer, Broken, Coordinator, Delivery, Granted
from faabric.threads.host_copy import HostCopy
from faabric.wasm.host import GuestFault

PARK_SLICE = 0.02  # seconds a parked request waits at most for news
_TICK = 0.005  # seconds between checks of parked requests' time limits
Clock = Callable[[], float]
GiveUp = Callable[[], str | None]
Batch = tuple[tuple[int, int, int], ...]  # (code, address, operand) of ignored-result ops
_NOT_EQUAL, _TIMED_OUT = 1, 2  # memory.atomic.wait's answers besides 0 (woken)


@dataclass(frozen=True, slots=True)
class AtomicRequest:
    """One atomic instruction: sub-opcode `code` at `address` with operands `a`, `b`.

    `hint`, when set, is what the thread saw last time it asked the same (a spin): the
    request may wait for a change. `diff` is the requester's writes to publish first and
    `deferred` its batched ignored-result operations, done before this one.
    """

    code: int
    address: int
    a: int = 0
    b: int = 0
    hint: int | None = None
    diff: Diff | None = None
    deferred: Batch = ()


@dataclass(slots=True)
class _Parked:
    who: str
    op: Atomic
    request: AtomicRequest
    answer: Answer
    expires: float  # answered by then even without news
    timeout_at: float | None  # a wait's own time limit
    position: int  # the memory log's length when parked


class AtomicHome:
    """Does the region's atomic operations on the main host's copy of the memory."""

    def __init__(self, coordinator: Coordinator, copy: HostCopy, me: str,
                 lock: threading.Lock, give_up: GiveUp, clock: Clock = time.monotonic) -> None:
        self._coordinator = coordinator
        self._copy = copy
        self._me = me
        self._lock = lock  # the region's publishing lock: one collect/publish at a time
        self._give_up = give_up
        self._clock = clock
        self._parked: list[_Parked] = []
        self._timer: threading.Thread | None = None
        self._closed = threading.Event()

    def serve(self, who: str, request: AtomicRequest, answer: Answer) -> None:
        """Do `request` of participant `who` and answer it, now or once parked."""
        ready: list[tuple[Answer, Granted | Broken]] = []
        try:
            with self._lock:
                op = decode(request.code)
                diff = request.diff
                if who == self._me and op.writes and not op.dropped:
                    diff = self._copy.collect()
                self._coordinator.publish(who, diff)
                self._catch_up()
                writes = self._apply_batch(request.deferred)
                value = self._do(who, op, request, writes, first=True, ready=ready)
                self._log(writes)
                if value is None:
                    self._park(who, op, request, answer)
                else:
                    ready.append((answer, Granted(value, self._delivery(who))))
        except GuestFault as fault:
            ready.append((answer, Broken(str(fault))))
        _run(ready)
        self.changed()

    def absorb(self, batch: Batch) -> None:
        """Do a part's batched ignored-result operations (sent ahead of its next request)."""
        with self._lock:
            self._catch_up()
            self._log(self._apply_batch(batch))

    def changed(self) -> None:
        """Something may have been published: answer the parked requests it concerns."""
        if not self._parked:
            return
        self._recheck(lambda parked: self._coordinator.position > parked.position)

    def expire(self) -> None:
        """Answer the parked requests whose time is up."""
        now = self._clock()
        self._recheck(lambda parked: parked.expires <= now, forced=True)

    def break_(self, reason: str) -> None:
        """Fail every parked request (the region broke) and stop the timer."""
        self._closed.set()
        with self._lock:
            parked, self._parked = self._parked, []
        _run([(p.answer, Broken(reason)) for p in parked])

    # -- with the lock held -------------------------------------------------------------------

    def _do(self, who: str, op: Atomic, request: AtomicRequest,
            writes: list[tuple[int, bytes]], first: bool,
            ready: list[tuple[Answer, Granted | Broken]]) -> int | None:
        """The instruction's answer, or None to park it."""
        match op.kind:
            case Kind.FENCE:  # answers 1 when it had nothing to hand over either way
                quiet = not (request.diff and request.diff.blocks) \
                    and not self._coordinator.has_unseen(who)
                return None if quiet and request.hint == 1 else int(quiet)
            case Kind.NOTIFY:
                return self._notify(request.address, request.a, ready)
            case Kind.WAIT:
                mask = (1 << (8 * op.size)) - 1
                if read(self._memory(), request.address, op.size) != request.a & mask:
                    return _NOT_EQUAL if first else 0
                return None
        memory = self._memory()
        value, changed = perform(memory, op, request.address, request.a, request.b)
        if changed:
            writes.append((request.address,
                           memory[request.address:request.address + op.size].tobytes()))
            return value
        spinning = op.kind in (Kind.LOAD, Kind.CMPXCHG) and request.hint == value
        return None if spinning else value

    def _apply_batch(self, batch: Batch) -> list[tuple[int, bytes]]:
        writes: list[tuple[int, bytes]] = []
        memory = self._memory()
        for code, address, operand in batch:
            op = decode(code)
            _, changed = perform(memory, op, address, operand, 0)
            if changed:
                writes.append((address, memory[address:address + op.size].tobytes()))
        return writes

    def _notify(self, address: int, count: int,
                ready: list[tuple[Answer, Granted | Broken]]) -> int:
        woken = 0
        for parked in list(self._parked):
            if woken < count and parked.op.kind is Kind.WAIT \
                    and parked.request.address == address:
                self._parked.remove(parked)
                ready.append((parked.answer, Granted(0, self._delivery(parked.who))))
                woken += 1
        return woken

    def _log(self, writes: list[tuple[int, bytes]]) -> None:
        """Publish the words changed here, as the main host's writes."""
        if writes:
            self._coordinator.publish(self._me, written(len(self._memory()), writes))
            self._copy.wrote(writes)

    def _catch_up(self) -> None:
        self._copy.apply(self._coordinator.catch_up(self._me), self._give_up)

    def _delivery(self, who: str) -> Delivery | None:
        return None if who == self._me else self._coordinator.catch_up(who)

    def _memory(self) -> np.ndarray:
        return self._copy.view()

    def _park(self, who: str, op: Atomic, request: AtomicRequest, answer: Answer) -> None:
        now = self._clock()
        timeout_at = None
        if op.kind is Kind.WAIT and request.b >= 0:
            timeout_at = now + request.b / 1e9
        expires = min(now + PARK_SLICE, timeout_at if timeout_at is not None else now + 1)
        self._parked.append(_Parked(who, op, request, answer, expires, timeout_at,
                                    self._coordinator.position))
        if self._timer is None:
            self._timer = threading.Thread(target=self._tick, daemon=True,
                                           name="team-atomics")
            self._timer.start()

    def _recheck(self, due: Callable[[_Parked], bool], forced: bool = False) -> None:
        ready: list[tuple[Answer, Granted | Broken]] = []
        with self._lock:
            chosen = [p for p in self._parked if due(p)]
            if not chosen:
                return
            try:
                self._catch_up()
            except GuestFault as fault:
                self._parked = [p for p in self._parked if p not in chosen]
                ready = [(p.answer, Broken(str(fault))) for p in chosen]
                chosen = []
            writes: list[tuple[int, bytes]] = []
            for parked in chosen:
                value = self._again(parked, writes, ready, forced)
                if value is None:
                    parked.position = self._coordinator.position
                    continue
                self._parked.remove(parked)
                ready.append((parked.answer, Granted(value, self._delivery(parked.who))))
            self._log(writes)
        _run(ready)

    def _again(self, parked: _Parked, writes: list[tuple[int, bytes]],
               ready: list[tuple[Answer, Granted | Broken]], forced: bool) -> int | None:
        if parked in self._parked and parked.op.kind is Kind.WAIT and forced:
            timed_out = parked.timeout_at is not None and parked.timeout_at <= self._clock()
            return _TIMED_OUT if timed_out else 0
        request = parked.request
        if forced:
            request = AtomicRequest(request.code, request.address, request.a, request.b)
        try:
            value = self._do(parked.who, parked.op, request, writes, first=False, ready=ready)
        except GuestFault as fault:
            self._parked.remove(parked)
            ready.append((parked.answer, Broken(str(fault))))
            return None
        if value is None and parked.op.kind is Kind.FENCE and \
                self._coordinator.position > parked.position:
            return 1
        return value

    def _tick(self) -> None:
        while not self._closed.wait(_TICK):
            self.expire()


def _run(ready: list[tuple[Answer, Granted | Broken]]) -> None:
    for answer, outcome in ready:
        answer(outcome)
