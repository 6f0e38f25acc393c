"""Dirty-page tracking with userfaultfd asynchronous write-protect and PAGEMAP_SCAN.

Registering a range with `UFFD_FEATURE_WP_ASYNC` makes the kernel resolve write faults by
itself, marking the page written: no handler thread, no signals (wasmtime owns SIGSEGV, so
mprotect tricks turn guest writes into traps). One `PAGEMAP_SCAN` ioctl then lists the written
pages and write-protects them again atomically. Needs Linux >= 6.7 built with userfaultfd and
uffd-wp PTE markers; `UFFD_USER_MODE_ONLY` lets it run without privileges. This module only
tracks; choosing it or the fallback is `dirty.open_tracker`'s job.
"""

from __future__ import annotations

import ctypes
import os
import platform

import numpy as np

from faabric.errors import SnapshotError, TrackingUnavailable
from faabric.snapshot import _libc
from faabric.snapshot.ranges import Ranges, normalise
from faabric.snapshot.tracker import TrackingMode

_SYSCALL_NUMBERS = {"x86_64": 323, "aarch64": 282}
_UFFD_USER_MODE_ONLY = 1
_UFFD_API = 0xAA
_FEATURE_WP_UNPOPULATED = 1 << 13
_FEATURE_WP_ASYNC = 1 << 15
_MODE_WP = 2  # UFFDIO_REGISTER_MODE_WP, and UFFDIO_WRITEPROTECT_MODE_WP is 1
_SCAN_WP_MATCHING = 1
_SCAN_CHECK_WPASYNC = 2
_PAGE_IS_WRITTEN = 1 << 1
_REGIONS = 16384  # page regions returned per scan call


def _iowr(kind: int, number: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (kind << 8) | number


_UFFDIO_API = _iowr(0xAA, 0x3F, 24)
_UFFDIO_REGISTER = _iowr(0xAA, 0x00, 32)
_UFFDIO_WRITEPROTECT = _iowr(0xAA, 0x06, 24)
_PAGEMAP_SCAN = _iowr(ord("f"), 16, 96)


class _ScanArg(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "size", "flags", "start", "end", "walk_end", "vec", "vec_len", "max_pages",
        "category_inverted", "category_mask", "category_anyof_mask", "return_mask")]


class UffdTracker:
    """Tracks writes to [address, address + length) of this process's memory.

    `start()` opens the userfaultfd (raising `TrackingUnavailable` when the kernel or the
    permissions refuse) and protects the range; `dirty_pages()` returns the pages written
    since the previous call or `start()`, as byte ranges relative to `address`.
    """

    mode = TrackingMode.UFFD

    def __init__(self, address: int, length: int) -> None:
        if address % _libc.PAGE_SIZE or length % _libc.PAGE_SIZE:
            raise SnapshotError(f"cannot track {length} bytes at {address:#x}: not page-aligned")
        self.address, self.length = address, length
        self._uffd = -1
        self._pagemap = -1
        self._grown: list[tuple[int, int]] = []
        self._vec = (ctypes.c_uint64 * (3 * _REGIONS))()
        self._regions = np.frombuffer(memoryview(self._vec), np.uint64).reshape(_REGIONS, 3)

    def start(self) -> None:
        """Begin tracking (or forget what was written so far, when already tracking)."""
        first = self._uffd < 0
        try:
            if first:
                self._open()
                self._register(self.address, self.length)
            self._grown.clear()
            self._protect(self.address, self.length)
        except SnapshotError:  # TrackingUnavailable too: never leave the descriptors open
            if first:
                self.stop()
            raise

    def dirty_pages(self) -> Ranges:
        """Pages written since the last call, page-aligned byte ranges; re-protects them."""
        if self._uffd < 0:
            raise SnapshotError("the dirty tracker is not started")
        found: list[tuple[int, int]] = list(self._grown)
        self._grown.clear()
        start, end = self.address, self.address + self.length
        while start < end:
            arg = _ScanArg(size=ctypes.sizeof(_ScanArg),
                           flags=_SCAN_WP_MATCHING | _SCAN_CHECK_WPASYNC, start=start, end=end,
                           vec=ctypes.addressof(self._vec), vec_len=_REGIONS,
                           category_mask=_PAGE_IS_WRITTEN, return_mask=_PAGE_IS_WRITTEN)
            count = self._scan(arg)
            spans = self._regions[:count, :2].astype(np.int64) - self.address
            found.extend(zip(spans[:, 0].tolist(), spans[:, 1].tolist(), strict=True))
            start = max(int(arg.walk_end), start + _libc.PAGE_SIZE) if count == _REGIONS \
                else end
        return normalise(found)

    def resize(self, length: int) -> None:
        """The memory grew to `length` bytes: track the new pages, report them all as dirty."""
        if length < self.length or length % _libc.PAGE_SIZE:
            raise SnapshotError(f"cannot resize tracking from {self.length} to {length} bytes")
        if length > self.length and self._uffd >= 0:
            self._register(self.address + self.length, length - self.length)
            self._protect(self.address + self.length, length - self.length)
            self._grown.append((self.length, length))
        self.length = length

    def stop(self) -> None:
        """Stop tracking; closing the userfaultfd unregisters the range."""
        for fd in (self._uffd, self._pagemap):
            if fd >= 0:
                os.close(fd)
        self._uffd = self._pagemap = -1

    def _open(self) -> None:
        number = _SYSCALL_NUMBERS.get(platform.machine())
        if number is None:
            raise TrackingUnavailable(f"userfaultfd: unsupported machine {platform.machine()}")
        flags = os.O_CLOEXEC | os.O_NONBLOCK | _UFFD_USER_MODE_ONLY
        try:
            self._uffd = _libc.syscall(number, flags)
            wanted = _FEATURE_WP_ASYNC | _FEATURE_WP_UNPOPULATED
            api = (ctypes.c_uint64 * 3)(_UFFD_API, wanted, 0)
            _libc.ioctl(self._uffd, _UFFDIO_API, api)
            self._pagemap = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self.stop()
            raise TrackingUnavailable(f"userfaultfd write-protect tracking: {exc}") from exc

    def _register(self, address: int, length: int) -> None:
        try:
            _libc.ioctl(self._uffd, _UFFDIO_REGISTER,
                        (ctypes.c_uint64 * 4)(address, length, _MODE_WP, 0))
        except OSError as exc:
            self.stop()
            raise TrackingUnavailable(f"userfaultfd register: {exc}") from exc

    def _protect(self, address: int, length: int) -> None:
        try:
            _libc.ioctl(self._uffd, _UFFDIO_WRITEPROTECT,
                        (ctypes.c_uint64 * 3)(address, length, 1))
        except OSError as exc:
            raise SnapshotError(f"userfaultfd write-protect of {length} bytes at "
                                f"{address:#x}: {exc}") from exc

    def _scan(self, arg: _ScanArg) -> int:
        try:
            return _libc.ioctl(self._pagemap, _PAGEMAP_SCAN, arg)
        except OSError as exc:
            raise SnapshotError(f"PAGEMAP_SCAN failed ({exc}); was the memory remapped "
                                "after tracking started?") from exc
