"""The main host's referee for one parallel region whose team spans hosts.

Every host of the region (the main one and each part) is a participant. Synchronisation is
decided here: team-wide locks, barriers, `single` claims and the turns of `ordered` loops.
Memory follows release consistency: an operation that publishes (release, barrier arrival,
ordered pass, a part's end) hands in the participant's writes since its last
synchronisation as a `Diff`, which joins an ordered log; an operation that synchronises in
(acquire, barrier departure, ordered wait, the join) is answered with every logged diff of
the other participants it has not seen yet, to apply in log order. For programs without data
races this gives each thread the writes that happened before it in the program's
synchronisation order.

Each hand-over of diffs is a `Delivery` with a ticket, numbered per participant in the
order the referee made them: a host applies its deliveries in ticket order, so a thread
that synchronises in never overtakes writes handed to another thread of its host a moment
earlier. Answers go through callbacks, called after the referee's lock is let go, so the
referee is a pure state machine: no sockets, no threads, no sleeping. It must not touch
memory.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from faabric.snapshot import Diff

Holder = tuple[str, int]  # (participant, thread)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Diffs of other participants to apply, as the participant's `ticket`-th hand-over."""

    ticket: int
    diffs: tuple[Diff, ...]


@dataclass(frozen=True, slots=True)
class Granted:
    """The operation may go on: its `value` (1/0 for try_acquire and single, else 0) and,
    if it synchronises in, the `delivery` to apply first."""

    value: int
    delivery: Delivery | None = None


@dataclass(frozen=True, slots=True)
class Broken:
    """The operation failed: the region broke for `reason`."""

    reason: str


Answer = Callable[[Granted | Broken], None]


class RegionBroken(Exception):
    """The region cannot go on (a part failed or the granule is ending)."""


@dataclass(slots=True)
class _Lock:
    holder: Holder | None = None
    waiting: deque[tuple[Holder, Answer]] = field(default_factory=deque)


@dataclass(slots=True)
class _Ordered:
    turn: int = 0
    waiting: dict[int, list[tuple[str, Answer]]] = field(default_factory=dict)


