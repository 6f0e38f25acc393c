"""Raw access to ranks' linear memories by host address: copies and request completion.

Ranks own their memories; other threads of the worker write into them (a message for a
posted receive, a completed request) while the owner runs. wasmtime reserves the whole 4 GiB
range of a 32-bit memory up front, so a memory never moves while its instance lives; callers
guarantee it is alive (see `world.py`). Addresses here were bounds-checked by the caller.
This module must not decide anything: it only moves bytes.
"""

from __future__ import annotations

import ctypes
import struct

# struct fmpi_req in fmpi_host.h: done, source, tag, length, error, handle (all int32).
REQUEST_SIZE = 24
_FIELDS = struct.Struct("<iiiii")
_HANDLE_OFFSET = 20

OK = 0
E_RANK = 1
E_TAG = 2
E_COUNT = 3
E_TRUNCATE = 4


def copy(dst: int, src: int, length: int) -> None:
    """Copy `length` bytes between host addresses (releases the GIL while copying)."""
    if length > 0:
        ctypes.memmove(dst, src, length)


def read(address: int, length: int) -> bytes:
    """The `length` bytes at `address`."""
    return ctypes.string_at(address, length) if length > 0 else b""


def write(address: int, data: bytes | bytearray, length: int) -> None:
    """Write the first `length` bytes of `data` at `address` (without slicing a copy)."""
    if length <= 0:
        return
    if isinstance(data, bytearray):
        ctypes.memmove(address, (ctypes.c_char * len(data)).from_buffer(data), length)
    else:
        ctypes.memmove(address, data, length)


def view(address: int, length: int) -> memoryview:
    """A writable memoryview of `length` bytes at `address` (for socket recv_into/send)."""
    return memoryview((ctypes.c_char * length).from_address(address)).cast("B")


def set_pending(request: int, handle: int) -> None:
    """Mark a request pending under host id `handle`."""
    ctypes.c_int32.from_address(request + _HANDLE_OFFSET).value = handle
    ctypes.c_int32.from_address(request).value = 0


def handle_of(request: int) -> int:
    """The host id stored in a request."""
    return ctypes.c_int32.from_address(request + _HANDLE_OFFSET).value


def complete(
    request: int, source: int = 0, tag: int = 0, length: int = 0, error: int = OK
) -> None:
    """Fill a request's fields and set `done` last, so a guest polling it sees a whole result."""
    ctypes.memmove(request + 4, _FIELDS.pack(source, tag, length, error, 0), _FIELDS.size)
    ctypes.c_int32.from_address(request).value = 1
