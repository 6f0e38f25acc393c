"""Cluster experiments: traces, calibration files, and replays through the real planner core
whose makespans, idle slots and cross-host pairs are computed by hand."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from faabric.cli import main
from faabric.experiments.baselines import baseline
from faabric.experiments.calibration import default_calibration, parse_calibration
from faabric.experiments.replay import Cluster, Replay
from faabric.experiments.trace import (
    Job,
    Kind,
    Mix,
    TraceError,
    TraceSpec,
    generate,
    read_trace,
    write_trace,
)

# compute 1 s per unit; 0.5 x pairs / size slower; a migration stands still 2 s
CAL = parse_calibration(json.dumps({
    "compute_seconds_per_unit": 1.0, "cross_host_pair_cost": 0.5,
    "openmp_speedup": [1.0, 2.0], "migration_pause_seconds": 2.0,
    "migration_pause_seconds_per_mib": 0.0, "rank_memory_mib": 64,
}), "test")

# Two hosts of 8 slots. J1 (4 ranks) and J2 (6) arrive at 0, J3 (6) at 10.
THREE = (
    Job(1, 0.0, Kind.MPI, 4, 30.0),
    Job(2, 0.0, Kind.MPI, 6, 100.0),
    Job(3, 10.0, Kind.MPI, 6, 100.0),
)


def _replay(name: str) -> tuple[float, float, float, dict[int, tuple[float, float]]]:
    outcome = Replay(THREE, Cluster(2, 8, 20.0), baseline(name), CAL).run(check_every=1)
    times = {j.job_id: (j.started, j.ended) for j in outcome.jobs}
    return outcome.makespan, outcome.idle_percent, outcome.crosshost, times


def test_whole_vm_gives_each_job_its_own_hosts() -> None:
    # J1 on h0000, J2 on h0001; J3 waits for an empty host: h0000 at 30, runs 100 s.
    # Idle slot-seconds: 6x10 + 6x20 + 4x70 + 10x30 = 760 of 16 x 130.
    makespan, idle, crosshost, times = _replay("whole-vm")
    assert times == {1: (0, 30), 2: (0, 100), 3: (30, 130)}
    assert makespan == pytest.approx(130)
    assert idle == pytest.approx(100 * 760 / (16 * 130))
    assert crosshost == 0


def test_per_core_packs_the_gaps_and_pays_for_cross_host_pairs() -> None:
    # bin-pack: J1 on h0001 (the greater name), J2 on h0000, J3 at 10 on 4 + 2 slots:
    # 8 cross-host pairs, 1 + 0.5 x 8/6 slower, so 100 units take 166.67 s.
    # Idle: 6x10 + 0x20 + 4x70 + 10x76.67 = 1106.67 of 16 x 176.67.
    makespan, idle, crosshost, times = _replay("per-core")
    assert times[3] == pytest.approx((10, 10 + 100 * 5 / 3))
    assert makespan == pytest.approx(176.6667, abs=1e-3)
    assert idle == pytest.approx(100 * 1106.6667 / (16 * 176.6667), abs=1e-3)
    assert crosshost == pytest.approx(8 * 166.6667 / 176.6667, abs=1e-3)


def test_faabric_consolidates_at_the_next_migration_point() -> None:
    # As per-core until J1 ends at 30; J3 reaches its first point at 30 and is offered h0001
    # for its 2 ranks on h0000; it claims at its next point (50), having done 40 x 0.6 = 24
    # units; 2 s pause; the other 76 units at full speed: it ends at 128.
    # Idle: 60 + 0 + 4 x 70 + 10 x 28 = 620 of 16 x 128; 8 pairs from 10 to 52.
    makespan, idle, crosshost, times = _replay("faabric")
    assert times[3] == pytest.approx((10, 128))
    assert makespan == pytest.approx(128)
    assert idle == pytest.approx(100 * 620 / (16 * 128))
    assert crosshost == pytest.approx(8 * 42 / 128)


def test_trace_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    spec = TraceSpec(jobs=200, rate=0.1, mix=Mix.MPI, seed=7)
    assert generate(spec) == generate(spec)
    assert generate(spec) != generate(TraceSpec(jobs=200, rate=0.1, mix=Mix.MPI, seed=8))
    path = tmp_path / "t.jsonl"
    write_trace(generate(spec), path)
    assert read_trace(path) == generate(spec)
    assert main(["experiment", "trace", "--jobs", "200", "--seed", "7", "-o",
                 str(tmp_path / "cli.jsonl")]) == 0
    assert (tmp_path / "cli.jsonl").read_text() == path.read_text()


def test_trace_sizes_follow_the_mix() -> None:
    mpi = generate(TraceSpec(jobs=500, rate=1.0, mix=Mix.MPI, seed=1))
    omp = generate(TraceSpec(jobs=500, rate=1.0, mix=Mix.OPENMP, seed=1))
    spot = generate(TraceSpec(jobs=500, rate=1.0, mix=Mix.SPOT, seed=1))
    assert {j.size for j in mpi} == set(range(2, 16))
    assert {j.size for j in omp} == set(range(1, 8))
    assert {j.size for j in spot} == set(range(4, 16))
    assert all(j.kind is Kind.OPENMP for j in omp)
    assert [j.arrival for j in mpi] == sorted(j.arrival for j in mpi)


def test_cli_prints_one_line_per_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cal.json").write_text('{"compute_seconds_per_unit": "x"}')
    assert main(["experiment", "compare", "--calibration", str(tmp_path / "cal.json")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "compute_seconds_per_unit" in err
    (tmp_path / "t.jsonl").write_text('{"id": 1}\n')
    assert main(["experiment", "replay", str(tmp_path / "t.jsonl")]) == 1
    assert "line 1: missing field 'arrival'" in capsys.readouterr().err


def test_trace_reader_rejects_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": 1, "arrival": 5, "kind": "mpi", "size": 2, "work": 1}\n'
                    '{"id": 2, "arrival": 1, "kind": "mpi", "size": 2, "work": 1}\n')
    with pytest.raises(TraceError, match="arrivals must not decrease"):
        read_trace(path)
    path.write_text('{"id": 1, "arrival": 0, "kind": "fortran", "size": 2, "work": 1}\n')
    with pytest.raises(TraceError, match="line 1: bad field"):
        read_trace(path)


def test_compare_prints_one_line_per_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "compare", "--hosts", "4", "--jobs", "20", "--seed", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["whole-vm", "per-core", "faabric"]
    for line in lines:
        fields = dict(part.split("=") for part in line.split()[1:])
        assert set(fields) == {"makespan", "idle", "crosshost"}
        assert all(float(value) >= 0 for value in fields.values())


@pytest.mark.parametrize("name", ["whole-vm", "per-core", "faabric"])
def test_replay_keeps_the_core_valid_at_scale(name: str) -> None:
    # 1,000 jobs on 32 hosts, the core's invariants checked every 50 steps.
    jobs = generate(TraceSpec(jobs=1000, rate=0.1, mix=Mix.MPI, seed=3))
    started = time.perf_counter()
    outcome = Replay(jobs, Cluster(32), baseline(name), default_calibration()).run(50)
    assert len(outcome.jobs) == 1000 and not outcome.rejected
    assert time.perf_counter() - started < 20


def test_elastic_openmp_teams_grow_to_their_host() -> None:
    # One host of 8 slots; speed-up 1, 2, 3, 4 (and 4 beyond). A: 2 threads, 100 units at 0;
    # B: 1 thread, 40 units at 10. Elastic: A's first fork takes the 6 free slots (team 8,
    # speed 4: ends at 25); B waits for it. A's team ends first (6 slots back), B starts on
    # one and forks onto the other 5 while A's 2 threads still report (team 6, speed 4:
    # 10 s, ends at 35); those 2 slots idle for B's 10 s: 20 of 8 x 35.
    # Per core: A at speed 2 ends at 50; B at speed 1 from 10 to 50;
    # idle 6 x 10 + 5 x 40 = 260 of 8 x 50.
    cal = parse_calibration(json.dumps({
        "compute_seconds_per_unit": 1.0, "cross_host_pair_cost": 0.5,
        "openmp_speedup": [1.0, 2.0, 3.0, 4.0], "migration_pause_seconds": 2.0,
        "migration_pause_seconds_per_mib": 0.0, "rank_memory_mib": 64,
    }), "test")
    jobs = (Job(1, 0.0, Kind.OPENMP, 2, 100.0), Job(2, 10.0, Kind.OPENMP, 1, 40.0))
    elastic = Replay(jobs, Cluster(1, 8, 20.0), baseline("faabric-elastic"), cal).run(1)
    assert [(j.started, j.ended) for j in elastic.jobs] == [(0, 25), (25, 35)]
    assert elastic.idle_percent == pytest.approx(100 * 20 / 280)
    fixed = Replay(jobs, Cluster(1, 8, 20.0), baseline("per-core"), cal).run(1)
    assert [(j.started, j.ended) for j in fixed.jobs] == [(0, 50), (10, 50)]
    assert fixed.idle_percent == pytest.approx(100 * 260 / 400)


def test_compare_adds_the_elastic_baseline_for_openmp(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["experiment", "compare", "--hosts", "2", "--jobs", "10", "--mix", "openmp"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["whole-vm", "per-core", "faabric", "faabric-elastic"]


def test_spot_notice_lets_apps_leave_before_their_hosts_go() -> None:
    # A quarter of 8 hosts is chosen every 60 s and taken 60 s later. With notice the core
    # places nothing there and moves or freezes what runs there at its next migration point
    # (every 5 s): no job is lost. Without notice, jobs there are lost and start again.
    jobs = generate(TraceSpec(jobs=25, rate=0.1, mix=Mix.SPOT, seed=2))
    cluster = Cluster(8, 8, 5.0, evict_every=60.0)
    cal = default_calibration()
    spot = Replay(jobs, cluster, baseline("faabric-spot"), cal).run(check_every=1)
    fixed = Replay(jobs, cluster, baseline("per-core"), cal).run(check_every=1)
    assert len(spot.jobs) == len(fixed.jobs) == 25
    assert sum(j.restarts for j in spot.jobs) == 0
    assert sum(j.migrations for j in spot.jobs) > 0
    assert sum(j.restarts for j in fixed.jobs) > 0
    assert spot.makespan < fixed.makespan


def test_compare_adds_the_spot_baseline_for_the_spot_mix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["experiment", "compare", "--hosts", "8", "--jobs", "10", "--mix", "spot"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["whole-vm", "per-core", "faabric", "faabric-spot"]


@pytest.mark.timeout(400)  # wall time on a loaded machine; the bound below is CPU time
def test_ten_thousand_jobs_on_128_hosts_replay_in_bounded_time() -> None:
    # 10,000 jobs on 128 hosts, on the busiest baseline (migration offers while apps queue, the
    # shipped calibration): about 45 s of CPU here (docs/experiments.md, "Performance of
    # the replay"); the bound leaves room for a slower machine.
    jobs = generate(TraceSpec(jobs=10_000, rate=0.1, mix=Mix.MPI, seed=1))
    started = time.process_time()
    outcome = Replay(jobs, Cluster(128), baseline("faabric"), default_calibration()).run()
    assert len(outcome.jobs) == 10_000
    assert time.process_time() - started < 90


def test_replay_writes_per_job_times(tmp_path: Path) -> None:
    trace, times, cal = tmp_path / "t.jsonl", tmp_path / "jobs.csv", tmp_path / "cal.json"
    write_trace(THREE, trace)
    cal.write_text(json.dumps({
        "compute_seconds_per_unit": 1.0, "cross_host_pair_cost": 0.5,
        "openmp_speedup": [1.0, 2.0], "migration_pause_seconds": 2.0,
        "migration_pause_seconds_per_mib": 0.0, "rank_memory_mib": 64}))
    assert main(["experiment", "replay", str(trace), "--hosts", "2", "--baseline", "whole-vm",
                 "--per-job", str(times), "--calibration", str(cal)]) == 0
    rows = [line.split(",") for line in times.read_text().splitlines()]
    assert rows[0][:6] == ["id", "arrived", "started", "ended", "wait", "run"]
    assert [(r[0], float(r[2]), float(r[3])) for r in rows[1:]] == [
        ("1", 0, 30), ("2", 0, 100), ("3", 30, 130)]


def test_replay_with_spot_evicts_as_compare_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "spot.jsonl"
    assert main(["experiment", "trace", "--jobs", "20", "--mix", "spot", "-o", str(trace)]) == 0
    assert main(["experiment", "compare", "--trace", str(trace), "--hosts", "4",
                 "--mix", "spot"]) == 0
    spot_line = capsys.readouterr().out.splitlines()[-1]
    assert main(["experiment", "replay", str(trace), "--hosts", "4", "--baseline",
                 "faabric-spot", "--spot"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == spot_line
