"""The few libc calls the snapshot layer needs that Python's `os` and `mmap` do not offer.

`mmap` at a fixed address (to lay a snapshot over a memory in place), `ioctl` with a pointer
argument, and `syscall` (userfaultfd has no libc wrapper), plus numpy views of raw host
memory. Everything here is a thin typed wrapper that raises `OSError` on failure; policy (what
to map where, what to do when the kernel refuses) belongs to the callers.
"""

from __future__ import annotations

import ctypes
import mmap
import os
from typing import Any

import numpy as np
import numpy.typing as npt

PAGE_SIZE = mmap.PAGESIZE

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
PROT_READ_WRITE = mmap.PROT_READ | mmap.PROT_WRITE

Bytes = npt.NDArray[np.uint8]

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                  ctypes.c_long]
_ioctl = _libc.ioctl
_ioctl.restype = ctypes.c_int
_ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_MAP_FAILED = ctypes.c_void_p(-1).value


def _fail(what: str) -> OSError:
    errno = ctypes.get_errno()
    return OSError(errno, f"{what}: {os.strerror(errno)}")


def map_fixed(address: int, length: int, flags: int, fd: int) -> None:
    """mmap(address, length, RW, flags | MAP_FIXED, fd, 0); replaces whatever was mapped."""
    result = _mmap(address, length, PROT_READ_WRITE, flags | MAP_FIXED, fd, 0)
    if result == _MAP_FAILED or result is None:
        raise _fail("mmap")
    if result != address:
        raise OSError(0, f"mmap placed the mapping at {result:#x}, not {address:#x}")


def ioctl(fd: int, request: int, argument: Any) -> int:
    """ioctl(fd, request, &argument) where `argument` is a ctypes object; returns the result."""
    result = int(_ioctl(fd, request, ctypes.cast(ctypes.byref(argument), ctypes.c_void_p)))
    if result < 0:
        raise _fail(f"ioctl {request:#x}")
    return result


def syscall(number: int, *args: int) -> int:
    """A raw system call with integer arguments; returns its non-negative result."""
    result = int(_syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args)))
    if result < 0:
        raise _fail(f"syscall {number}")
    return result


def memory_view(address: int, length: int) -> Bytes:
    """A writable numpy uint8 view of `length` bytes of host memory at `address` (no copy).

    The caller keeps the memory alive and mapped while the view is used; after a wasm memory
    grows, take a new view to see the new pages.
    """
    if length == 0:
        return np.zeros(0, np.uint8)
    buffer = (ctypes.c_ubyte * length).from_address(address)
    return np.frombuffer(memoryview(buffer), np.uint8)


def address_of(view: Bytes) -> int:
    """The host address of the first byte of a numpy array."""
    return int(view.ctypes.data)
