"""One host's copy of a distributed region's memory, kept in step with the other hosts'.

The copy remembers, as a private "twin", the memory as it was at the last synchronisation.
`collect` returns what this host's threads wrote since then (the pages the dirty tracker
reports, compared with the twin, minus the excluded ranges) and moves the twin forward;
`apply` writes other hosts' diffs into memory and twin alike, so they are never sent back;
deliveries are applied in ticket order (a thread whose delivery overtook an earlier one
waits for it). Both hold one lock: a host's threads may synchronise at the same time. The
guest's other threads keep running meanwhile; for programs without data races that is
harmless, since nobody else touches the bytes in flight. This module must not talk to other hosts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from faabric.snapshot import (
    PAGE_SIZE,
    Diff,
    MergeOp,
    MergeRegion,
    RegionMap,
    compute_diff,
    memory_view,
    merge_diffs,
    open_tracker,
)
from faabric.snapshot.merge import required_size
from faabric.threads.coordinator import Delivery
from faabric.wasm.host import GuestFault, GuestMemory

Memory = Callable[[], GuestMemory]  # the memory as it is now (it may have grown)
Grow = Callable[[int], None]  # grow the memory to at least this many bytes
GiveUp = Callable[[], str | None]  # why waiting for a turn is pointless, if it is
TURN_SLICE = 0.05  # seconds between checks while a delivery waits for its turn


class HostCopy:
    """Collects this host's writes and applies the others', against a twin."""

    def __init__(self, memory: Memory, grow: Grow, twin: np.ndarray,
                 exclude: Sequence[tuple[int, int]]) -> None:
        self._memory = memory
        self._grow = grow
        self._twin = twin
        self._regions = RegionMap(
            MergeRegion(start, end - start, op=MergeOp.IGNORE)
            for start, end in _disjoint(exclude)
        )
        now = memory()
        self._base = now.base
        self._tracked = _pages(now.size)
        self._tracker = open_tracker(now.base, self._tracked)
        self._lock = threading.Lock()
        self._turn = threading.Condition()
        self._next_ticket = 0

    def collect(self) -> Diff:
        """This host's writes since the last `collect` or `apply` (may be empty)."""
        with self._lock:
            view = self._view()
            dirty = self._tracker.dirty_pages()
            diff = compute_diff(view, self._twin, dirty, self._regions)
            self._extend_twin(diff.size)
            merge_diffs(self._twin, [diff])
            return diff

    def apply(self, delivery: Delivery, give_up: GiveUp) -> None:
        """Apply `delivery` once every earlier ticket is applied. Raises GuestFault when
        `give_up` gives a reason (the region broke) before its turn came."""
        with self._turn:
            while self._next_ticket != delivery.ticket:
                reason = give_up()
                if reason is not None:
                    raise GuestFault(reason)
                self._turn.wait(TURN_SLICE)
        try:
            self._write(delivery.diffs)
        finally:
            with self._turn:
                self._next_ticket += 1
                self._turn.notify_all()

    def _write(self, diffs: Sequence[Diff]) -> None:
        if not diffs:
            return
        with self._lock:
            need = required_size(diffs)
            if need > self._memory().size:
                self._grow(need)
            merge_diffs(self._view(), diffs)
            self._extend_twin(need)
            merge_diffs(self._twin, diffs)

    def wrote(self, writes: Sequence[tuple[int, bytes]]) -> None:
        """Bytes the host wrote to memory and published itself: not to be collected again."""
        with self._lock:
            for address, data in writes:
                self._extend_twin(address + len(data))
                self._twin[address:address + len(data)] = np.frombuffer(data, np.uint8)

    def view(self) -> np.ndarray:
        """The memory as it is now, writable (its tracked pages)."""
        with self._lock:
            return self._view()

    def close(self) -> None:
        self._tracker.stop()

    def _view(self) -> np.ndarray:
        now = self._memory()
        size = _pages(now.size)
        if size > self._tracked:
            self._tracker.resize(size)
            self._tracked = size
        return memory_view(self._base, size)

    def _extend_twin(self, size: int) -> None:
        if size > len(self._twin):
            grown = np.zeros(size, np.uint8)
            grown[: len(self._twin)] = self._twin
            self._twin = grown


def _pages(size: int) -> int:
    return size - size % PAGE_SIZE


def _disjoint(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """`ranges` sorted, merged where they overlap or touch, empty ones dropped."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
