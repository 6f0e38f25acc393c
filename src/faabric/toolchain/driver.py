"""The compiler driver behind `faabric cc` / `faabric c++`: clang-16 aimed at wasm32-wasi.

It turns clang-style arguments into a full clang command line (target, our headers, link
flags, the thread-capable build with its shims, faabric's C library archives) and runs it.
It must not cache programs, parse them or know anything about running modules; `builder.py`
caches programs and `libraries.py` the library archives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faabric.config import default_cache_dir
from faabric.errors import ToolchainError
from faabric.toolchain.atomics import route_atomics_file, runtime_functions
from faabric.toolchain.libraries import ensure_archives
from faabric.toolchain.movable import make_movable, stand_in_tools

C_COMPILER = "clang-16"
CXX_COMPILER = "clang++-16"
TARGET = "--target=wasm32-wasi"
CXX_INCLUDE = "/usr/include/wasm32-wasi/c++/v1"
INSTALL_HINT = (
    "apt-get install clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32"
    " libc++-16-dev-wasm32 libc++abi-16-dev-wasm32"
)
THREADED_MAX_MEMORY = 1 << 30  # bytes a thread-capable module may grow its shared memory to
MISSING_COMPILER_STATUS = 127

PACKAGE_DIR = Path(__file__).resolve().parent
INCLUDE_DIR = PACKAGE_DIR / "include"
SHIM_DIR = PACKAGE_DIR / "shims"
SHIMS = (SHIM_DIR / "malloc_lock.c",)  # OpenMP and pthreads: the omp library

_WRAPPED = ("malloc", "free", "calloc", "realloc", "posix_memalign", "aligned_alloc")
# stdio output, serialised by lib/omp/stdio_lock.c (wasi-libc's FILEs have no locks)
_WRAPPED_STDIO = ("vfprintf", "fwrite", "fputs", "puts", "fputc", "putc", "putchar", "fflush")
_NO_LINK = frozenset({"-c", "-S", "-E", "-M", "-MM", "-fsyntax-only"})
# wasi-libc's mmap emulation (anonymous and private file mappings, copied into linear
# memory): its header wants the macro, and the archive adds code only to programs that call
# mmap/munmap, as the linker takes only referenced members.
MMAN_DEFINE = "-D_WASI_EMULATED_MMAN"
MMAN_LIBRARY = "-lwasi-emulated-mman"
_THREAD_FLAGS = frozenset({"-fopenmp", "-pthread"})
DEFAULT_OPT = "-O2"  # unless the user gives an -O flag (-O3 measured no faster)
# wasmtime runs 128-bit SIMD, so let clang vectorise as it does natively with SSE2.
SIMD = "-msimd128"
# LLVM 16 has no interleave cost model for wasm32, so a vectorised loop does one vector a
# iteration: too little work against the loop overhead left in Cranelift's code. Four
# vectors an iteration took naive dgemm from 1.8x to 1.1x native and a 5-point stencil from
# 1.45x to 1.0x (docs/performance.md, "Compute kernels"). Added at the speed levels only,
# unless the user chose an interleave count.
INTERLEAVE = ("-mllvm", "-force-vector-interleave=4")
_INTERLEAVE_OPTION = "-force-vector-interleave"
_SPEED_LEVELS = frozenset({"-O2", "-O3", "-Ofast"})
_SOURCE_SUFFIXES = (".c", ".i", ".cc", ".cp", ".cpp", ".cxx", ".c++", ".C", ".ii")


@dataclass(frozen=True, slots=True)
class Compiler:
    """A resolved compiler executable and the identity used in cache keys."""

    path: Path
    identity: str


def find_compiler(cxx: bool) -> Compiler:
    """Locate clang-16 (or clang++-16); raise ToolchainError with install advice if absent."""
    name = CXX_COMPILER if cxx else C_COMPILER
    found = shutil.which(name)
    if found is None:
        raise ToolchainError(f"{name} not found; install the wasm toolchain with: {INSTALL_HINT}")
    real = Path(found).resolve()
    stat = real.stat()
    return Compiler(Path(found), f"{real}:{stat.st_size}:{stat.st_mtime_ns}")


def is_thread_capable(args: Sequence[str]) -> bool:
    """True when the arguments ask for OpenMP or threads (a shared-memory build)."""
    return any(arg in _THREAD_FLAGS or arg.startswith("-fopenmp=") for arg in args)


def command_line(
    compiler: Path, args: Sequence[str], cxx: bool, libraries: Sequence[Path] = (),
    tools: Path | None = None,
) -> list[str]:
    """The full clang command for user `args` (sources, -o, -O, -D ... pass through).

    `libraries` are the archives of faabric's C libraries (see `link_libraries`), linked
    after the user's inputs; `tools` is searched first for the programs clang runs (see
    `movable.stand_in_tools`).
    """
    links = not any(arg in _NO_LINK for arg in args)
    threaded = is_thread_capable(args)
    cmd = [str(compiler), TARGET, SIMD, "-isystem", str(INCLUDE_DIR), MMAN_DEFINE]
    if tools is not None:
        cmd.append(f"-B{tools}")
    cmd += optimisation_flags(args)
    if cxx:
        cmd += ["-fno-exceptions", "-isystem", CXX_INCLUDE]
    if threaded:
        cmd += ["-matomics", "-mbulk-memory"]
    if links and threaded:
        # The shims are C whatever the driver: `-x c` ... `-x none` stops clang++ reading them
        # as C++. They go first so that `-x none` is followed by the user's inputs.
        cmd += ["-x", "c", *(str(shim) for shim in SHIMS), "-x", "none"]
    cmd += list(args)
    if links and libraries:
        cmd += ["-x", "none", *(str(lib) for lib in libraries)]
    if links:
        cmd.append(MMAN_LIBRARY)
        cmd.append("-Wl,--allow-undefined")
        # A migrating rank's stack pointer travels with it (see movable.py).
        cmd.append(_threaded_link_flags() if threaded else "-Wl,--export=__stack_pointer")
    return cmd


def optimisation_flags(args: Sequence[str]) -> list[str]:
    """What the driver adds to user `args` for speed: `DEFAULT_OPT` unless they hold an -O
    flag (the last one counts, as in clang), and `INTERLEAVE` at -O2, -O3 and -Ofast when
    they compile sources (a link alone would warn that it is unused), unless they set an
    interleave count themselves."""
    levels = [arg for arg in args if arg.startswith("-O")]
    added = [] if levels else [DEFAULT_OPT]
    level = levels[-1] if levels else DEFAULT_OPT
    compiles = any(arg in ("-x", "-") or arg.endswith(_SOURCE_SUFFIXES) for arg in args)
    if (level in _SPEED_LEVELS and compiles
            and not any(_INTERLEAVE_OPTION in arg for arg in args)):
        added += INTERLEAVE
    return added


def defaults_identity() -> str:
    """The flags the driver adds, as text for cache keys: a change rebuilds cached programs."""
    return " ".join((SIMD, DEFAULT_OPT, *INTERLEAVE))


def _threaded_link_flags() -> str:
    linker = [
        "--no-check-features",
        "--import-memory",
        "--export-memory",
        "--shared-memory",
        f"--max-memory={THREADED_MAX_MEMORY}",
        "--export-table",
        "--export=__stack_pointer",
        # Exported under the names __wrap_malloc / __wrap_free. Asking for those names directly
        # makes wasm-ld 16 emit calls to function indices that do not exist.
        "--export=malloc",
        "--export=free",
        # the helpers the program's atomic instructions are rewritten into (atomics.py)
        "--undefined=fth_atomics_remote",
    ]
    linker += [f"--wrap={name}" for name in (*_WRAPPED, *_WRAPPED_STDIO)]
    return "-Wl," + ",".join(linker)


def library_flags() -> list[str]:
    """Compile flags of faabric's own C libraries (libraries.py adds the thread flags)."""
    return [TARGET, "-O2", "-msimd128", "-isystem", str(INCLUDE_DIR)]


