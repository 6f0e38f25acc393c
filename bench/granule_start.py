"""Starting a granule from a cached module, in this process, against a native process start.

`GranuleRunner.run(batch, index)` of the no-op module, after warm-up, so the module is
already compiled in the `ModuleCache` and linked by the launcher: what is left is the Store,
the WASI context, instantiation, `_start` and building the result. For context, the same
no-op program built natively (clang-16 -O2) is started with `os.posix_spawn` + `waitpid`
(fork+exec without Python's subprocess machinery).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.common import KERNEL_DIR, Stats, build_native, time_calls


@dataclass(frozen=True, slots=True)
class StartResults:
    granule: Stats
    native_spawn: Stats


def measure(noop_wasm: bytes, *, samples: int, native_dir: Path) -> StartResults:
    from faabric.granule import GranuleRunner
    from faabric.messages.types import AppSpec, Batch, Exited
    from faabric.wasm import ModuleCache, WasmEngine, module_digest

    digest = module_digest(noop_wasm)
    with tempfile.TemporaryDirectory(prefix="faabric-bench-") as tmp, WasmEngine() as engine:
        modules = ModuleCache(engine, Path(tmp), fetch=lambda _: noop_wasm)
        runner = GranuleRunner(engine, modules, host="bench")
        spec = AppSpec(module=digest, size=1, program="noop")
        batch = Batch(1, spec, (0,))
        first = runner.run(batch, 0)  # compiles and links
        if first.outcome != Exited(0):
            raise RuntimeError(f"the no-op granule did not exit 0: {first.outcome}")
        granule = time_calls(lambda: runner.run(batch, 0), samples, warmup=50)

    binary = str(build_native(KERNEL_DIR / "noop.c", native_dir))

    def spawn() -> None:
        pid = os.posix_spawn(binary, [binary], {})
        os.waitpid(pid, 0)

    native = time_calls(spawn, samples, warmup=20)
    return StartResults(Stats.of(granule), Stats.of(native))
