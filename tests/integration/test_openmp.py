"""OpenMP and pthreads programs built with `faabric cc` and run with `faabric run`, compared
line for line with the same programs built natively by clang-16 (-fopenmp / -pthread), at
one to four threads. Without a native clang-16 and libomp the comparisons are skipped."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import GUESTS, Cluster, clean_env, start_planner

pytestmark = pytest.mark.integration

OPENMP = ("omp_parallel", "omp_loops", "omp_sync", "omp_tasks", "omp_atomics", "omp_flush",
          "omp_pthread_sync")
PTHREADS = ("pthread_basic", "pthread_sync")
THREADS = (1, 2, 3, 4)
NATIVE_CC = "clang-16"


def native_missing() -> str | None:
    if shutil.which(NATIVE_CC) is None:
        return f"{NATIVE_CC} is not installed"
    if not list(Path("/usr/lib/llvm-16/lib").glob("libomp.so*")):
        return "libomp for clang-16 is not installed (libomp-16-dev)"
    return None


def omp_cluster(cache_dir: Path, workers: dict[str, int]) -> Iterator[Cluster]:
    """A planner and `workers` (name -> slots), stopped when the generator is closed."""
    env = clean_env(cache_dir)
    proc, url = start_planner(env, 2.0)
    running = Cluster(proc, url, env)
    try:
        for name, slots in workers.items():
            running.add_worker(name, slots)
        yield running
    finally:
        running.stop()


def _flag(name: str) -> str:
    return "-fopenmp" if name.startswith("omp_") else "-pthread"


def build_guests(cluster: Cluster, names: tuple[str, ...], out: Path) -> dict[str, Path]:
    """The guests `names` built with `faabric cc`: name -> .wasm."""
    modules = {}
    for name in names:
        target = out / f"{name}.wasm"
        done = faabric_cli(cluster, "cc", _flag(name), str(GUESTS / f"{name}.c"), "-o",
                           str(target))
        assert done.returncode == 0, done.stderr
        modules[name] = target
    return modules


def build_native(names: tuple[str, ...], out: Path) -> dict[str, Path]:
    """The guests `names` built natively with clang-16 (skips without it): name -> binary."""
    missing = native_missing()
    if missing is not None:
        pytest.skip(missing)
    binaries = {}
    for name in names:
        target = out / name
        subprocess.run([NATIVE_CC, "-O2", _flag(name), str(GUESTS / f"{name}.c"), "-o",
                        str(target)], check=True, capture_output=True)
        binaries[name] = target
    return binaries


@pytest.fixture(scope="module")
def cluster(cache_dir: Path) -> Iterator[Cluster]:
    """One planner and one worker with 4 slots for the whole module."""
    yield from omp_cluster(cache_dir, {"omp-host": 4})


@pytest.fixture(scope="module")
def built(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_guests(cluster, (*OPENMP, *PTHREADS), tmp_path_factory.mktemp("omp-wasm"))


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_native((*OPENMP, *PTHREADS), tmp_path_factory.mktemp("omp-native"))


def faabric_cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "faabric", *args], env=cluster.env,
                            capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("name", OPENMP)
def test_openmp_matches_native(
    cluster: Cluster, built: dict[str, Path], native: dict[str, Path], name: str, threads: int
) -> None:
    env = f"OMP_NUM_THREADS={threads}"
    ours = faabric_cli(cluster, "run", "--planner", cluster.url, "--env", env, str(built[name]))
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run([str(native[name])], capture_output=True, text=True, check=True,
                            env={"OMP_NUM_THREADS": str(threads)}, timeout=60)
    assert ours.stdout == theirs.stdout


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("name", PTHREADS)
def test_pthreads_match_native(
    cluster: Cluster, built: dict[str, Path], native: dict[str, Path], name: str, threads: int
) -> None:
    ours = faabric_cli(cluster, "run", "--planner", cluster.url, str(built[name]), "--",
                    str(threads))
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run([str(native[name]), str(threads)], capture_output=True, text=True,
                            check=True, timeout=60)
    assert ours.stdout == theirs.stdout


def test_threads_print_whole_lines(cluster: Cluster, tmp_path: Path) -> None:
    source = tmp_path / "print.c"
    source.write_text(
        "#include <omp.h>\n#include <stdio.h>\n"
        "int main(void) {\n#pragma omp parallel num_threads(4)\n"
        "  for (int i = 0; i < 500; i++) printf(\"thread %d line %d ok\\n\","
        " omp_get_thread_num(), i);\n  return 0;\n}\n"
    )
    result = faabric_cli(cluster, "run", "--planner", cluster.url, str(source))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2000
    assert all(line.startswith("thread ") and line.endswith(" ok") for line in lines)


def test_run_passes_the_shells_omp_variables_and_x(cluster: Cluster, tmp_path: Path) -> None:
    source = tmp_path / "shell_env.c"
    source.write_text(
        "#include <omp.h>\n#include <stdio.h>\n#include <stdlib.h>\n"
        "int main(void) {\n  const char *foo = getenv(\"FOO\");\n"
        "  printf(\"%d %s\\n\", omp_get_max_threads(), foo ? foo : \"(unset)\");\n"
        "  return 0;\n}\n"
    )
    shell = dict(cluster.env, OMP_NUM_THREADS="3", FOO="bar")

    def run(*options: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "faabric", "run", "--planner", cluster.url, *options,
             str(source)], env=shell, capture_output=True, text=True, timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run() == "3 (unset)\n"  # OMP_* are inherited, other variables only with -x
    assert run("-x", "FOO") == "3 bar\n"
    assert run("-x", "FOO=baz", "--env", "OMP_NUM_THREADS=2") == "2 baz\n"
