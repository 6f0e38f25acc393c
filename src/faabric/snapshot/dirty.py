"""Which pages of a memory were written: the page-compare tracker, and choosing a tracker.

Two mechanisms: `UffdTracker` (kernel write-protect, cost proportional to the dirty pages)
and `CompareTracker` (a private copy of the memory compared page by page with numpy, cost
proportional to the memory; about 5 GB/s). `open_tracker` picks the first when the kernel and
permissions allow it. Trackers report page-aligned byte ranges relative to the memory's start;
they never read or write the memory's contents except to compare.
"""

from __future__ import annotations

import logging

import numpy as np

from faabric.errors import SnapshotError, TrackingUnavailable
from faabric.snapshot._libc import PAGE_SIZE, Bytes, memory_view
from faabric.snapshot.pages import as_pages, changed_pages, check_pages, flags_to_ranges
from faabric.snapshot.ranges import Ranges, normalise
from faabric.snapshot.tracker import DirtyTracker, TrackingMode
from faabric.snapshot.uffd import UffdTracker

log = logging.getLogger(__name__)


class CompareTracker:
    """Finds written pages by comparing the memory with a copy taken at `start()`.

    It sees changed pages, not writes: a page rewritten with its old contents is not
    reported. Holds a copy of the whole memory while started.
    """

    mode = TrackingMode.COMPARE

    def __init__(self, address: int, length: int) -> None:
        check_pages(length, "the tracked memory")
        self.address, self.length = address, length
        self._base: Bytes | None = None
        self._grown: list[tuple[int, int]] = []

    def start(self) -> None:
        self._base = memory_view(self.address, self.length).copy()
        self._grown.clear()

    def dirty_pages(self) -> Ranges:
        if self._base is None:
            raise SnapshotError("the dirty tracker is not started")
        view = memory_view(self.address, self.length)
        flags = changed_pages(view, self._base)
        if flags.any():
            as_pages(self._base)[flags] = as_pages(view)[flags]
        found = [*self._grown, *flags_to_ranges(flags)]
        self._grown.clear()
        return normalise(found)

    def resize(self, length: int) -> None:
        if length < self.length or length % PAGE_SIZE:
            raise SnapshotError(f"cannot resize tracking from {self.length} to {length} bytes")
        if self._base is not None and length > self.length:
            grown = memory_view(self.address + self.length, length - self.length)
            self._base = np.concatenate((self._base, grown))
            self._grown.append((self.length, length))
        self.length = length

    def stop(self) -> None:
        self._base = None


def open_tracker(address: int, length: int,
                 mode: TrackingMode = TrackingMode.AUTO) -> DirtyTracker:
    """A started tracker over [address, address + length), by `mode`.

    AUTO tries userfaultfd first and falls back to the page compare when the kernel or the
    permissions refuse (`TrackingUnavailable`); UFFD raises that error instead.
    """
    if mode is not TrackingMode.COMPARE:
        uffd = UffdTracker(address, length)
        try:
            uffd.start()
            return uffd
        except SnapshotError as exc:  # unavailable, or refused by this kernel for this range
            if mode is TrackingMode.UFFD:
                raise
            if not isinstance(exc, TrackingUnavailable):
                log.info("userfaultfd tracking failed, comparing pages instead: %s", exc)
    tracker = CompareTracker(address, length)
    tracker.start()
    return tracker
