"""The side of a distributed parallel region on a worker running some of its threads.

`PartRegion` turns each synchronisation of the threads here into a `TeamRequest` to the
main host and applies what comes back (`TeamReply`), publishing this host's writes with the
requests that release something. `stop` (a `TeamStop`, a refusal, the app being stopped)
fails every wait and asks the threads to stop. Every wait ends by the granule's deadline.
This module must not open sockets (it is given a `send`) nor run wasm.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

from faabric.messages.team import RegionId, TeamOp, TeamRefused, TeamReply, TeamRequest
from faabric.snapshot import Diff
from faabric.threads.atomic_ops import Deferred, Spins, decode
from faabric.threads.coordinator import Broken, Delivery, Granted
from faabric.threads.host_copy import HostCopy
from faabric.threads.waiting import Waiter
from faabric.wasm.host import GuestFault

Send = Callable[[TeamRequest], None]  # to the main host; raises GuestFault if it cannot
_WHAT = {TeamOp.ATOMIC: "an atomic operation"}  # what a timed-out wait was for


class PartRegion:
    """A part host's side: each synchronisation is a request to the main host."""

    def __init__(self, region: RegionId, host: str, threads: int, deadline: float,
                 send: Send) -> None:
        self.region = region
        self.host = host
        self.threads = threads
        self._deadline = deadline
        self._send = send
        self.copy: HostCopy | None = None  # set once the memory is restored
        self._on_stop: Callable[[str], None] | None = None  # stops the threads here
        self._ids = itertools.count(1)
        self._waiting: dict[int, Waiter] = {}
        self._lock = threading.Lock()
        self._publishing = threading.Lock()  # a collect and its sending, in one step
        self._deferred = Deferred()  # ignored-result atomic operations not sent yet
        self._spins = Spins()
        self._broken: str | None = None

    @property
    def deadline(self) -> float:
        return self._deadline

    def when_stopped(self, stop_threads: Callable[[str], None]) -> None:
        """Call `stop_threads(reason)` when the part is stopped (at once if it already is)."""
        with self._lock:
            self._on_stop = stop_threads
            reason = self._broken
        if reason is not None:
            stop_threads(reason)

    def barrier(self, thread: int) -> None:
        self._ask(TeamOp.BARRIER, thread, publish=True)

    def acquire(self, thread: int, key: int) -> None:
        self._ask(TeamOp.ACQUIRE, thread, key)

    def try_acquire(self, thread: int, key: int) -> int:
        return self._ask(TeamOp.TRY_ACQUIRE, thread, key)

    def release(self, thread: int, key: int) -> None:
        self._tell(TeamOp.RELEASE, thread, key)

    def single(self, seq: int) -> int:
        return self._ask(TeamOp.SINGLE, 0, value=seq)

    def ordered_wait(self, loop: int, iteration: int) -> None:
        self._ask(TeamOp.ORDERED_WAIT, 0, loop, iteration)

    def ordered_pass(self, loop: int, following: int) -> None:
        self._tell(TeamOp.ORDERED_PASS, 0, loop, following)

    def atomic(self, thread: int, code: int, address: int, a: int, b: int) -> int:
        """An atomic instruction of a thread here, done by the main host; one whose result
        is ignored joins the batch sent with the next request instead."""
        op = decode(code)
        if op.dropped:
            with self._publishing:
                if not self._deferred.add(code, address, a):
                    self._send_batch()
                    self._deferred.add(code, address, a)
            return 0
        hint = self._spins.hint(thread, code, address, a)
        value = self._ask(TeamOp.ATOMIC, thread, address, code, publish=op.writes,
                          operands=(a, b), hint=hint)
        self._spins.saw(thread, code, address, a, value)
        return value

    def replied(self, reply: TeamReply | TeamRefused) -> None:
        with self._lock:
            waiter = self._waiting.pop(reply.request_id, None)
        if waiter is None:
            return
        match reply:
            case TeamReply(value=value, ticket=ticket, diffs=diffs):
                delivery = None if ticket is None else Delivery(ticket, diffs)
                waiter.answer(Granted(value, delivery))
            case TeamRefused(reason=reason):
                waiter.answer(Broken(reason))

    def stop(self, reason: str) -> None:
        with self._lock:
            if self._broken is None:
                self._broken = reason
            waiting, self._waiting = list(self._waiting.values()), {}
            stop_threads = self._on_stop
        for waiter in waiting:
            waiter.answer(Broken(reason))
        if stop_threads is not None:
            stop_threads(reason)

    def last_writes(self) -> Diff | None:
        """The part's writes not published yet, its batched atomic operations sent ahead."""
        if self.copy is None:
            return None
        with self._publishing:
            if self._deferred and self._broken is None:
                self._send_batch()
            return self.copy.collect()

    def close(self) -> None:
        if self.copy is not None:
            self.copy.close()

    def _ask(self, op: TeamOp, thread: int, key: int = 0, value: int = 0,
             publish: bool = False, operands: tuple[int, int] = (0, 0),
             hint: int | None = None) -> int:
        copy = self._restored()
        waiter = Waiter()
        request_id = next(self._ids)
        with self._lock:
            if self._broken is not None:
                raise GuestFault(self._broken)
            self._waiting[request_id] = waiter
        with self._publishing:
            diff = copy.collect() if publish else None
            self._send(TeamRequest(self.region, self.host, request_id, op, thread, key, value,
                                   diff, *operands, hint, self._deferred.take()))
        return waiter.wait(self._deadline, _WHAT.get(op, op.name.lower().replace("_", " ")),
                           lambda: self._broken, copy)

    def _tell(self, op: TeamOp, thread: int, key: int, value: int = 0) -> None:
        copy = self._restored()
        if self._broken is not None:
            raise GuestFault(self._broken)
        with self._publishing:
            self._send(TeamRequest(self.region, self.host, next(self._ids), op, thread, key,
                                   value, copy.collect(), deferred=self._deferred.take()))

    def _send_batch(self) -> None:
        """Send the batched atomic operations now (the publishing lock is held)."""
        self._send(TeamRequest(self.region, self.host, next(self._ids), TeamOp.APPLY, 0, 0, 0,
                               deferred=self._deferred.take()))

    def _restored(self) -> HostCopy:
        if self.copy is None:
            raise GuestFault("the region's memory is not restored yet")
        return self.copy
