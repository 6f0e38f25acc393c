"""MPI ranks migrate between real worker processes while they run, with nothing lost."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faabric.toolchain import build
from tests.integration.conftest import GUESTS, Cluster, wait_until

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]
ITERATIONS = "60"
WORK = "3000000"


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    builds = tmp_path_factory.mktemp("migration-builds")
    return {name: build(GUESTS / f"{name}.c", cache_dir=builds).read_bytes()
            for name in ("mpi_migrate", "spin")}


def _app(digest: str, size: int, *args: str, **extra: Any) -> dict[str, Any]:
    return {"module": digest, "size": size, "program": "guest", "args": list(args), **extra}


def _outputs(doc: dict[str, Any]) -> tuple[str, list[str]]:
    results = sorted(doc["results"], key=lambda r: r["index"])
    return "".join(r["stdout"].decode() for r in results), [r["host"] for r in results]


def _by_granule(tagged: str) -> str:
    """The stdout of `faabric run --tag-output` as the granules' stdouts joined in granule
    order (what `_outputs` makes of the results)."""
    lines: dict[int, list[str]] = {}
    for line in tagged.splitlines(keepends=True):
        match = re.match(r"\[\d+,(\d+)\]<stdout>:", line)
        assert match is not None, line
        lines.setdefault(int(match[1]), []).append(line[match.end():])
    return "".join("".join(lines[index]) for index in sorted(lines))


def _split_then_free(cluster: Cluster, programs: dict[str, bytes],
                     **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Blockers hold two slots of each host, so the 4-rank app starts 2+2; the blocker on
    one host ends soon after, leaving room for the whole app there."""
    client = cluster.client(timeout=120)
    try:
        spin = client.upload_module(programs["spin"])
        app = client.upload_module(programs["mpi_migrate"])
        long_blocker = client.submit(_app(spin, 2, "8000"))
        short_blocker = client.submit(_app(spin, 2, "800"))
        started = client.submit(_app(app, 4, ITERATIONS, WORK, **extra))
        placed = client.app(started["app_id"])
        assert sorted(p["host"] for p in placed["placement"]) == ["alpha", "alpha", "beta", "beta"]
        done = client.wait_app(started["app_id"], 120)
        for blocker in (long_blocker, short_blocker):
            client.wait_app(blocker["app_id"], 60)
        return placed, done
    finally:
        client.close()


def test_a_split_app_consolidates_when_a_host_frees(
    make_cluster: Callable[..., Cluster], programs: dict[str, bytes], run_cli: Cli,
    tmp_path: Path,
) -> None:
    cluster = make_cluster({"alpha": 4, "beta": 4})
    _, done = _split_then_free(cluster, programs)
    assert done["status"] == 0, done
    stdout, hosts = _outputs(done)
    assert len(set(hosts)) == 1, f"the ranks did not end on one host: {hosts} {done['events']}"
    kinds = [event["kind"] for event in done["events"]]
    assert "migrated" in kinds, done["events"]
    (tmp_path / "app.wasm").write_bytes(programs["mpi_migrate"])
    still = run_cli("run", "-n", "4", "--slots", "4", "--no-migrate", "--tag-output",
                    "app.wasm", "--", ITERATIONS, WORK)
    assert still.returncode == 0, still.stderr
    assert stdout == _by_granule(still.stdout)


def test_nothing_moves_when_migration_is_off(
    make_cluster: Callable[..., Cluster], programs: dict[str, bytes]
) -> None:
    cluster = make_cluster({"alpha": 4, "beta": 4})
    placed, done = _split_then_free(cluster, programs, migrate_every=0)
    assert done["status"] == 0, done
    _, hosts = _outputs(done)
    assert hosts == [p["host"] for p in placed["placement"]]
    assert all(event["kind"] != "migrated" for event in done["events"])


