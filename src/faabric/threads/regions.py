"""The two sides of a parallel region whose team spans hosts, as its host functions see them.

`MainRegion` lives on the granule's own worker: it owns the region's `Coordinator`, answers
the parts' requests and, at the join, waits for every part and brings in their writes and
output. `PartRegion` lives on each other worker running some of the team's threads: it turns
each synchronisation into a request to the main host and applies what comes back. Every wait
ends by the granule's deadline, or at once when the region breaks (a part failed, the app
was stopped). This module must not open sockets (it is given a `send`) nor run wasm.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from faabric.messages.team import RegionId, TeamDone, TeamOp, TeamReply, TeamRequest, TeamStop
from faabric.messages.types import Exited, describe
from faabric.snapshot import Diff
from faabric.threads.coordinator import Answer, Coordinator, Delivery, RegionBroken
from faabric.threads.host_copy import HostCopy
from faabric.wasm.host import GuestFault

WAIT_SLICE = 0.1  # seconds between checks of a blocked wait's deadline
Send = Callable[[object], None]  # a team message to the other side
T = TypeVar("T")


@dataclass(slots=True)
class _Waiter:
    """One blocked synchronisation: set once answered (value -1: the region broke)."""

    event: threading.Event = field(default_factory=threading.Event)
    value: int = 0
    delivery: Delivery | None = None
    failure: str = ""

    def answer(self, value: int, delivery: Delivery | None) -> None:
        self.value, self.delivery = value, delivery
        self.event.set()

    def wait(self, deadline: float, what: str, broken: Callable[[], str | None],
             copy: HostCopy) -> int:
        """The answer's value, once its delivery is applied to `copy`."""
        while not self.event.wait(max(0.0, min(WAIT_SLICE, deadline - time.monotonic()))):
            reason = broken()
            if reason is not None:
                raise GuestFault(reason)
            if time.monotonic() >= deadline:
                raise GuestFault(f"timed out waiting for {what} across hosts")
        if self.value < 0:
            raise GuestFault(self.failure or broken() or f"{what} failed: the region broke")
        if self.delivery is not None:
            copy.apply(self.delivery, lambda: broken() or _late(deadline, what))
        return self.value


def _late(deadline: float, what: str) -> str | None:
    if time.monotonic() < deadline:
        return None
    return f"timed out waiting for {what} across hosts"


@dataclass(slots=True)
class _Part:
    host: str
    tids: tuple[int, ...]
    done: TeamDone | None = None


