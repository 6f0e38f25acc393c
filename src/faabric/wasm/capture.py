"""In-memory capture of a guest's stdout or stderr, through an anonymous memory file (memfd).

wasmtime writes WASI output from its own tokio threads. A Python output callback would run
on those foreign threads (taking the GIL for every write) and makes the process panic at
exit, so instead each stream goes to a memfd that wasmtime opens by its /proc path, and is
read back when the instance ends: the first `limit` bytes, plus a note of how much was
dropped. Limitation: the memfd holds everything the guest writes until the granule ends (the
granule's timeout bounds it). This module must not know about instances or outcomes.
"""

from __future__ import annotations

import os

OUTPUT_LIMIT = 16 << 20  # bytes kept per stream per granule


class MemoryFile:
    """One anonymous in-memory file; `path` is how another component can open it."""

    def __init__(self, name: str) -> None:
        self._fd = os.memfd_create(name, os.MFD_CLOEXEC)
        self._notes: list[bytes] = []

    @property
    def path(self) -> str:
        return f"/proc/self/fd/{self._fd}"

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
