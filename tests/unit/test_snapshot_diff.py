"""Merge-region registry and diff computation: gaps, overlaps, growth, edges, end to end."""

from __future__ import annotations

import numpy as np
import pytest
from snapshot_helpers import anonymous, random_pages

from faabric.errors import SnapshotError
from faabric.messages.codec import Codec
from faabric.snapshot import (
    PAGE_SIZE,
    WIRE_TYPES,
    DataType,
    Diff,
    DiffBlock,
    MemfdImage,
    MergeOp,
    MergeRegion,
    RegionMap,
    Span,
    TrackingMode,
    compute_diff,
    merge_diffs,
    open_tracker,
    take_snapshot,
)

SIZE = 4 * PAGE_SIZE
B, I32, F64 = DataType.BYTES, DataType.INT32, DataType.FLOAT64


@pytest.mark.parametrize(("regions", "size", "spans"), [
    ([], SIZE, [(0, SIZE, B, MergeOp.BYTEWISE)]),
    ([], 0, []),
    ([(8, 8, I32, MergeOp.SUM)], 64,
     [(0, 8, B, MergeOp.BYTEWISE), (8, 16, I32, MergeOp.SUM), (16, 64, B, MergeOp.BYTEWISE)]),
    ([(0, 64, F64, MergeOp.MAX)], 64, [(0, 64, F64, MergeOp.MAX)]),
    ([(16, 8, I32, MergeOp.MIN), (8, 8, I32, MergeOp.SUM)], 32,  # added out of order, adjacent
     [(0, 8, B, MergeOp.BYTEWISE), (8, 16, I32, MergeOp.SUM), (16, 24, I32, MergeOp.MIN),
      (24, 32, B, MergeOp.BYTEWISE)]),
    ([(40, 16, F64, MergeOp.SUM)], 50,  # clipped at the memory's end to whole elements
     [(0, 40, B, MergeOp.BYTEWISE), (40, 48, F64, MergeOp.SUM), (48, 50, B, MergeOp.BYTEWISE)]),
    ([(60, 8, I32, MergeOp.SUM)], 32, [(0, 32, B, MergeOp.BYTEWISE)]),  # wholly past the end
])
def test_regions_cut_the_memory_into_spans(
        regions: list[tuple[int, int, DataType, MergeOp]], size: int,
        spans: list[tuple[int, int, DataType, MergeOp]]) -> None:
    registry = RegionMap(MergeRegion(*r) for r in regions)
    assert registry.spans(size) == tuple(Span(*s) for s in spans)


