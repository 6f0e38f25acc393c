"""The command line's side of migration: `faabric run --no-migrate / --migrate-every K`
reach the run config (and the submitted app), and `faabric status` shows how often a running
app moved. No cluster is started: the run itself is replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faabric import cli
from faabric.config import PlannerConfig, RunConfig, load


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[RunConfig]:
    """Calls of `run_program`, recorded instead of run."""
    monkeypatch.chdir(tmp_path)  # no faabric.toml around
    for name in ("FAABRIC_CONFIG", "FAABRIC_MIGRATE_EVERY"):
        monkeypatch.delenv(name, raising=False)
    calls: list[RunConfig] = []

    def fake_run(config: RunConfig, *args: Any, **kwargs: Any) -> int:
        calls.append(config)
        return 0

    monkeypatch.setattr("faabric.run.run_program", fake_run)
    return calls


@pytest.mark.parametrize(
    ("options", "expected"),
    [([], 1), (["--no-migrate"], 0), (["--migrate-every", "4"], 4), (["--migrate-every", "0"], 0)],
)
def test_run_options_set_migrate_every(
    runs: list[RunConfig], options: list[str], expected: int
) -> None:
    assert cli.main(["run", *options, "app.c"]) == 0
    assert [config.migrate_every for config in runs] == [expected]


def test_no_migrate_and_migrate_every_exclude_each_other(runs: list[RunConfig]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--no-migrate", "--migrate-every", "2", "app.c"])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert runs == []


def test_negative_migrate_every_is_a_config_error(runs: list[RunConfig]) -> None:
    assert cli.main(["run", "--migrate-every", "-1", "app.c"]) == 1
    assert runs == []


def test_offer_timeout_comes_from_the_environment() -> None:
    assert load(PlannerConfig, "planner", environ={}).migration_offer_timeout == 30.0
    env = {"FAABRIC_MIGRATION_OFFER_TIMEOUT": "2.5"}
    assert load(PlannerConfig, "planner", environ=env).migration_offer_timeout == 2.5


def test_status_shows_ranks_per_host_and_moves() -> None:
    status = {
        "hosts": [{"name": "a", "slots": 4, "used": 4}],
        "apps": [
            {"app_id": 3, "program": "lammps", "size": 4, "state": "running", "done": 0,
             "placement": [{"index": i, "host": h} for i, h in enumerate("aaab")],
             "scaled": [], "migrations": 2},
            {"app_id": 4, "program": "hello", "size": 1, "state": "queued", "done": 0,
             "placement": [], "scaled": [], "migrations": 0},
        ],
    }
    lines = cli.format_status(status).splitlines()
    assert lines[3] == "  app 3  lammps  running  0/4 done  [a: 0-2, b: 3]  moved 2 times"
    assert lines[4] == "  app 4  hello  queued  0/1 done"
