"""Metrics and logs with real processes: an MPI app across two workers shows up in the
planner's GET /metrics (slots by host, finished apps, MPI bytes same-host and cross-host), an
OpenMP team across two workers as snapshot and diff bytes; /metrics needs the cluster
token; `--log-format json` makes every log line a JSON object."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from faabric.toolchain import build
from tests.integration.conftest import GUESTS, START_TIMEOUT, Cluster, wait_until

pytestmark = pytest.mark.integration

APP_TIMEOUT = 60.0
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def mpi_p2p(cache_dir: Path) -> bytes:
    return build(GUESTS / "mpi_p2p.c", cache_dir=cache_dir / "builds").read_bytes()


def scrape(cluster: Cluster, token: str | None) -> tuple[int, str]:
    """(status, body) of GET /metrics with `token` (None: no Authorization header)."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(f"{cluster.url}/metrics", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(cluster: Cluster) -> Samples:
    status, text = scrape(cluster, cluster.token)
    assert status == 200, text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def mpi_bytes(now: Samples, path: str) -> float:
    """MPI bytes sent on `path` by every worker."""
    return sum(value for (name, labels), value in now.items()
               if name == "faabric_mpi_bytes_sent_total" and ("path", path) in labels)


def hosts_of(doc: dict[str, Any]) -> set[str]:
    return {entry["host"] for entry in doc["placement"]}


def run_app(cluster: Cluster, module: str, size: int) -> dict[str, Any]:
    client = cluster.client(timeout=APP_TIMEOUT + 10)
    try:
        doc = client.submit({"module": module, "size": size}, wait=APP_TIMEOUT)
    finally:
        client.close()
    assert doc["status"] == 0, doc
    return doc


def test_an_mpi_app_across_two_workers_shows_in_the_metrics(
    two_hosts: Cluster, mpi_p2p: bytes
) -> None:
    client = two_hosts.client()
    try:
        module = client.upload_module(mpi_p2p)
    finally:
        client.close()
    doc = run_app(two_hosts, module, 4)  # 2 ranks on each worker
    assert hosts_of(doc) == {"host-a", "host-b"}

    def settled() -> bool:
        now = samples(two_hosts)
        return all(now.get(("faabric_slots", (("host", h), ("state", "free")))) == 2
                   for h in ("host-a", "host-b"))

    wait_until(settled, 10, "every slot to be free again")
    now = samples(two_hosts)
    assert now[("faabric_slots", (("host", "host-a"), ("state", "used")))] == 0
    assert now[("faabric_hosts", ())] == 2
    assert now[("faabric_apps_finished_total", (("outcome", "succeeded"),))] >= 1
    assert now[("faabric_granules_finished_total", (("outcome", "succeeded"),))] >= 4
    assert now[("faabric_app_run_seconds_count", ())] >= 1
    cross, same = mpi_bytes(now, "cross-host"), mpi_bytes(now, "same-host")
    assert cross > 0
    assert same > 0
    for host in ("host-a", "host-b"):
        assert now[("faabric_mpi_bytes_sent_total", (("host", host), ("path", "cross-host")))] > 0

    doc = run_app(two_hosts, module, 2)  # both ranks on one worker (bin-pack fills one first)
    assert len(hosts_of(doc)) == 1
    now = samples(two_hosts)
    assert mpi_bytes(now, "cross-host") == cross
    assert mpi_bytes(now, "same-host") > same
    assert now[("faabric_apps_finished_total", (("outcome", "succeeded"),))] >= 2


def test_a_team_across_two_workers_counts_its_snapshot_and_diffs(
    make_cluster: Callable[..., Cluster], cache_dir: Path
) -> None:
    cluster = make_cluster({"omp-a": 2, "omp-b": 2})
    wasm = build(GUESTS / "omp_hosts.c", flags=("-fopenmp",),
                 cache_dir=cache_dir / "builds").read_bytes()
    client = cluster.client(timeout=APP_TIMEOUT + 10)
    try:
        module = client.upload_module(wasm)
        doc = client.submit({"module": module, "size": 1, "env": {"OMP_NUM_THREADS": "4"}},
                            wait=APP_TIMEOUT)
    finally:
        client.close()
    assert doc["status"] == 0, doc
    main = hosts_of(doc).pop()  # the granule's worker sent its memory to the other
    now = samples(cluster)
    sent = "faabric_snapshot_bytes_sent_total"
    assert now[(sent, (("host", main), ("kind", "snapshot")))] > 0
    assert sum(value for (name, labels), value in now.items()
               if name == sent and ("kind", "diff") in labels) > 0


@pytest.mark.parametrize("token", [None, "a-token-of-some-other-cluster-000000"])
def test_metrics_need_the_cluster_token(two_hosts: Cluster, token: str | None) -> None:
    status, body = scrape(two_hosts, token)
    assert status == 401
    assert "faabric_" not in body


def _collect(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


def test_json_log_lines(make_cluster: Callable[..., Cluster],
                        process_env: dict[str, str]) -> None:
    env = {**process_env, "FAABRIC_LOG_FORMAT": "json"}
    planner = subprocess.Popen(
        [sys.executable, "-m", "faabric", "planner", "--port", "0", "--control-port", "0",
         "--log-format", "json", "-v"],
        env=process_env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    worker: subprocess.Popen[str] | None = None
    try:
        assert planner.stderr is not None
        match = re.search(r"listening on (http://\S+)", planner.stderr.readline())
        assert match is not None, "the planner did not start"
        planner_lines: list[str] = []
        threading.Thread(target=_collect, args=(planner.stderr, planner_lines),
                         daemon=True).start()
        worker = subprocess.Popen(
            [sys.executable, "-m", "faabric", "worker", "--planner", match.group(1),
             "--slots", "1", "--name", "json-worker", "-v"],
            env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert worker.stderr is not None
        worker_lines: list[str] = []
        reader = threading.Thread(target=_collect, args=(worker.stderr, worker_lines),
                                  daemon=True)
        reader.start()
        wait_until(lambda: any("json-worker joined" in line for line in planner_lines),
                   START_TIMEOUT, "the worker to register")
        worker.terminate()
        worker.wait(timeout=10)
        reader.join(timeout=10)
    finally:
        for proc in (worker, planner):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    planner_docs = [json.loads(line) for line in planner_lines if line]
    joined = next(d for d in planner_docs if "json-worker joined" in d["message"])
    assert joined["level"] == "info"
    assert joined["logger"] == "faabric.planner.service"
    assert {"time", "level", "logger", "message"} <= joined.keys()
    worker_docs = [json.loads(line) for line in worker_lines if line]
    assert worker_docs, "the worker logged nothing"
    assert all(d["host"] == "json-worker" for d in worker_docs)
    assert any("registered as json-worker" in d["message"] for d in worker_docs)
