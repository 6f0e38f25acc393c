"""OpenMP teams that span hosts: two workers with two slots each, so a team of 3 or 4 threads
started on one of them gets the other's slots, runs part of its threads there on a snapshot
of the memory, synchronises through the main host and brings the writes back at the join.
The programs are the single-host suite's plus one with large arrays, one with atomics of every
kind and width, and two flag-and-flush pipelines; their output must equal the same C built
natively with clang-16 -fopenmp."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import GUESTS, Cluster
from tests.integration.test_openmp import (
    OPENMP,
    build_guests,
    build_native,
    faabric_cli,
    omp_cluster,
)

pytestmark = pytest.mark.integration

PROGRAMS = (*OPENMP, "omp_hosts")


@pytest.fixture(scope="module")
def cluster(cache_dir: Path) -> Iterator[Cluster]:
    """One planner and two workers with 2 slots each for the whole module."""
    yield from omp_cluster(cache_dir, {"omp-a": 2, "omp-b": 2})


@pytest.fixture(scope="module")
def built(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_guests(cluster, PROGRAMS, tmp_path_factory.mktemp("omp-hosts-wasm"))


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_native(PROGRAMS, tmp_path_factory.mktemp("omp-hosts-native"))


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
    assert ours.stdout == theirs.stdout


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


def test_a_team_larger_than_the_cluster_shrinks_to_its_slots_only_if_dynamic(
    cluster: Cluster, tmp_path: Path
) -> None:
    source = tmp_path / "team_size.c"
    source.write_text(
        "#include <omp.h>\n#include <stdio.h>\n"
        "int main(void) {\n  int n = 0;\n#pragma omp parallel\n  {\n#pragma omp single\n"
        "    n = omp_get_num_threads();\n  }\n  printf(\"threads=%d\\n\", n);\n  return 0;\n}\n"
    )
    # the cluster has 4 slots: a dynamic team of 8 gets 4 (2 here, 2 on the other worker);
    # without dynamic adjustment all 8 run, oversubscribing the granule's worker
    for dynamic, expected in (("true", 4), ("false", 8)):
        result = faabric_cli(cluster, "run", "--planner", cluster.url, "--env",
                             "OMP_NUM_THREADS=8", "--env", f"OMP_DYNAMIC={dynamic}",
                             str(source))
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"threads={expected}\n"


def test_a_region_that_does_not_pay_for_spanning_stays_on_one_host_and_says_so(
    cluster: Cluster, tmp_path: Path
) -> None:
    wasm = tmp_path / "keep.wasm"
    built = faabric_cli(cluster, "cc", "-fopenmp", str(GUESTS / "omp_keep_local.c"), "-o",
                        str(wasm))
    assert built.returncode == 0, built.stderr
    client = cluster.client()
    try:
        module = client.upload_module(wasm.read_bytes())
        app = client.submit({"module": module, "size": 1, "program": "keep",
                             "env": {"OMP_NUM_THREADS": "4"}})
        doc = client.wait_app(app["app_id"], 120)
        always = client.submit({"module": module, "size": 1, "program": "keep",
                                "env": {"OMP_NUM_THREADS": "4", "FAABRIC_SPAN": "always"}})
        spanning = client.wait_app(always["app_id"], 120)
    finally:
        client.close()
    assert spanning["status"] == 0 and not spanning["events"], spanning
    assert doc["status"] == 0, doc
    assert doc["results"][0]["stdout"] == b"total 960\n"
    kept = [e for e in doc["events"] if e["kind"] == "kept-local"]
    assert len(kept) == 1, doc["events"]
    assert kept[0]["threads"] == 4 and kept[0]["ranks"] == [0]
    assert "across hosts took" in kept[0]["detail"]
