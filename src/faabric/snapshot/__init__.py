"""Memory snapshots, dirty-page tracking, diffs and merges for thread teams that span hosts.

When a team spans hosts, the main host snapshots its memory at the fork (`take_snapshot`),
each remote host restores it copy-on-write (`MemfdImage.map_onto`) and tracks the pages its
threads write (`open_tracker`); at the join each remote sends `compute_diff(...)` and the main
host merges them (`merge_diffs`) by the rules of a `RegionMap`. `SnapshotStore` keeps a host's
snapshots by key and app. See docs/snapshots.md.

This package works on raw host addresses and numpy views of linear memories; it must not
import wasmtime or anything above `faabric.messages`.
"""

from faabric.snapshot._libc import PAGE_SIZE, memory_view
from faabric.snapshot.diff import Diff, DiffBlock, compute_diff
from faabric.snapshot.dirty import CompareTracker, open_tracker
from faabric.snapshot.image import (
    Encoding,
    Snapshot,
    SnapshotOptions,
    decode_into,
    expand,
    take_snapshot,
)
from faabric.snapshot.merge import merge_diffs, required_size
from faabric.snapshot.patch import patch_snapshot
from faabric.snapshot.ranges import Ranges, normalise
from faabric.snapshot.regions import DataType, MergeOp, MergeRegion, RegionMap, Span
from faabric.snapshot.restore import (
    MemfdImage,
    Tail,
    restore,
    restore_copy,
    wasm_pages_to_grow,
)
from faabric.snapshot.store import SnapshotStore, StoreStats
from faabric.snapshot.tracker import DirtyTracker, TrackingMode
from faabric.snapshot.uffd import UffdTracker

# The frozen dataclasses that cross hosts, for `faabric.messages.codec.Codec`.
WIRE_TYPES = (Snapshot, Diff, DiffBlock, MergeRegion)

__all__ = [
    "PAGE_SIZE",
    "WIRE_TYPES",
    "CompareTracker",
    "DataType",
    "Diff",
    "DiffBlock",
    "DirtyTracker",
    "Encoding",
    "MemfdImage",
    "MergeOp",
    "MergeRegion",
    "Ranges",
    "RegionMap",
    "Snapshot",
    "SnapshotOptions",
    "SnapshotStore",
    "Span",
    "StoreStats",
    "Tail",
    "TrackingMode",
    "UffdTracker",
    "compute_diff",
    "decode_into",
    "expand",
    "memory_view",
    "merge_diffs",
    "normalise",
    "open_tracker",
    "patch_snapshot",
    "required_size",
    "restore",
    "restore_copy",
    "take_snapshot",
    "wasm_pages_to_grow",
]
