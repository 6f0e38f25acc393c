"""faabric through its planner: no-op granule latency and the throughput of 1,000 granules.

A real `EmbeddedCluster` (planner in this process, worker subprocesses) is started once and
warmed up: the module is uploaded, fetched and compiled by the worker before any sample, so
neither start-up nor the first compile is measured. The cluster is always closed, also on
errors.

* latency: each sample is one `client.submit(app, wait=30)`, a single HTTP round trip that
  returns when the granule has finished.
* throughput: `count` single-granule apps submitted by `threads` threads, each with its own
  `PlannerClient` (so its own keep-alive connection), each waiting for its own apps; the clock
  runs from the first submit to the last finished app. A second variant submits apps that
  fill every slot of the cluster (size = hosts x slots), so the same number of granules
  costs fewer HTTP round trips.
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
    rate_single: Stats  # granules/s, single-granule apps
    rate_full: Stats  # granules/s, apps filling the cluster
    full_size: int
    threads: int


def _check(doc: dict[str, Any]) -> None:
    if doc.get("finished") is None or doc.get("status") != 0:
        raise RuntimeError(f"the no-op app did not finish cleanly: {doc}")


def _throughput(url: str, app: dict[str, Any], apps: int, threads: int) -> float:
    """Granules per second for `apps` copies of `app` submitted from `threads` threads."""
    from faabric.planner.client import PlannerClient

    clients = [PlannerClient(url) for _ in range(threads)]
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


def measure(noop_wasm: bytes, *, hosts: int, slots: int, latency_samples: int,
            granules: int, rounds: int, threads: int) -> ClusterResults:
    """Start a cluster, warm it up, measure latency then throughput, and tear it down."""
    from faabric.planner.client import PlannerClient
    from faabric.runtime import EmbeddedCluster

    logging.getLogger("faabric").setLevel(logging.WARNING)
    with EmbeddedCluster(hosts=hosts, slots=slots) as cluster:
        client = PlannerClient(cluster.url)
        try:
            digest = client.upload_module(noop_wasm)
            app = {"module": digest, "size": 1, "program": "noop"}
            # warm-up: every worker fetches and compiles the module, connections open
            for _ in range(max(20, hosts * slots * 4)):
                _check(client.submit(app, wait=WAIT))
            samples = time_calls(lambda: _check(client.submit(app, wait=WAIT)),
                                 latency_samples, warmup=10)
        finally:
            client.close()
        single = [_throughput(cluster.url, app, granules, threads) for _ in range(rounds)]
        full_size = hosts * slots
        full_app = {**app, "size": full_size}
        full = [_throughput(cluster.url, full_app, granules // full_size, threads)
                for _ in range(rounds)]
    return ClusterResults(Stats.of(samples), Stats.of(single), Stats.of(full), full_size,
                          threads)


def build_noop(cache_dir: Path) -> bytes:
    from bench.common import KERNEL_DIR, build_wasm

    return build_wasm(KERNEL_DIR / "noop.c", cache_dir)
