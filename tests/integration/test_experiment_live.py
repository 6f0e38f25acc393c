"""A short MPI trace run for real on three worker processes under each baseline, beside its
replay: the replay must order the baselines as the real runs do and match their makespans
within 15 %."""

from __future__ import annotations

from pathlib import Path

import pytest

from faabric.cli import main
from faabric.experiments.baselines import BASELINES
from faabric.experiments.calibration import default_calibration
from faabric.experiments.live import LiveSetup
from faabric.experiments.live_compare import compare_live, verdict
from faabric.experiments.trace import Mix, TraceSpec, generate, write_trace

# Busy enough that whole-VM allocation queues jobs the per-core baselines start at once.
SPEC = TraceSpec(jobs=16, rate=3.0, mix=Mix.MPI, seed=2, mpi_sizes=(2, 7), work=(200, 500))


@pytest.mark.timeout(240)
def test_the_replay_matches_a_real_run_of_the_same_trace() -> None:
    rows = compare_live(generate(SPEC), LiveSetup(hosts=3, slots=4), BASELINES,
                        default_calibration())
    by_name = {row.live.baseline: row for row in rows}
    assert list(by_name) == ["whole-vm", "per-core", "faabric"]
    assert verdict(rows) == []
    whole, per_core = by_name["whole-vm"], by_name["per-core"]
    # The trace separates whole-VM allocation from the rest, in both worlds.
    assert whole.replayed > 1.2 * per_core.replayed
    assert whole.live.makespan > 1.2 * per_core.live.makespan
    for row in rows:
        assert abs(row.difference) <= 0.15


def test_live_refuses_an_openmp_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "omp.jsonl"
    write_trace(generate(TraceSpec(jobs=3, rate=1.0, mix=Mix.OPENMP, seed=0)), trace)
    assert main(["experiment", "live", str(trace)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("faabric: job 1 is an OpenMP job: live runs take MPI traces")
