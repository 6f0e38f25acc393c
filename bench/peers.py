"""The same no-op work on faabric's peers: Ray tasks and a ProcessPoolExecutor(2).

Each peer is started and warmed up before its clock starts, and shut down afterwards (also
on errors). Ray is optional: without it `measure_ray` returns None and its rows are skipped.

* latency: one `ray.get(f.remote())` / `pool.submit(f).result()` per sample.
* throughput: `ray.get([f.remote() for _ in range(n)])` / n submits then n results.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
from dataclasses import dataclass

from bench.common import Stats, now, time_calls


@dataclass(frozen=True, slots=True)
class PeerResults:
    name: str
    version: str
    latency: Stats
    rate: Stats  # tasks/s


def noop() -> None:
    """The peers' no-op task."""


def measure_pool(*, latency_samples: int, tasks: int, rounds: int) -> PeerResults:
    """ProcessPoolExecutor(2), fork start method (the Linux default)."""
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        samples = time_calls(lambda: pool.submit(noop).result(), latency_samples, warmup=50)

        def batch() -> float:
            start = now()
            futures = [pool.submit(noop) for _ in range(tasks)]
            for future in futures:
                future.result()
            return tasks / (now() - start)

        batch()  # warm-up
        rates = [batch() for _ in range(rounds)]
    return PeerResults("ProcessPoolExecutor(2)", "fork", Stats.of(samples), Stats.of(rates))


def ray_missing() -> str | None:
    """None when Ray can be imported, else why not."""
    try:
        import ray  # noqa: F401
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def measure_ray(*, latency_samples: int, tasks: int, rounds: int) -> PeerResults | None:
    """Ray tasks on `ray.init(num_cpus=2, include_dashboard=False)`; None without Ray."""
    if ray_missing() is not None:
        return None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING, configure_logging=True)
    try:
        def ray_noop() -> None:  # nested: Ray pickles it by value, workers need not import us
            return None

        task = ray.remote(ray_noop)
        ray.get([task.remote() for _ in range(200)])  # workers up, function exported
        samples = time_calls(lambda: ray.get(task.remote()), latency_samples, warmup=50)

        def batch() -> float:
            start = now()
            ray.get([task.remote() for _ in range(tasks)])
            return tasks / (now() - start)

        batch()  # warm-up
        rates = [batch() for _ in range(rounds)]
    finally:
        ray.shutdown()
    return PeerResults("Ray", ray.__version__, Stats.of(samples), Stats.of(rates))
