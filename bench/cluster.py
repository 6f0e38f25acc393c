"""faabric through its planner: no-op granule latency and the throughput of 1,000 granules.

A real `EmbeddedCluster` (planner in this process, worker subprocesses) is started once and
warmed up: the module is uploaded, fetched and compiled by the worker before any sample, so
neither start-up nor the first compile is measured. The cluster is always closed, also on
errors.

* latency: each sample is one `client.submit(app, wait=30)`, a single HTTP round trip that
  returns when the granule has finished.
* throughput, batch (the fast path): one client submits `count` independent single-granule
  apps in one `POST /v1/apps/batch`, then waits for all of them with one
  `GET /v1/apps?ids=...&wait=...` (answered when the last one finishes); every result is
  checked. The clock runs from the submission to the answer. The peer is Ray's `count`
  `f.remote()` followed by one `ray.get` of them all.
* throughput, one request per app: the same apps submitted by `threads` threads, each with
  its own `PlannerClient` (so its own keep-alive connection), each `submit(app, wait=30)` in
  a loop; the clock runs from the first submit to the last finished app.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Stats, now, time_calls

WAIT = 30.0


@dataclass(frozen=True, slots=True)
class ClusterResults:
    latency: Stats
    rate_batch: Stats  # granules/s, single-granule apps, one batch and one wait
    rate_requests: Stats  # granules/s, single-granule apps, one request each
    threads: int


def _check(doc: dict[str, Any]) -> None:
    if doc.get("finished") is None or doc.get("status") != 0:
        raise RuntimeError(f"the no-op app did not finish cleanly: {doc}")


def _throughput(url: str, token: str, app: dict[str, Any], apps: int, threads: int) -> float:
    """Granules per second for `apps` copies of `app` submitted from `threads` threads."""
    from faabric.planner.client import PlannerClient

    clients = [PlannerClient(url, token=token) for _ in range(threads)]
    errors: list[BaseException] = []
    shares = [apps // threads + (1 if i < apps % threads else 0) for i in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(client: PlannerClient, share: int) -> None:
        try:
            client.health()  # open the connection before the clock starts
            barrier.wait()
            for _ in range(share):
                _check(client.submit(app, wait=WAIT))
        except BaseException as exc:  # reported after join
            errors.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=work, args=(c, s)) for c, s in zip(clients, shares,
                                                                          strict=True)]
    for t in workers:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    start = now()
    for t in workers:
        t.join()
    elapsed = now() - start
    for client in clients:
        client.close()
    if errors:
        raise errors[0]
    return apps * app["size"] / elapsed


def _batch_throughput(url: str, token: str, app: dict[str, Any], apps: int) -> float:
    """Granules per second for `apps` copies of `app` in one batch, waited for in one call."""
    from faabric.planner.client import PlannerClient

    client = PlannerClient(url, token=token)
    try:
        client.health()  # open the connection before the clock starts
        start = now()
        ids = client.submit_batch([app] * apps)
        docs = client.wait_apps(ids, WAIT)
        elapsed = now() - start
    finally:
        client.close()
    for doc in docs:
        _check(doc)
    return apps * app["size"] / elapsed


def _warm_up(url: str, token: str, noop_wasm: bytes, submits: int) -> dict[str, Any]:
    """Upload the module and run it until every worker has fetched and compiled it."""
    from faabric.planner.client import PlannerClient

    client = PlannerClient(url, token=token)
    try:
        digest = client.upload_module(noop_wasm)
        app = {"module": digest, "size": 1, "program": "noop"}
        for _ in range(submits):
            _check(client.submit(app, wait=WAIT))
        _batch_throughput(url, token, app, 200)
    finally:
        client.close()
    return app


def measure(noop_wasm: bytes, *, hosts: int, slots: int, latency_samples: int,
            granules: int, rounds: int, threads: int) -> ClusterResults:
    """Start a cluster, warm it up, measure latency then throughput, and tear it down."""
    from faabric.planner.client import PlannerClient
    from faabric.runtime import EmbeddedCluster
    from faabric.transport.auth import new_token

    logging.getLogger("faabric").setLevel(logging.WARNING)
    with EmbeddedCluster(hosts=hosts, slots=slots, token=new_token()) as cluster:
        url, token = cluster.url, cluster.token
        app = _warm_up(url, token, noop_wasm, max(20, hosts * slots * 4))
        client = PlannerClient(url, token=token)
        try:
            samples = time_calls(lambda: _check(client.submit(app, wait=WAIT)),
                                 latency_samples, warmup=10)
        finally:
            client.close()
        batch = [_batch_throughput(url, token, app, granules) for _ in range(rounds)]
        requests = [_throughput(url, token, app, granules, threads) for _ in range(rounds)]
    return ClusterResults(Stats.of(samples), Stats.of(batch), Stats.of(requests), threads)


def measure_batch(noop_wasm: bytes, *, hosts: int, slots: int, granules: int,
                  rounds: int) -> Stats:
    """Only the batch throughput, on a cluster of `hosts` x `slots` (granules/s)."""
    from faabric.runtime import EmbeddedCluster
    from faabric.transport.auth import new_token

    logging.getLogger("faabric").setLevel(logging.WARNING)
    with EmbeddedCluster(hosts=hosts, slots=slots, token=new_token()) as cluster:
        url, token = cluster.url, cluster.token
        app = _warm_up(url, token, noop_wasm, max(20, hosts * slots * 4))
        return Stats.of([_batch_throughput(url, token, app, granules)
                         for _ in range(rounds)])


def build_noop(cache_dir: Path) -> bytes:
    from bench.common import KERNEL_DIR, build_wasm

    return build_wasm(KERNEL_DIR / "noop.c", cache_dir)
