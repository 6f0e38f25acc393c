"""Merging diffs from several remote copies: typed ops x types, byte-wise order, XOR, ignore."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from faabric.errors import SnapshotError
from faabric.snapshot import (
    PAGE_SIZE,
    DataType,
    Diff,
    MergeOp,
    MergeRegion,
    RegionMap,
    compute_diff,
    merge_diffs,
)

SIZE = 4 * PAGE_SIZE
ALL = ((0, SIZE),)
TYPES = [DataType.INT32, DataType.INT64, DataType.FLOAT32, DataType.FLOAT64]


@dataclass(frozen=True)
class Case:
    """A typed op: how a party updates its copy, and what main must end with."""

    op: MergeOp
    # one party's update of value x with its partial p
    update: str
    # how main's value folds every party's partial
    fold: str


CASES = [
    Case(MergeOp.SUM, "x + p", "x + p"),
    Case(MergeOp.SUBTRACT, "x - p", "x - p"),
    Case(MergeOp.PRODUCT, "x * p", "x * p"),
    Case(MergeOp.MAX, "np.maximum(x, p)", "np.maximum(x, p)"),
    Case(MergeOp.MIN, "np.minimum(x, p)", "np.minimum(x, p)"),
]


def _eval(expression: str, x: npt.NDArray[np.generic], p: npt.NDArray[np.generic]
          ) -> npt.NDArray[np.generic]:
    with np.errstate(over="ignore"):
        return eval(expression, {"np": np, "x": x, "p": p})  # type: ignore[no-any-return]


def _values(data_type: DataType, rng: np.random.Generator, count: int, small: bool
            ) -> npt.NDArray[np.generic]:
    dtype = data_type.dtype
    if dtype.kind == "f":
        low, high = (0.5, 2.0) if small else (-100.0, 100.0)
        return rng.uniform(low, high, count).astype(dtype)
    if small:
        return rng.integers(-7, 8, count).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, count, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("data_type", TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.op.name)
@pytest.mark.parametrize("offset", [64, 4093], ids=["aligned", "unaligned-across-pages"])
def test_partial_updates_of_three_remotes_combine(case: Case, data_type: DataType,
                                                  offset: int) -> None:
    """main ends as if main and every remote had applied their partials to one memory.

    Each remote updates a random subset of the elements (gaps between changed elements);
    main updates its own subset. Integers wrap around (large values overflow on purpose).
    """
    rng = np.random.default_rng(hash((case.op, data_type, offset)) % 2**32)
    count = 40
    length = count * data_type.size
    small = case.op is MergeOp.PRODUCT and data_type.dtype.kind == "f"
    original = np.zeros(SIZE, np.uint8)
    typed = original[offset:offset + length].view(data_type.dtype)
    typed[:] = _values(data_type, rng, count, small)
    regions = RegionMap([MergeRegion(offset, length, data_type, case.op)])

    main = original.copy()
    expected = typed.copy()
    diffs = []
    for party in range(4):  # party 0 is main itself
        chosen = rng.random(count) < 0.6
        partial = _values(data_type, rng, count, small=small or case.op is MergeOp.PRODUCT)
        copy = main if party == 0 else original.copy()
        elements = copy[offset:offset + length].view(data_type.dtype)
        elements[chosen] = _eval(case.update, elements, partial)[chosen]
        expected[chosen] = _eval(case.fold, expected, partial)[chosen]
        if party:
            diffs.append(compute_diff(copy, original, ALL, regions))
    merge_diffs(main, diffs)
    got = main[offset:offset + length].view(data_type.dtype)
    if data_type.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=1e-5)
    else:
        assert got.tolist() == expected.tolist()
    outside = np.ones(SIZE, np.bool_)
    outside[offset:offset + length] = False
    assert not main[outside].any()


@pytest.mark.parametrize("data_type", [DataType.INT32, DataType.INT64], ids=lambda t: t.name)
def test_integer_products_are_exact_through_wrap_around(data_type: DataType) -> None:
    rng = np.random.default_rng(7)
    info = np.iinfo(data_type.dtype)
    count = 64
    original = np.zeros(count * data_type.size, np.uint8)
    start = original.view(data_type.dtype)
    start[:] = rng.integers(info.min, info.max, count, dtype=data_type.dtype)
    start[:8] = [0, 1, 2, 4, 96, -64, info.min, -1]  # zero and powers of two
    regions = RegionMap([MergeRegion(0, len(original), data_type, MergeOp.PRODUCT)])
    factors = [rng.integers(info.min, info.max, count, dtype=data_type.dtype) for _ in range(3)]
    diffs = []
    for factor in factors:
        copy = original.copy()
        with np.errstate(over="ignore"):
            copy.view(data_type.dtype)[:] *= factor
        diffs.append(compute_diff(copy, original, ((0, len(original)),), regions))
    main = original.copy()
    merge_diffs(main, diffs)
    expected = start.copy()
    with np.errstate(over="ignore"):
        for factor in factors:
            expected *= factor
    assert main.view(data_type.dtype).tolist() == expected.tolist()


def test_bytewise_last_diff_wins_and_untouched_bytes_keep_mains_value() -> None:
    original = np.zeros(SIZE, np.uint8)
    first, second, main = original.copy(), original.copy(), original.copy()
    first[10:20] = 1
    second[15:25] = 2
    main[5] = 9  # only main changed it
    main[12] = 9  # main and the first remote changed it: the remote wins
    merge_diffs(main, [compute_diff(c, original, ALL) for c in (first, second)])
    assert main[5] == 9
    assert main[10:15].tolist() == [1] * 5
    assert main[15:25].tolist() == [2] * 10


def test_joined_runs_do_not_overwrite_bytes_the_remote_left_alone() -> None:
    original = np.arange(SIZE, dtype=np.uint32).view(np.uint8)[:SIZE].copy()
    remote, main = original.copy(), original.copy()
    remote[100] ^= 1
    remote[110] ^= 1  # 9 bytes apart, in one 32-byte block: one run with a mask
    main[105] = 0xEE
    diff = compute_diff(remote, original, ALL)
    assert len(diff.blocks) == 1 and diff.blocks[0].run_lengths().tolist() == [32]
    merge_diffs(main, [diff])
    assert main[105] == 0xEE and main[100] == remote[100] and main[110] == remote[110]


@pytest.mark.parametrize("stride", [2, 100], ids=["dense", "sparse-scattered"])
def test_bytewise_merge_paths_agree(stride: int) -> None:
    original = np.zeros(SIZE, np.uint8)
    remote = original.copy()
    remote[::stride] = 5
    main = original.copy()
    merge_diffs(main, [compute_diff(remote, original, ALL)])
    assert np.array_equal(main, remote)


def test_xor_keeps_every_remotes_flipped_bits() -> None:
    original = np.full(SIZE, 0b1000_0000, np.uint8)
    regions = RegionMap(default=MergeOp.XOR)
    diffs = []
    for bit in range(3):
        copy = original.copy()
        copy[7] |= 1 << bit
        diffs.append(compute_diff(copy, original, ALL, regions))
    main = original.copy()
    main[7] |= 1 << 6
    merge_diffs(main, diffs)
    assert main[7] == 0b1100_0111
    assert (np.delete(main, 7) == 0b1000_0000).all()


def test_ignored_regions_and_default_are_not_merged() -> None:
    original = np.zeros(SIZE, np.uint8)
    remote = original.copy()
    remote[:] = 1
    regions = RegionMap([MergeRegion(100, 50, op=MergeOp.IGNORE)])
    main = original.copy()
    merge_diffs(main, [compute_diff(remote, original, ALL, regions)])
    assert not main[100:150].any() and main[:100].all() and main[150:].all()
    skip_all = RegionMap(default=MergeOp.IGNORE)
    assert compute_diff(remote, original, ALL, skip_all).blocks == ()


def test_merging_needs_main_grown_to_the_largest_diff() -> None:
    original = np.zeros(SIZE, np.uint8)
    grown = np.zeros(2 * SIZE, np.uint8)
    grown[SIZE + 3] = 4
    diff = compute_diff(grown, original, ((SIZE, 2 * SIZE),))
    with pytest.raises(SnapshotError, match="grow it first"):
        merge_diffs(original.copy(), [diff])
    main = np.zeros(2 * SIZE, np.uint8)
    merge_diffs(main, [diff])
    assert main[SIZE + 3] == 4 and main.sum() == 4


def test_no_diffs_and_empty_diffs_change_nothing() -> None:
    main = np.arange(SIZE, dtype=np.uint8)
    merge_diffs(main, [])
    merge_diffs(main, [Diff(SIZE), Diff(0)])
    assert np.array_equal(main, np.arange(SIZE, dtype=np.uint8))
