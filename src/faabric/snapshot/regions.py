"""Merge regions: how the bytes of a memory combine when several hosts changed them.

A `MergeRegion` names a span of memory, an element type and an operation (a reduction
variable: int64 sum; an array of float maxima...). A `RegionMap` holds the regions of one
memory and cuts the memory into `Span`s, filling the gaps between regions with the default
operation (byte-wise unless told otherwise). The enum values are stable: they may travel on
the wire and be passed from guest code. This module only describes; `diff` and `merge` act.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from faabric.errors import SnapshotError


class DataType(IntEnum):
    """Element type of a merge region."""

    BYTES = 0
    INT32 = 1
    INT64 = 2
    FLOAT32 = 3
    FLOAT64 = 4

    @property
    def dtype(self) -> np.dtype[np.generic]:
        return np.dtype(_DTYPES[self])

    @property
    def size(self) -> int:
        return self.dtype.itemsize


_DTYPES = {DataType.BYTES: "u1", DataType.INT32: "<i4", DataType.INT64: "<i8",
           DataType.FLOAT32: "<f4", DataType.FLOAT64: "<f8"}


class MergeOp(IntEnum):
    """How a remote change to a region combines with the main memory (see docs/snapshots.md).

    BYTEWISE: changed bytes overwrite. XOR: main ^= remote ^ original. SUM: main += remote -
    original. SUBTRACT: main -= original - remote. PRODUCT: main *= remote / original. MAX,
    MIN: main = max/min(main, remote). IGNORE: remote changes are dropped.
    """

    BYTEWISE = 0
    SUM = 1
    PRODUCT = 2
    SUBTRACT = 3
    MAX = 4
    MIN = 5
    IGNORE = 6
    XOR = 7

    @property
    def typed(self) -> bool:
        return self in _TYPED


_TYPED = frozenset({MergeOp.SUM, MergeOp.PRODUCT, MergeOp.SUBTRACT, MergeOp.MAX, MergeOp.MIN})


@dataclass(frozen=True, slots=True)
class MergeRegion:
    """`length` bytes of memory from `offset` whose changes merge by `op` on `data_type`."""

    offset: int
    length: int
    data_type: DataType = DataType.BYTES
    op: MergeOp = MergeOp.BYTEWISE

    def __post_init__(self) -> None:
        if self.offset < 0 or self.length <= 0:
            raise SnapshotError(f"merge region at {self.offset} of {self.length} bytes is empty "
                                "or negative")
        if self.op.typed == (self.data_type is DataType.BYTES):
            raise SnapshotError(f"merge op {self.op.name} does not apply to "
                                f"{self.data_type.name}")
        if self.length % self.data_type.size:
            raise SnapshotError(f"merge region of {self.length} bytes is not a whole number "
                                f"of {self.data_type.name} elements")

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of memory [start, end) and the rule its changes merge by."""

    start: int
    end: int
    data_type: DataType
    op: MergeOp


class RegionMap:
    """The merge regions of one memory; registering the same region twice is harmless.

    Overlapping, different regions are refused: which rule would win is not defined.
    """

    def __init__(self, regions: Iterable[MergeRegion] = (),
                 default: MergeOp = MergeOp.BYTEWISE) -> None:
        if default not in (MergeOp.BYTEWISE, MergeOp.XOR, MergeOp.IGNORE):
            raise SnapshotError(f"the default merge op must be byte-level, not {default.name}")
        self.default = default
        self._regions: list[MergeRegion] = []
        for region in regions:
            self.add(region)

    def add(self, region: MergeRegion) -> None:
        for known in self._regions:
            if known == region:
                return
            if known.offset < region.end and region.offset < known.end:
                raise SnapshotError(f"merge region [{region.offset}, {region.end}) overlaps "
                                    f"[{known.offset}, {known.end})")
        self._regions.append(region)
        self._regions.sort(key=lambda r: r.offset)

    def clear(self) -> None:
        self._regions.clear()

    @property
    def regions(self) -> tuple[MergeRegion, ...]:
        return tuple(self._regions)

    def spans(self, size: int) -> tuple[Span, ...]:
        """[0, size) cut into spans: the regions clipped to it (typed ones to whole
        elements) and, between them, the default op on bytes."""
        out: list[Span] = []
        position = 0
        for region in self._regions:
            if region.offset >= size:
                break
            step = region.data_type.size
            end = region.offset + (min(region.end, size) - region.offset) // step * step
            if region.offset > position:
                out.append(Span(position, region.offset, DataType.BYTES, self.default))
            if end > region.offset:
                out.append(Span(region.offset, end, region.data_type, region.op))
            position = max(position, end, region.offset)
        if position < size:
            out.append(Span(position, size, DataType.BYTES, self.default))
        return tuple(out)
