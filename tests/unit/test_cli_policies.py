"""The command line's side of policies and evictions: `faabric run --policy` and `$USER`
reach the submitted app, `faabric planner --policy` picks the cluster's policy (an unknown
name is one line), and `faabric status` shows evicting hosts and frozen apps. No cluster is
started: runs are replaced or refused before anything is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faabric import cli
from faabric.config import PlannerConfig, RunConfig, load
from faabric.errors import ConfigError
from faabric.run import run_program


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[RunConfig, str]]:
    """Calls of `run_program` (config and user), recorded instead of run."""
    monkeypatch.chdir(tmp_path)  # no faabric.toml around
    for name in ("FAABRIC_CONFIG", "FAABRIC_POLICY"):
        monkeypatch.delenv(name, raising=False)
    calls: list[tuple[RunConfig, str]] = []

    def fake_run(config: RunConfig, *args: Any, user: str = "", **kwargs: Any) -> int:
        calls.append((config, user))
        return 0

    monkeypatch.setattr("faabric.run.run_program", fake_run)
    return calls


def test_run_sends_its_policy_and_the_user(
    runs: list[tuple[RunConfig, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "alice")
    assert cli.main(["run", "--policy", "compact", "app.c"]) == 0
    assert cli.main(["run", "app.c"]) == 0
    assert [(config.policy, user) for config, user in runs] == [
        ("compact", "alice"), ("", "alice")
    ]


def test_an_unknown_app_policy_is_refused_before_building(tmp_path: Path) -> None:
    config = RunConfig(planner="http://127.0.0.1:1", policy="fifo")
    with pytest.raises(ConfigError, match="unknown scheduling policy 'fifo'"):
        run_program(config, str(tmp_path / "missing.c"), [], token="t" * 16)


def test_an_unknown_cluster_policy_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    status = cli.main(["planner", "--policy", "fifo", "--port", "0", "--control-port", "0"])
    assert status == 1
    err = capsys.readouterr().err.strip()
    assert err == ("faabric: unknown scheduling policy 'fifo' "
                   "(known: bin-pack, compact, spot, whole-vm)")


def test_the_cluster_policy_comes_from_the_environment() -> None:
    assert load(PlannerConfig, "planner", environ={}).policy == "bin-pack"
    env = {"FAABRIC_POLICY": "spot"}
    assert load(PlannerConfig, "planner", environ=env).policy == "spot"


def test_status_shows_evicting_hosts_and_frozen_apps() -> None:
    status = {
        "hosts": [{"name": "a", "slots": 2, "used": 0, "evicting": False},
                  {"name": "b", "slots": 2, "used": 0, "evicting": True}],
        "apps": [{"app_id": 3, "program": "lammps", "size": 2, "state": "frozen", "done": 0,
                  "placement": [{"index": 0, "host": "a"}, {"index": 1, "host": "a"}],
                  "scaled": [], "migrations": 1}],
    }
    assert cli.format_status(status).splitlines() == [
        "2 hosts",
        "  a  0/2 slots used",
        "  b  0/2 slots used  evicting",
        "1 app in flight",
        "  app 3  lammps  frozen  0/2 done  [kept on a]",
    ]
