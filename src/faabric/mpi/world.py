"""One MPI world as one worker sees it: its local ranks, their queues, and the rest by host.

A `LocalWorld` moves messages between ranks of an app: to a rank on this host straight from
the sender's memory into the posted receive (one copy; small messages are buffered if no
receive is posted yet, large ones wait in the sender's memory), to a rank elsewhere through
the `Network`. A large message for a rank blocked in `wait_change` is handed to that rank
(a `Pull`), whose own thread copies it, so both sides of an exchange copy at once. Each rank
has its own condition (on the world's lock), notified only when it waits. Every blocking
call has a deadline and fails with a `GuestFault` naming the cause when another rank failed.
A rank's memory is touched by other threads only while it is counted in `busy`; `detach`
waits for that before the memory is released. This module must not know about sockets or
wasm instances.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from faabric.mpi import memory, moving
from faabric.mpi.matching import (
    Arrived,
    Copied,
    Envelope,
    InPlace,
    Pattern,
    Posted,
    Remote,
)
from faabric.mpi.moving import RankRecord
from faabric.mpi.onesided import OneSided
from faabric.mpi.ranks import Layout, Network, Pull, RankState, Traffic
from faabric.mpi.rma import RESERVED_CTX
from faabric.wasm.host import GuestFault

EAGER_LIMIT = 64 << 10  # bytes: larger same-host sends wait for their receive (one copy)
LOCKED_COPY_LIMIT = 16 << 10  # bytes: smaller copies run under the world lock (no busy count)
PULL_LIMIT = 256 << 10  # bytes: larger sends to a waiting rank are copied by that rank
WAIT_SLICE = 0.5  # seconds between checks of deadlines while blocked
TOKEN_RANK_BITS = 12  # a synchronous-send token: sequence << 12 | (rank & 0xFFF), < 2**31
TOKEN_RANK_MASK = (1 << TOKEN_RANK_BITS) - 1
TOKEN_SEQUENCES = (1 << (31 - TOKEN_RANK_BITS)) - 1

Clock = Callable[[], float]


class LocalWorld:
    """The ranks of app `app_id` on this worker and the routes to the others."""

    def __init__(self, app_id: int, network: Network, clock: Clock = time.monotonic) -> None:
        self.app_id = app_id
        self._network = network
        self._clock = clock
        self._lock = threading.Lock()
        self._ranks: dict[int, RankState] = {}
        self._layout: Layout | None = None
        self._failure: str | None = None
        self._handles = 0
        self._tokens: dict[int, tuple[int, int]] = {}  # token -> (rank, request address)
        self._pulls: list[Pull] = []  # copies handed to whichever side waits first
        self.moves = threading.Condition(self._lock)  # the migration protocol waits on it
        self.rma = OneSided(app_id, network, self._lock, self)  # windows (one-sided)
        self.traffic = Traffic()  # bytes sent, counted under the lock

    # -- membership ---------------------------------------------------------------------------

    def configure(self, layout: Layout) -> None:
        """Learn where every rank runs (messages may arrive before this)."""
        with self._lock:
            self._layout = layout

    def switch_layout(self, layout: Layout) -> None:
        """A migration ended: ranks now run where `layout` says. Call with the lock held."""
        self._layout = layout

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            raise GuestFault("the MPI world has no placement yet")
        return self._layout

    def attach(self, rank: int, timeout: float) -> None:
        """Rank `rank` starts running here."""
        with self._lock:
            state = self._rank(rank)
            state.running = True
            state.deadline = self._clock() + timeout

    def mark(self, rank: int, *, initialised: bool = False, finalised: bool = False) -> None:
        with self._lock:
            state = self._rank(rank)
            state.initialised |= initialised
            state.finalised |= finalised

    def detach(self, rank: int) -> None:
        """Rank `rank`'s memory is about to go: finish or drop everything pointing into it.
        A rank that moved to another host (`take_rank`) has nothing left here."""
        with self._lock:
            state = self._ranks.get(rank)
            if state is None:
                return
            state.running = False
            state.queues.posted.clear()
            self.rma.forget(rank)
            self._tokens = {t: v for t, v in self._tokens.items() if v[0] != rank}
            for other in self._ranks.values():
                self._copy_out_in_place(other, rank)
            self._settle_pulls(rank)
            while state.busy:
                self._sleep(state, WAIT_SLICE)

    def ended_cleanly(self, rank: int) -> bool:
        """True if the rank finalised, or never used MPI at all."""
        with self._lock:
            state = self._rank(rank)
            return state.finalised or not state.initialised

    def fail(self, reason: str) -> bool:
        """The world is broken; every blocked call here stops with `reason`.

        Returns True if this was the world's first failure."""
        with self._lock:
            first = self._failure is None
            if first:
                self._failure = reason
            for state in self._ranks.values():
                state.changed.notify_all()
            self.moves.notify_all()
            return first

    def break_(self, reason: str) -> None:
        """A rank here failed: fail the world here and on every other host of the app."""
        if self.fail(reason) and self._layout is not None:
            for host in self._layout.hosts():
                if host != self._layout.here:
                    self._network.announce_failure(host, self.app_id, reason)

    @property
    def failure(self) -> str | None:
        return self._failure

    def _rank(self, rank: int) -> RankState:
        state = self._ranks.get(rank)
        if state is None:
            state = self._ranks[rank] = RankState(threading.Condition(self._lock))
        return state

    def _copy_out_in_place(self, holder: RankState, sender: int) -> None:
        # A leaving sender's large messages still in its memory are copied, so they arrive.
        for i, arrived in list(holder.queues.in_place_from(sender)):
            payload = arrived.payload
            assert isinstance(payload, InPlace)
            data = memory.read(payload.address, arrived.envelope.length)
            holder.queues.arrived[i] = Arrived(arrived.envelope, Copied(data))
            memory.complete(payload.request)

    # -- sending ------------------------------------------------------------------------------

    def isend(
        self, rank: int, envelope: Envelope, dest: int, address: int, sync: bool, request: int
    ) -> None:
        """Send `envelope.length` bytes at `address` to world rank `dest`."""
        layout = self.layout
        if layout.is_local(dest):
            self._send_local(rank, envelope, dest, address, sync, request)
            return
        token = 0
        with self._lock:
            self._check()
            self.traffic.cross_host += envelope.length
            if sync:
                token = self._next_token(rank)
                self._tokens[token] = (rank, request)
                memory.set_pending(request, token)
        payload = memory.view(address, envelope.length)
        self._network.send(layout.placement[dest], self.app_id, envelope, dest, payload, token)
        if not sync:
            memory.complete(request)

    def _send_local(
        self, rank: int, envelope: Envelope, dest: int, address: int, sync: bool, request: int
    ) -> None:
        with self._lock:
            self._check()
            self.traffic.same_host += envelope.length
            target = self._rank(dest)
            posted = target.queues.take_posted(envelope)
            if posted is None:
                if sync or envelope.length > EAGER_LIMIT:
                    handle = self._next_handle()
                    memory.set_pending(request, handle)
                    self._queue(target, Arrived(envelope, InPlace(rank, address, request, handle)))
                    return
                data = memory.read(address, envelope.length)
                self._queue(target, Arrived(envelope, Copied(data)))
                memory.complete(request)
                return
            if envelope.length <= LOCKED_COPY_LIMIT:
                self._deliver(posted, envelope, lambda dst, n: memory.copy(dst, address, n))
                self._bump(target)
                memory.complete(request)
                self._bump(self._rank(rank))
                return
            if envelope.length >= PULL_LIMIT and target.in_wait:
                memory.set_pending(request, self._next_handle())
                self._pulls.append(Pull(posted, envelope, rank, address, request, dest))
                target.changed.notify_all()
                return
            target.busy += 1
        self._fill(target, posted, envelope, lambda dst, n: memory.copy(dst, address, n))
        with self._lock:
            memory.complete(request)
            self._bump(self._rank(rank))

    def acknowledged(self, token: int) -> None:
        """A synchronous send to another host was matched."""
        with self._lock:
            found = self._tokens.pop(token, None)
            if found is not None:
                rank, request = found
                memory.complete(request)
                self._bump(self._rank(rank))

    # -- receiving ----------------------------------------------------------------------------

    def irecv(self, rank: int, pattern: Pattern, buffer: int, capacity: int, request: int) -> None:
        """Post a receive; it completes now if a matching message is already here."""
        with self._lock:
            self._check()
            state = self._rank(rank)
            arrived = state.queues.take_arrived(pattern)
            if arrived is None:
                handle = self._next_handle()
                memory.set_pending(request, handle)
                state.queues.posted.append(Posted(pattern, buffer, capacity, request, handle))
                return
            payload = arrived.payload
            if isinstance(payload, Copied) and arrived.envelope.length <= LOCKED_COPY_LIMIT:
                data = payload.data
                self._deliver(Posted(pattern, buffer, capacity, request, 0), arrived.envelope,
                              lambda dst, n: memory.write(dst, data, n))
                self._bump(state)
                return
            if isinstance(payload, InPlace):
                self._rank(payload.sender).busy += 1
        posted = Posted(pattern, buffer, capacity, request, 0)
        self._take(rank, posted, arrived)

    def _take(self, rank: int, posted: Posted, arrived: Arrived) -> None:
        payload = arrived.payload
        if isinstance(payload, InPlace):
            try:
                self._deliver(posted, arrived.envelope,
                              lambda dst, n: memory.copy(dst, payload.address, n))
            finally:
                with self._lock:
                    sender = self._rank(payload.sender)
                    memory.complete(payload.request)
                    sender.busy -= 1
                    self._bump(sender)
        else:
            data = payload.data
            self._deliver(posted, arrived.envelope, lambda dst, n: memory.write(dst, data, n))
            if isinstance(payload, Remote):
                self._network.acknowledge(self.layout.placement[payload.sender], self.app_id,
                                          payload.token)
        with self._lock:
            self._bump(self._rank(rank))

    def arrive(
        self, envelope: Envelope, dest: int, read_into: Callable[[int, int], None],
        read_bytes: Callable[[], bytearray], token: int,
    ) -> None:
        """A message from another host: straight into a posted receive if there is one.

        `read_into(address, n)` reads the first n payload bytes to `address` and skips the
        rest; `read_bytes()` reads the whole payload. Exactly one of them is called.
        """
        if envelope.ctx >= RESERVED_CTX:  # one-sided traffic, served by the host
            self.rma.arrive(envelope, dest, read_bytes())
            return
        with self._lock:
            target = self._rank(dest)
            posted = target.queues.take_posted(envelope)
            if posted is not None:
                target.busy += 1
        if posted is None:
            self._arrive_buffered(envelope, dest, read_bytes(), token)
            return
        self._fill(target, posted, envelope, read_into)
        self._acknowledge(envelope, token)

    def _arrive_buffered(
        self, envelope: Envelope, dest: int, data: bytearray, token: int
    ) -> None:
        with self._lock:
            target = self._rank(dest)
            posted = target.queues.take_posted(envelope)
            if posted is None:
                payload = Remote(data, envelope.source, token) if token else Copied(data)
                self._queue(target, Arrived(envelope, payload))
                return
            target.busy += 1
        self._fill(target, posted, envelope, lambda dst, n: memory.write(dst, data, n))
        self._acknowledge(envelope, token)

    def _fill(
        self, target: RankState, posted: Posted, envelope: Envelope,
        move: Callable[[int, int], None],
    ) -> None:
        """Write a message into `target`'s posted receive; the caller counted target busy."""
        try:
            self._deliver(posted, envelope, move)
        finally:
            with self._lock:
                target.busy -= 1
                self._bump(target)

    def _acknowledge(self, envelope: Envelope, token: int) -> None:
        if token:
            self._network.acknowledge(self.layout.placement[envelope.source], self.app_id, token)

    @staticmethod
    def _deliver(
        posted: Posted, envelope: Envelope, move: Callable[[int, int], None]
    ) -> None:
        n = min(envelope.length, posted.capacity)
        move(posted.buffer, n)
        error = memory.E_TRUNCATE if envelope.length > posted.capacity else memory.OK
        memory.complete(posted.request, envelope.source, envelope.tag, envelope.length, error)

    # -- probing, cancelling, waiting ---------------------------------------------------------

    def iprobe(self, rank: int, pattern: Pattern, blocking: bool, status: int) -> bool:
        """Fill `status` from the first matching message not yet received, if any."""
        with self._lock:
            state = self._rank(rank)
            while True:
                self._check()
                found = state.queues.peek_arrived(pattern)
                if found is not None:
                    memory.complete(status, found.source, found.tag, found.length)
                    return True
                if not blocking:
                    return False
                self._wait(state, "MPI_Probe")

    def cancel(self, rank: int, request: int) -> bool:
        """Withdraw a pending receive; False if it already matched (or is not a receive)."""
        with self._lock:
            posted = self._rank(rank).queues.cancel(memory.handle_of(request))
            return posted is not None

    def completions(self, rank: int) -> int:
        with self._lock:
            return self._rank(rank).completions

    def wait_change(self, rank: int, seen: int) -> int:
        """Block until rank's completion counter moves past `seen`.

        While blocked, the rank copies the large messages other ranks here hand to it."""
        with self._lock:
            state = self._rank(rank)
            while True:
                if self._pulls and self._pull(rank):
                    continue
                if state.completions != seen:
                    return state.completions
                self._check()
                state.in_wait = True
                try:
                    self._wait(state, "an MPI request")
                finally:
                    state.in_wait = False

    def _pull(self, rank: int) -> bool:
        """Copy the messages handed over to or by `rank`; False if there are none.

        Entered and left holding the lock, which is released while copying."""
        mine = [p for p in self._pulls if rank in (p.sender, p.receiver)]
        if not mine:
            return False
        self._pulls = [p for p in self._pulls if rank not in (p.sender, p.receiver)]
        for pull in mine:  # both memories stay put while the lock is released
            self._rank(pull.sender).busy += 1
            self._rank(pull.receiver).busy += 1
        self._lock.release()
        try:
            for pull in mine:
                self._deliver(pull.posted, pull.envelope, pull.copy)
        finally:
            self._lock.acquire()
            for pull in mine:
                memory.complete(pull.request)
                for party in (pull.sender, pull.receiver):
                    state = self._rank(party)
                    state.busy -= 1
                    self._bump(state)
        return True

    def _settle_pulls(self, rank: int) -> None:
        """`rank` is leaving: copy the messages it handed over, drop those handed to it."""
        for pull in [p for p in self._pulls if rank in (p.sender, p.receiver)]:
            if pull.receiver != rank:
                self._deliver(pull.posted, pull.envelope, pull.copy)
                self._bump(self._rank(pull.receiver))
            memory.complete(pull.request)
            self._bump(self._rank(pull.sender))
        self._pulls = [p for p in self._pulls if rank not in (p.sender, p.receiver)]

    def _wait(self, state: RankState, what: str) -> None:
        remaining = state.deadline - self._clock()
        if remaining <= 0:
            raise GuestFault(f"timed out waiting for {what}")
        self._sleep(state, min(remaining, WAIT_SLICE))

    @staticmethod
    def _sleep(state: RankState, seconds: float) -> None:
        state.waiting += 1
        try:
            state.changed.wait(seconds)
        finally:
            state.waiting -= 1

    def _check(self) -> None:
        if self._failure is not None:
            raise GuestFault(self._failure)

    @staticmethod
    def _queue(target: RankState, arrived: Arrived) -> None:
        """Keep a message no receive wants yet; a blocked MPI_Probe of `target` looks again."""
        target.queues.arrived.append(arrived)
        if target.waiting:
            target.changed.notify_all()

    @staticmethod
    def _bump(state: RankState) -> None:
        state.completions = (state.completions + 1) & 0x7FFF_FFFF
        if state.waiting:
            state.changed.notify_all()

    def _next_token(self, rank: int) -> int:
        # Tokens are unique per sending rank, so they stay unique when the rank moves.
        state = self._rank(rank)
        sequence = state.next_token
        state.next_token = sequence % TOKEN_SEQUENCES + 1
        return sequence << TOKEN_RANK_BITS | (rank & TOKEN_RANK_MASK)

    # -- migration (mpi/migration.py runs the protocol) ----------------------------------------

    def take_rank(self, rank: int, base: int) -> RankRecord:
        """Remove rank `rank`, whose memory starts at `base`, for a move to another host; its
        messages still in a sender's memory here are copied first. Call with the lock held."""
        state = self._rank(rank)
        self.rma.forget(rank)
        for other in self._ranks.values():
            self._copy_out_in_place(other, rank)
        for i, arrived in enumerate(state.queues.arrived):
            payload = arrived.payload
            if isinstance(payload, InPlace):
                data = memory.read(payload.address, arrived.envelope.length)
                state.queues.arrived[i] = Arrived(arrived.envelope, Copied(data))
                memory.complete(payload.request)
                self._bump(self._rank(payload.sender))
        self._settle_pulls(rank)
        while state.busy:
            self._sleep(state, WAIT_SLICE)
        tokens = {t: req for t, (r, req) in self._tokens.items() if r == rank}
        record = moving.pack(state, tokens, base)
        for token in tokens:
            del self._tokens[token]
        del self._ranks[rank]
        return record

    def put_rank(self, rank: int, record: RankRecord, base: int) -> None:
        """Install rank `rank`, moved here, with its memory at `base`."""
        with self._lock:
            state = self._rank(rank)
            for token, request in moving.unpack(record, state, base).items():
                self._tokens[token] = (rank, request)
            handles = [posted.handle for posted in state.queues.posted]
            self._handles = max([self._handles, *handles])

    def deadline_of(self, rank: int) -> float:
        """When rank `rank`'s blocking calls time out. Call with the lock held."""
        return self._rank(rank).deadline

    def check(self) -> None:
        """Raise GuestFault if the world failed. Call with the lock held."""
        self._check()

    def bump(self, rank: int) -> None:
        """A request of local rank `rank` completed. Call with the lock held."""
        self._bump(self._rank(rank))

    def _next_handle(self) -> int:
        self._handles = self._handles % 0x7FFF_FFFF + 1
        return self._handles
