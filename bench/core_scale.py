"""How many decisions per second the planner core makes as the cluster grows: the scale limit
of one planner.

    python -m bench.core_scale                  # 64 ... 2048 hosts of 8 slots
    python -m bench.core_scale --hosts 128 512  # chosen sizes

For each size, an MPI trace (2-15 ranks, the default work) arrives fast enough to keep the
cluster about 85 % busy, and is replayed through the real planner core (`PlannerCore`) under
the `faabric` baseline (bin-pack with migration offers): the busiest configuration. Every
event the replay feeds the core is one decision (a submission, a finished rank, a migration
point or claim, a moved rank...), each answered with its commands. The rate is events per
second of this process's CPU time, so other load on the machine does not count. The line
`limit` names the largest size that still made 1,000 decisions per second.
"""

from __future__ import annotations

import argparse
import time

from faabric.experiments.baselines import baseline
from faabric.experiments.calibration import default_calibration
from faabric.experiments.replay import Cluster, Replay
from faabric.experiments.trace import Mix, TraceSpec, generate

SLOTS = 8
BUSY = 0.85  # the share of slots the arrivals keep busy
TARGET = 1000.0  # decisions per second
MEAN_RANKS = 8.5  # of U[2, 16)
MEAN_WORK = 800.0  # units, of U[400, 1200)


def measure(hosts: int, jobs: int) -> tuple[int, float]:
    """(events, CPU seconds) of one replay on `hosts` hosts."""
    cal = default_calibration()
    job_seconds = MEAN_WORK * cal.compute_seconds_per_unit
    rate = BUSY * hosts * SLOTS / (MEAN_RANKS * job_seconds)
    trace = generate(TraceSpec(jobs=jobs, rate=rate, mix=Mix.MPI, seed=0))
    replay = Replay(trace, Cluster(hosts, SLOTS), baseline("faabric"), cal)
    started = time.process_time()
    outcome = replay.run()
    return outcome.events, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.core_scale")
    parser.add_argument("--hosts", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048])
    parser.add_argument("--jobs-per-host", type=int, default=8,
                        help="trace length per host (default 8)")
    ns = parser.parse_args()
    print("hosts  jobs  events  cpu_s  decisions/s")
    best = None
    for hosts in ns.hosts:
        jobs = hosts * ns.jobs_per_host
        events, cpu = measure(hosts, jobs)
        rate = events / cpu
        print(f"{hosts:5d} {jobs:5d} {events:7d} {cpu:6.1f} {rate:11.0f}", flush=True)
        if rate >= TARGET:
            best = hosts
    print(f"limit: {best if best is not None else 'none'} hosts at >= {TARGET:.0f} decisions/s")


if __name__ == "__main__":
    main()
