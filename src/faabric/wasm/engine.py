"""The wasmtime engine faabric runs every granule on, plus content addressing of modules.

`WasmEngine` owns one `wasmtime.Engine` configured for epoch interruption (timeouts) and
threads with shared memory (thread-capable modules), and a daemon thread that advances the
epoch every `TICK` seconds. It must not load modules or run instances itself.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import threading
from types import TracebackType
from typing import Any

import wasmtime

TICK = 0.01  # seconds per epoch tick: the resolution of granule timeouts


def module_digest(data: bytes) -> str:
    """The content address of a module: sha256 of its bytes, as hex."""
    return hashlib.sha256(data).hexdigest()


class WasmEngine:
    """A configured wasmtime engine with its epoch ticker; close it (or use `with`)."""

    def __init__(self, tick: float = TICK) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.wasm_threads = True
        config.shared_memory = True
        self.tick = tick
        self.wasmtime: Any = wasmtime.Engine(config)
        self.fingerprint = _fingerprint(("epoch", "threads", "shared_memory"))
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._run_ticker, name="wasm-epoch", daemon=True)
        self._ticker.start()

    def _run_ticker(self) -> None:
        while not self._stop.wait(self.tick):
            self.wasmtime.increment_epoch()

    def ticks_for(self, seconds: float) -> int:
        """Epoch ticks to allow a call that may run `seconds` (at least one full tick)."""
        return max(1, int(seconds / self.tick + 0.999999)) + 1

    def close(self) -> None:
        """Stop the epoch ticker. Running instances then never time out."""
        self._stop.set()
        if self._ticker is not threading.current_thread():
            self._ticker.join()

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
