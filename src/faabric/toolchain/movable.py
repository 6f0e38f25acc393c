"""Makes MPI programs movable: binaryen's asyncify pass over the call paths to migration points.

A rank that migrates leaves its host from inside the `faabric_mpi.fmpi_migrate` import and
carries on from that call on another host. `wasm-opt --asyncify` lets the call stack unwind
into linear memory there and be rebuilt later; only functions that can reach that import
(directly, or through an indirect call) are rewritten, so compute loops that call nothing
keep their speed. Thread-capable modules are left alone (their ranks do not migrate). This
module must not run modules or know about the cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from faabric.errors import ToolchainError
from faabric.toolchain.wasm_bytes import WasmReader

MIGRATE_IMPORT = ("faabric_mpi", "fmpi_migrate")
WASM_OPT = "wasm-opt"
INSTALL_HINT = "apt-get install binaryen"
_IMPORT_SECTION = 2


def make_movable(path: Path, user_flags: Sequence[str], env: dict[str, str]) -> bool:
    """Rewrite the module at `path` in place so its ranks can migrate, if it imports the
    migration call; returns whether it did.

    Raises:
        ToolchainError: wasm-opt is missing or failed.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ToolchainError(f"cannot read {path}: {error.strerror}") from None
    if MIGRATE_IMPORT not in module_imports(data):
        return False
    wasm_opt = shutil.which(WASM_OPT)
    if wasm_opt is None:
        raise ToolchainError(f"{WASM_OPT} not found; install it with: {INSTALL_HINT}")
    fd, tmp_name = tempfile.mkstemp(prefix=".movable-", suffix=".wasm", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        cmd = [wasm_opt, str(path), "--asyncify",
               f"--pass-arg=asyncify-imports@{'.'.join(MIGRATE_IMPORT)}",
               *_optimisation(user_flags), "-o", str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise ToolchainError(f"making {path.name} movable failed:\n{done.stderr.strip()}")
        os.replace(tmp, path)
    except OSError as error:
        raise ToolchainError(f"cannot run {wasm_opt}: {error.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _optimisation(user_flags: Sequence[str]) -> list[str]:
    # asyncify adds locals and branches around every call it instruments; binaryen's
    # optimiser removes most of them again. It must not inline a function called once into
    # its caller: compute kernels would land in the instrumented main and run slower there
    # (measured: dgemm 1.07x with that inlining, 1.00x without). Debug builds stay as they are.
    if "-O0" in user_flags or any(flag.startswith("-g") for flag in user_flags):
        return []
    return ["-O2", "--one-caller-inline-max-function-size=0"]


def stand_in_tools(cache_dir: Path) -> Path:
    """A directory holding a `wasm-opt` that leaves modules as they are, for clang's `-B`.

    clang-16 runs any `wasm-opt` it finds after an optimised link. faabric decides which
    binaryen passes run, and when (`make_movable` needs the module before inlining), so
    clang finds this stand-in instead; builds are then the same with or without binaryen.
    """
    tools = cache_dir / "tools"
    stand_in = tools / "wasm-opt"
    if not os.access(stand_in, os.X_OK):
        tools.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".wasm-opt-", dir=tools)
        with os.fdopen(fd, "w") as script:
            script.write(_STAND_IN)
        os.chmod(tmp, 0o755)
        os.replace(tmp, stand_in)
    return tools


_STAND_IN = """#!/bin/sh
# faabric: clang runs wasm-opt after linking; faabric runs binaryen itself (movable.py).
exit 0
"""


def module_imports(data: bytes) -> list[tuple[str, str]]:
    """(module, name) of every import of a wasm binary; [] if it has no import section.

    Raises:
        ToolchainError: the bytes are not a well-formed wasm module.
    """
    if data[:4] != b"\0asm":
        raise ToolchainError("not a WebAssembly module")
    reader = WasmReader(data, 8)
    try:
        while reader.pos < len(data):
            section = reader.byte()
            size = reader.uleb()
            end = reader.pos + size
            if section == _IMPORT_SECTION:
                return [_import_entry(reader) for _ in range(reader.uleb())]
            reader.pos = end
    except (ValueError, UnicodeDecodeError) as error:
        raise ToolchainError(f"malformed WebAssembly module: {error}") from None
    return []


def _import_entry(reader: WasmReader) -> tuple[str, str]:
    module, name = reader.name(), reader.name()
    kind = reader.byte()
    if kind == 0:  # function: a type index
        reader.uleb()
    elif kind in (1, 2):  # table (element type first) or memory: limits
        if kind == 1:
            reader.byte()
        flags = reader.byte()
        reader.uleb()
        if flags & 1:
            reader.uleb()
    elif kind == 3:  # global: value type, mutability
        reader.byte()
        reader.byte()
    else:
        raise ValueError(f"unknown import kind {kind}")
    return module, name
