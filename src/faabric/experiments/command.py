"""The `faabric experiment` commands: `trace` writes a job trace, `replay` replays one under a
baseline, `compare` replays one trace under every baseline and prints one line each, `plot`
does the same and writes CSVs and figures, `live` runs an MPI trace for real and sets it
beside the replay.

Argument parsing and printing only: the work is in `trace`, `replay`, `baselines`, `report`,
`plot` and `live_compare`. Errors are `FaabricError`s, which the top-level CLI prints as one
line; it must not catch anything else or print tracebacks.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from faabric.errors import ConfigError
from faabric.experiments import plot
from faabric.experiments.baselines import BASELINES, baseline, baselines_for
from faabric.experiments.calibration import Calibration, default_calibration, load_calibration
from faabric.experiments.live import LiveSetup
from faabric.experiments.live_compare import compare_live, verdict
from faabric.experiments.replay import Cluster, Replay
from faabric.experiments.report import JOB_COLUMNS, Result, job_rows, write_csv, write_csvs
from faabric.experiments.trace import Job, Mix, TraceSpec, generate, read_trace, write_trace


def add_parser(sub: Any) -> None:
    """Add `experiment` and its actions to the top-level subparsers `sub`."""
    p = sub.add_parser("experiment", help="job traces replayed through the planner core in "
                       "virtual time, to compare schedulers (docs/experiments.md)")
    esub = p.add_subparsers(metavar="ACTION")
    t = esub.add_parser("trace", help="write a job trace (JSON lines)")
    _trace_options(t)
    t.add_argument("-o", "--output", required=True, help="trace file to write")
    t.set_defaults(func=_cmd_trace)
    r = esub.add_parser("replay", help="replay a trace under one baseline")
    r.add_argument("trace", help="trace file (from 'faabric experiment trace')")
    r.add_argument("--baseline", default="faabric",
                   help=f"one of {', '.join(b.name for b in BASELINES)}, faabric-elastic, "
                   "faabric-spot (default faabric)")
    r.add_argument("--per-job", dest="per_job", metavar="FILE",
                   help="also write each job's times as CSV (id, arrived, started, ended, "
                   "wait, run, migrations, restarts)")
    r.add_argument("--spot", action="store_true",
                   help="evict hosts as compare's spot mix does: a quarter of them every 60 s "
                   "(migration period 5 s unless given)")
    _cluster_options(r)
    r.set_defaults(func=_cmd_replay)
    c = esub.add_parser("compare", help="replay one trace under every baseline: one line each, "
                        "'BASELINE makespan=SECONDS idle=PERCENT crosshost=MEAN_PAIRS'")
    _trace_options(c)
    c.add_argument("--trace", help="replay this trace file instead of generating one")
    _cluster_options(c)
    c.set_defaults(func=_cmd_compare)
    _add_plot(esub)
    _add_live(esub)
    p.set_defaults(func=lambda ns: _usage(p))


def _add_plot(esub: Any) -> None:
    p = esub.add_parser("plot", help="replay one trace under every baseline and write "
                        "summary, time-series and per-job CSVs and PNG figures")
    _trace_options(p)
    p.add_argument("--trace", help="replay this trace file instead of generating one")
    _cluster_options(p)
    p.add_argument("--out", default="docs/experiments",
                   help="directory for <mix>-<hosts>h-*.csv and *.png "
                   "(default docs/experiments)")
    p.add_argument("--no-figures", dest="figures", action="store_false",
                   help="write only the CSVs (needs no matplotlib)")
    p.set_defaults(func=_cmd_plot)


def _add_live(esub: Any) -> None:
    p = esub.add_parser("live", help="run an MPI trace for real on an embedded cluster under "
                        "each baseline and set it beside the replay")
    p.add_argument("trace", help="trace file (from 'faabric experiment trace --mix mpi')")
    p.add_argument("--hosts", type=int, default=3, help="worker processes (default 3)")
    p.add_argument("--slots", type=int, default=4, help="slots per worker (default 4)")
    p.add_argument("--unit", type=float, default=0.005,
                   help="seconds a unit of trace work lasts (default 0.005)")
    p.add_argument("--step", type=float, default=0.5,
                   help="seconds between a job's migration points (default 0.5)")
    p.add_argument("--baselines", default="whole-vm,per-core,faabric",
                   help="comma-separated (default whole-vm,per-core,faabric)")
    p.add_argument("--calibration", help="cost model JSON whose migration pause the replay "
                   "uses when the run made no migration (default: the shipped one)")
    p.set_defaults(func=_cmd_live)


def _trace_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=100, help="number of jobs (default 100)")
    p.add_argument("--rate", type=float, default=0.1,
                   help="Poisson arrivals per second (default 0.1, the original's)")
    p.add_argument("--mix", choices=[m.value for m in Mix], default="mpi",
                   help="mpi (2-15 ranks), openmp (1-7 threads) or spot (MPI, 4-15 ranks)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--mpi-sizes", type=int, nargs=2, metavar=("LO", "HI"), default=(2, 16),
                   help="MPI ranks uniform in [LO, HI) (default 2 16)")
    p.add_argument("--openmp-sizes", type=int, nargs=2, metavar=("LO", "HI"), default=(1, 8),
                   help="OpenMP threads uniform in [LO, HI) (default 1 8)")
    p.add_argument("--work", type=float, nargs=2, metavar=("LO", "HI"),
                   help="work units per granule uniform in [LO, HI) (default 400 1200; "
                   "spot mix: 20 60)")


def _cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hosts", type=int, default=8, help="simulated hosts (default 8)")
    p.add_argument("--slots", type=int, default=8, help="slots per host (default 8)")
    p.add_argument("--migration-period", type=float, dest="period",
                   help="seconds between an app's migration points (default 60; spot mix: 5)")
    p.add_argument("--calibration", help="cost model JSON (default: the shipped one)")


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 2


def _spec(ns: argparse.Namespace) -> TraceSpec:
    spec = TraceSpec(jobs=ns.jobs, rate=ns.rate, mix=Mix(ns.mix), seed=ns.seed,
                     mpi_sizes=tuple(ns.mpi_sizes), openmp_sizes=tuple(ns.openmp_sizes))
    if ns.work is None:
        return spec
    work = (ns.work[0], ns.work[1])
    return dataclasses.replace(spec, work=work, spot_work=work)


def _cluster(ns: argparse.Namespace) -> tuple[Cluster, Calibration]:
    if ns.hosts < 1 or ns.slots < 1:
        raise ConfigError(f"--hosts and --slots must be >= 1, got {ns.hosts} and {ns.slots}")
    spot = getattr(ns, "mix", "") == "spot" or getattr(ns, "spot", False)
    period = ns.period if ns.period is not None else (5.0 if spot else 60.0)
    if not period > 0:
        raise ConfigError(f"--migration-period must be > 0, got {period}")
    cal = load_calibration(ns.calibration) if ns.calibration else default_calibration()
    return Cluster(ns.hosts, ns.slots, period, evict_every=60.0 if spot else 0.0), cal


def _cmd_trace(ns: argparse.Namespace) -> int:
    write_trace(generate(_spec(ns)), ns.output)
    return 0


def _cmd_replay(ns: argparse.Namespace) -> int:
    cluster, cal = _cluster(ns)
    chosen = baseline(ns.baseline)
    outcome = Replay(read_trace(ns.trace), cluster, chosen, cal).run()
    print(outcome.line(chosen.name))
    print(f"jobs={len(outcome.jobs)} rejected={len(outcome.rejected)} "
          f"wait={outcome.mean_wait():.1f} run={outcome.mean_run():.1f} "
          f"migrations={sum(j.migrations for j in outcome.jobs)} "
          f"queued={outcome.queued_percent:.1f} "
          f"fragmentation={outcome.fragmentation:.1f}")
    if ns.per_job:
        write_csv(Path(ns.per_job), JOB_COLUMNS, job_rows(outcome.jobs))
    return 0


def _cmd_compare(ns: argparse.Namespace) -> int:
    cluster, cal = _cluster(ns)
    jobs: tuple[Job, ...] = read_trace(ns.trace) if ns.trace else generate(_spec(ns))
    for known in baselines_for(ns.mix):
        print(Replay(jobs, cluster, known, cal).run().line(known.name), flush=True)
    return 0


def _cmd_live(ns: argparse.Namespace) -> int:
    setup = LiveSetup(ns.hosts, ns.slots, ns.unit, ns.step)
    chosen = [baseline(name.strip()) for name in ns.baselines.split(",") if name.strip()]
    extra = [known.name for known in chosen if known not in BASELINES]
    if extra or not chosen:
        names = ", ".join(known.name for known in BASELINES)
        raise ConfigError(f"live runs take the baselines {names}; got {ns.baselines!r}")
    cal = load_calibration(ns.calibration) if ns.calibration else default_calibration()
    rows = compare_live(read_trace(ns.trace), setup, chosen, cal,
                        progress=lambda line: print(line, file=sys.stderr, flush=True))
    for row in rows:
        print(row.line())
    problems = verdict(rows)
    for problem in problems:
        print(f"faabric: {problem}", file=sys.stderr)
    print("replay trusted" if not problems else "replay NOT trusted")
    return 0 if not problems else 1


def _cmd_plot(ns: argparse.Namespace) -> int:
    cluster, cal = _cluster(ns)
    if ns.figures:
        plot.require()  # before the replays, which take a while
    jobs: tuple[Job, ...] = read_trace(ns.trace) if ns.trace else generate(_spec(ns))
    results = []
    for known in baselines_for(ns.mix):
        started = time.perf_counter()
        outcome = Replay(jobs, cluster, known, cal).run()
        results.append(Result(known.name, outcome))
        print(f"{outcome.line(known.name)} fragmentation={outcome.fragmentation:.1f} "
              f"({time.perf_counter() - started:.1f} s)", flush=True)
    out, prefix = Path(ns.out), f"{ns.mix}-{ns.hosts}h"
    paths = write_csvs(out, prefix, results)
    if ns.figures:
        source = f"trace {Path(ns.trace).name}" if ns.trace else f"{len(jobs)} jobs, seed {ns.seed}"
        title = f"{ns.mix}: {ns.hosts} hosts x {ns.slots} slots, {source}"
        paths += plot.figures(out, prefix, results, title)
    print(f"wrote {', '.join(p.name for p in paths)} to {out}")
    return 0
