"""The `faabric` command as users run it: exit codes, outputs, one-line errors."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import GUESTS, Cluster

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("faabric:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_run_prints_every_granules_output(run_cli: Cli) -> None:
    result = run_cli("run", "-n", "3", "--slots", "3", str(GUESTS / "hello.c"), "--", "a", "b")
    assert result.returncode == 0, result.stderr
    granules = [line for line in result.stdout.splitlines() if line.startswith("granule")]
    assert sorted(granules) == ["granule 0 of 3", "granule 1 of 3", "granule 2 of 3"]
    assert result.stdout.count("argv[2]=b") == 3
    assert result.stderr.count("to stderr") == 3


def test_run_across_two_worker_processes(run_cli: Cli) -> None:
    result = run_cli("run", "-n", "4", "--hosts", "2", "--slots", "2", str(GUESTS / "spin.c"),
                     "--", "50")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["spun 0", "spun 1", "spun 2", "spun 3"]


@pytest.mark.parametrize(
    ("options", "program", "guest_args", "status", "message"),
    [
        ([], "exit_code.c", ["3"], 3, "granule 0 on "),
        ([], "trap.c", [], 134, "trapped"),
        (["--timeout", "1"], "loop.c", [], 124, "timed out after 1 s"),
    ],
)
def test_run_reports_a_failing_granule_in_one_line(
    run_cli: Cli, options: list[str], program: str, guest_args: list[str], status: int,
    message: str,
) -> None:
    result = run_cli("run", *options, str(GUESTS / program), "--", *guest_args)
    assert result.returncode == status, result.stderr
    assert message in one_error_line(result)


def test_run_refuses_more_granules_than_slots(run_cli: Cli) -> None:
    result = run_cli("run", "-n", "3", "--slots", "2", str(GUESTS / "noop.c"))
    assert result.returncode == 1
    assert "not enough slots" in one_error_line(result)


def test_run_rejects_files_that_are_not_wasm(run_cli: Cli, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.wasm"
    bogus.write_bytes(b"#!/bin/sh\necho hi\n")
    result = run_cli("run", str(bogus))
    assert result.returncode != 0
    assert "not a WebAssembly module" in one_error_line(result)


def test_run_shows_compiler_errors_without_a_traceback(run_cli: Cli) -> None:
    result = run_cli("run", str(GUESTS / "broken.c"))
    assert result.returncode != 0
    assert "error" in result.stderr


def test_run_missing_file(run_cli: Cli) -> None:
    result = run_cli("run", "nowhere.c")
    assert result.returncode == 1
    assert "no such file" in one_error_line(result)


def test_run_against_a_running_planner(run_cli: Cli, two_hosts: Cluster) -> None:
    result = run_cli("run", "--planner", two_hosts.url, "-n", "4", str(GUESTS / "hello.c"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("GREETING=(unset)") == 4


def test_status_without_a_planner_is_one_line(run_cli: Cli) -> None:
    result = run_cli("status", "--planner", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "cannot reach the planner" in one_error_line(result)


def test_cc_compiles_a_runnable_module(run_cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "hello.wasm"
    built = run_cli("cc", str(GUESTS / "hello.c"), "-o", str(out))
    assert built.returncode == 0, built.stderr
    result = run_cli("run", str(out))
    assert result.returncode == 0 and "granule 0 of 1" in result.stdout