class Coordinator:
    """Locks, barriers, singles, ordered turns and the memory log of one region."""

    def __init__(self, participants: tuple[str, ...]) -> None:
        self._participants = participants
        self._lock = threading.Lock()
        self._log: list[tuple[str, Diff]] = []
        self._log_start = 0  # log position of self._log[0]
        self._seen = {p: 0 for p in participants}  # log position each was handed up to
        self._tickets = {p: 0 for p in participants}  # each one's next delivery ticket
        self._locks: dict[int, _Lock] = {}
        self._barrier: list[tuple[str, Answer]] = []
        self._singles: set[int] = set()
        self._ordered: dict[int, _Ordered] = {}
        self._broken: str | None = None

    @property
    def participants(self) -> tuple[str, ...]:
        return self._participants

    def acquire(self, who: str, thread: int, key: int, answer: Answer) -> None:
        """Answer (1, diffs) once `key` is held by (`who`, `thread`)."""
        ready: list[tuple[Answer, Granted]] = []
        with self._lock:
            self._check(who)
            lock = self._locks.setdefault(key, _Lock())
            if lock.holder is None:
                lock.holder = (who, thread)
                ready.append((answer, Granted(1, self._unseen(who))))
            else:
                lock.waiting.append(((who, thread), answer))
        _run(ready)

    def try_acquire(self, who: str, thread: int, key: int) -> Granted:
        """Granted(1, delivery) if `key` was free and is now held, else Granted(0)."""
        with self._lock:
            self._check(who)
            lock = self._locks.setdefault(key, _Lock())
            if lock.holder is not None:
                return Granted(0)
            lock.holder = (who, thread)
            return Granted(1, self._unseen(who))

    def release(self, who: str, thread: int, key: int, diff: Diff | None) -> None:
        """(`who`, `thread`) lets go of `key`, publishing `diff`."""
        ready: list[tuple[Answer, Granted]] = []
        with self._lock:
            self._check(who)
            lock = self._locks.get(key)
            if lock is None or lock.holder != (who, thread):
                raise RegionBroken(f"lock {key:#x} released by a thread that does not hold it")
            self._publish(who, diff)
            lock.holder = None
            if lock.waiting:
                holder, answer = lock.waiting.popleft()
                lock.holder = holder
                ready.append((answer, Granted(1, self._unseen(holder[0]))))
        _run(ready)

    def barrier(self, who: str, diff: Diff | None, answer: Answer) -> None:
        """Participant `who` arrived, publishing `diff`; everyone is answered once all did."""
        ready: list[tuple[Answer, Granted]] = []
        with self._lock:
            self._check(who)
            if any(p == who for p, _ in self._barrier):
                raise RegionBroken(f"{who} arrived twice at one barrier")
            self._publish(who, diff)
            self._barrier.append((who, answer))
            if len(self._barrier) == len(self._participants):
                arrived, self._barrier = self._barrier, []
                ready = [(a, Granted(0, self._unseen(p))) for p, a in arrived]
        _run(ready)

    def single(self, seq: int) -> int:
        """1 for the first caller of `seq`, 0 for the others."""
        with self._lock:
            self._check()
            if seq in self._singles:
                return 0
            self._singles.add(seq)
            return 1

    def ordered_wait(self, who: str, loop: int, iteration: int, answer: Answer) -> None:
        """Answer once the ordered turn of `loop` reaches `iteration`."""
        ready: list[tuple[Answer, Granted]] = []
        with self._lock:
            self._check(who)
            turns = self._ordered.setdefault(loop, _Ordered())
            if turns.turn == iteration:
                ready.append((answer, Granted(0, self._unseen(who))))
            else:
                turns.waiting.setdefault(iteration, []).append((who, answer))
        _run(ready)

    def ordered_pass(self, who: str, loop: int, following: int, diff: Diff | None) -> None:
        """The ordered turn of `loop` moves to `following`, publishing `diff`."""
        ready: list[tuple[Answer, Granted]] = []
        with self._lock:
            self._check(who)
            self._publish(who, diff)
            turns = self._ordered.setdefault(loop, _Ordered())
            turns.turn = following
            for waiter, answer in turns.waiting.pop(following, []):
                ready.append((answer, Granted(0, self._unseen(waiter))))
        _run(ready)

    def publish(self, who: str, diff: Diff | None) -> None:
        """`who` hands in writes outside any operation (a part's last writes); ignored once
        the region broke."""
        with self._lock:
            if self._broken is None:
                self._check(who)
                self._publish(who, diff)

    def catch_up(self, who: str) -> Delivery:
        """The diffs `who` has not applied yet (the main host at the join)."""
        with self._lock:
            self._check(who)
            return self._unseen(who)

    @property
    def position(self) -> int:
        """How many diffs were ever published (grows with every publication)."""
        with self._lock:
            return self._log_start + len(self._log)

    def has_unseen(self, who: str) -> bool:
        """Whether another participant published something `who` was not handed yet."""
        with self._lock:
            first = self._seen[who] - self._log_start
            return any(origin != who for origin, _ in self._log[first:])

    def break_(self, reason: str) -> None:
        """Fail every waiting and future operation with `reason`."""
        with self._lock:
            if self._broken is not None:
                return
            self._broken = reason
            waiting = [a for _, a in self._barrier]
            for lock in self._locks.values():
                waiting += [a for _, a in lock.waiting]
            for turns in self._ordered.values():
                waiting += [a for group in turns.waiting.values() for _, a in group]
            self._barrier, self._locks, self._ordered = [], {}, {}
        for answer in waiting:
            answer(Broken(reason))

    @property
    def broken(self) -> str | None:
        return self._broken

    # -- with the lock held -------------------------------------------------------------------

    def _check(self, who: str | None = None) -> None:
        if self._broken is not None:
            raise RegionBroken(self._broken)
        if who is not None and who not in self._seen:
            raise RegionBroken(f"{who} is not a host of this region")

    def _publish(self, who: str, diff: Diff | None) -> None:
        if diff is not None and diff.blocks:
            self._log.append((who, diff))

    def _unseen(self, who: str) -> Delivery:
        end = self._log_start + len(self._log)
        first = self._seen[who] - self._log_start
        self._seen[who] = end
        found = tuple(d for origin, d in self._log[first:] if origin != who)
        self._trim()
        ticket = self._tickets[who]
        self._tickets[who] = ticket + 1
        return Delivery(ticket, found)

    def _trim(self) -> None:
        oldest = min(self._seen.values())
        drop = oldest - self._log_start
        if drop > 0:
            del self._log[:drop]
            self._log_start = oldest


def _run(ready: list[tuple[Answer, Granted]]) -> None:
    for answer, granted in ready:
        answer(granted)