def link_libraries(args: Sequence[str], cache_dir: Path) -> list[Path]:
    """Archives a link of `args` needs, built into `cache_dir` on first use; [] if no link."""
    if any(arg in _NO_LINK for arg in args):
        return []
    compiler = find_compiler(cxx=False)
    return ensure_archives(compiler.path, compiler.identity, library_flags(),
                           is_thread_capable(args), cache_dir, environment())


def cc_main(argv: list[str], cxx: bool) -> int:
    """Run `faabric cc` (or `faabric c++` when `cxx`) with clang-style `argv`; return the status.

    Diagnostics are the compiler's own, printed as it runs; a missing compiler is one line on
    stderr and status 127.
    """
    tool = "c++" if cxx else "cc"
    if not argv:
        print(f"faabric {tool}: no input files (usage: faabric {tool} [clang options] FILE...)",
              file=sys.stderr)
        return 2
    try:
        compiler = find_compiler(cxx)
    except ToolchainError as error:
        print(f"faabric {tool}: {error}", file=sys.stderr)
        return MISSING_COMPILER_STATUS
    try:
        libraries = link_libraries(argv, default_cache_dir() / "builds" / "libs")
    except ToolchainError as error:
        print(f"faabric {tool}: {error}", file=sys.stderr)
        return 1
    try:
        tools = stand_in_tools(default_cache_dir())
        cmd = command_line(compiler.path, argv, cxx, libraries, tools)
        status = subprocess.run(cmd, check=False).returncode
    except OSError as error:
        print(f"faabric {tool}: cannot run {compiler.path}: {error.strerror}", file=sys.stderr)
        return MISSING_COMPILER_STATUS
    except KeyboardInterrupt:
        return 130
    output = linked_output(argv)
    if status != 0 or output is None:
        return status
    try:
        finish_module(output, argv, libraries)
    except ToolchainError as error:
        print(f"faabric {tool}: {error}", file=sys.stderr)
        return 1
    return 0


def finish_module(path: Path, args: Sequence[str], libraries: Sequence[Path]) -> None:
    """The rewrites after a link of `args`: a thread-capable module's own atomic
    instructions become calls that work in teams spanning hosts (atomics.py); an MPI
    program's call paths to migration points become movable (movable.py)."""
    if is_thread_capable(args):
        route_atomics_file(path, runtime_functions(libraries))
    else:
        make_movable(path, args, environment())


def linked_output(args: Sequence[str]) -> Path | None:
    """The module a link of `args` writes; None if they do not link."""
    if any(arg in _NO_LINK for arg in args):
        return None
    for i, arg in enumerate(args):
        if arg == "-o" and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("-o") and len(arg) > 2:
            return Path(arg[2:])
    return Path("a.out")


def environment() -> dict[str, str]:
    """The environment compilers run in: ours, with a stable locale for diagnostics."""
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C")
    return env
