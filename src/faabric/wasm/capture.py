"""In-memory capture of a guest's stdout or stderr, through an anonymous memory file (memfd).

wasmtime writes WASI output from its own tokio threads. A Python output callback would run
on those foreign threads (taking the GIL for every write) and makes the process panic at
exit, so instead each stream goes to a memfd that wasmtime opens by its /proc path, and is
read back when the instance ends: the first `limit` bytes, and how many more were dropped
(never a note inside the output: the caller reports truncation on its own). Limitation:
the memfd holds everything the guest writes until the granule ends (the granule's timeout
bounds it). Making memfds costs system calls, so runs that do not overlap
reuse them (`CapturePool`): emptied after each read, and wasmtime truncates a file when it
opens it. This module must not know about instances or outcomes.

Threads of one granule are separate instances, and wasmtime opens (and truncates) an output
path once per instance, so they cannot share a memfd. `PipeFile` gives them one pipe instead,
drained by a thread into a `MemoryFile` in the order the writes arrived.
"""

from __future__ import annotations

import ctypes
import os
import select
import threading
from dataclasses import dataclass
from typing import Protocol

OUTPUT_LIMIT = 16 << 20  # bytes kept per stream per granule, unless the worker sets another
# lseek(2) without releasing the GIL: os.fstat would hand the GIL to another thread and wait
# to get it back, twice per run, for a call that takes well under a microsecond.
_lseek = ctypes.PYFUNCTYPE(ctypes.c_int64, ctypes.c_int, ctypes.c_int64, ctypes.c_int)(
    ("lseek", ctypes.CDLL(None, use_errno=True))
)


def _size_of(fd: int) -> int:
    """The size of the file open as `fd` (its offset is moved to the end: use pread)."""
    size = int(_lseek(fd, 0, os.SEEK_END))
    if size < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return size


@dataclass(frozen=True, slots=True)
class Captured:
    """What a stream kept (`data`: at most the limit, then faabric's notes) and how many
    bytes the guest wrote beyond the limit (`dropped`)."""

    data: bytes
    dropped: int


class Tailable(Protocol):
    """An output that can be read while it is being written."""

    def read_from(self, start: int, count: int) -> bytes: ...


class OutputTap(Protocol):
    """Follows a run's stdout and stderr while it goes on (e.g. to stream them): `attach`ed
    when the run starts, `detach`ed once its output is complete and before it is reused."""

    def attach(self, stdout: Tailable, stderr: Tailable) -> None: ...

    def detach(self) -> None: ...


class MemoryFile:
    """One anonymous in-memory file; `path` is how another component can open it."""

    def __init__(self, name: str) -> None:
        self._fd = os.memfd_create(name, os.MFD_CLOEXEC)
        self._notes: list[bytes] = []
        self._size: int | None = None  # as found by the last read(), until reset()
        self.path = f"/proc/self/fd/{self._fd}"

    @property
    def fd(self) -> int:
        return self._fd

    def append_note(self, text: str) -> None:
        """Add a line from faabric itself after what the guest wrote (not limited)."""
        self._notes.append(text.encode(errors="replace"))

    def read(self, limit: int = OUTPUT_LIMIT) -> Captured:
        """The first `limit` bytes written, then the notes, and how many bytes were dropped."""
        size = self._size = _size_of(self._fd)
        data = os.pread(self._fd, min(size, limit), 0) if size and limit else b""
        return Captured(data + b"".join(self._notes), max(0, size - limit))

    def read_from(self, start: int, count: int) -> bytes:
        """Up to `count` bytes written from byte `start` on (fewer, or none, if the writer
        has not got that far yet); safe while the guest writes."""
        return os.pread(self._fd, count, start) if count > 0 else b""

    def reset(self) -> bool:
        """Empty the file for another writer, once `read` has taken what it held. False (and
        nothing done) if it was not read since it was last written to."""
        if self._size is None or self._fd < 0:
            return False
        if self._size:
            os.ftruncate(self._fd, 0)
        self._size = None
        self._notes.clear()
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:  # memfd_create may have failed in __init__
            self.close()


class CapturePool:
    """Spare stdout/stderr pairs of `MemoryFile`s, so that runs reuse them instead of making
    two memfds each. A pair is in one run at a time: `take` it, `give_back` after reading."""

    def __init__(self, keep: int = 64) -> None:
        self._spare: list[tuple[MemoryFile, MemoryFile]] = []
        self._keep = keep

    def take(self) -> tuple[MemoryFile, MemoryFile]:
        try:
            return self._spare.pop()  # atomic under the GIL, as is append
        except IndexError:
            return MemoryFile("stdout"), MemoryFile("stderr")

    def give_back(self, pair: tuple[MemoryFile, MemoryFile]) -> None:
        """Keep the pair for another run if both were read and can be emptied, else close it."""
        out, err = pair
        if len(self._spare) < self._keep and out.reset() and err.reset():
            self._spare.append(pair)
        else:
            out.close()
            err.close()


class PipeFile:
    """An output many instances can open by `path`: a pipe drained into a MemoryFile."""

    def __init__(self, name: str) -> None:
        self._file = MemoryFile(name)
        self._read_fd, self._write_fd = os.pipe2(os.O_CLOEXEC)
        self.path = f"/proc/self/fd/{self._write_fd}"
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._drain = threading.Thread(target=self._run, name=f"{name}-drain", daemon=True)
        self._drain.start()

    def append_note(self, text: str) -> None:
        self._file.append_note(text)

    def write(self, data: bytes) -> None:
        """Append `data` to the stream as if an instance had written it."""
        _write_all(self._write_fd, data)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._read_fd, select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self._wake_read in ready:
                os.set_blocking(self._read_fd, False)
                self._copy_available()
                return
            self._copy_available()

    def _copy_available(self) -> None:
        while True:
            try:
                data = os.read(self._read_fd, 1 << 16)
            except BlockingIOError:
                return
            if not data:
                return
            os.write(self._file.fd, data)
            if os.get_blocking(self._read_fd):
                return

    def read_from(self, start: int, count: int) -> bytes:
        """Up to `count` bytes from byte `start` of what the drain has copied so far."""
        return self._file.read_from(start, count)

    def read(self, limit: int = OUTPUT_LIMIT) -> Captured:
        """Everything written so far (call it once no instance writes any more)."""
        if self._drain.is_alive():
            os.write(self._wake_write, b"x")
            self._drain.join()
        return self._file.read(limit)

    def close(self) -> None:
        if self._drain.is_alive():
            os.write(self._wake_write, b"x")
            self._drain.join()
        for fd in (self._read_fd, self._write_fd, self._wake_read, self._wake_write):
            if fd >= 0:
                os.close(fd)
        self._read_fd = self._write_fd = self._wake_read = self._wake_write = -1
        self._file.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
