"""Putting a snapshot back into a memory: copy-on-write from a memfd, or a plain copy.

`MemfdImage` decodes a snapshot once into a memfd. `map_onto` then lays that file privately
(`MAP_PRIVATE | MAP_FIXED`) over a memory's pages: O(1) whatever the size, and each page is
copied only when the guest first writes it. The image also serves as the original to diff
against, read-only, gives copy-on-write private copies (`private_copy`) and takes diffs
(`update`), so one image can follow a memory from fork to fork. `restore_copy` writes the
pages instead, for memories that cannot be remapped. Neither knows about wasmtime: they take
host addresses and numpy views. Nothing here may run while guest threads use the memory
being restored.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence
from enum import Enum
from types import TracebackType

import numpy as np

from faabric.errors import SnapshotError
from faabric.snapshot._libc import (
    MAP_ANONYMOUS,
    MAP_PRIVATE,
    PAGE_SIZE,
    Bytes,
    map_fixed,
)
from faabric.snapshot.diff import Diff
from faabric.snapshot.image import Snapshot, decode_into
from faabric.snapshot.merge import merge_diffs, required_size
from faabric.snapshot.pages import zero_stale_pages

WASM_PAGE_SIZE = 1 << 16


class Tail(Enum):
    """What happens to a memory's bytes past the end of the snapshot being restored."""

    ZERO = "zero"  # they read as zero afterwards, as in a memory of exactly the snapshot's size
    KEEP = "keep"  # they are left as they were


def wasm_pages_to_grow(snapshot_size: int, memory_length: int) -> int:
    """How many 64 KiB wasm pages a memory of `memory_length` bytes must grow to hold it."""
    return max(0, -(-(snapshot_size - memory_length) // WASM_PAGE_SIZE))


def _check_target(size: int, address: int, length: int) -> None:
    if address % PAGE_SIZE or length % PAGE_SIZE:
        raise SnapshotError(f"memory at {address:#x} of {length} bytes is not page-aligned")
    if length < size:
        raise SnapshotError(f"the memory is {length} bytes, the snapshot {size}: "
                            "grow the memory first")


class MemfdImage:
    """A snapshot decoded into a memfd: restore source and read-only original.

    Use as a context manager or call `close()`. Mappings made by `map_onto` stay valid after
    `close()` (the kernel keeps the file while it is mapped); views from `view()` must be
    dropped before it.
    """

    def __init__(self, snapshot: Snapshot, name: str = "faabric-snapshot") -> None:
        self.size = 0
        self._fd = os.memfd_create(name, os.MFD_CLOEXEC)
        self._map: mmap.mmap | None = None
        self._writable: Bytes = np.zeros(0, np.uint8)
        self._view: Bytes = np.zeros(0, np.uint8)
        try:
            self._resize(snapshot.size)
            decode_into(snapshot, self._writable, zero_absent=False)
        except BaseException:
            self.close()
            raise

    def _resize(self, size: int) -> None:
        self._unmap()
        os.ftruncate(self._fd, size)
        self.size = size
        if size:
            self._map = mmap.mmap(self._fd, size, mmap.MAP_SHARED)
            self._writable = np.frombuffer(self._map, np.uint8)
            self._view = self._writable.view()
            self._view.flags.writeable = False

    def update(self, diffs: Sequence[Diff]) -> None:
        """Merge `diffs` into the image (growing it first if one is larger). Mappings and
        private copies made before must not be in use any more: their pages not yet written
        may see the change."""
        if self._fd < 0:
            raise SnapshotError("the snapshot image is closed")
        need = required_size(diffs)
        if need > self.size:
            self._resize(need)
        merge_diffs(self._writable, diffs)

    def private_copy(self) -> Bytes:
        """A writable copy of the image, copy-on-write: O(1), pages copied when written."""
        if self._fd < 0:
            raise SnapshotError("the snapshot image is closed")
        if not self.size:
            return np.zeros(0, np.uint8)
        return np.frombuffer(mmap.mmap(self._fd, self.size, mmap.MAP_PRIVATE), np.uint8)

    def view(self) -> Bytes:
        """The snapshot's bytes, read-only, without a copy."""
        return self._view

    def map_onto(self, address: int, length: int, tail: Tail = Tail.ZERO) -> None:
        """Lay the snapshot copy-on-write over `length` bytes of memory at `address`.

        The memory must be page-aligned and at least as long as the snapshot. Any dirty
        tracker registered over the range stops seeing it: start tracking afterwards.
        """
        _check_target(self.size, address, length)
        if self._fd < 0:
            raise SnapshotError("the snapshot image is closed")
        try:
            if self.size:
                map_fixed(address, self.size, MAP_PRIVATE, self._fd)
            if tail is Tail.ZERO and length > self.size:
                map_fixed(address + self.size, length - self.size,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1)
        except OSError as exc:
            raise SnapshotError(f"cannot map the snapshot over {address:#x}: {exc}") from exc

    def _unmap(self) -> None:
        self._view = self._writable = np.zeros(0, np.uint8)
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a caller still holds a view: the GC unmaps it later
                pass
            self._map = None

    def close(self) -> None:
        self._unmap()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> MemfdImage:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def restore_copy(snapshot: Snapshot, memory: Bytes, tail: Tail = Tail.ZERO) -> None:
    """Write the snapshot into `memory` (a numpy view), zeroing pages it leaves out.

    Pages that are zero already are not written, so a fresh memory stays mostly untouched.
    """
    _check_target(snapshot.size, 0, len(memory))
    decode_into(snapshot, memory, zero_absent=True)
    rest = memory[snapshot.size:]
    if tail is Tail.ZERO and len(rest):
        zero_stale_pages(rest, np.zeros(len(rest) // PAGE_SIZE, np.bool_))


def restore(snapshot: Snapshot, address: int, length: int, tail: Tail = Tail.ZERO) -> None:
    """One-off copy-on-write restore at a host address (builds and drops a `MemfdImage`)."""
    with MemfdImage(snapshot) as image:
        image.map_onto(address, length, tail)
