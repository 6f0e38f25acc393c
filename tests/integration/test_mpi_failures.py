"""A rank that fails makes the other ranks' blocking MPI calls fail, naming it, on every host:
the app ends with a non-zero status instead of hanging, and the workers keep serving."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from faabric.toolchain import build
from tests.integration.conftest import GUESTS

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def failure_module(cache_dir: Path) -> Path:
    return build(GUESTS / "mpi_failure.c", cache_dir=cache_dir / "builds")


# The summary names the granule that failed first: rank 1 itself, or another rank whose
# MPI call failed because of rank 1 (whichever the clock saw end first). A trap's details
# (the other ranks' traps inside MPI calls, naming rank 1) are shown with -v only.
@pytest.mark.parametrize(
    ("how", "causes"),
    [
        ("trap", ("granule 1 on", "rank 1 trapped: wasm trap: wasm `unreachable`")),
        ("exit", ("rank 1 exited without calling MPI_Finalize",)),
        ("abort", ("granule 1 on", "rank 1 called MPI_Abort(7)")),
    ],
)
@pytest.mark.parametrize("hosts", [1, 2])
def test_other_ranks_fail_naming_the_rank(
    run_cli: Cli, failure_module: Path, how: str, causes: tuple[str, ...], hosts: int
) -> None:
    began = time.monotonic()
    result = run_cli("run", "-n", "4", "--hosts", str(hosts), "--slots", str(4 // hosts),
                     str(failure_module), "--", how)
    assert result.returncode != 0
    assert "not reached" not in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("faabric: "), result.stderr
    assert any(cause in last for cause in causes), last
    assert len(result.stderr.splitlines()) == 1, result.stderr  # the details need -v
    assert time.monotonic() - began < 30
