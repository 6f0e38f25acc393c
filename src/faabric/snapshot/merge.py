"""Merging diffs from remote hosts into the main memory, in a defined order.

`merge_diffs(main, diffs)` applies each diff's blocks in turn. Byte-wise blocks write only the
bytes the remote changed, so for a byte changed by several diffs the last one in the given
order wins, and bytes no remote changed keep main's value (including main's own writes).
Typed blocks fold contributions (`ops`), so their order does not matter beyond float rounding.
Merging needs `main` at least as long as the longest diff; growing it is the caller's job.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from faabric.errors import SnapshotError
from faabric.snapshot import ops
from faabric.snapshot._libc import Bytes
from faabric.snapshot.diff import Diff, DiffBlock
from faabric.snapshot.ranges import Offsets
from faabric.snapshot.regions import MergeOp

LOOP_MIN_RUN = 64  # runs at least this long on average are copied one by one, not scattered


def required_size(diffs: Sequence[Diff]) -> int:
    """The length main must have before `merge_diffs` (the largest diff's memory)."""
    return max((d.size for d in diffs), default=0)


def merge_diffs(main: Bytes, diffs: Sequence[Diff]) -> None:
    """Apply `diffs` to `main` (a writable numpy view) in order; see the module doc."""
    need = required_size(diffs)
    if len(main) < need:
        raise SnapshotError(f"the main memory is {len(main)} bytes, a diff needs {need}: "
                            "grow it first")
    for diff in diffs:
        for block in diff.blocks:
            apply_block(main, block)


def apply_block(main: Bytes, block: DiffBlock) -> None:
    """Apply one block of a diff to `main`."""
    offsets, lengths = block.run_offsets(), block.run_lengths()
    if len(offsets) == 0 or block.op is MergeOp.IGNORE:
        return
    data = np.frombuffer(block.data, np.uint8)
    if block.op.typed:
        _apply_typed(main, block, offsets, lengths, data)
        return
    if block.op is MergeOp.BYTEWISE:
        mask = np.unpackbits(np.frombuffer(block.mask, np.uint8), count=len(data),
                             bitorder="little").view(np.bool_)
    elif block.op is MergeOp.XOR:
        mask = np.ones(0, np.bool_)
    else:
        raise SnapshotError(f"cannot merge a {block.op.name} block")
    if len(data) >= LOOP_MIN_RUN * len(offsets):
        _apply_runs(main, block.op, offsets, lengths, data, mask)
    else:
        _apply_scattered(main, block.op, offsets, lengths, data, mask)


def _apply_runs(main: Bytes, op: MergeOp, offsets: Offsets, lengths: Offsets, data: Bytes,
                mask: npt.NDArray[np.bool_]) -> None:
    position = 0
    for offset, length in zip(offsets.tolist(), lengths.tolist(), strict=True):
        target, source = main[offset:offset + length], data[position:position + length]
        if op is MergeOp.XOR:
            target ^= source
        else:
            np.copyto(target, source, where=mask[position:position + length])
        position += length


def _apply_scattered(main: Bytes, op: MergeOp, offsets: Offsets, lengths: Offsets,
                     data: Bytes, mask: npt.NDArray[np.bool_]) -> None:
    index = _positions(offsets, lengths)
    if op is MergeOp.XOR:
        main[index] ^= data
    else:
        main[index[mask]] = data[mask]


def _apply_typed(main: Bytes, block: DiffBlock, offsets: Offsets, lengths: Offsets,
                 data: Bytes) -> None:
    step = block.data_type.size
    values = data.view(block.data_type.dtype)
    counts = lengths // step
    element_starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    # Elements of one run share an alignment; view main once per alignment found.
    for align in np.unique(offsets % step).tolist():
        runs = np.flatnonzero(offsets % step == align)
        usable = (len(main) - align) // step * step
        elements = main[align:align + usable].view(block.data_type.dtype)
        index = _positions((offsets[runs] - align) // step, counts[runs])
        picked = _positions(element_starts[runs], counts[runs])
        ops.apply(block.op, block.data_type, elements, index, values[picked])


def _positions(starts: Offsets, counts: Offsets) -> npt.NDArray[np.intp]:
    """Every index covered by runs (start, count), run after run."""
    total = int(counts.sum())
    shift = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return (shift + np.arange(total)).astype(np.intp)