class MainRegion:
    """The main host's side: referee, memory home, and join."""

    def __init__(self, region: RegionId, parts: dict[str, tuple[int, ...]], local: int,
                 copy: HostCopy, deadline: float, send: Callable[[str, object], None]) -> None:
        self.region = region
        self.local = local
        self._copy = copy
        self._deadline = deadline
        self._send = send
        self._parts = {host: _Part(host, tids) for host, tids in parts.items()}
        self.coordinator = Coordinator((region.host, *parts))
        self._done = threading.Condition()
        self._publishing = threading.Lock()  # a collect and its publication, in one step

    @property
    def me(self) -> str:
        return self.region.host

    # -- the main host's own threads ----------------------------------------------------------

    def barrier(self, thread: int) -> None:
        self._wait("a barrier",
                   lambda a: self.coordinator.barrier(self.me, self._copy.collect(), a),
                   publish=True)

    def acquire(self, thread: int, key: int) -> None:
        self._wait("a lock", lambda a: self.coordinator.acquire(self.me, thread, key, a))

    def try_acquire(self, thread: int, key: int) -> int:
        value, delivery = self._guard(
            lambda: self.coordinator.try_acquire(self.me, thread, key))
        if delivery is not None:
            self._copy.apply(delivery, lambda: self.coordinator.broken)
        return value

    def release(self, thread: int, key: int) -> None:
        with self._publishing:
            diff = self._copy.collect()
            self._guard(lambda: self.coordinator.release(self.me, thread, key, diff))

    def single(self, seq: int) -> int:
        return self._guard(lambda: self.coordinator.single(seq))

    def ordered_wait(self, loop: int, iteration: int) -> None:
        self._wait("an ordered turn",
                   lambda a: self.coordinator.ordered_wait(self.me, loop, iteration, a))

    def ordered_pass(self, loop: int, following: int) -> None:
        with self._publishing:
            diff = self._copy.collect()
            self._guard(lambda: self.coordinator.ordered_pass(self.me, loop, following, diff))

    def join(self) -> list[TeamDone]:
        """Wait for every part, apply their writes; their results, in host order."""
        with self._done:
            while not all(p.done for p in self._parts.values()):
                reason = self.coordinator.broken
                if reason is not None:
                    raise GuestFault(reason)
                left = self._deadline - time.monotonic()
                if left <= 0:
                    raise GuestFault("timed out waiting for threads on other hosts to finish")
                self._done.wait(min(WAIT_SLICE, left))
        reason = self.coordinator.broken
        if reason is not None:
            raise GuestFault(reason)
        self._copy.apply(self.coordinator.catch_up(self.me), lambda: self.coordinator.broken)
        return [p.done for p in self._parts.values() if p.done is not None]

    def close(self) -> None:
        self._copy.close()

    def stop(self, reason: str) -> None:
        """End the region early: tell every unfinished part, fail every wait."""
        self.coordinator.break_(reason)
        for part in self._parts.values():
            if part.done is None:
                self._send(part.host, TeamStop(self.region, reason))

    # -- the parts' messages ------------------------------------------------------------------

    def part_done(self, done: TeamDone) -> None:
        part = self._parts.get(done.host)
        if part is None or part.done is not None:
            return
        self.coordinator.publish(done.host, done.diff)
        if done.outcome != Exited(0):
            tids = ", ".join(str(t) for t in part.tids)
            self.coordinator.break_(f"on worker {done.host} (OpenMP threads {tids}): "
                                    f"{describe(done.outcome)}")
        with self._done:
            part.done = done
            self._done.notify_all()

    def request(self, message: TeamRequest) -> None:
        """Answer (now or once it may go on) one request of a part."""
        reply = self._replier(message)
        try:
            self._serve(message, reply)
        except RegionBroken as broken:
            self._send(message.host, TeamReply(self.region, message.request_id, -1,
                                               failure=str(broken)))

    def _serve(self, m: TeamRequest, reply: Answer) -> None:
        c, who = self.coordinator, m.host
        match m.op:
            case TeamOp.BARRIER:
                c.barrier(who, m.diff, reply)
            case TeamOp.ACQUIRE:
                c.acquire(who, m.thread, m.key, reply)
            case TeamOp.TRY_ACQUIRE:
                reply(*c.try_acquire(who, m.thread, m.key))
            case TeamOp.RELEASE:
                c.release(who, m.thread, m.key, m.diff)
            case TeamOp.SINGLE:
                reply(c.single(m.value), None)
            case TeamOp.ORDERED_WAIT:
                c.ordered_wait(who, m.key, m.value, reply)
            case TeamOp.ORDERED_PASS:
                c.ordered_pass(who, m.key, m.value, m.diff)

    def _replier(self, m: TeamRequest) -> Answer:
        def reply(value: int, delivery: Delivery | None) -> None:
            failure = (self.coordinator.broken or "the region broke") if value < 0 else ""
            ticket, diffs = (delivery.ticket, delivery.diffs) if delivery else (None, ())
            self._send(m.host, TeamReply(self.region, m.request_id, value, ticket, diffs,
                                         failure))

        return reply

    # -- helpers ------------------------------------------------------------------------------

    def _wait(self, what: str, start: Callable[[Answer], None], publish: bool = False) -> None:
        waiter = _Waiter()
        if publish:
            with self._publishing:
                self._guard(lambda: start(waiter.answer))
        else:
            self._guard(lambda: start(waiter.answer))
        waiter.wait(self._deadline, what, lambda: self.coordinator.broken, self._copy)

    @staticmethod
    def _guard(step: Callable[[], T]) -> T:
        try:
            return step()
        except RegionBroken as broken:
            raise GuestFault(str(broken)) from None


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
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Waiter] = {}
        self._lock = threading.Lock()
        self._publishing = threading.Lock()  # a collect and its sending, in one step
        self._broken: str | None = None

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

    def replied(self, reply: TeamReply) -> None:
        with self._lock:
            waiter = self._waiting.pop(reply.request_id, None)
        if waiter is not None:
            waiter.failure = reply.failure
            delivery = None if reply.ticket is None else Delivery(reply.ticket, reply.diffs)
            waiter.answer(reply.value, delivery)

    def stop(self, reason: str) -> None:
        with self._lock:
            if self._broken is None:
                self._broken = reason
            waiting, self._waiting = list(self._waiting.values()), {}
        for waiter in waiting:
            waiter.failure = reason
            waiter.answer(-1, None)

    def last_writes(self) -> Diff | None:
        if self.copy is None:
            return None
        with self._publishing:
            return self.copy.collect()

    def close(self) -> None:
        if self.copy is not None:
            self.copy.close()

    def _ask(self, op: TeamOp, thread: int, key: int = 0, value: int = 0,
             publish: bool = False) -> int:
        copy = self._restored()
        waiter = _Waiter()
        request_id = next(self._ids)
        with self._lock:
            if self._broken is not None:
                raise GuestFault(self._broken)
            self._waiting[request_id] = waiter
        with self._publishing:
            diff = copy.collect() if publish else None
            self._send(TeamRequest(self.region, self.host, request_id, op, thread, key, value,
                                   diff))
        return waiter.wait(self._deadline, op.name.lower().replace("_", " "),
                           lambda: self._broken, copy)

    def _tell(self, op: TeamOp, thread: int, key: int, value: int = 0) -> None:
        copy = self._restored()
        if self._broken is not None:
            raise GuestFault(self._broken)
        with self._publishing:
            self._send(TeamRequest(self.region, self.host, next(self._ids), op, thread, key,
                                   value, copy.collect()))

    def _restored(self) -> HostCopy:
        if self.copy is None:
            raise GuestFault("the region's memory is not restored yet")
        return self.copy


