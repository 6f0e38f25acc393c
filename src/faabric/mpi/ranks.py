"""The parts a `LocalWorld` is made of: where ranks run, each local rank's state, the
network it reaches other hosts through, and large messages handed over between ranks.

Plain values and a protocol; the rules that use them live in `world.py`. This module must
not lock, wait or touch memory except through `Pull.copy`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from faabric.mpi import memory
from faabric.mpi.matching import Envelope, Posted, RankQueues


class Network(Protocol):
    """How a world reaches ranks on other hosts."""

    def send(
        self, host: str, app_id: int, envelope: Envelope, dest: int, payload: memoryview,
        token: int,
    ) -> None:
        """Send a message; `token` > 0 asks for an acknowledgement once it is matched."""
        ...

    def acknowledge(self, host: str, app_id: int, token: int) -> None:
        """Tell `host` that the synchronous send `token` was matched."""
        ...

    def announce_failure(self, host: str, app_id: int, reason: str) -> None:
        """Tell `host` that the app failed (best effort)."""
        ...


@dataclass(frozen=True, slots=True)
class Pull:
    """A large same-host message matched to a receive of a rank blocked in `wait_change`.

    Whichever of the two ranks is first blocked in `wait_change` copies it with its own
    thread: the receiver, woken for it, or the sender once it waits for the send. So in an
    exchange both sides copy at once, and a one-way send is not slower than a copy by the
    sender."""

    posted: Posted
    envelope: Envelope
    sender: int
    address: int
    request: int
    receiver: int

    def copy(self, dst: int, n: int) -> None:
        memory.copy(dst, self.address, n)


@dataclass(slots=True)
class RankState:
    """One local rank: its queues, completion counter and who is touching its memory.

    `changed` (on the world's lock) is notified when the counter moves or `busy` drops, so
    a completion wakes only the rank it belongs to, and only when it waits (`waiting`)."""

    changed: threading.Condition
    queues: RankQueues = field(default_factory=RankQueues)
    waiting: int = 0
    in_wait: bool = False  # blocked in wait_change: large messages may be handed over (pulls)
    completions: int = 0
    busy: int = 0
    running: bool = False
    initialised: bool = False
    finalised: bool = False
    deadline: float = float("inf")
    next_token: int = 1  # sequence number of its next synchronous-send token


@dataclass(frozen=True, slots=True)
class Layout:
    """Where every rank runs: worker names by rank, their data-plane addresses, this host."""

    placement: tuple[str, ...]
    here: str

    @property
    def size(self) -> int:
        return len(self.placement)

    def hosts(self) -> tuple[str, ...]:
        """Distinct hosts in order of their lowest rank."""
        return tuple(dict.fromkeys(self.placement))

    def is_local(self, rank: int) -> bool:
        return self.placement[rank] == self.here


@dataclass(slots=True)
class Traffic:
    """Payload bytes the ranks of a world here sent with point-to-point sends (collectives
    included), to ranks on this worker and to ranks on others. Added to under the world's
    lock; read without it (a plain int read) for metrics."""

    same_host: int = 0
    cross_host: int = 0

    def add(self, other: Traffic) -> None:
        """Fold `other` in (a world that ended)."""
        self.same_host += other.same_host
        self.cross_host += other.cross_host
