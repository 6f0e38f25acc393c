"""OpenMP teams that span hosts: two workers with two slots each, so a team of 3 or 4 threads
started on one of them gets the other's slots, runs part of its threads there on a snapshot
of the memory, synchronises through the main host and brings the writes back at the join.
The programs are the single-host suite's plus one with large arrays; their output must equal
the same C built natively with clang-16 -fopenmp, except the lines that update one variable
from several hosts with `omp atomic`, which docs/openmp.md describes as not combined."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import GUESTS, Cluster, start_planner
from tests.integration.test_openmp import NATIVE_CC, OPENMP, faabric_cli, native_missing

pytestmark = pytest.mark.integration

PROGRAMS = (*OPENMP, "omp_hosts")
# lines of omp_sync whose values come from `omp atomic` updates made on several hosts
ATOMIC_LINES = ("atomic:", "100 single nowait:")


@pytest.fixture(scope="module")
def cluster(cache_dir: Path) -> Iterator[Cluster]:
    """One planner and two workers with 2 slots each for the whole module."""
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_dir))
    env.pop("FAABRIC_CONFIG", None)
    proc, url = start_planner(env, 2.0)
    running = Cluster(proc, url, env)
    try:
        running.add_worker("omp-a", 2)
        running.add_worker("omp-b", 2)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def built(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("omp-hosts-wasm")
    modules = {}
    for name in PROGRAMS:
        target = out / f"{name}.wasm"
        done = faabric_cli(cluster, "cc", "-fopenmp", str(GUESTS / f"{name}.c"), "-o",
                           str(target))
        assert done.returncode == 0, done.stderr
        modules[name] = target
    return modules


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    missing = native_missing()
    if missing is not None:
        pytest.skip(missing)
    out = tmp_path_factory.mktemp("omp-hosts-native")
    binaries = {}
    for name in PROGRAMS:
        target = out / name
        subprocess.run([NATIVE_CC, "-O2", "-fopenmp", str(GUESTS / f"{name}.c"), "-o",
                        str(target)], check=True, capture_output=True)
        binaries[name] = target
    return binaries


def _comparable(output: str) -> list[str]:
    return [line for line in output.splitlines() if not line.startswith(ATOMIC_LINES)]


@pytest.mark.parametrize("threads", (3, 4))
@pytest.mark.parametrize("name", PROGRAMS)
def test_team_across_hosts_matches_native(
    cluster: Cluster, built: dict[str, Path], native: dict[str, Path], name: str, threads: int
) -> None:
    ours = faabric_cli(cluster, "run", "--planner", cluster.url, "--env",
                       f"OMP_NUM_THREADS={threads}", str(built[name]))
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run([str(native[name])], capture_output=True, text=True, check=True,
                            env={"OMP_NUM_THREADS": str(threads)}, timeout=60)
    assert _comparable(ours.stdout) == _comparable(theirs.stdout)


def test_a_thread_that_traps_on_another_host_fails_the_program_naming_it(
    cluster: Cluster, built: dict[str, Path]
) -> None:
    result = faabric_cli(cluster, "run", "--planner", cluster.url, "--env",
                         "OMP_NUM_THREADS=4", str(built["omp_hosts"]), "--", "3")
    assert result.returncode != 0
    assert re.search(r"on worker omp-[ab] \(OpenMP threads 2, 3\): trapped: OpenMP thread 3 "
                     r"trapped: wasm trap", result.stderr), result.stderr
    # the workers keep serving: the same program runs again
    again = faabric_cli(cluster, "run", "--planner", cluster.url, "--env",
                        "OMP_NUM_THREADS=4", str(built["omp_hosts"]))
    assert again.returncode == 0, again.stderr
