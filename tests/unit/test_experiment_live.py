"""The pure parts of `faabric experiment live`: the cost model of a live run, the pauses read
from app events, and the verdict on a replay."""

from __future__ import annotations

import pytest

from faabric.errors import ConfigError, FaabricError
from faabric.experiments.calibration import default_calibration
from faabric.experiments.live import LiveResult, LiveSetup, _measure, live_calibration
from faabric.experiments.live_compare import Row, verdict


def row(name: str, live: float, replayed: float) -> Row:
    return Row(LiveResult(name, live, 0, 0.0), replayed, 0)


def test_a_live_run_costs_its_unit_per_work_and_nothing_per_pair() -> None:
    cal = live_calibration(LiveSetup(unit=0.01), default_calibration())
    assert cal.compute_seconds_per_unit == 0.01
    assert cal.cross_host_pair_cost == 0.0
    measured = live_calibration(LiveSetup(), default_calibration(), [0.3, 0.1, 0.2])
    assert measured.pause(5) == pytest.approx(0.2)


def test_bad_setups_are_refused() -> None:
    with pytest.raises(ConfigError, match="--unit and --step must be > 0"):
        LiveSetup(unit=0.0)
    with pytest.raises(ConfigError, match="hosts and slots >= 1"):
        LiveSetup(hosts=0)


def test_the_measure_reads_makespan_waits_and_pauses_from_app_documents() -> None:
    events = [{"kind": "offered", "epoch": 1, "time": 4.0},
              {"kind": "started", "epoch": 1, "time": 5.0},
              {"kind": "migrated", "epoch": 1, "time": 5.25}]
    docs = [
        {"app_id": 1, "submitted": 100.0, "started": 100.5, "finished": 110.0, "status": 0,
         "migrations": 1, "events": events},
        {"app_id": 2, "submitted": 101.0, "started": 104.0, "finished": 108.0, "status": 0,
         "migrations": 0, "events": []},
    ]
    result = _measure("faabric", docs)
    assert result == LiveResult("faabric", 10.0, 1, 3.0, (0.25,))


def test_a_failed_or_unfinished_job_is_an_error() -> None:
    doc = {"app_id": 3, "submitted": 0.0, "started": 0.0, "finished": 1.0, "status": 1,
           "migrations": 0, "events": []}
    with pytest.raises(FaabricError, match=r"apps failed \(id, status\): \[\(3, 1\)\]"):
        _measure("per-core", [doc])
    with pytest.raises(FaabricError, match=r"apps \[3\] did not finish"):
        _measure("per-core", [{**doc, "finished": None}])


def test_the_verdict_names_makespans_off_and_orderings_reversed() -> None:
    assert verdict([row("a", 10.0, 11.0), row("b", 20.0, 19.0)]) == []
    off = verdict([row("a", 10.0, 12.0)])
    assert off == ["a: the replay is off by +20.0%"]
    flipped = verdict([row("a", 10.0, 10.0), row("b", 9.9, 11.0)])
    assert flipped == ["the replay has a 10% shorter than b; the real runs order them the "
                       "other way"]
    assert verdict([row("a", 10.0, 10.0), row("b", 9.9, 10.2)]) == []  # too close to order
