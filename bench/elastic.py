"""Elastic OpenMP: a loop of parallel regions that starts with one free slot of two.

`kernels/omp_elastic_loop.c` runs on a 1-worker, 2-slot cluster (planner in this process,
the worker a subprocess) while a blocker (`tests/guests/spin.c`, busy on one core) holds the
other slot for half of the loop's one-thread run time. The same loop runs twice: fixed at one
thread (`OMP_NUM_THREADS=1`, what an app gets when it starts with one free slot) and elastic
(`elastic: true`: its team grows to two threads once the blocker ends). On this 2-core
machine the ideal speed-up is 1 / (1/2 + 1/4) = 1.33x; the original reports 1.67x for 1 -> 8
threads on 8 cores. This module must not change the runtime; it only submits apps.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import KERNEL_DIR, Row, build_wasm, fmt_time, versus

SPIN = Path(__file__).resolve().parent.parent / "tests" / "guests" / "spin.c"
IDEAL = 1 / (0.5 + 0.25)
ORIGINAL = 1.67


@dataclass(frozen=True, slots=True)
class ElasticResult:
    fixed: float  # seconds of the loop at one thread (median)
    elastic: float  # seconds of the loop, elastic (median)
    widest: int  # the widest team the elastic runs reached
    runs: int

    @property
    def speedup(self) -> float:
        return self.fixed / self.elastic


def _seconds(doc: dict[str, Any]) -> tuple[float, int]:
    if doc.get("status") != 0:
        raise RuntimeError(f"the elastic loop failed: {doc.get('results')}")
    out = doc["results"][0]["stdout"]
    text = out.decode() if isinstance(out, bytes) else out
    values = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
    widest = int(values["checksum"].split("widest ")[1])
    return float(values["seconds"]), widest


def _run(client: Any, loop: str, spin: str, blocker_ms: float, args: list[str],
         **extra: Any) -> tuple[float, int]:
    client.submit({"module": spin, "size": 1, "args": [str(int(blocker_ms))]})
    time.sleep(0.05)  # the blocker holds its slot before the loop starts
    doc = client.submit({"module": loop, "size": 1, "args": args, **extra}, wait=300)
    return _seconds(doc)


def measure(runs: int, cache_dir: Path, quick: bool) -> ElasticResult:
    from faabric.planner.client import PlannerClient
    from faabric.runtime import EmbeddedCluster
    from faabric.transport.auth import new_token

    args = ["40", "20000000"] if quick else ["100", "20000000"]
    loop_wasm = build_wasm(KERNEL_DIR / "omp_elastic_loop.c", cache_dir, ["-fopenmp"])
    spin_wasm = build_wasm(SPIN, cache_dir)
    fixed, elastic, widest = [], [], 0
    with EmbeddedCluster(hosts=1, slots=2, token=new_token()) as cluster:
        client = PlannerClient(cluster.url, token=cluster.token, timeout=300)
        try:
            loop, spin = client.upload_module(loop_wasm), client.upload_module(spin_wasm)
            one = {"OMP_NUM_THREADS": "1"}
            alone, _ = _run(client, loop, spin, 1, args, env=one)  # the one-thread time
            for _ in range(runs):
                seconds, _ = _run(client, loop, spin, alone * 500, args, env=one)
                fixed.append(seconds)
                seconds, reached = _run(client, loop, spin, alone * 500, args, elastic=True)
                elastic.append(seconds)
                widest = max(widest, reached)
                time.sleep(0.2)
        finally:
            client.close()
    return ElasticResult(statistics.median(fixed), statistics.median(elastic), widest, runs)


def rows(result: ElasticResult) -> list[Row]:
    return [versus("elastic OpenMP loop, 1 -> 2 threads when a slot frees halfway",
                   result.elastic, "same loop fixed at 1 thread", result.fixed, fmt=fmt_time,
                   goal=f"ideal {1 / IDEAL:.2f}x")]


def notes(result: ElasticResult) -> list[str]:
    return [f"elastic OpenMP: median of {result.runs} runs each; speed-up "
            f"{result.speedup:.2f}x (ideal {IDEAL:.2f}x on 2 cores; the original reports "
            f"{ORIGINAL}x for 1 -> 8 threads on 8 cores); widest team reached "
            f"{result.widest}."]


if __name__ == "__main__":  # QUICK=1 python -m bench.elastic
    import os
    import tempfile

    from bench.common import render_text

    with tempfile.TemporaryDirectory() as tmp:
        quick = os.environ.get("QUICK", "0") != "0"
        measured = measure(3 if quick else 5, Path(tmp), quick)
        print(render_text(rows(measured)))
        print("\n".join(notes(measured)))
