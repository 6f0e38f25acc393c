"""Applying diffs to a stored snapshot without decoding all of it.

Only the chunks the diffs touch are decoded, merged (with the same rules as a live memory)
and encoded again; every other chunk's payload is reused as is. A snapshot grows when a diff
covers more memory than it does. Pure: values in, value out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faabric.snapshot.diff import Diff
from faabric.snapshot.image import (
    BITMAP_BYTES,
    CHUNK_SIZE,
    DEFAULT_OPTIONS,
    PAGES_PER_CHUNK,
    Snapshot,
    SnapshotOptions,
    chunk_payloads,
    take_snapshot,
)
from faabric.snapshot.merge import merge_diffs, required_size
from faabric.snapshot.pages import as_pages


def _touched_chunks(diffs: Sequence[Diff]) -> set[int]:
    touched: set[int] = set()
    for diff in diffs:
        for block in diff.blocks:
            offsets, lengths = block.run_offsets(), block.run_lengths()
            first, last = offsets // CHUNK_SIZE, (offsets + lengths - 1) // CHUNK_SIZE
            touched.update(np.unique(np.concatenate((first, last))).tolist())
            for a, b in zip(first[last - first > 1].tolist(), last[last - first > 1].tolist(),
                            strict=True):  # runs longer than a chunk: the chunks in between
                touched.update(range(a + 1, b))
    return touched


def patch_snapshot(snapshot: Snapshot, diffs: Sequence[Diff],
                   options: SnapshotOptions = DEFAULT_OPTIONS) -> Snapshot:
    """The snapshot with `diffs` merged into it, in order (see `merge.merge_diffs`)."""
    size = max(snapshot.size, required_size(diffs))
    touched = _touched_chunks(diffs)
    if not touched and size == snapshot.size:
        return snapshot
    work = np.zeros(size, np.uint8)  # calloc'ed: only the touched chunks get real pages
    pages = as_pages(work)
    for chunk, page_numbers, decoded in chunk_payloads(snapshot, touched):
        pages[chunk * PAGES_PER_CHUNK + page_numbers] = decoded.reshape(len(page_numbers), -1)
    merge_diffs(work, diffs)
    fresh = {chunk: _encode_chunk(work, chunk, options) for chunk in sorted(touched)}
    return _assemble(snapshot, size, fresh)


def _encode_chunk(work: np.ndarray, chunk: int, options: SnapshotOptions) -> Snapshot:
    """The chunk alone, as a snapshot of its own 1 MiB (or shorter final) window."""
    return take_snapshot(work[chunk * CHUNK_SIZE:(chunk + 1) * CHUNK_SIZE], options)


def _assemble(old: Snapshot, size: int, fresh: dict[int, Snapshot]) -> Snapshot:
    numbers = old.chunk_numbers().tolist()
    ends = old.payload_ends()
    data = memoryview(old.data)
    records: dict[int, tuple[bytes, int, bytes | memoryview]] = {}
    for i, chunk in enumerate(numbers):
        start = int(ends[i - 1]) if i else 0
        bitmap = old.bitmaps[BITMAP_BYTES * i:BITMAP_BYTES * (i + 1)]
        records[chunk] = (bitmap, old.encodings[i], data[start:int(ends[i])])
    for chunk, part in fresh.items():
        records.pop(chunk, None)
        if part.encodings:
            records[chunk] = (part.bitmaps, part.encodings[0], part.data)
    order = sorted(records)
    payloads = [records[c][2] for c in order]
    return Snapshot(
        size,
        np.asarray(order, "<u8").tobytes(),
        b"".join(records[c][0] for c in order),
        bytes(records[c][1] for c in order),
        np.cumsum([len(p) for p in payloads], dtype=np.int64).astype("<u8").tobytes(),
        b"".join(payloads),
    )
