"""Runs one granule of an app: fetch the module, run it in a sandbox, report a GranuleResult.

`GranuleRunner.run` never raises for anything the guest or its module does: every failure is
an `Outcome` in the result. It is safe to call from many threads at once (the worker runs one
granule per slot thread). It must not schedule, talk to the planner or decide placement.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from faabric.abi import FAABRIC_FUNCTIONS, GranuleIO
from faabric.errors import FaabricError
from faabric.messages.types import AppSpec, Failed, GranuleResult, Outcome
from faabric.wasm import HostFunction, Launcher, ModuleCache, RunSpec, WasmEngine

Clock = Callable[[], float]


class GranuleRunner:
    """Turns (app id, AppSpec, index) into a GranuleResult on this host."""

    def __init__(
        self,
        engine: WasmEngine,
        modules: ModuleCache,
        host: str,
        *,
        extra_functions: Sequence[HostFunction] = (),
        clock: Clock = time.time,
    ) -> None:
        self._modules = modules
        self._host = host
        self._clock = clock
        self._launcher = Launcher(engine, (*FAABRIC_FUNCTIONS, *extra_functions))

    def run(self, app_id: int, spec: AppSpec, index: int) -> GranuleResult:
        """Run granule `index` of `spec` to completion and describe how it ended."""
        started = self._clock()
        io = GranuleIO(index=index, count=spec.size, input=spec.input)
        stdout = stderr = b""
        outcome: Outcome
        try:
            module = self._modules.get(spec.module)
            result = self._launcher.run(module, _run_spec(spec), io)
            outcome, stdout, stderr = result.outcome, result.stdout, result.stderr
        except FaabricError as error:
            outcome = Failed(str(error))
        except Exception as error:  # a granule always ends as a result
            outcome = Failed(f"internal error: {type(error).__name__}: {error}")
        return GranuleResult(
            app_id=app_id,
            index=index,
            host=self._host,
            outcome=outcome,
            stdout=stdout,
            stderr=stderr,
            output=io.output(),
            started=started,
            finished=self._clock(),
        )


def _run_spec(spec: AppSpec) -> RunSpec:
    return RunSpec(
        argv=(spec.program, *spec.args),
        env=spec.env,
        timeout=spec.timeout,
        memory_limit=spec.memory_limit,
    )
