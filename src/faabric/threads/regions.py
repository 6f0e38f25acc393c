"""The main host's side of a parallel region whose team spans hosts.

`MainRegion` lives on the granule's own worker: it owns the region's `Coordinator`, serves
the synchronisation of the threads on this host and answers the parts' requests, and at the
join waits for every part and brings in their writes. Its messages to other workers go out
through a `Post` that never blocks nor raises (the network's reader threads call in here);
a message that cannot be delivered breaks the region. Every wait ends by the granule's
deadline, or at once when the region breaks (a part failed, the app was stopped). The other
hosts' side is `faabric.threads.part_region`. This module must not open sockets nor run
wasm.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from faabric.messages.team import (
    RegionId,
    TeamDone,
    TeamOp,
    TeamRefused,
    TeamReply,
    TeamRequest,
    TeamStop,
)
from faabric.messages.types import Exited, describe
from faabric.threads.atomic_home import AtomicHome, AtomicRequest
from faabric.threads.atomic_ops import Spins
from faabric.threads.coordinator import Answer, Broken, Coordinator, Granted, RegionBroken
from faabric.threads.host_copy import HostCopy
from faabric.threads.waiting import WAIT_SLICE, Waiter, late
from faabric.wasm.host import GuestFault

OnError = Callable[[Exception], None]
Post = Callable[[str, object, OnError], None]  # (host, message, what to do if it is lost)
T = TypeVar("T")
_TOLD = (TeamOp.RELEASE, TeamOp.ORDERED_PASS, TeamOp.APPLY)  # requests nobody waits on


@dataclass(slots=True)
class _Part:
    host: str
    tids: tuple[int, ...]
    done: TeamDone | None = None


class MainRegion:
    """The main host's side: referee, memory home, and join."""

    def __init__(self, region: RegionId, parts: dict[str, tuple[int, ...]], local: int,
                 copy: HostCopy, deadline: float, post: Post) -> None:
        self.region = region
        self.local = local
        self._copy = copy
        self._deadline = deadline
        self._post = post
        self._parts = {host: _Part(host, tids) for host, tids in parts.items()}
        self.coordinator = Coordinator((region.host, *parts))
        self._done = threading.Condition()
        self._publishing = threading.Lock()  # a collect and its publication, in one step
        self._atomics = AtomicHome(self.coordinator, copy, region.host, self._publishing,
                                   self._give_up("an atomic operation"))
        self._spins = Spins()

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
        granted = self._guard(lambda: self.coordinator.try_acquire(self.me, thread, key))
        if granted.delivery is not None:
            self._copy.apply(granted.delivery, self._give_up("a lock"))
        return granted.value

    def release(self, thread: int, key: int) -> None:
        with self._publishing:
            diff = self._copy.collect()
            self._guard(lambda: self.coordinator.release(self.me, thread, key, diff))
        self._atomics.changed()

    def single(self, seq: int) -> int:
        return self._guard(lambda: self.coordinator.single(seq))

    def ordered_wait(self, loop: int, iteration: int) -> None:
        self._wait("an ordered turn",
                   lambda a: self.coordinator.ordered_wait(self.me, loop, iteration, a))

    def ordered_pass(self, loop: int, following: int) -> None:
        with self._publishing:
            diff = self._copy.collect()
            self._guard(lambda: self.coordinator.ordered_pass(self.me, loop, following, diff))
        self._atomics.changed()

    def atomic(self, thread: int, code: int, address: int, a: int, b: int) -> int:
        """An atomic instruction of a thread here (see `AtomicHome`)."""
        hint = self._spins.hint(thread, code, address, a)
        waiter = Waiter()
        self._atomics.serve(self.me, AtomicRequest(code, address, a, b, hint), waiter.answer)
        value = waiter.wait(self._deadline, "an atomic operation",
                            lambda: self.coordinator.broken, self._copy)
        self._spins.saw(thread, code, address, a, value)
        return value

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
        self._copy.apply(self.coordinator.catch_up(self.me),
                         self._give_up("threads on other hosts to finish"))
        return [p.done for p in self._parts.values() if p.done is not None]

    def close(self) -> None:
        self._atomics.break_("the region has ended")
        self._copy.close()

    def stop(self, reason: str) -> None:
        """End the region early: fail every wait, tell every unfinished part (best effort)."""
        self.coordinator.break_(reason)
        self._atomics.break_(reason)
        for part in self._parts.values():
            if part.done is None:
                self._post(part.host, TeamStop(self.region, reason), _ignore)

    # -- the parts' messages ------------------------------------------------------------------

    def part_done(self, done: TeamDone) -> None:
        part = self._parts.get(done.host)
        if part is None or part.done is not None:
            return
        self.coordinator.publish(done.host, done.diff)
        self._atomics.changed()
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
            if message.deferred and message.op is not TeamOp.ATOMIC:
                self._atomics.absorb(message.deferred)
            self._serve(message, reply)
        except (RegionBroken, GuestFault) as broken:
            if message.op in _TOLD:  # nobody waits for an answer: the region cannot go on
                self.coordinator.break_(f"on worker {message.host}: {broken}")
            else:
                reply(Broken(str(broken)))
        self._atomics.changed()

    def _serve(self, m: TeamRequest, reply: Answer) -> None:
        c, who = self.coordinator, m.host
        match m.op:
            case TeamOp.BARRIER:
                c.barrier(who, m.diff, reply)
            case TeamOp.ACQUIRE:
                c.acquire(who, m.thread, m.key, reply)
            case TeamOp.TRY_ACQUIRE:
                reply(c.try_acquire(who, m.thread, m.key))
            case TeamOp.RELEASE:
                c.release(who, m.thread, m.key, m.diff)
            case TeamOp.SINGLE:
                reply(Granted(c.single(m.value)))
            case TeamOp.ORDERED_WAIT:
                c.ordered_wait(who, m.key, m.value, reply)
            case TeamOp.ORDERED_PASS:
                c.ordered_pass(who, m.key, m.value, m.diff)
            case TeamOp.ATOMIC:
                self._atomics.serve(who, AtomicRequest(m.value, m.key, m.a, m.b, m.hint, m.diff,
                                                       m.deferred), reply)
            case TeamOp.APPLY:  # a batch of ignored-result operations, absorbed above
                pass

    def _replier(self, m: TeamRequest) -> Answer:
        def lost(error: Exception) -> None:
            self.coordinator.break_(f"lost worker {m.host}: {error}")

        def reply(outcome: Granted | Broken) -> None:
            match outcome:
                case Granted(value, delivery):
                    ticket, diffs = (delivery.ticket, delivery.diffs) if delivery else (None, ())
                    self._post(m.host, TeamReply(self.region, m.request_id, value, ticket,
                                                 diffs), lost)
                case Broken(reason):
                    self._post(m.host, TeamRefused(self.region, m.request_id, reason), _ignore)

        return reply

    # -- helpers ------------------------------------------------------------------------------

    def _wait(self, what: str, start: Callable[[Answer], None], publish: bool = False) -> None:
        waiter = Waiter()
        if publish:
            with self._publishing:
                self._guard(lambda: start(waiter.answer))
            self._atomics.changed()
        else:
            self._guard(lambda: start(waiter.answer))
        waiter.wait(self._deadline, what, lambda: self.coordinator.broken, self._copy)

    def _give_up(self, what: str) -> Callable[[], str | None]:
        return lambda: self.coordinator.broken or late(self._deadline, what)

    @staticmethod
    def _guard(step: Callable[[], T]) -> T:
        try:
            return step()
        except RegionBroken as broken:
            raise GuestFault(str(broken)) from None


def _ignore(error: Exception) -> None:
    """A message that may be lost (the region is over for its receiver anyway)."""
