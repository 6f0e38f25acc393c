"""In-memory capture of a guest's stdout or stderr, through an anonymous memory file (memfd).

wasmtime writes WASI output from its own tokio threads. A Python output callback would run
on those foreign threads (taking the GIL for every write) and makes the process panic at
exit, so instead each stream goes to a memfd that wasmtime opens by its /proc path, and is
read back when the instance ends: the first `limit` bytes, plus a note of how much was
dropped. Limitation: the memfd holds everything the guest writes until the granule ends (the
granule's timeout bounds it). This module must not know about instances or outcomes.

Threads of one granule are separate instances, and wasmtime opens (and truncates) an output
path once per instance, so they cannot share a memfd. `PipeFile` gives them one pipe instead,
drained by a thread into a `MemoryFile` in the order the writes arrived.
"""

from __future__ import annotations

import os
import select
import threading

OUTPUT_LIMIT = 16 << 20  # bytes kept per stream per granule


class MemoryFile:
    """One anonymous in-memory file; `path` is how another component can open it."""

    def __init__(self, name: str) -> None:
        self._fd = os.memfd_create(name, os.MFD_CLOEXEC)
        self._notes: list[bytes] = []

    @property
    def path(self) -> str:
        return f"/proc/self/fd/{self._fd}"

    @property
    def fd(self) -> int:
        return self._fd

    def append_note(self, text: str) -> None:
        """Add a line from faabric itself after what the guest wrote (not limited)."""
        self._notes.append(text.encode(errors="replace"))

    def read(self, limit: int = OUTPUT_LIMIT) -> bytes:
        """The first `limit` bytes written, a truncation note if there were more, and notes."""
        size = os.fstat(self._fd).st_size
        data = os.pread(self._fd, min(size, limit), 0) if size else b""
        if size > limit:
            data += f"\n[faabric: output truncated, {size - limit} bytes dropped]\n".encode()
        return data + b"".join(self._notes)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class PipeFile:
    """An output many instances can open by `path`: a pipe drained into a MemoryFile."""

    def __init__(self, name: str) -> None:
        self._file = MemoryFile(name)
        self._read_fd, self._write_fd = os.pipe2(os.O_CLOEXEC)
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._drain = threading.Thread(target=self._run, name=f"{name}-drain", daemon=True)
        self._drain.start()

    @property
    def path(self) -> str:
        return f"/proc/self/fd/{self._write_fd}"

    def append_note(self, text: str) -> None:
        self._file.append_note(text)

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

    def read(self, limit: int = OUTPUT_LIMIT) -> bytes:
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
