"""Content-addressed store of WebAssembly modules uploaded to the planner.

Clients upload a module once under its sha256 digest; workers fetch it by digest when they
first run it and cache the compiled code themselves. The store only checks digests and sizes;
it never parses or compiles wasm.
"""

from __future__ import annotations

import hashlib
import re
import threading

from faabric.errors import ModuleError

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def is_digest(text: str) -> bool:
    """Whether `text` looks like a sha256 hex digest."""
    return bool(_DIGEST.match(text))


class ModuleStore:
    """Modules by digest, held in memory for the planner's lifetime."""

    def __init__(self, max_module_bytes: int) -> None:
        self.max_module_bytes = max_module_bytes
        self._modules: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, digest: str, data: bytes) -> bool:
        """Store `data` under `digest`; returns False if it was already there.

        Raises:
            ModuleError: the digest does not match the bytes, or the module is too large.
        """
        if len(data) > self.max_module_bytes:
            raise ModuleError(
                f"module of {len(data)} bytes exceeds the limit of {self.max_module_bytes}"
            )
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ModuleError(f"module digest mismatch: the bytes hash to {actual}")
        with self._lock:
            if digest in self._modules:
                return False
            self._modules[digest] = data
            return True

    def get(self, digest: str) -> bytes | None:
        """The module's bytes, or None if it was never uploaded."""
        with self._lock:
            return self._modules.get(digest)

    def __contains__(self, digest: object) -> bool:
        with self._lock:
            return digest in self._modules
