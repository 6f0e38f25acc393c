"""faabric.wasm: the only package that imports wasmtime.

It compiles and caches modules (`ModuleCache`), runs instances of them (`Launcher`) on one
configured engine (`WasmEngine`), and defines the contract host functions are written against
(`HostFunction`, `HostCall`, `GuestMemory`, `GuestFault`). It must not know what a granule,
an app or the faabric host interface is.

Importing this package applies `_patch.apply()` once: wasmtime-py 50.0.1 cannot link a
`SharedMemory` without it (see `_patch.py`).
"""

from faabric.wasm import _patch
from faabric.wasm.cache import LoadedModule, ModuleCache
from faabric.wasm.engine import WasmEngine, module_digest
from faabric.wasm.host import GuestFault, GuestMemory, HostCall, HostFunction, Threads
from faabric.wasm.interrupt import Cancellation
from faabric.wasm.launcher import Launcher, RunResult, RunSpec
from faabric.wasm.suspend import Suspended

_patch.apply()

__all__ = [
    "Cancellation",
    "GuestFault",
    "GuestMemory",
    "HostCall",
    "HostFunction",
    "Launcher",
    "LoadedModule",
    "ModuleCache",
    "RunResult",
    "RunSpec",
    "Suspended",
    "Threads",
    "WasmEngine",
    "module_digest",
]
