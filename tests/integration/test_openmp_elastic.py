"""Elastic OpenMP (`faabric run --elastic`): a worker with 4 slots, 2 of them held by a
blocker app. An elastic app's regions run with the 2 threads it has slots for while the
blocker spins and with 4 once it ended; its sums equal those of a fixed-size run, its
resizes are events of the app, and every lent slot is given back. Without `--elastic` the
team size never changes."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Cluster, wait_until
from tests.integration.test_openmp import build_guests, faabric_cli, omp_cluster

pytestmark = pytest.mark.integration

REGIONS = 36
PAUSE_MS = 100  # after each region: the app runs for about REGIONS * PAUSE_MS
BLOCKER_MS = 2500  # longer than `faabric run` takes to start the app on a busy machine
LINE = re.compile(r"region (\d+) threads (\d+) sum (-?\d+)")


@pytest.fixture(scope="module")
def cluster(cache_dir: Path) -> Iterator[Cluster]:
    yield from omp_cluster(cache_dir, {"elastic-host": 4})


@pytest.fixture(scope="module")
def built(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_guests(cluster, ("omp_elastic",), tmp_path_factory.mktemp("elastic"))[
        "omp_elastic"]


def _regions(stdout: str) -> list[tuple[int, int]]:
    """(threads, sum) of each region, in order."""
    found = [LINE.fullmatch(line) for line in stdout.splitlines()]
    regions = [(int(m[2]), int(m[3])) for m in found if m is not None]
    assert [int(m[1]) for m in found if m is not None] == list(range(REGIONS))
    return regions


def _run_blocked(cluster: Cluster, wasm: dict[str, bytes], program: Path, *flags: str
                 ) -> tuple[int, str]:
    """Run `program` with `flags` while a blocker holds 2 of the 4 slots; returns the
    program's app id and stdout."""
    client = cluster.client()
    try:
        spin = client.upload_module(wasm["spin"])
        blocker = client.submit({"module": spin, "size": 2, "program": "spin",
                                 "args": [str(BLOCKER_MS)]})
        wait_until(lambda: client.app(blocker["app_id"])["state"] == "running", 10,
                   "the blocker to start")
        started = time.monotonic()
        done = faabric_cli(cluster, "run", "--planner", cluster.url, *flags, str(program),
                           "--", str(REGIONS), str(PAUSE_MS))
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - started > BLOCKER_MS / 1000  # it overlapped the blocker
        assert client.app(blocker["app_id"])["status"] == 0
        wait_until(lambda: all(h["used"] == 0 for h in client.hosts()), 5,
                   "every slot to be free")
    finally:
        client.close()
    return blocker["app_id"] + 1, done.stdout


def test_elastic_teams_grow_to_the_free_slots(
    cluster: Cluster, built: Path, wasm: dict[str, bytes]
) -> None:
    app_id, elastic_out = _run_blocked(cluster, wasm, built, "--elastic")
    _, fixed_out = _run_blocked(cluster, wasm, built)
    elastic, fixed = _regions(elastic_out), _regions(fixed_out)
    sizes = [threads for threads, _ in elastic]
    assert sizes[0] <= 2, sizes  # 1 slot of the app's own + at most 1 free
    assert sizes[-3:] == [4, 4, 4], sizes  # the blocker ended: all 4 slots
    assert sizes == sorted(sizes), sizes  # nothing else ran: the team only grew
    assert {threads for threads, _ in fixed} == {4}  # without --elastic: never changes
    assert [s for _, s in elastic] == [s for _, s in fixed]
    assert elastic_out.splitlines()[-1] == fixed_out.splitlines()[-1] == (
        "fixed threads 3 sum 599994")  # num_threads(3) is never elastic
    client = cluster.client()
    try:
        doc = client.app(app_id)
    finally:
        client.close()
    assert doc["program"] == built.name
    changes = [b for a, b in zip([1, *sizes], sizes, strict=False) if a != b]
    resized = [e for e in doc["events"] if e["kind"] == "resized"]
    assert [e["threads"] for e in resized] == changes
    assert all(e["ranks"] == [0] and e["hosts"] == ["elastic-host"] for e in resized)
