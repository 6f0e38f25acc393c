"""Byte ranges of a memory: the shape in which dirty pages and diff runs are passed around.

A `Ranges` value is a tuple of `(start, end)` byte offsets, half-open, relative to the start
of a memory. Functions here normalise (sort and coalesce), align to pages, clip and intersect
ranges, on numpy arrays when there are many. Nothing here touches memory.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from faabric.snapshot._libc import PAGE_SIZE

Ranges = tuple[tuple[int, int], ...]
Offsets = npt.NDArray[np.int64]


def normalise(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sorted, non-empty, non-overlapping ranges; touching or overlapping ones are merged."""
    starts, ends = as_arrays(ranges)
    return to_ranges(*coalesce(starts, ends))


def as_arrays(ranges: Iterable[tuple[int, int]]) -> tuple[Offsets, Offsets]:
    """Two int64 arrays (starts, ends) of the non-empty ranges, sorted by start."""
    pairs = np.array([r for r in ranges if r[1] > r[0]], dtype=np.int64).reshape(-1, 2)
    order = np.argsort(pairs[:, 0], kind="stable")
    return pairs[order, 0], pairs[order, 1]


def to_ranges(starts: Offsets, ends: Offsets) -> Ranges:
    """Ranges from two int64 arrays."""
    return tuple(zip(starts.tolist(), ends.tolist(), strict=True))


def coalesce(starts: Offsets, ends: Offsets, gap: int = 0) -> tuple[Offsets, Offsets]:
    """Merge sorted ranges separated by at most `gap` bytes (overlapping ones always)."""
    if len(starts) == 0:
        return starts, ends
    reach = np.maximum.accumulate(ends)
    breaks = np.flatnonzero(starts[1:] > reach[:-1] + gap) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [len(starts) - 1]))
    return starts[first], reach[last]


def page_align(ranges: Ranges, page: int = PAGE_SIZE) -> Ranges:
    """Each range widened to whole pages, then normalised."""
    return normalise(((s // page) * page, -(-e // page) * page) for s, e in ranges)


def clip(ranges: Ranges, start: int, end: int) -> Ranges:
    """The parts of (normalised) `ranges` inside [start, end)."""
    out = ((max(s, start), min(e, end)) for s, e in ranges)
    return tuple((s, e) for s, e in out if e > s)


def intersect(starts: Offsets, ends: Offsets, lo: int, hi: int) -> tuple[Offsets, Offsets]:
    """The parts of sorted, disjoint ranges inside [lo, hi), as arrays."""
    first = int(np.searchsorted(ends, lo, side="right"))
    last = int(np.searchsorted(starts, hi, side="left"))
    return np.maximum(starts[first:last], lo), np.minimum(ends[first:last], hi)


def total(ranges: Ranges) -> int:
    """Number of bytes covered by normalised ranges."""
    return sum(e - s for s, e in ranges)
