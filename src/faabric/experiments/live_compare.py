"""`faabric experiment live`: run a trace on a real embedded cluster under each baseline
(`live.run_trace`), replay it under the same cost model, and say whether the replay can be
trusted: the same ordering of the baselines and makespans within a tolerance.

This module starts and stops the cluster and compares numbers; how a trace is run lives in
`live.py`, how it is replayed in `replay.py`. It must not change either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from faabric.experiments.baselines import Baseline
from faabric.experiments.calibration import Calibration
from faabric.experiments.live import (
    LiveResult,
    LiveSetup,
    check_trace,
    job_source,
    live_calibration,
    run_trace,
    wait_idle,
)
from faabric.experiments.replay import Cluster, Replay
from faabric.experiments.trace import Job

TOLERANCE = 0.15  # the replay's makespan may differ from the real one by this fraction
SEPARATED = 0.05  # baselines closer than this in the replay have no ordering to keep


@dataclass(frozen=True, slots=True)
class Row:
    """One baseline: its real run, the replay's makespan and migrations, and the relative
    difference of the makespans."""

    live: LiveResult
    replayed: float
    replay_migrations: int

    @property
    def difference(self) -> float:
        """(replayed - real) / real."""
        return (self.replayed - self.live.makespan) / self.live.makespan

    def line(self) -> str:
        """`NAME live=S replay=S diff=+P% migrations=N/M` (real/replayed; scripts parse
        it)."""
        return (f"{self.live.baseline} live={self.live.makespan:.2f} "
                f"replay={self.replayed:.2f} diff={100 * self.difference:+.1f}% "
                f"migrations={self.live.migrations}/{self.replay_migrations}")


def compare_live(
    jobs: Sequence[Job],
    setup: LiveSetup,
    baselines: Sequence[Baseline],
    shipped: Calibration,
    progress: Callable[[str], None] = lambda line: None,
) -> list[Row]:
    """Run `jobs` for real under every baseline, then replay them; one row per baseline."""
    check_trace(jobs, setup.hosts * setup.slots)
    lives = _run_all(jobs, setup, baselines, progress)
    cal = live_calibration(setup, shipped, [p for live in lives for p in live.pauses])
    cluster = Cluster(setup.hosts, setup.slots, migration_period=setup.step)
    rows = []
    for live, known in zip(lives, baselines, strict=True):
        outcome = Replay(jobs, cluster, known, cal).run()
        rows.append(Row(live, outcome.makespan, sum(j.migrations for j in outcome.jobs)))
    return rows


def _run_all(jobs: Sequence[Job], setup: LiveSetup, baselines: Sequence[Baseline],
             progress: Callable[[str], None]) -> list[LiveResult]:
    from faabric.config import default_cache_dir
    from faabric.planner.client import PlannerClient
    from faabric.runtime import EmbeddedCluster
    from faabric.toolchain import build, default_flags_for
    from faabric.transport.auth import new_token

    source = job_source()
    wasm = build(source, flags=default_flags_for(source),
                 cache_dir=default_cache_dir() / "builds").read_bytes()
    quiet = _Quiet(logging.getLogger("faabric"))  # the planner's lines, one per app
    with quiet, EmbeddedCluster(hosts=setup.hosts, slots=setup.slots,
                                token=new_token()) as cl:
        client = PlannerClient(cl.url, token=cl.token, timeout=120)
        try:
            module = client.upload_module(wasm)
            results = []
            for known in baselines:
                wait_idle(client)
                results.append(run_trace(client, module, jobs, known, setup,
                                         progress=progress))
                progress(f"{known.name}: makespan {results[-1].makespan:.2f} s")
            return results
        finally:
            client.close()


class _Quiet:
    """Raise `logger` to WARNING inside a `with` block, then put its level back."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._level = logger.level

    def __enter__(self) -> None:
        self._level = self._logger.level
        self._logger.setLevel(logging.WARNING)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)


def verdict(rows: Sequence[Row]) -> list[str]:
    """What keeps the replay from being trusted: makespans off by more than `TOLERANCE`,
    and pairs of baselines the replay separates by more than `SEPARATED` but the real runs
    order the other way. Empty: trusted."""
    problems = [f"{row.live.baseline}: the replay is off by {100 * row.difference:+.1f}%"
                for row in rows if abs(row.difference) > TOLERANCE]
    for a in rows:
        for b in rows:
            gap = (b.replayed - a.replayed) / a.replayed
            if gap > SEPARATED and b.live.makespan < a.live.makespan:
                problems.append(f"the replay has {a.live.baseline} {100 * gap:.0f}% shorter "
                                f"than {b.live.baseline}; the real runs order them the "
                                "other way")
    return problems
