"""What host functions see of a running instance, and what all instances of one run share.

`_Granule` is one run of a module (its spec, watch, outputs, shared memory and team);
`_Live` is one instance of it as the `HostCall` its host functions get, including the
suspend/resume handshake of movable modules (see suspend.py). Private to faabric.wasm:
the launcher makes these; nothing here starts or stops instances.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import wasmtime

from faabric.wasm import _raw, _store
from faabric.wasm.cache import LoadedModule
from faabric.wasm.capture import MemoryFile, PipeFile
from faabric.wasm.host import GuestFault, GuestMemory, ThreadExit, Threads
from faabric.wasm.interrupt import Verdict, Watch
from faabric.wasm.suspend import START_UNWIND, STOP_REWIND, Suspended, area_header
from faabric.wasm.team import Team

PAGE = 65536
DEFAULT_LIMIT = 1 << 30
_NUMBERED = re.compile(r"^\d+:\s*")
Output = MemoryFile | PipeFile


@dataclass(frozen=True, slots=True)
class RunSpec:
    """How to run one instance: WASI argv/env, wall-clock timeout, memory limit in bytes."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    timeout: float = 300.0
    memory_limit: int = DEFAULT_LIMIT


@dataclass(slots=True)
class _Granule:
    """One run of a module: what all of its instances (main and threads) share."""

    module: LoadedModule
    spec: RunSpec
    state: object
    watch: Watch
    out: Output
    err: Output
    args: _store.WasiArgs
    shared: Any = None
    linker: Any = None
    team: Team | None = None
    movable: bool = False  # the module can be suspended and resumed (suspend.py)
    resume: Suspended | None = None  # resume this suspended instance instead of starting


@dataclass(slots=True)
class _Live:
    """A running instance as its host functions see it (implements host.HostCall)."""

    granule: _Granule
    number: int = 0
    caller: Any = field(default=None)
    context: Any = field(default=None)
    verdict: Verdict | None = None
    thread_exit: bool = False
    found_memory: _raw.MemoryHandle | None = None
    suspended_at: int | None = None  # the unwind area, once the instance asked to suspend
    suspended_size: int = 0
    rewinding: bool = False  # resumed: the next `resuming()` ends the rewind

    @property
    def state(self) -> object:
        return self.granule.state

    @property
    def thread_number(self) -> int:
        return self.number

    def memory(self) -> GuestMemory:
        if self.granule.shared is not None:
            return _raw.shared_memory_view(self.granule.shared)
        if self.found_memory is None:
            self.found_memory = _raw.caller_memory(self.caller, self.context)
        return self.found_memory.view(self.context)

    def threads(self) -> Threads:
        if self.granule.team is None:
            raise GuestFault("threads need a thread-capable build (faabric cc -pthread/-fopenmp)")
        return self.granule.team

    def end_thread(self) -> None:
        self.thread_exit = True
        raise ThreadExit("the thread ended")

    def write_output(self, stream: int, data: bytes) -> None:
        out = self.granule.out if stream == 1 else self.granule.err
        if not isinstance(out, PipeFile):
            raise GuestFault("only thread-capable modules take output from other hosts")
        out.write(data)

    def grow_memory(self, size: int) -> None:
        _SharedAccess(self.granule).grow(size)

    @property
    def movable(self) -> bool:
        return self.granule.movable and self.granule.shared is None

    def suspend(self, area: int, size: int) -> None:
        if not self.movable:
            raise GuestFault("this module cannot migrate: build it with faabric cc, and "
                             "without -fopenmp or -pthread")
        self.memory().write(area, area_header(area, size), "unwind area")
        _raw.caller_call(self.caller, self.context, START_UNWIND, area)
        self.suspended_at, self.suspended_size = area, size

    def resuming(self) -> bool:
        if not self.rewinding:
            return False
        _raw.caller_call(self.caller, self.context, STOP_REWIND)
        self.rewinding = False
        return True


@dataclass(frozen=True, slots=True)
class _SharedAccess:
    """A granule's shared memory for host code outside calls (implements
    host.SharedMemoryAccess)."""

    granule: _Granule

    def now(self) -> GuestMemory:
        if self.granule.shared is None:
            raise GuestFault("the granule has no shared memory")
        return _raw.shared_memory_view(self.granule.shared)

    def grow(self, size: int) -> None:
        have = self.now().size
        if size > have:
            try:
                self.granule.shared.grow(-(-(size - have) // PAGE))
            except wasmtime.WasmtimeError as error:
                raise GuestFault(f"cannot grow memory to {size} bytes: "
                                 f"{cause_of(str(error))}") from None


def cause_of(message: str) -> str:
    """The one line that says what went wrong in a multi-line wasmtime error or trap."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    if "Caused by:" in lines:
        causes = lines[lines.index("Caused by:") + 1 :]
        if causes:
            return _NUMBERED.sub("", causes[-1])
    return lines[0]
