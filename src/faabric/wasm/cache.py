"""Content-addressed cache of compiled modules: in memory, then native code on disk, then fetch.

`ModuleCache.get(digest)` returns a `LoadedModule` ready to instantiate. A miss looks for
`<cache_dir>/<digest>-<engine fingerprint>.cwasm` (native code serialized by a previous run)
and only then fetches the bytes, checks their digest and compiles them. Each module is
compiled once even when many threads ask for it at the same time. This module must not
instantiate or run modules.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime

from faabric.errors import FaabricError, ModuleError
from faabric.wasm.engine import WasmEngine, module_digest
from faabric.wasm.stopcheck import add_stop_checks

WASM_MAGIC = b"\0asm"
_DIGEST = re.compile(r"[0-9a-f]{64}")
ENTRY_POINT = "_start"


@dataclass(frozen=True, slots=True)
class ImportSpec:
    """One import of a module: `module`.`name` and its kind ("func", "memory", ...)."""

    module: str
    name: str
    kind: str

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True, slots=True)
class SharedMemorySpec:
    """The shared memory a thread-capable module imports, in 64 KiB pages."""

    minimum: int
    maximum: int | None


@dataclass(frozen=True, slots=True)
class LoadedModule:
    """A compiled module and what faabric needs to know about it to instantiate it."""

    digest: str
    handle: Any  # wasmtime.Module
    imports: tuple[ImportSpec, ...]
    shared_memory: SharedMemorySpec | None


class ModuleCache:
    """Compiled modules by digest; `fetch(digest)` supplies the bytes of unknown modules."""

    def __init__(
        self, engine: WasmEngine, cache_dir: Path, fetch: Callable[[str], bytes]
    ) -> None:
        self._engine = engine
        self._dir = cache_dir
        self._fetch = fetch
        self._loaded: dict[str, LoadedModule] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def native_path(self, digest: str) -> Path:
        """Where this engine's native code for `digest` lives on disk."""
        return self._dir / f"{digest}-{self._engine.fingerprint}.cwasm"

    def get(self, digest: str) -> LoadedModule:
        """The compiled module with this digest; ModuleError if it cannot be had or used."""
        found = self._loaded.get(digest)
        if found is not None:
            return found
        if _DIGEST.fullmatch(digest) is None:
            raise ModuleError(f"{digest[:80]!r} is not a module digest (64 hex digits)")
        with self._lock:
            gate = self._loading.setdefault(digest, threading.Lock())
        with gate:
            found = self._loaded.get(digest)
            if found is None:
                found = self._load(digest, None)
                self._loaded[digest] = found
        with self._lock:
            self._loading.pop(digest, None)
        return found

    def add(self, data: bytes) -> str:
        """Compile `data` now (if new) and return its digest."""
        digest = module_digest(data)
        if digest in self._loaded:
            return digest
        with self._lock:
            gate = self._loading.setdefault(digest, threading.Lock())
        with gate:
            if digest not in self._loaded:
                self._loaded[digest] = self._load(digest, data)
        with self._lock:
            self._loading.pop(digest, None)
        return digest

    def _load(self, digest: str, data: bytes | None) -> LoadedModule:
        native = self.native_path(digest)
        if data is None and native.is_file():
            try:
                handle = wasmtime.Module.deserialize_file(self._engine.wasmtime, str(native))
            except wasmtime.WasmtimeError:
                native.unlink(missing_ok=True)  # stale or corrupt: recompile below
            else:
                return describe_module(digest, handle)
        if data is None:
            data = self._fetch_checked(digest)
        handle = compile_module(self._engine, data)
        loaded = describe_module(digest, handle)
        self._store_native(native, handle)
        return loaded

    def _fetch_checked(self, digest: str) -> bytes:
        try:
            data = self._fetch(digest)
        except FaabricError:
            raise
        except Exception as error:
            raise ModuleError(f"cannot fetch module {digest[:12]}: {error}") from None
        actual = module_digest(data)
        if actual != digest:
            raise ModuleError(
                f"module {digest[:12]} was fetched with the wrong contents (sha256 {actual[:12]})"
            )
        return data

    def _store_native(self, native: Path, handle: Any) -> None:
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".cwasm-", dir=self._dir)
            with os.fdopen(fd, "wb") as out:
                out.write(handle.serialize())
            os.replace(tmp, native)
        except OSError:
            pass  # a read-only or full cache only costs a recompilation next time


def compile_module(engine: WasmEngine, data: bytes) -> Any:
    """Compile wasm bytes, with stop checks added (stopcheck.py); ModuleError with wasmtime's
    first line if that fails."""
    if not data.startswith(WASM_MAGIC):
        raise ModuleError("not a WebAssembly module")
    try:
        wasmtime.Module.validate(engine.wasmtime, data)
        try:
            checked = add_stop_checks(data)
        except ValueError as error:
            raise ModuleError(f"the module cannot be given stop checks: {error}") from None
        return wasmtime.Module(engine.wasmtime, checked)
    except wasmtime.WasmtimeError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "unknown error"
        raise ModuleError(f"the module cannot be compiled: {first}") from None


def describe_module(digest: str, handle: Any) -> LoadedModule:
    """Read a compiled module's imports and check that it has an entry point."""
    if not any(export.name == ENTRY_POINT for export in handle.exports):
        raise ModuleError(
            f"the module has no {ENTRY_POINT} entry point (was it built as a library?)"
        )
    imports: list[ImportSpec] = []
    shared: SharedMemorySpec | None = None
    for item in handle.imports:
        kind = _kind_of(item.type)
        imports.append(ImportSpec(item.module, item.name or "", kind))
        if kind == "memory" and item.type.is_shared:
            limits = item.type.limits
            shared = SharedMemorySpec(limits.min, limits.max)
    return LoadedModule(digest, handle, tuple(imports), shared)


def _kind_of(extern_type: Any) -> str:
    if isinstance(extern_type, wasmtime.FuncType):
        return "func"
    if isinstance(extern_type, wasmtime.MemoryType):
        return "memory"
    if isinstance(extern_type, wasmtime.GlobalType):
        return "global"
    if isinstance(extern_type, wasmtime.TableType):
        return "table"
    return "other"
