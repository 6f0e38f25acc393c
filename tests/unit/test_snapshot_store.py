"""The snapshot store's bookkeeping, and patching stored snapshots with diffs."""

from __future__ import annotations

import numpy as np
import pytest
from snapshot_helpers import random_pages

from faabric.errors import SnapshotError
from faabric.snapshot import (
    PAGE_SIZE,
    DataType,
    MergeOp,
    MergeRegion,
    RegionMap,
    Snapshot,
    SnapshotStore,
    StoreStats,
    compute_diff,
    expand,
    patch_snapshot,
    take_snapshot,
)
from faabric.snapshot.image import CHUNK_SIZE

MIB = 1 << 20


def snap(seed: int, length: int = PAGE_SIZE) -> Snapshot:
    return take_snapshot(random_pages(length, 1.0, seed=seed))


class Freed:
    """Records what the store frees, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Snapshot]] = []

    def __call__(self, key: str, snapshot: Snapshot) -> None:
        self.calls.append((key, snapshot))


def test_push_get_and_replace_frees_the_old_value() -> None:
    freed = Freed()
    store = SnapshotStore(freed)
    a, b = snap(1), snap(2)
    store.push("app/main", 7, a)
    assert store.get("app/main") is a
    store.push("app/main", 7, b)
    assert store.get("app/main") is b
    assert freed.calls == [("app/main", a)]
    with pytest.raises(SnapshotError, match="belongs to app 7"):
        store.push("app/main", 8, a)
    with pytest.raises(SnapshotError, match="no snapshot"):
        store.get("other")


def test_values_in_use_are_freed_when_the_last_user_releases() -> None:
    freed = Freed()
    store = SnapshotStore(freed)
    a, b = snap(1), snap(2)
    store.push("k", 1, a)
    assert store.acquire("k") is a
    assert store.acquire("k") is a
    store.push("k", 1, b)  # a is retired, not freed: two users hold it
    assert freed.calls == []
    assert store.stats() == StoreStats(keys=1, held=2, stored_bytes=len(a.data) + len(b.data))
    store.release("k")
    assert freed.calls == []
    store.release("k")
    assert freed.calls == [("k", a)]
    with pytest.raises(SnapshotError, match="not in use"):
        store.release("k")


def test_delete_hides_at_once_and_frees_after_the_users() -> None:
    freed = Freed()
    store = SnapshotStore(freed)
    a = snap(1)
    store.push("k", 1, a)
    store.acquire("k")
    store.delete("k")
    assert store.keys() == ()
    with pytest.raises(SnapshotError, match="no snapshot"):
        store.acquire("k")
    assert freed.calls == []
    store.release("k")
    assert freed.calls == [("k", a)]
    assert store.stats() == StoreStats(0, 0, 0)


def test_a_key_pushed_again_while_its_deleted_value_is_in_use() -> None:
    freed = Freed()
    store = SnapshotStore(freed)
    a, b = snap(1), snap(2)
    store.push("k", 1, a)
    store.acquire("k")
    store.delete("k")
    store.push("k", 2, b)  # another app may reuse the key
    assert store.get("k") is b and store.keys(2) == ("k",)
    store.release("k")  # the holder of a is done
    assert freed.calls == [("k", a)]
    store.delete("k")
    assert freed.calls == [("k", a), ("k", b)]


def test_release_app_drops_only_that_apps_keys() -> None:
    freed = Freed()
    store = SnapshotStore(freed)
    for key, app in (("a/1", 1), ("a/2", 1), ("b/1", 2)):
        store.push(key, app, snap(len(key) + app))
    assert store.release_app(1) == 2
    assert store.keys() == ("b/1",)
    assert sorted(k for k, _ in freed.calls) == ["a/1", "a/2"]
    assert store.release_app(1) == 0


def test_update_merges_diffs_into_the_stored_value() -> None:
    freed = Freed()
    store = SnapshotStore(freed)
    memory = random_pages(3 * MIB, 0.5, seed=3)
    memory[16:24].view(np.int64)[0] = 40
    original = take_snapshot(memory)
    store.push("k", 1, original)
    regions = RegionMap([MergeRegion(16, 8, DataType.INT64, MergeOp.SUM)])
    diffs = []
    for step in (1, 2):
        remote = memory.copy()
        remote[16:24].view(np.int64)[0] += step
        remote[CHUNK_SIZE + 10 * step] = 99
        diffs.append(compute_diff(remote, memory, ((0, len(memory)),), regions))
    updated = store.update("k", diffs)
    assert store.get("k") is updated and freed.calls == [("k", original)]
    expected = memory.copy()
    expected[16:24].view(np.int64)[0] = 43
    expected[CHUNK_SIZE + 10] = expected[CHUNK_SIZE + 20] = 99
    assert np.array_equal(expand(updated), expected)
    assert updated.data.find(original.data[-1000:]) >= 0  # the untouched last chunk is reused
    assert store.update("k", []) is updated


@pytest.mark.parametrize("length", [PAGE_SIZE, MIB + 3 * PAGE_SIZE])
def test_patching_grows_the_snapshot(length: int) -> None:
    memory = random_pages(length, 1.0, seed=4)
    grown = np.zeros(length + 2 * MIB, np.uint8)
    grown[:length] = memory
    grown[-1] = 1  # the last page of the grown memory
    diff = compute_diff(grown, memory, ((length, len(grown)),))
    patched = patch_snapshot(take_snapshot(memory), [diff])
    assert patched.size == len(grown)
    assert np.array_equal(expand(patched), grown)


def test_patching_to_all_zero_chunks_drops_them() -> None:
    memory = np.zeros(2 * MIB, np.uint8)
    memory[CHUNK_SIZE + 5] = 1
    cleared = memory.copy()
    cleared[CHUNK_SIZE + 5] = 0
    diff = compute_diff(cleared, memory, ((0, len(memory)),))
    patched = patch_snapshot(take_snapshot(memory), [diff])
    assert patched.encodings == b"" and not expand(patched).any()


def test_patching_with_a_run_longer_than_a_chunk() -> None:
    memory = random_pages(4 * MIB, 1.0, seed=5)
    rewritten = random_pages(4 * MIB, 1.0, seed=6)
    diff = compute_diff(rewritten, memory, ((0, 4 * MIB),))
    assert len(diff.blocks[0].run_offsets()) == 1  # one run over all four chunks
    assert np.array_equal(expand(patch_snapshot(take_snapshot(memory), [diff])), rewritten)
