"""MPI programs (tests/guests/mpi_*.c) run with `faabric run` on one and two worker processes,
and natively with OpenMPI when it is installed, against the same expected output."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from faabric.toolchain import build
from tests.integration.conftest import GUESTS

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]

PROGRAMS = ("mpi_p2p", "mpi_coll", "mpi_ops", "mpi_comm", "mpi_types", "mpi_errors",
            "mpi_rma", "mpi_icoll", "mpi_groups", "mpi_mmap")
# The MPI-3 programs also run on two workers with one rank each.
MPI3_PROGRAMS = ("mpi_rma", "mpi_icoll", "mpi_groups", "mpi_mmap")
EXPECTED = GUESTS / "expected"
# (world size, `faabric run` options): one worker, then two workers split 2+2 and 3+1.
SHAPES = {
    "n1": (1, ["--slots", "4"]),
    "n2": (2, ["--slots", "4"]),
    "n3": (3, ["--slots", "4"]),
    "n4": (4, ["--slots", "4"]),
    "n4-hosts-2+2": (4, ["--hosts", "2", "--slots", "2"]),
    "n4-hosts-3+1": (4, ["--hosts", "2", "--slots", "3"]),
}
# Lines OpenMPI prints differently on purpose (see docs/mpi.md, "Differences from OpenMPI"):
# it leaves status.MPI_ERROR at MPI_SUCCESS on truncation and its MPI_Waitall succeeds.
NATIVE_DIFFERENCES = {"mpi_errors": ("recv of 10 ints into 5:", "waitall with a truncated")}
# OpenMPI 4.1's default one-sided component refuses windows of a single process; pt2pt
# serves every size.
NATIVE_OPTIONS = {name: ("--mca", "osc", "pt2pt") for name in ("mpi_rma", "mpi_groups",
                                                              "mpi_mmap")}


def expected(program: str, size: int) -> str:
    return (EXPECTED / f"{program}.{size}.txt").read_text()


@pytest.fixture(scope="session")
def mpi_modules(cache_dir: Path) -> dict[str, Path]:
    """Every MPI test program compiled once with faabric's toolchain."""
    names = (*PROGRAMS, "mpi_large")
    return {name: build(GUESTS / f"{name}.c", cache_dir=cache_dir / "builds") for name in names}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("program", PROGRAMS)
def test_program_output(run_cli: Cli, mpi_modules: dict[str, Path], program: str,
                        shape: str) -> None:
    size, options = SHAPES[shape]
    result = run_cli("run", "-n", str(size), *options, str(mpi_modules[program]))
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected(program, size)


@pytest.mark.parametrize("program", MPI3_PROGRAMS)
def test_one_rank_on_each_of_two_hosts(run_cli: Cli, mpi_modules: dict[str, Path],
                                       program: str) -> None:
    result = run_cli("run", "-n", "2", "--hosts", "2", "--slots", "1",
                     str(mpi_modules[program]))
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected(program, 2)


def test_64_mib_message_between_two_hosts(run_cli: Cli, mpi_modules: dict[str, Path]) -> None:
    result = run_cli("run", "-n", "2", "--hosts", "2", "--slots", "1",
                     str(mpi_modules["mpi_large"]))
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected("mpi_large", 2)


def test_default_error_handler_aborts_naming_the_call(
    run_cli: Cli, mpi_modules: dict[str, Path]
) -> None:
    result = run_cli("run", "-n", "2", str(mpi_modules["mpi_errors"]), "--", "fatal")
    assert result.returncode != 0
    assert "faabric MPI: MPI_Send: invalid rank (MPI_ERR_RANK); aborting" in result.stderr
    assert "not reached" not in result.stdout


def test_unsupported_call_says_so_and_returns_an_error(
    run_cli: Cli, mpi_modules: dict[str, Path]
) -> None:
    result = run_cli("run", "-n", "1", str(mpi_modules["mpi_errors"]), "--", "unsupported")
    assert result.returncode == 0, result.stderr
    assert "faabric MPI: MPI_Win_create_dynamic is not supported" in result.stderr
    assert "unsupported call returned an error: yes" in result.stdout


# ---- the same programs under OpenMPI ----

def _native_tools() -> tuple[str, str] | None:
    mpicc, mpirun = shutil.which("mpicc"), shutil.which("mpirun")
    return (mpicc, mpirun) if mpicc and mpirun else None


@pytest.fixture(scope="session")
def native(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The MPI test programs built with OpenMPI's mpicc (skipped when it is not installed)."""
    tools = _native_tools()
    if tools is None:
        pytest.skip("OpenMPI (mpicc, mpirun) is not installed")
    out = tmp_path_factory.mktemp("native")
    built = {}
    for name in PROGRAMS:
        exe = out / name
        done = subprocess.run([tools[0], "-O2", "-o", str(exe), str(GUESTS / f"{name}.c")],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        built[name] = exe
    return built


def _without(text: str, prefixes: tuple[str, ...]) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(prefixes)]


@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize("program", PROGRAMS)
def test_openmpi_prints_the_same(native: dict[str, Path], program: str, size: int) -> None:
    tools = _native_tools()
    assert tools is not None
    cmd = [tools[1], "--oversubscribe", *NATIVE_OPTIONS.get(program, ()), "-n", str(size),
           str(native[program])]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    skip = NATIVE_DIFFERENCES.get(program, ())
    assert _without(done.stdout, skip) == _without(expected(program, size), skip)
