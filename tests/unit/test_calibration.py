"""The calibration reader: every kind of malformed file is one `CalibrationError` line naming
the file and the field; the shipped file (written by `python -m bench.calibrate`) loads and
says where its numbers come from."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from faabric.experiments.calibration import (
    FIELDS,
    CalibrationError,
    default_calibration,
    load_calibration,
    parse_calibration,
)

GOOD: dict[str, Any] = {
    "_doc": "a test calibration",
    "compute_seconds_per_unit": 1.5,
    "cross_host_pair_cost": 0.1,
    "openmp_speedup": [1.0, 1.8, 1.8, 2.5],
    "migration_pause_seconds": 0.05,
    "migration_pause_seconds_per_mib": 0.004,
    "rank_memory_mib": 32,
    "_provenance": {"date": "2026-01-01T00:00:00Z", "fields": {}},
}
_DROP = object()  # a field `_with` leaves out


def _with(**changes: Any) -> str:
    doc = dict(GOOD)
    for name, value in changes.items():
        if value is _DROP:
            del doc[name]
        else:
            doc[name] = value
    return json.dumps(doc)


def _rejected(tmp_path: Path, text: str) -> str:
    path = tmp_path / "cal.json"
    path.write_text(text)
    message = _rejected_path(path)
    assert message.startswith(f"calibration {path}: ")
    return message


def _rejected_path(path: Path) -> str:
    with pytest.raises(CalibrationError) as info:
        load_calibration(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_a_good_file_loads_and_ignores_its_notes(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    path.write_text(_with())
    cal = load_calibration(path)
    assert cal.compute_seconds_per_unit == 1.5 and cal.rank_memory_mib == 32.0
    assert cal.openmp_speedup == (1.0, 1.8, 1.8, 2.5)
    assert cal.speedup(0) == 1.0 and cal.speedup(4) == 2.5 and cal.speedup(9) == 2.5
    assert cal.pause(2) == pytest.approx(0.05 + 2 * 0.004 * 32)
    assert load_calibration(path) == parse_calibration(_with(_provenance=_DROP, _doc=_DROP), "x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON: Expecting property name"),
        ("", "not JSON"),
        ("[1, 2]", "expected a JSON object, got a list of 2"),
        ('"x"', 'expected a JSON object, got "x"'),
        (_with(_provenance=[1]), "_provenance: must be an object, got a list of 1"),
        (_with(_provenance="measured"), '_provenance: must be an object, got "measured"'),
        (_with(_doc=3), "_doc: must be a string, got 3"),
        (_with(_comment="x"), "_comment: unknown note"),
        (_with(cross_host_pair_cos=0.1), "cross_host_pair_cos: unknown field"),
        (_with(compute_seconds_per_unit="1.0"),
         'compute_seconds_per_unit: must be a number, got "1.0"'),
        (_with(rank_memory_mib=True), "rank_memory_mib: must be a number, got boolean true"),
        (_with(migration_pause_seconds=None), "migration_pause_seconds: must be a number, got "
                                              "null"),
        (_with(cross_host_pair_cost=-0.5), "cross_host_pair_cost: must be finite and >= 0, "
                                           "got -0.5"),
        (_with(migration_pause_seconds_per_mib=float("nan")),
         "migration_pause_seconds_per_mib: must be finite and >= 0, got nan"),
        (_with(rank_memory_mib=float("inf")), "rank_memory_mib: must be finite"),
        (_with(rank_memory_mib=10**400), "rank_memory_mib: must be finite and >= 0, got 1000"),
        (_with(compute_seconds_per_unit=0), "compute_seconds_per_unit: must be > 0"),
        (_with(openmp_speedup=[]), "openmp_speedup: must be a non-empty list"),
        (_with(openmp_speedup={"1": 1.0}), "openmp_speedup: must be a non-empty list"),
        (_with(openmp_speedup=[1.0, "2"]), 'openmp_speedup\\[1\\]: must be a number, got "2"'),
        (_with(openmp_speedup=[1.0, 0]), "openmp_speedup\\[1\\]: must be finite and > 0"),
        (_with(openmp_speedup=[1.0, float("nan")]), "openmp_speedup\\[1\\]: must be finite"),
        (_with(openmp_speedup=[0.9, 1.8]), "openmp_speedup\\[0\\]: must be 1.0"),
        (_with(openmp_speedup=[2.0]), "openmp_speedup\\[0\\]: must be 1.0"),
        (_with(openmp_speedup=[1.0, 2.0, 1.9]),
         "openmp_speedup\\[2\\]: must not decrease: 1.9 after 2"),
    ],
)
def test_malformed_files_are_one_line_naming_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    assert re.search(message, _rejected(tmp_path, text))


@pytest.mark.parametrize("name", FIELDS)
def test_every_missing_field_is_named(tmp_path: Path, name: str) -> None:
    assert _rejected(tmp_path, _with(**{name: _DROP})).endswith(f": {name}: missing field")


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    message = _rejected_path(tmp_path / "none.json")
    assert "cannot read" in message and str(tmp_path / "none.json") in message
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe{")
    assert "not JSON" in _rejected_path(tmp_path / "bin.json")


def test_the_shipped_file_is_measured_and_says_how() -> None:
    text = resources.files("faabric.experiments").joinpath("calibration.json").read_text()
    doc = json.loads(text)
    cal = default_calibration()
    assert cal.compute_seconds_per_unit == doc["compute_seconds_per_unit"] > 0
    assert cal.openmp_speedup[0] == 1.0
    assert list(cal.openmp_speedup) == sorted(cal.openmp_speedup)
    assert "PLACEHOLDER" not in doc["_doc"].upper()
    provenance = doc["_provenance"]
    assert {"date", "command", "machine", "faabric", "fields"} <= set(provenance)
    assert provenance["command"].startswith("python -m bench.calibrate")
    assert provenance["machine"]["cpus"] >= 1
    assert {"compute_seconds_per_unit", "cross_host_pair_cost", "openmp_speedup",
            "migration_pause", "rank_memory_mib"} <= set(provenance["fields"])
