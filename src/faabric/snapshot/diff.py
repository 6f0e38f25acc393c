"""Diffs: what a remote host changed in its copy of a memory, ready to merge on the main host.

`compute_diff` compares the dirty pages of a memory with the snapshot it started from and
returns a `Diff`: per merge rule, runs of changed bytes (or elements) and what to merge for
them. Byte-wise runs are unions of 32-byte blocks (cheap to find, few runs) and carry a bit
mask of the bytes that really changed, so merging never overwrites a byte the remote did not
change. Pages past the
snapshot's end (memory growth) are compared with zero and always merge byte-wise. A `Diff` is
a frozen value the codec carries; applying it is `merge`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from faabric.errors import SnapshotError
from faabric.snapshot import ops
from faabric.snapshot._libc import Bytes
from faabric.snapshot.ranges import Offsets, Ranges, as_arrays, coalesce, intersect
from faabric.snapshot.regions import DataType, MergeOp, RegionMap, Span

BLOCK = 32  # byte-wise runs are made of whole blocks: a run costs 16 bytes of offsets


@dataclass(frozen=True, slots=True)
class DiffBlock:
    """Changed runs of memory that merge by one rule.

    Attributes:
        op, data_type: the rule.
        offsets, lengths: little-endian uint64 start and byte length of each run.
        data: the runs' payloads one after the other: remote bytes (BYTEWISE), remote XOR
            original (XOR), or one contribution per element (typed ops, see `ops`).
        mask: BYTEWISE only: one bit per data byte (little bit order), set where it changed.
    """

    op: MergeOp
    data_type: DataType
    offsets: bytes
    lengths: bytes
    data: bytes
    mask: bytes = b""

    def __post_init__(self) -> None:
        lengths = self.run_lengths()
        if len(self.offsets) != len(self.lengths) or int(lengths.sum()) != len(self.data):
            raise SnapshotError("malformed diff: run tables and data disagree")
        if self.op is MergeOp.BYTEWISE and len(self.mask) != -(-len(self.data) // 8):
            raise SnapshotError("malformed diff: the byte mask does not match the data")
        if np.any(lengths % self.data_type.size):
            raise SnapshotError("malformed diff: a run is not whole elements")

    def run_offsets(self) -> Offsets:
        return np.frombuffer(self.offsets, "<u8").astype(np.int64)

    def run_lengths(self) -> Offsets:
        return np.frombuffer(self.lengths, "<u8").astype(np.int64)

    @property
    def end(self) -> int:
        """One past the last byte a run touches (0 for an empty block)."""
        ends = self.run_offsets() + self.run_lengths()
        return int(ends.max()) if len(ends) else 0


@dataclass(frozen=True, slots=True)
class Diff:
    """A memory's changes: `size` is its length when taken (merging needs at least that)."""

    size: int
    blocks: tuple[DiffBlock, ...] = ()

    def __post_init__(self) -> None:
        if any(block.end > self.size for block in self.blocks):
            raise SnapshotError("malformed diff: a run lies past the memory's end")

    @property
    def payload_bytes(self) -> int:
        """Bytes of data in the blocks (runs include unchanged bytes of their blocks)."""
        return sum(len(b.data) for b in self.blocks)


def compute_diff(memory: Bytes, original: Bytes, dirty: Ranges,
                 regions: RegionMap | None = None) -> Diff:
    """The changes in the `dirty` ranges of `memory` against `original` (the snapshot).

    `memory` may be longer than `original` (it grew); bytes past `original` count as zero
    there. Ranges outside `memory` are ignored.
    """
    if len(memory) < len(original):
        raise SnapshotError(f"the memory is {len(memory)} bytes, shorter than its snapshot "
                            f"({len(original)}): memories do not shrink")
    starts, ends = coalesce(*as_arrays(dirty))
    starts, ends = intersect(starts, ends, 0, len(memory))
    spans = (regions or RegionMap()).spans(len(original))
    if len(memory) > len(original):
        spans += (Span(len(original), len(memory), DataType.BYTES, MergeOp.BYTEWISE),)
    blocks = []
    for span in spans:
        if span.op is MergeOp.IGNORE:
            continue
        lo, hi = intersect(starts, ends, span.start, span.end)
        if len(lo) == 0:
            continue
        block = (_typed_block if span.op.typed else _byte_block)(
            memory, original, span, lo, hi)
        if block is not None:
            blocks.append(block)
    return Diff(len(memory), _join_blocks(blocks))


def _gather(view: Bytes, starts: Offsets, ends: Offsets) -> Bytes:
    """The bytes of the ranges one after the other; past the view's end reads as zero."""
    parts = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        part = view[start:end]
        if len(part) < end - start:
            part = np.concatenate((part, np.zeros(end - start - len(part), np.uint8)))
        parts.append(part)
    return np.concatenate(parts) if parts else np.zeros(0, np.uint8)


