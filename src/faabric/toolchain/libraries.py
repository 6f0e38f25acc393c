"""The C libraries `faabric cc` links into every program, built once into cached archives.

Each library is a directory of C sources under `toolchain/lib/<name>/`, declared in
LIBRARIES. It is compiled with clang-16 for wasm32-wasi into a static archive, in one of two
flavours: "plain" or "threads" (`-matomics -mbulk-memory`, for `-fopenmp`/`-pthread` builds).
A library declared `threaded_only` is linked into thread-capable builds only. Archives live in
`<cache>/libs/`, named by a hash of the sources, the compiler's identity and the flavour, and
are written to a temporary file then renamed, so concurrent builds are safe. The linker pulls
only the archive members a program references. This module must not build programs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from faabric.errors import ToolchainError
from faabric.toolchain.archive import write_archive

LIB_DIR = Path(__file__).resolve().parent / "lib"
INCLUDE_DIR = Path(__file__).resolve().parent / "include"  # the public headers
THREAD_FLAGS = ("-matomics", "-mbulk-memory")


@dataclass(frozen=True, slots=True)
class Library:
    """A library of C sources in `toolchain/lib/<name>/`."""

    name: str
    threaded_only: bool = False  # True: linked only into -fopenmp / -pthread builds

    @property
    def directory(self) -> Path:
        return LIB_DIR / self.name

    def sources(self) -> list[Path]:
        """The C files compiled into the archive, in a stable order."""
        return sorted(self.directory.glob("*.c"))

    def files(self) -> list[Path]:
        """Every file whose content decides the archive: its sources, its private headers
        and the public headers it includes (mpi.h, omp.h, pthread.h, ...)."""
        own = [*self.directory.glob("*.c"), *self.directory.glob("*.h")]
        return [*sorted(own), *sorted(INCLUDE_DIR.glob("*.h"))]


# Every library faabric links. A thread-only runtime is declared with threaded_only=True.
LIBRARIES: tuple[Library, ...] = (Library("mpi"), Library("omp", threaded_only=True))


def libraries_for(threaded: bool) -> tuple[Library, ...]:
    """The libraries a plain (threaded=False) or thread-capable build links."""
    return tuple(lib for lib in LIBRARIES if threaded or not lib.threaded_only)


def _hash(parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def _contents(lib: Library) -> Iterable[bytes]:
    for path in lib.files():
        yield f"{lib.name}/{path.name}".encode()
        yield path.read_bytes()


def sources_digest() -> str:
    """A digest of every library's files, for cache keys of programs linked against them."""
    return _hash(part for lib in LIBRARIES for part in _contents(lib))


def archive_name(lib: Library, compiler_identity: str, flags: Sequence[str]) -> str:
    """`lib<name>-<flavour>-<hash>.a` for `lib` built with `flags` by that compiler."""
    key = _hash([compiler_identity.encode(), "\0".join(flags).encode(), *_contents(lib)])
    flavour = "threads" if THREAD_FLAGS[0] in flags else "plain"
    return f"lib{lib.name}-{flavour}-{key[:32]}.a"


def ensure_archives(
    compiler: Path, compiler_identity: str, flags: Sequence[str], threaded: bool,
    cache_dir: Path, env: dict[str, str],
) -> list[Path]:
    """Paths of the archives a build links, building the missing ones into `cache_dir`.

    `flags` are the compile flags of the build (target, include path, ...); the thread flags
    are added for thread-capable builds. Raises ToolchainError with the compiler's messages
    when a library does not compile.
    """
    full = [*flags, *(THREAD_FLAGS if threaded else ())]
    paths = []
    for lib in libraries_for(threaded):
        target = cache_dir / archive_name(lib, compiler_identity, full)
        if not target.is_file():
            cache_dir.mkdir(parents=True, exist_ok=True)
            _build(lib, compiler, full, target, env)
        paths.append(target)
    return paths


def _build(lib: Library, compiler: Path, flags: Sequence[str], target: Path,
           env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix=".lib-", dir=target.parent) as work:
        sources = lib.sources()
        cmd = [str(compiler), *flags, "-I", str(lib.directory), "-c", *map(str, sources)]
        try:
            done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env,
                                  check=False)
        except OSError as error:
            raise ToolchainError(f"cannot run {compiler}: {error.strerror}") from None
        if done.returncode != 0:
            diagnostics = (done.stderr or done.stdout).strip()
            raise ToolchainError(f"building the {lib.name} library failed:\n{diagnostics}")
        partial = Path(work) / target.name
        write_archive([Path(work) / f"{src.stem}.o" for src in sources], partial)
        os.replace(partial, target)
