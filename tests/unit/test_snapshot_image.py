"""Taking snapshots, carrying them over the codec, and restoring them (copy and memfd CoW)."""

from __future__ import annotations

import numpy as np
import pytest
from snapshot_helpers import WASM_PAGE, anonymous, make_guest, random_pages

from faabric.errors import SnapshotError
from faabric.messages.codec import Codec
from faabric.snapshot import (
    PAGE_SIZE,
    WIRE_TYPES,
    Encoding,
    MemfdImage,
    Snapshot,
    SnapshotOptions,
    Tail,
    compute_diff,
    expand,
    memory_view,
    restore,
    restore_copy,
    take_snapshot,
    wasm_pages_to_grow,
)
from faabric.snapshot.image import CHUNK_SIZE

MIB = 1 << 20


def heap_like(length: int) -> np.ndarray:
    """Compressible data (small float64 values) in the first half, zeros after."""
    out = np.zeros(length, np.uint8)
    out[: length // 2].view(np.float64)[:] = np.arange(length // 16) % 1000 * 0.5
    return out


@pytest.mark.parametrize("length", [0, PAGE_SIZE, 3 * MIB + 5 * PAGE_SIZE])
@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_round_trip_keeps_every_byte(length: int, fraction: float) -> None:
    memory = random_pages(length, fraction, seed=length)
    snapshot = take_snapshot(memory)
    assert snapshot.size == length
    assert np.array_equal(expand(snapshot), memory)
    assert snapshot.stored_pages == int(memory.reshape(-1, PAGE_SIZE).any(axis=1).sum())


def test_zero_pages_and_chunks_are_left_out() -> None:
    memory = np.zeros(4 * MIB, np.uint8)
    memory[CHUNK_SIZE + 5 * PAGE_SIZE + 17] = 1  # one page of one chunk
    snapshot = take_snapshot(memory)
    assert snapshot.chunk_numbers().tolist() == [1]
    assert snapshot.stored_pages == 1
    assert np.flatnonzero(snapshot.page_flags()).tolist() == [256 + 5]


def test_random_pages_stay_raw_and_heaps_compress() -> None:
    noisy = take_snapshot(random_pages(2 * MIB, 1.0))
    assert set(noisy.encodings) == {Encoding.RAW}
    heap = take_snapshot(heap_like(2 * MIB))
    assert set(heap.encodings) == {Encoding.ZLIB}
    assert len(heap.data) < MIB // 4
    plain = take_snapshot(heap_like(2 * MIB), SnapshotOptions(compress=False))
    assert set(plain.encodings) == {Encoding.RAW}
    assert np.array_equal(expand(heap), expand(plain))


def test_the_codec_carries_a_snapshot() -> None:
    codec = Codec(WIRE_TYPES)
    snapshot = take_snapshot(heap_like(MIB) + random_pages(MIB, 0.5))
    assert codec.decode(codec.encode(snapshot)) == snapshot


@pytest.mark.parametrize("change", [
    {"size": 100},
    {"encodings": b"\x00\x00"},
    {"chunks": (5).to_bytes(8, "little")},
    {"ends": b"\x00" * 8},
])
def test_malformed_snapshots_are_refused(change: dict[str, object]) -> None:
    good = take_snapshot(random_pages(MIB, 1.0))
    fields = {f: getattr(good, f) for f in ("size", "chunks", "bitmaps", "encodings", "ends",
                                            "data")}
    with pytest.raises(SnapshotError):
        Snapshot(**{**fields, **change})  # type: ignore[arg-type]


def test_odd_sized_memory_is_refused() -> None:
    with pytest.raises(SnapshotError, match="multiple of 4096"):
        take_snapshot(np.zeros(PAGE_SIZE + 1, np.uint8))


@pytest.mark.parametrize("tail", [Tail.ZERO, Tail.KEEP])
def test_copy_restore_over_a_larger_dirty_memory(tail: Tail) -> None:
    source = random_pages(MIB, 0.5, seed=3)
    snapshot = take_snapshot(source)
    target = np.full(2 * MIB, 0xAB, np.uint8)
    restore_copy(snapshot, target, tail)
    assert np.array_equal(target[:MIB], source)
    assert (target[MIB:] == (0 if tail is Tail.ZERO else 0xAB)).all()


@pytest.mark.parametrize("tail", [Tail.ZERO, Tail.KEEP])
def test_memfd_restore_is_copy_on_write(tail: Tail) -> None:
    source = random_pages(MIB, 0.5, seed=4)
    with anonymous(2 * MIB) as region, MemfdImage(take_snapshot(source)) as image:
        region.view[:] = 0xCD
        image.map_onto(region.address, 2 * MIB, tail)
        assert np.array_equal(region.view[:MIB], source)
        assert (region.view[MIB:] == (0 if tail is Tail.ZERO else 0xCD)).all()
        region.view[:PAGE_SIZE] = 1  # a private copy: the image keeps the original
        assert np.array_equal(image.view(), source)
        assert not image.view().flags.writeable


def test_an_image_follows_its_memory_by_diffs_and_grows() -> None:
    first = random_pages(MIB, 0.5, seed=5)
    second = np.concatenate((first, np.zeros(MIB, np.uint8)))
    second[123] ^= 0xFF
    second[MIB + 7] = 9  # the memory grew
    with MemfdImage(take_snapshot(first)) as image:
        image.update([compute_diff(second, first, ((0, len(second)),))])
        assert image.size == 2 * MIB and np.array_equal(image.view(), second)
        with anonymous(2 * MIB) as region:
            image.map_onto(region.address, 2 * MIB)
            assert np.array_equal(region.view, second)


def test_a_private_copy_is_copy_on_write() -> None:
    source = random_pages(MIB, 0.5, seed=6)
    with MemfdImage(take_snapshot(source)) as image:
        mine = image.private_copy()
        assert np.array_equal(mine, source) and mine.flags.writeable
        mine[:PAGE_SIZE] = 1
        assert np.array_equal(image.view(), source)
        image.close()
        with pytest.raises(SnapshotError, match="closed"):
            image.private_copy()


def test_restore_refuses_a_memory_smaller_than_the_snapshot() -> None:
    snapshot = take_snapshot(random_pages(2 * MIB, 0.1))
    with anonymous(MIB) as region, pytest.raises(SnapshotError, match="grow the memory first"):
        restore(snapshot, region.address, MIB)
    with pytest.raises(SnapshotError, match="grow the memory first"):
        restore_copy(snapshot, np.zeros(MIB, np.uint8))
    assert wasm_pages_to_grow(2 * MIB, MIB) == 16
    assert wasm_pages_to_grow(MIB, 2 * MIB) == 0


def test_restore_into_a_wasm_memory_then_the_guest_runs_on_it() -> None:
    source = random_pages(4 * WASM_PAGE, 0.5, seed=5)
    snapshot = take_snapshot(source)
    guest = make_guest(pages=2)
    guest.grow(wasm_pages_to_grow(snapshot.size, guest.length) + 1)  # larger than the snapshot
    guest.view()[-10:] = 9
    with MemfdImage(snapshot) as image:
        image.map_onto(guest.address, guest.length)
    view = guest.view()
    assert np.array_equal(view[: snapshot.size], source)
    assert not view[snapshot.size:].any()
    guest.call("store8", 10, 77)
    guest.grow(1)  # growth after a restore works and reads zero
    guest.call("store8", guest.length - 1, 5)
    view = guest.view()
    assert view[10] == 77 and view[-1] == 5 and not view[snapshot.size:-1].any()


def test_restoring_an_empty_snapshot_zeroes_the_memory() -> None:
    with anonymous(MIB) as region:
        region.view[:] = 3
        restore(take_snapshot(np.zeros(0, np.uint8)), region.address, MIB)
        assert not memory_view(region.address, MIB).any()
