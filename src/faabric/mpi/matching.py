"""MPI message matching for the ranks of one world on one host: pure queues, no I/O.

Each local rank has two queues: receives it posted that nothing matched yet, and messages that
arrived before a receive wanted them. A receive matches the first arrived message with the
same context whose source and tag fit (either may be a wildcard); an arriving message matches
the first posted receive that fits. Scanning in order gives MPI's non-overtaking rule. This
module holds no locks and touches no memory: `world.py` does both around it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

ANY = -1


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a message says about itself: context, sender's world rank, tag, length in bytes."""

    ctx: int
    source: int
    tag: int
    length: int


@dataclass(frozen=True, slots=True)
class Pattern:
    """What a receive or a probe accepts; `source`/`tag` may be ANY."""

    ctx: int
    source: int
    tag: int

    def accepts(self, envelope: Envelope) -> bool:
        return (
            envelope.ctx == self.ctx
            and (self.source == ANY or self.source == envelope.source)
            and (self.tag == ANY or self.tag == envelope.tag)
        )


@dataclass(frozen=True, slots=True)
class Posted:
    """A receive waiting for a message: where to write it and where its request lies.

    Addresses are host addresses inside the receiving rank's linear memory.
    """

    pattern: Pattern
    buffer: int
    capacity: int
    request: int
    handle: int


# -- what an arrived message carries: a tagged union ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Copied:
    """The payload was copied out of the sender (small message, or it came over the network)."""

    data: bytes | bytearray


@dataclass(frozen=True, slots=True)
class InPlace:
    """The payload is still in the sender's memory (large same-host message).

    The receive copies it straight from `address` and then completes the sender's request.
    """

    sender: int
    address: int
    request: int
    handle: int


@dataclass(frozen=True, slots=True)
class Remote:
    """A synchronous send from another host: `token` acknowledges it once matched."""

    data: bytes | bytearray
    sender: int
    token: int


Payload = Copied | InPlace | Remote


@dataclass(frozen=True, slots=True)
class Arrived:
    """A message that no receive has taken yet."""

    envelope: Envelope
    payload: Payload


@dataclass(slots=True)
class RankQueues:
    """The matching state of one local rank."""

    posted: list[Posted] = field(default_factory=list)
    arrived: list[Arrived] = field(default_factory=list)

    def take_posted(self, envelope: Envelope) -> Posted | None:
        """Remove and return the first posted receive that accepts `envelope`."""
        for i, posted in enumerate(self.posted):
            if posted.pattern.accepts(envelope):
                return self.posted.pop(i)
        return None

    def take_arrived(self, pattern: Pattern) -> Arrived | None:
        """Remove and return the first arrived message `pattern` accepts."""
        for i, arrived in enumerate(self.arrived):
            if pattern.accepts(arrived.envelope):
                return self.arrived.pop(i)
        return None

    def peek_arrived(self, pattern: Pattern) -> Envelope | None:
        """The envelope of the first arrived message `pattern` accepts, left in place."""
        for arrived in self.arrived:
            if pattern.accepts(arrived.envelope):
                return arrived.envelope
        return None

    def cancel(self, handle: int) -> Posted | None:
        """Remove the posted receive with `handle`, if it is still waiting."""
        for i, posted in enumerate(self.posted):
            if posted.handle == handle:
                return self.posted.pop(i)
        return None

    def in_place_from(self, sender: int) -> Iterator[tuple[int, Arrived]]:
        """(index, message) of arrived messages whose payload is still in `sender`'s memory."""
        for i, arrived in enumerate(self.arrived):
            if isinstance(arrived.payload, InPlace) and arrived.payload.sender == sender:
                yield i, arrived