@pytest.mark.parametrize(("offset", "length", "data_type", "op", "message"), [
    (0, 0, B, MergeOp.BYTEWISE, "empty"),
    (-4, 8, B, MergeOp.BYTEWISE, "empty or negative"),
    (0, 8, B, MergeOp.SUM, "does not apply"),
    (0, 8, I32, MergeOp.XOR, "does not apply"),
    (0, 6, I32, MergeOp.SUM, "whole number"),
])
def test_bad_regions_are_refused(offset: int, length: int, data_type: DataType, op: MergeOp,
                                 message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        MergeRegion(offset, length, data_type, op)


def test_overlapping_regions_are_refused_and_repeats_ignored() -> None:
    registry = RegionMap([MergeRegion(8, 8, I32, MergeOp.SUM)])
    registry.add(MergeRegion(8, 8, I32, MergeOp.SUM))
    assert len(registry.regions) == 1
    with pytest.raises(SnapshotError, match="overlaps"):
        registry.add(MergeRegion(12, 8, I32, MergeOp.MAX))
    with pytest.raises(SnapshotError, match="overlaps"):
        registry.add(MergeRegion(8, 8, I32, MergeOp.MIN))
    with pytest.raises(SnapshotError, match="byte-level"):
        RegionMap(default=MergeOp.SUM)
    registry.clear()
    assert registry.regions == ()


def test_only_dirty_ranges_are_compared() -> None:
    original = np.zeros(SIZE, np.uint8)
    remote = original.copy()
    remote[10] = remote[PAGE_SIZE + 10] = 1
    diff = compute_diff(remote, original, ((PAGE_SIZE, 2 * PAGE_SIZE),))
    assert [b.run_offsets().tolist() for b in diff.blocks] == [[PAGE_SIZE]]  # its 32-byte block
    assert compute_diff(remote, original, ()).blocks == ()
    assert compute_diff(remote, original, ((5, 5), (SIZE, 2 * SIZE))).blocks == ()


def test_runs_do_not_join_across_separate_dirty_ranges() -> None:
    original = np.zeros(SIZE, np.uint8)
    remote = original.copy()
    remote[PAGE_SIZE - 1] = remote[2 * PAGE_SIZE] = 1  # neighbours once the pages are gathered
    pages = ((0, PAGE_SIZE), (2 * PAGE_SIZE, 3 * PAGE_SIZE))
    (block,) = compute_diff(remote, original, pages).blocks
    assert block.run_offsets().tolist() == [PAGE_SIZE - 32, 2 * PAGE_SIZE]
    assert block.run_lengths().tolist() == [32, 32]
    main = original.copy()
    merge_diffs(main, [compute_diff(remote, original, pages)])
    assert np.array_equal(main, remote)


def test_growth_is_byte_wise_even_under_a_typed_region() -> None:
    original = np.zeros(SIZE, np.uint8)
    remote = np.zeros(2 * SIZE, np.uint8)
    remote[SIZE - 4:SIZE + 4].view(np.int32)[:] = [3, 5]  # one element each side of the end
    regions = RegionMap([MergeRegion(SIZE - 8, 16, I32, MergeOp.SUM)])
    diff = compute_diff(remote, original, ((0, 2 * SIZE),), regions)
    assert diff.size == 2 * SIZE
    rules = {(b.op, b.data_type): b.run_offsets().tolist() for b in diff.blocks}
    assert rules == {(MergeOp.SUM, I32): [SIZE - 4], (MergeOp.BYTEWISE, B): [SIZE]}
    main = np.zeros(2 * SIZE, np.uint8)
    main[SIZE - 4:SIZE].view(np.int32)[:] = 10
    merge_diffs(main, [diff])
    assert main[SIZE - 4:SIZE + 4].view(np.int32).tolist() == [13, 5]


def test_shrinking_memory_is_refused() -> None:
    with pytest.raises(SnapshotError, match="do not shrink"):
        compute_diff(np.zeros(PAGE_SIZE, np.uint8), np.zeros(SIZE, np.uint8), ())


def test_zero_length_memory_gives_an_empty_diff() -> None:
    empty = np.zeros(0, np.uint8)
    assert compute_diff(empty, empty, ((0, PAGE_SIZE),)) == Diff(0)


def test_last_page_and_an_element_across_a_page_boundary() -> None:
    original = np.zeros(SIZE, np.uint8)
    remote = original.copy()
    remote[PAGE_SIZE - 4:PAGE_SIZE + 4].view(np.float64)[0] = 2.5  # straddles pages 0 and 1
    remote[-1] = 7
    regions = RegionMap([MergeRegion(PAGE_SIZE - 4, 8, F64, MergeOp.SUM)])
    dirty = ((PAGE_SIZE, 2 * PAGE_SIZE), (SIZE - PAGE_SIZE, SIZE))  # page 0 not reported
    diff = compute_diff(remote, original, dirty, regions)
    main = original.copy()
    main[PAGE_SIZE - 4:PAGE_SIZE + 4].view(np.float64)[0] = 1.0
    merge_diffs(main, [diff])
    assert main[PAGE_SIZE - 4:PAGE_SIZE + 4].view(np.float64)[0] == 3.5
    assert main[-1] == 7


def test_a_diff_travels_over_the_codec() -> None:
    original = random_pages(SIZE, 1.0, seed=1)
    remote = original.copy()
    remote[100:300] += 1
    remote[PAGE_SIZE:PAGE_SIZE + 16].view(np.int32)[:] += 5
    regions = RegionMap([MergeRegion(PAGE_SIZE, 16, I32, MergeOp.SUM)])
    diff = compute_diff(remote, original, ((0, SIZE),), regions)
    codec = Codec(WIRE_TYPES)
    assert codec.decode(codec.encode(diff)) == diff
    assert diff.payload_bytes == 224 + 16  # 7 blocks of 32 bytes, 4 int32


@pytest.mark.parametrize("broken", [
    {"lengths": (5).to_bytes(8, "little")},
    {"mask": b""},
    {"offsets": b""},
])
def test_malformed_diff_blocks_are_refused(broken: dict[str, bytes]) -> None:
    fields = {"op": MergeOp.BYTEWISE, "data_type": B, "offsets": (0).to_bytes(8, "little"),
              "lengths": (4).to_bytes(8, "little"), "data": b"abcd", "mask": b"\x0f"}
    DiffBlock(**fields)  # type: ignore[arg-type]
    with pytest.raises(SnapshotError, match="malformed"):
        DiffBlock(**{**fields, **broken})  # type: ignore[arg-type]
    with pytest.raises(SnapshotError, match="past the memory"):
        Diff(2, (DiffBlock(**fields),))  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", [TrackingMode.AUTO, TrackingMode.COMPARE])
def test_fork_and_join_across_two_restored_copies(mode: TrackingMode) -> None:
    """The whole path: snapshot main, restore two remotes copy-on-write, track, diff, merge."""
    size = 64 * PAGE_SIZE
    counter = 8 * PAGE_SIZE  # an int64 sum reduction
    regions = RegionMap([MergeRegion(counter, 8, DataType.INT64, MergeOp.SUM)])
    with anonymous(size) as main, anonymous(size) as one, anonymous(size) as two:
        main.view[:] = random_pages(size, 0.5, seed=11)
        main.view[counter:counter + 8].view(np.int64)[0] = 100
        snapshot = take_snapshot(main.view)
        diffs = []
        with MemfdImage(snapshot) as image:
            for number, remote in enumerate((one, two), start=1):
                image.map_onto(remote.address, size)
                tracker = open_tracker(remote.address, size, mode)
                remote.view[counter:counter + 8].view(np.int64)[0] += 10 * number
                remote.view[number * PAGE_SIZE * 20 + 5] = 200 + number  # own result slot
                remote.view[-1] = number  # both write the last byte: the later diff wins
                diffs.append(compute_diff(remote.view, image.view(), tracker.dirty_pages(),
                                          regions))
                tracker.stop()
        main.view[counter:counter + 8].view(np.int64)[0] += 1  # main's own thread
        merge_diffs(main.view, diffs)
        assert main.view[counter:counter + 8].view(np.int64)[0] == 131
        assert main.view[20 * PAGE_SIZE + 5] == 201 and main.view[40 * PAGE_SIZE + 5] == 202
        assert main.view[-1] == 2
