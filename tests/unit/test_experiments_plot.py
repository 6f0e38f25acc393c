"""Metrics over time and the files of `faabric experiment plot`: the time series of a
three-job trace computed by hand, the CSVs' headers and rows, and the figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from faabric.cli import main
from faabric.experiments.baselines import baseline
from faabric.experiments.calibration import default_calibration, parse_calibration
from faabric.experiments.replay import Cluster, Replay
from faabric.experiments.report import quantile
from faabric.experiments.trace import Job, Kind, Mix, TraceSpec, generate, write_trace

# compute 1 s per unit; 0.5 x pairs / size slower; a migration stands still 2 s
CAL_JSON = json.dumps({
    "compute_seconds_per_unit": 1.0, "cross_host_pair_cost": 0.5,
    "openmp_speedup": [1.0, 2.0, 3.0, 4.0], "migration_pause_seconds": 2.0,
    "migration_pause_seconds_per_mib": 0.0, "rank_memory_mib": 64,
})
CAL = parse_calibration(CAL_JSON, "test")

# Two hosts of 8 slots. J1 (4 ranks) and J2 (6) arrive at 0, J3 (6) at 10 (as in
# test_experiments.py, whose makespans these series agree with).
THREE = (
    Job(1, 0.0, Kind.MPI, 4, 30.0),
    Job(2, 0.0, Kind.MPI, 6, 100.0),
    Job(3, 10.0, Kind.MPI, 6, 100.0),
)

Row = tuple[float, int, int, int, int]  # time, used, idle, crosshost, stranded


def _series(name: str) -> tuple[list[Row], float]:
    outcome = Replay(THREE, Cluster(2, 8, 20.0), baseline(name), CAL).run(check_every=1)
    rows = [(s.time, s.used, s.idle, s.crosshost, s.stranded) for s in outcome.series]
    return rows, outcome.fragmentation


def test_whole_vm_strands_the_slots_its_hosts_leave_empty() -> None:
    # J1 alone on h0000 (4 free there), J2 alone on h0001 (2 free): all 6 free slots are
    # stranded. J3 takes h0000 when J1 ends at 30. J2 ends at 100: h0001 is empty, only
    # h0000's 2 free slots are stranded (20 %). Stranded 6x30 + 4x70 + 2x30 = 520 of 760
    # idle slot-seconds.
    rows, fragmentation = _series("whole-vm")
    assert rows == [(0, 10, 6, 0, 6), (30, 12, 4, 0, 4), (100, 6, 10, 0, 2),
                    (130, 0, 16, 0, 0)]
    assert fragmentation == pytest.approx(100 * 520 / 760)


def test_per_core_leaves_every_free_slot_on_a_partly_used_host() -> None:
    # J3 at 10 on h0001's 4 free slots and h0000's 2 (8 pairs); the cluster is full until J1
    # ends at 30; then J2's end at 100 leaves 2 ranks of J3 on h0000: no host is ever empty.
    rows, fragmentation = _series("per-core")
    assert [r[1:] for r in rows] == [(10, 6, 0, 6), (16, 0, 8, 0), (12, 4, 8, 4),
                                     (6, 10, 8, 10), (0, 16, 0, 0)]
    assert [r[0] for r in rows[:4]] == [0, 10, 30, 100]
    assert rows[4][0] == pytest.approx(10 + 100 * 5 / 3)
    assert fragmentation == 100


def test_faabric_consolidation_empties_a_host() -> None:
    # As per-core until J3's 2 ranks on h0000 move to h0001 at 52 (claim at 50, 2 s pause):
    # no pairs left. When J2 ends at 100, h0000 is empty: 2 of 10 free slots stranded.
    # Stranded 60 + 4x22 + 4x48 + 2x28 = 396 of 620 idle slot-seconds.
    rows, fragmentation = _series("faabric")
    assert rows == [(0, 10, 6, 0, 6), (10, 16, 0, 8, 0), (30, 12, 4, 8, 4),
                    (52, 12, 4, 0, 4), (100, 6, 10, 0, 2), (128, 0, 16, 0, 0)]
    assert fragmentation == pytest.approx(100 * 396 / 620)


def test_sample_shares() -> None:
    outcome = Replay(THREE, Cluster(2, 8, 20.0), baseline("faabric"), CAL).run()
    full, emptied = outcome.series[1], outcome.series[4]
    assert full.fragmentation is None and full.idle_percent == 0
    assert emptied.fragmentation == 20 and emptied.idle_percent == 62.5


def test_elastic_threads_count_on_their_main_host() -> None:
    # A (2 threads) forks onto the host's other 6 slots at once; B (1 thread, at 10) waits,
    # starts at 25 and forks onto 5 slots: the other 2 stay free, on a used host.
    jobs = (Job(1, 0.0, Kind.OPENMP, 2, 100.0), Job(2, 10.0, Kind.OPENMP, 1, 40.0))
    outcome = Replay(jobs, Cluster(1, 8, 20.0), baseline("faabric-elastic"), CAL).run(1)
    rows = [(s.time, s.used, s.idle, s.crosshost, s.stranded) for s in outcome.series]
    assert rows == [(0, 8, 0, 0, 0), (25, 6, 2, 0, 2), (35, 0, 8, 0, 0)]
    assert outcome.fragmentation == 100


def test_slots_add_up_while_hosts_are_replaced() -> None:
    # Spot: a quarter of the hosts leaves every minute and fresh ones replace them.
    jobs = generate(TraceSpec(jobs=25, rate=0.1, mix=Mix.SPOT, seed=2))
    cluster = Cluster(8, 8, 5.0, evict_every=60.0)
    for name in ("per-core", "faabric-spot"):
        series = Replay(jobs, cluster, baseline(name), default_calibration()).run().series
        assert all(s.used + s.idle == 64 and 0 <= s.stranded <= s.idle for s in series)
        assert series[-1].used == 0 and len(series) > 25


def test_quantile_interpolates_between_ranks() -> None:
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert quantile(list(range(21)), 0.95) == 19
    assert quantile([7.0], 0.95) == 7 and quantile([], 0.5) == 0


def _plot(tmp_path: Path, *extra: str) -> int:
    trace, cal = tmp_path / "three.jsonl", tmp_path / "cal.json"
    write_trace(THREE, trace)
    cal.write_text(CAL_JSON)
    return main(["experiment", "plot", "--trace", str(trace), "--hosts", "2",
                 "--migration-period", "20", "--calibration", str(cal),
                 "--out", str(tmp_path / "out"), *extra])


def _csv(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


def test_plot_writes_the_csvs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _plot(tmp_path, "--no-figures") == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed[:3]] == ["whole-vm", "per-core", "faabric"]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "mpi-2h-jobs.csv", "mpi-2h-summary.csv", "mpi-2h-timeseries.csv"]
    summary = _csv(out / "mpi-2h-summary.csv")
    assert summary[0] == ["baseline", "makespan", "idle", "crosshost", "fragmentation",
                          "wait_mean", "wait_median", "wait_p95", "run_mean", "run_median",
                          "run_p95", "migrations", "restarts"]
    assert [r[0] for r in summary[1:]] == ["whole-vm", "per-core", "faabric"]
    assert summary[3][1:5] == ["128.0", f"{100 * 620 / (16 * 128):.1f}", f"{8 * 42 / 128:.2f}",
                               f"{100 * 396 / 620:.1f}"]
    for row, line in zip(summary[1:], printed, strict=False):
        assert line.startswith(f"{row[0]} makespan={row[1]} idle={row[2]} crosshost={row[3]}")
    series = _csv(out / "mpi-2h-timeseries.csv")
    assert series[0] == ["baseline", "time", "used", "idle", "crosshost", "fragmentation",
                         "stranded"]
    assert [r[:2] for r in series[1:5]] == [["whole-vm", "0.000"], ["whole-vm", "30.000"],
                                            ["whole-vm", "100.000"], ["whole-vm", "130.000"]]
    assert {r[0] for r in series[1:]} == {"whole-vm", "per-core", "faabric"}
    jobs = _csv(out / "mpi-2h-jobs.csv")
    assert jobs[0] == ["baseline", "id", "arrived", "started", "ended", "wait", "run",
                       "migrations", "restarts"]
    assert len(jobs) == 1 + 3 * 3


def test_plot_draws_every_figure(tmp_path: Path) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pytest.skip("matplotlib is not installed (pip install 'faabric[experiments]')")
    assert _plot(tmp_path) == 0
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert pngs == [f"mpi-2h-{what}.png" for what in
                    ("cdf", "crosshost", "fragmentation", "idle", "makespan")]
    for name in pngs:
        data = (tmp_path / "out" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) < 100_000


def test_plot_without_matplotlib_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    assert _plot(tmp_path) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'faabric[experiments]'" in err
    assert not (tmp_path / "out").exists()  # it failed before replaying
