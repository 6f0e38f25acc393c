"""Cached builds of one C/C++ source file to a .wasm module, for `faabric run app.c`.

The cache key is a sha256 over everything that decides the output: the source bytes, the
flags (the user's and those the driver adds), the compiler's identity, our headers and
shims, and the sources of the libraries linked in (MPI, OpenMP). A hit runs no compiler at
all. This module must not run modules or know about the cluster.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from faabric.errors import ToolchainError
from faabric.toolchain.driver import (
    INCLUDE_DIR,
    SHIMS,
    command_line,
    defaults_identity,
    environment,
    find_compiler,
    finish_module,
    link_libraries,
)
from faabric.toolchain.libraries import sources_digest
from faabric.toolchain.movable import stand_in_tools

CXX_SUFFIXES = frozenset({".cpp", ".cc", ".cxx", ".c++", ".C"})
_OMP = re.compile(rb"^\s*#\s*(pragma\s+omp\b|include\s*[<\"]omp\.h[>\"])", re.MULTILINE)
_PTHREAD = re.compile(rb"^\s*#\s*include\s*[<\"]pthread\.h[>\"]", re.MULTILINE)


def default_flags_for(source: Path) -> tuple[str, ...]:
    """Flags a source needs that the user should not have to type.

    ("-fopenmp",) when it uses OpenMP (`#pragma omp` or `<omp.h>`), ("-pthread",) when it
    includes <pthread.h>, () otherwise.
    """
    try:
        text = source.read_bytes()
    except OSError as error:
        raise ToolchainError(f"cannot read {source}: {error.strerror}") from None
    if _OMP.search(text):
        return ("-fopenmp",)
    if _PTHREAD.search(text):
        return ("-pthread",)
    return ()


def build(source: Path, *, flags: Sequence[str] = (), cache_dir: Path) -> Path:
    """Compile `source` to a .wasm in `cache_dir` and return its path; reuse a cached build.

    Raises ToolchainError when the compiler is missing or rejects the program (the message
    carries the compiler's diagnostics).
    """
    try:
        data = source.read_bytes()
    except OSError as error:
        raise ToolchainError(f"cannot read {source}: {error.strerror}") from None
    cxx = source.suffix in CXX_SUFFIXES
    compiler = find_compiler(cxx)
    key = cache_key(data, flags, compiler.identity, cxx)
    target = cache_dir / f"{source.stem}-{key[:32]}.wasm"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    _compile(compiler.path, source, flags, cxx, target)
    return target


def cache_key(data: bytes, flags: Sequence[str], compiler: str, cxx: bool) -> str:
    """sha256 hex over the source, flags, compiler identity, our headers/shims and libraries."""
    digest = hashlib.sha256()
    for part in (data, "\0".join(flags).encode(), compiler.encode(), b"c++" if cxx else b"c"):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    digest.update(b"asyncify-2")  # the migration rewrite of movable.py
    digest.update(b"atomics-1")  # the atomics rewrite of atomics.py
    digest.update(b"mman-1")  # wasi-libc's mmap emulation on every link
    digest.update(defaults_identity().encode())  # the flags the driver adds
    for support in (*sorted(INCLUDE_DIR.glob("*.h")), *SHIMS):
        digest.update(support.name.encode())
        digest.update(support.read_bytes())
    digest.update(sources_digest().encode())
    return digest.hexdigest()


def _compile(
    compiler: Path, source: Path, flags: Sequence[str], cxx: bool, target: Path
) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=".build-", suffix=".wasm", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        libraries = link_libraries(flags, target.parent / "libs")
        tools = stand_in_tools(target.parent)
        cmd = command_line(compiler, [*flags, str(source), "-o", str(tmp)], cxx, libraries,
                           tools)
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, env=environment(), check=False
            )
        except OSError as error:
            raise ToolchainError(f"cannot run {compiler}: {error.strerror}") from None
        if done.returncode != 0:
            diagnostics = (done.stderr or done.stdout).strip()
            raise ToolchainError(f"compiling {source.name} failed:\n{diagnostics}")
        finish_module(tmp, flags, libraries)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
