"""A rank's matching state as plain values, so that it can travel with a migrating rank.

When a rank moves to another host its posted receives, the messages that arrived for it
but were not received yet, its pending synchronous sends and its completion counter go with
it. Addresses inside its memory travel as guest offsets (the new instance's memory lies
elsewhere in the new worker's address space). Payloads still in a sender's memory are
copied out first (`LocalWorld` does that before packing). This module holds values and the
two conversions only: no locks, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from faabric.mpi.matching import Arrived, Copied, Envelope, InPlace, Pattern, Posted, Remote
from faabric.mpi.ranks import RankState
from faabric.wasm.host import GuestFault


@dataclass(frozen=True, slots=True)
class PostedRecord:
    """A posted receive; `buffer` and `request` are guest offsets."""

    ctx: int
    source: int
    tag: int
    buffer: int
    capacity: int
    request: int
    handle: int


@dataclass(frozen=True, slots=True)
class ArrivedRecord:
    """A message not received yet; `token` > 0 for a synchronous send from another rank
    still waiting for its acknowledgement."""

    ctx: int
    source: int
    tag: int
    data: bytes
    token: int = 0


@dataclass(frozen=True, slots=True)
class RankRecord:
    """Everything the host keeps for one rank, in guest terms.

    Attributes:
        posted: its receives that nothing matched yet, in posting order.
        arrived: messages for it that no receive took yet, in arrival order.
        tokens: its synchronous sends to other hosts not yet acknowledged, as
            (token, request offset).
        completions: its completion counter.
        next_token: the sequence number of its next synchronous-send token.
        finalised: whether it called MPI_Finalize.
    """

    posted: tuple[PostedRecord, ...]
    arrived: tuple[ArrivedRecord, ...]
    tokens: tuple[tuple[int, int], ...]
    completions: int
    next_token: int
    finalised: bool = False


def pack(state: RankState, tokens: dict[int, int], base: int) -> RankRecord:
    """The record of a rank whose memory starts at host address `base`; `tokens` maps its
    pending synchronous-send tokens to request addresses.

    Raises:
        GuestFault: a message for it still lies in a sender's memory (the caller must copy
            those out first).
    """
    posted = tuple(
        PostedRecord(p.pattern.ctx, p.pattern.source, p.pattern.tag, p.buffer - base,
                     p.capacity, p.request - base, p.handle)
        for p in state.queues.posted
    )
    arrived: list[ArrivedRecord] = []
    for item in state.queues.arrived:
        envelope, payload = item.envelope, item.payload
        if isinstance(payload, InPlace):
            raise GuestFault("a message still in its sender's memory cannot move")
        token = payload.token if isinstance(payload, Remote) else 0
        arrived.append(ArrivedRecord(envelope.ctx, envelope.source, envelope.tag,
                                     bytes(payload.data), token))
    return RankRecord(
        posted=posted,
        arrived=tuple(arrived),
        tokens=tuple(sorted((token, request - base) for token, request in tokens.items())),
        completions=state.completions,
        next_token=state.next_token,
        finalised=state.finalised,
    )


def unpack(record: RankRecord, state: RankState, base: int) -> dict[int, int]:
    """Fill a fresh rank `state` from `record` for a memory at `base`; returns the rank's
    pending tokens as token -> request address."""
    state.queues.posted = [
        Posted(Pattern(p.ctx, p.source, p.tag), base + p.buffer, p.capacity,
               base + p.request, p.handle)
        for p in record.posted
    ]
    state.queues.arrived = [
        Arrived(Envelope(a.ctx, a.source, a.tag, len(a.data)),
                Remote(a.data, a.source, a.token) if a.token else Copied(a.data))
        for a in record.arrived
    ]
    state.completions = record.completions
    state.next_token = record.next_token
    state.initialised = True
    state.finalised = record.finalised
    return {token: base + request for token, request in record.tokens}
