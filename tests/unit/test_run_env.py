"""The guest's environment: the shell's OMP_* variables, `-x` and `--env` of `faabric run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faabric import cli
from faabric.errors import ConfigError
from faabric.run import guest_environment

SHELL = {"OMP_NUM_THREADS": "4", "OMP_SCHEDULE": "dynamic,2", "PATH": "/usr/bin",
         "HOME": "/home/alice", "FOO": "bar", "MY_OMP_X": "1"}


def test_the_shells_omp_variables_are_inherited_and_nothing_else() -> None:
    assert guest_environment(SHELL, [], []) == {
        "OMP_NUM_THREADS": "4", "OMP_SCHEDULE": "dynamic,2"
    }


def test_an_empty_shell_gives_an_empty_environment() -> None:
    assert guest_environment({}, [], []) == {}


def test_x_name_passes_the_variable_from_the_shell() -> None:
    env = guest_environment(SHELL, ["FOO", "HOME"], [])
    assert env["FOO"] == "bar"
    assert env["HOME"] == "/home/alice"
    assert "PATH" not in env


def test_x_name_value_sets_the_variable() -> None:
    env = guest_environment({}, ["FOO=baz", "EMPTY=", "EQ=a=b"], [])
    assert env == {"FOO": "baz", "EMPTY": "", "EQ": "a=b"}


def test_x_wins_over_inherited_omp_variables() -> None:
    env = guest_environment(SHELL, ["OMP_NUM_THREADS=2"], [])
    assert env["OMP_NUM_THREADS"] == "2"
    assert env["OMP_SCHEDULE"] == "dynamic,2"


def test_env_wins_over_x_and_inherited_omp_variables() -> None:
    env = guest_environment(SHELL, ["FOO", "OMP_NUM_THREADS=2"],
                            ["FOO=qux", "OMP_NUM_THREADS=3", "OMP_SCHEDULE=static"])
    assert env == {"FOO": "qux", "OMP_NUM_THREADS": "3", "OMP_SCHEDULE": "static"}


def test_a_later_x_or_env_wins_over_an_earlier_one() -> None:
    assert guest_environment({}, ["A=1", "A=2"], ["B=1", "B=2"]) == {"A": "2", "B": "2"}


def test_x_of_an_unset_variable_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"^-x NOPE: not set in the environment$"):
        guest_environment(SHELL, ["NOPE"], [])


@pytest.mark.parametrize("item", ["", "=value"])
def test_x_without_a_name_is_an_error(item: str) -> None:
    with pytest.raises(ConfigError, match="-x expects NAME or NAME=VALUE"):
        guest_environment(SHELL, [item], [])


@pytest.mark.parametrize("pair", ["FOO", "=value"])
def test_env_without_name_and_value_is_an_error(pair: str) -> None:
    with pytest.raises(ConfigError, match="--env expects NAME=VALUE"):
        guest_environment(SHELL, [], [pair])


def test_the_shell_mapping_is_not_changed() -> None:
    shell = dict(SHELL)
    guest_environment(shell, ["FOO=changed"], ["OMP_NUM_THREADS=1"])
    assert shell == SHELL


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, str]]:
    """The environments `faabric run` hands to `run_program`, recorded instead of run."""
    monkeypatch.chdir(tmp_path)  # no faabric.toml around
    monkeypatch.delenv("FAABRIC_CONFIG", raising=False)
    calls: list[dict[str, str]] = []

    def fake_run(*args: Any, env: dict[str, str], **kwargs: Any) -> int:
        calls.append(env)
        return 0

    monkeypatch.setattr("faabric.run.run_program", fake_run)
    return calls


def test_the_cli_reads_the_launching_shell(
    runs: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("FOO", "bar")
    monkeypatch.setenv("OMP_DYNAMIC", "true")
    assert cli.main(["run", "-x", "FOO", "-x", "BAZ=1", "--env", "OMP_DYNAMIC=false",
                     "app.c"]) == 0
    assert runs[0]["OMP_NUM_THREADS"] == "3"
    assert runs[0]["OMP_DYNAMIC"] == "false"
    assert runs[0]["FOO"] == "bar"
    assert runs[0]["BAZ"] == "1"


def test_the_cli_reports_an_unset_x_in_one_line(
    runs: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    assert cli.main(["run", "-x", "NOPE", "app.c"]) == 2
    assert capsys.readouterr().err == "faabric run: -x NOPE: not set in the environment\n"
    assert runs == []