def _runs(changed: npt.NDArray[np.bool_], lengths: Offsets, starts: Offsets
          ) -> tuple[Offsets, Offsets]:
    """Runs of True in `changed` (the concatenation of pieces of `lengths` units, piece i
    starting at absolute unit `starts[i]`), never spanning two pieces: (starts, lengths)."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], changed.view(np.int8), [0]))))
    first, last = edges[0::2], edges[1::2]
    bounds = np.cumsum(lengths)[:-1]
    cut = bounds[changed[bounds - 1] & changed[bounds]] if len(bounds) else bounds
    first, last = np.sort(np.concatenate((first, cut))), np.sort(np.concatenate((last, cut)))
    piece_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    piece = np.searchsorted(piece_starts, first, side="right") - 1
    return starts[piece] + (first - piece_starts[piece]), last - first


def _byte_block(memory: Bytes, original: Bytes, span: Span, lo: Offsets, hi: Offsets
                ) -> DiffBlock | None:
    remote, base = _gather(memory, lo, hi), _gather(original, lo, hi)
    changed = remote != base
    if not changed.any():
        return None
    first, last = _changed_blocks(changed, np.cumsum(hi - lo)[:-1])
    piece_starts = np.concatenate(([0], np.cumsum(hi - lo)[:-1]))
    piece = np.searchsorted(piece_starts, first, side="right") - 1
    offsets = lo[piece] + (first - piece_starts[piece])
    if span.op is MergeOp.XOR:
        return _block(span, offsets, last - first, _gather(remote ^ base, first, last))
    mask = np.packbits(_gather(changed.view(np.uint8), first, last), bitorder="little")
    return _block(span, offsets, last - first, _gather(remote, first, last), mask.tobytes())


def _changed_blocks(changed: npt.NDArray[np.bool_], cuts: Offsets) -> tuple[Offsets, Offsets]:
    """Runs of BLOCK-byte blocks holding a changed byte, cut at `cuts` (piece boundaries)."""
    padded = np.zeros(-(-len(changed) // BLOCK) * BLOCK, np.uint8)
    padded[: len(changed)] = changed.view(np.uint8)
    flags = np.bitwise_or.reduce(padded.view(np.uint64).reshape(-1, BLOCK // 8), axis=1) != 0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.view(np.int8), [0])))) * BLOCK
    first, last = edges[0::2], np.minimum(edges[1::2], len(changed))
    run = np.searchsorted(first, cuts, side="right") - 1
    inside = cuts[(run >= 0) & (cuts > first[run]) & (cuts < last[run])]
    return np.sort(np.concatenate((first, inside))), np.sort(np.concatenate((last, inside)))


def _typed_block(memory: Bytes, original: Bytes, span: Span, lo: Offsets, hi: Offsets
                 ) -> DiffBlock | None:
    # Runs of elements are exact: an unchanged element's contribution is not always neutral.
    step = span.data_type.size
    lo = span.start + (lo - span.start) // step * step
    hi = np.minimum(span.start + -(-(hi - span.start) // step) * step, span.end)
    lo, hi = coalesce(lo, hi)
    remote = _gather(memory, lo, hi).view(span.data_type.dtype)
    base = _gather(original, lo, hi).view(span.data_type.dtype)
    unsigned = np.dtype(f"<u{step}")
    changed = remote.view(unsigned) != base.view(unsigned)
    if not changed.any():
        return None
    first, count = _runs(changed, (hi - lo) // step, (lo - span.start) // step)
    values = ops.contribution(span.op, span.data_type, remote[changed], base[changed])
    return _block(span, span.start + first * step, count * step, values.view(np.uint8))


def _block(span: Span, offsets: Offsets, lengths: Offsets, data: npt.NDArray[np.generic],
           mask: bytes = b"") -> DiffBlock:
    return DiffBlock(span.op, span.data_type, offsets.astype("<u8").tobytes(),
                     lengths.astype("<u8").tobytes(), data.tobytes(), mask)


def _join_blocks(blocks: list[DiffBlock]) -> tuple[DiffBlock, ...]:
    """One block per rule (op, data type); spans are disjoint, so runs stay sorted."""
    by_rule: dict[tuple[MergeOp, DataType], list[DiffBlock]] = {}
    for block in blocks:
        by_rule.setdefault((block.op, block.data_type), []).append(block)
    joined = []
    for (op, data_type), group in by_rule.items():
        if len(group) == 1:
            joined.append(group[0])
            continue
        masks = [np.unpackbits(np.frombuffer(b.mask, np.uint8), count=len(b.data),
                               bitorder="little") for b in group] if op is MergeOp.BYTEWISE else []
        mask = np.packbits(np.concatenate(masks), bitorder="little").tobytes() if masks else b""
        joined.append(DiffBlock(op, data_type, b"".join(b.offsets for b in group),
                                b"".join(b.lengths for b in group),
                                b"".join(b.data for b in group), mask))
    return tuple(joined)