def test_a_migration_to_a_host_that_dies_fails_naming_it(
    make_cluster: Callable[..., Cluster], programs: dict[str, bytes]
) -> None:
    cluster = make_cluster({"alpha": 4, "beta": 4})
    client = cluster.client(timeout=120)
    try:
        spin = client.upload_module(programs["spin"])
        app = client.upload_module(programs["mpi_migrate"])
        client.submit(_app(spin, 2, "30000"))
        short = client.submit(_app(spin, 2, "1000"))
        started = client.submit(_app(app, 4, "400", WORK))
        client.wait_app(short["app_id"], 30)
        wait_until(lambda: any(e["kind"] in ("offered", "migrated")
                               for e in client.app(started["app_id"])["events"]),
                   30, "a migration offer")
        cluster.kill_worker("alpha")
        done = client.wait_app(started["app_id"], 120)
    finally:
        client.close()
    assert done["status"] != 0
    reasons = " ".join(str(r["outcome"]) for r in done["results"])
    assert "alpha" in reasons, reasons


def _reference(run_cli: Cli, tmp_path: Path, programs: dict[str, bytes]) -> str:
    (tmp_path / "app.wasm").write_bytes(programs["mpi_migrate"])
    still = run_cli("run", "-n", "4", "--slots", "4", "--no-migrate", "--tag-output",
                    "app.wasm", "--", ITERATIONS, WORK)
    assert still.returncode == 0, still.stderr
    return _by_granule(still.stdout)


def test_an_evicted_host_s_ranks_move_away_and_finish_right(
    make_cluster: Callable[..., Cluster], programs: dict[str, bytes], run_cli: Cli,
    tmp_path: Path,
) -> None:
    cluster = make_cluster({"alpha": 4, "beta": 4})
    client = cluster.client(timeout=120)
    try:
        app = client.upload_module(programs["mpi_migrate"])
        started = client.submit(_app(app, 4, ITERATIONS, WORK))
        first = {p["host"] for p in client.app(started["app_id"])["placement"]}
        assert len(first) == 1
        (doomed,) = first
        time.sleep(0.5)  # past its first barrier: it has migration points
        client.evict(doomed)
        done = client.wait_app(started["app_id"], 120)
    finally:
        client.close()
    assert done["status"] == 0, done
    stdout, hosts = _outputs(done)
    assert doomed not in hosts, (hosts, done["events"])
    kinds = [event["kind"] for event in done["events"]]
    assert "evicted" in kinds and "migrated" in kinds, kinds
    assert stdout == _reference(run_cli, tmp_path, programs)


def test_with_no_room_an_evicted_app_freezes_and_thaws_when_a_worker_joins(
    make_cluster: Callable[..., Cluster], programs: dict[str, bytes], run_cli: Cli,
    tmp_path: Path,
) -> None:
    cluster = make_cluster({"alpha": 4, "beta": 2})
    client = cluster.client(timeout=120)
    try:
        spin = client.upload_module(programs["spin"])
        app = client.upload_module(programs["mpi_migrate"])
        started = client.submit(_app(app, 4, ITERATIONS, WORK))
        assert {p["host"] for p in client.app(started["app_id"])["placement"]} == {"alpha"}
        client.submit(_app(spin, 2, "60000"))  # beta is full: nowhere to move to
        time.sleep(0.5)
        client.evict("alpha")
        wait_until(lambda: client.app(started["app_id"])["state"] == "frozen", 60,
                   "the app to freeze")
        cluster.add_worker("gamma", 4)
        done = client.wait_app(started["app_id"], 120)
    finally:
        client.close()
    assert done["status"] == 0, (done["results"], done["events"])
    stdout, hosts = _outputs(done)
    assert set(hosts) == {"gamma"}, (hosts, done["events"])
    kinds = [event["kind"] for event in done["events"]]
    assert {"evicted", "frozen", "thawed"} <= set(kinds), kinds
    assert stdout == _reference(run_cli, tmp_path, programs)
