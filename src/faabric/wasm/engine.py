"""The wasmtime engine faabric runs every granule on, plus content addressing of modules.

`WasmEngine` owns one `wasmtime.Engine` configured for threads with shared memory
(thread-capable modules) and multiple memories (the stop memory every module gets, see
stopcheck.py). It has no epoch interruption: running instances are stopped through their stop
memory, which costs a load and a branch per loop iteration instead of the epoch check's
spills. It must not load modules or run instances itself.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from types import TracebackType
from typing import Any

import wasmtime

from faabric.wasm.stopcheck import REWRITE_VERSION


def module_digest(data: bytes) -> str:
    """The content address of a module: sha256 of its bytes, as hex."""
    return hashlib.sha256(data).hexdigest()


class WasmEngine:
    """A configured wasmtime engine; `close` (or `with`) is kept for symmetry and owns
    nothing to release."""

    def __init__(self) -> None:
        config = wasmtime.Config()
        config.wasm_threads = True
        config.shared_memory = True
        config.wasm_multi_memory = True
        self.wasmtime: Any = wasmtime.Engine(config)
        self.fingerprint = _fingerprint(("threads", "shared_memory", "multi_memory",
                                         REWRITE_VERSION))

    def close(self) -> None:
        """Nothing to stop: instances are stopped by their launcher (see stopcheck.py)."""

    def __enter__(self) -> WasmEngine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _fingerprint(features: tuple[str, ...]) -> str:
    """Short id of what makes native code compatible: wasmtime version, host, engine config."""
    try:
        version = importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    text = "|".join((version, platform.machine(), platform.system(), *features))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
