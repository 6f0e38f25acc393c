"""`python -m bench`: faabric and its peers on the same work, in the same run, as one table.

    python -m bench                  # full run (a few minutes on 2 cores)
    python -m bench --quick          # fewer samples and smaller kernels
    python -m bench --markdown docs/performance.md   # also write the table into that file

With --markdown the table (and the run's context) replaces the text between the markers
`<!-- bench:begin -->` and `<!-- bench:end -->` in the file, or the file is created with just
that block. Ray rows are skipped, with a note, when Ray cannot be imported; OpenMPI rows when
mpicc/mpirun are missing. `--no-mpi` leaves out the MPI rows (bench/mpi.py) altogether, and
`--no-teams` the OpenMP teams spanning 2 worker processes (bench/teams.py, and the kernel
families of bench/omp_kernels.py), and
`--no-migration` the cost of making MPI programs movable (bench/migration.py) and of moving
them while they run (bench/moves.py), with the elastic OpenMP loop (bench/elastic.py).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import sys
import tempfile
from pathlib import Path

from bench import (
    cluster,
    compute,
    elastic,
    granule_start,
    migration,
    moves,
    mpi,
    omp_kernels,
    openmp,
    peers,
    teams,
)
from bench import snapshot as snapshots
from bench.common import (
    Row,
    Stats,
    fmt_rate,
    fmt_time,
    render_markdown,
    render_text,
    versus,
)

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def cluster_rows(res: cluster.ClusterResults, two_workers: Stats | None,
                 ray: peers.PeerResults | None, pool: peers.PeerResults) -> list[Row]:
    rows = []
    for peer in (ray, pool):
        name = "Ray" if peer is ray else pool.name
        goal, limit = ("<= 1.0x Ray", 1.0) if peer is ray else ("", None)
        rows.append(versus("no-op latency median", res.latency.median, name,
                           peer.latency.median if peer else None, fmt=fmt_time, goal=goal,
                           limit=limit))
        rows.append(versus("no-op latency p99", res.latency.p99, name,
                           peer.latency.p99 if peer else None, fmt=fmt_time))
    for peer in (ray, pool):
        name = "Ray" if peer is ray else pool.name
        goal, limit = (">= 2.0x Ray", 2.0) if peer is ray else ("", None)
        theirs = peer.rate.median if peer else None
        rows.append(versus("1,000 no-op 1-granule apps, 1 batch + 1 wait (1 worker x 2 slots)",
                           res.rate_batch.median, name, theirs, fmt=fmt_rate, goal=goal,
                           limit=limit, higher_is_better=True))
        if two_workers is not None:
            rows.append(versus("1,000 no-op 1-granule apps, 1 batch + 1 wait "
                               "(2 workers x 1 slot) [diag]", two_workers.median, name, theirs,
                               fmt=fmt_rate, higher_is_better=True))
        rows.append(versus(f"1,000 no-op 1-granule apps, 1 request each, {res.threads} threads",
                           res.rate_requests.median, name, theirs, fmt=fmt_rate,
                           higher_is_better=True))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, smaller kernels")
    parser.add_argument("--markdown", type=Path, help="write the table into this file")
    parser.add_argument("--threads", type=int, default=4, help="client threads (throughput)")
    parser.add_argument("--no-ray", action="store_true", help="skip Ray")
    parser.add_argument("--no-mpi", action="store_true", help="skip the MPI rows")
    parser.add_argument("--no-teams", action="store_true",
                        help="skip the OpenMP teams spanning 2 workers")
    parser.add_argument("--no-migration", action="store_true",
                        help="skip movable MPI programs: asyncify's cost, moving ranks")
    parser.add_argument("--no-diagnostics", action="store_true",
                        help="skip the [diag] variants of the cluster and movable-MPI rows")
    args = parser.parse_args(argv)
    quick = args.quick
    samples, runs = (100, 1) if quick else (300, 3)
    rate_rounds = 3 if quick else 7  # throughput rounds are short (~0.3 s): take several
    notes: list[str] = []
    rows: list[Row] = []

    with tempfile.TemporaryDirectory(prefix="faabric-bench-") as tmp:
        cache, native = Path(tmp) / "wasm", Path(tmp) / "native"
        say("building the no-op program")
        noop = cluster.build_noop(cache)

        say("4. compute kernels: wasm vs native")
        notes.append(f"faabric cc adds {' '.join(compute.default_flags())} to the kernels; "
                     "native is clang-16 -O2.")
        for k in compute.measure(runs=runs, cache_dir=cache, native_dir=native, quick=quick):
            what = f"{k.name} ({' '.join(k.args)}) kernel time"
            rows.append(versus(f"{what}, wasm", k.wasm, "native clang-16 -O2", k.native,
                               fmt=fmt_time, goal="<= 1.3x native", limit=1.3))
            rows.append(versus(f"{what}, wasm, wasmtime epoch checks instead [diag]",
                               k.epoch, "native clang-16 -O2", k.native, fmt=fmt_time))
            rows.append(versus(f"{what}, wasm, no stop checks [diag]",
                               k.unchecked, "native clang-16 -O2", k.native, fmt=fmt_time))

        if args.no_migration:
            notes.append("Movable MPI programs skipped (--no-migration).")
        else:
            say("4b. movable MPI programs: with and without asyncify (bench/migration.py)")
            moved = migration.measure_movable_cost(7 if quick else 11, cache, quick)
            rows += migration.rows(moved)
            notes += migration.notes(moved)
            say("4c. moving MPI ranks: pause vs memory, pull-together (bench/moves.py)")
            moving = moves.measure(cache, quick)
            rows += moves.rows(moving)
            notes += moves.notes(moving)
            say("4d. elastic OpenMP: a team that grows when a slot frees (bench/elastic.py)")
            grown = elastic.measure(3 if quick else 5, cache, quick)
            rows += elastic.rows(grown)
            notes += elastic.notes(grown)

        say("5. OpenMP: wasm teams vs native libomp")
        measured = openmp.measure(runs=runs, cache_dir=cache, native_dir=native, quick=quick)
        rows += openmp.rows(measured)
        notes += openmp.speedups(measured)

        say("6. snapshots: ship, restore, dirty pages, diff, merge (64 MiB and 1 GiB)")
        rows += snapshots.measure(quick, notes)

        if args.no_teams:
            notes.append("OpenMP teams across hosts skipped (--no-teams).")
        else:
            say("6b. OpenMP teams spanning 2 workers: region cost vs memory, barrier, critical")
            rows += teams.rows(teams.measure(cache, native, quick, notes))
            say("6c. OpenMP kernel families spanning 2 workers (bench/omp_kernels.py)")
            rows += omp_kernels.rows(*omp_kernels.measure(cache, native, quick, notes))

        if args.no_mpi:
            notes.append("MPI skipped (--no-mpi).")
        else:
            say("7. MPI: faabric vs OpenMPI (bench/mpi.py)")
            rows += mpi.measure(cache, native, quick, notes)

        say("3. granule start from a cached module")
        start = granule_start.measure(noop, samples=100 if quick else 500, native_dir=native)
        rows.append(Row("granule start (cached module), median", fmt_time(start.granule.median),
                        "native posix_spawn+wait", fmt_time(start.native_spawn.median),
                        start.granule.median / start.native_spawn.median, "< 1 ms",
                        start.granule.median < 1e-3))
        rows.append(versus("granule start (cached module), p99", start.granule.p99,
                           "native posix_spawn+wait", start.native_spawn.p99, fmt=fmt_time))

        say("1-2. faabric through the planner")
        shipped = cluster.measure(noop, hosts=1, slots=2, latency_samples=samples,
                                  granules=1000, rounds=rate_rounds, threads=args.threads)
        two_workers = None
        if not args.no_diagnostics:
            say("2. faabric batch throughput on 2 workers x 1 slot [diag]")
            two_workers = cluster.measure_batch(noop, hosts=2, slots=1, granules=1000,
                                                rounds=rate_rounds)

    say("1-2. ProcessPoolExecutor(2)")
    pool = peers.measure_pool(latency_samples=samples, tasks=1000, rounds=rate_rounds)
    ray = None
    if args.no_ray:
        notes.append("Ray skipped (--no-ray): its rows say 'skipped'.")
    elif (why := peers.ray_missing()) is not None:
        notes.append(f"Ray is not installed ({why}): its rows say 'skipped'.")
    else:
        say("1-2. Ray")
        ray = peers.measure_ray(latency_samples=samples, tasks=1000, rounds=rate_rounds)
        notes.append(f"Ray {ray.version if ray else '?'}, ray.init(num_cpus=2, "
                     "include_dashboard=False).")

    rows = [*cluster_rows(shipped, two_workers, ray, pool), *rows]
    context = describe_machine(quick)
    print()
    print(context)
    print(render_text(rows))
    for note in notes:
        print(f"note: {note}")
    if args.markdown:
        write_markdown(args.markdown, context, rows, notes)
        print(f"wrote the table to {args.markdown}")
    return 0


def describe_machine(quick: bool) -> str:
    today = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    distro = ""
    with contextlib.suppress(OSError):
        distro = " ".join(Path("/etc/debian_version").read_text().split())
    return (f"{today}; {os.cpu_count()} vCPU; {platform.system()} {platform.release()}"
            f"{' (Debian ' + distro + ')' if distro else ''}; Python {platform.python_version()}"
            f"; {'--quick' if quick else 'full'} run; medians unless marked p99")


def write_markdown(path: Path, context: str, rows: list[Row], notes: list[str]) -> None:
    block = "\n".join([BEGIN, "", f"Run: {context}.", "", render_markdown(rows), "",
                       *(f"* {note}" for note in notes), "", END])
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = (text + "\n\n" if text else "") + block + "\n"
    path.write_text(text)


def say(what: str) -> None:
    print(f"[bench] {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
