"""The cost model of the replay, read from a small JSON file (`calibration.json` next to this
module by default): compute speed, the cost of cross-host rank pairs, OpenMP speed-up by team
size, and the pause of a migration.

`python -m bench.calibrate` measures the values on real workers and writes the file, with a
`_provenance` object (when, where and how, and the raw measurements) that the model ignores.
This module only reads and checks the file: it must not measure anything, and a malformed
file is one `CalibrationError` line naming the file and the field, never a traceback.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from faabric.errors import ConfigError


class CalibrationError(ConfigError):
    """A calibration file is missing, not JSON, or has a missing or out-of-range field."""


@dataclass(frozen=True, slots=True)
class Calibration:
    """The replay's cost model.

    Attributes:
        compute_seconds_per_unit: seconds one granule needs per unit of trace work, with
            every rank of its app on one host (or a lone OpenMP thread).
        cross_host_pair_cost: an MPI app's run time grows by this fraction per cross-host rank
            pair per rank: time x (1 + cost x pairs / size).
        openmp_speedup: speed-up of an OpenMP team of 1, 2, ... threads against one thread
            (starts at 1.0, never decreases; the last entry also holds for larger teams).
        migration_pause_seconds: fixed pause of an app while its ranks move.
        migration_pause_seconds_per_mib: added pause per MiB of a moved rank's memory.
        rank_memory_mib: memory of one rank (what a move transfers).
    """

    compute_seconds_per_unit: float
    cross_host_pair_cost: float
    openmp_speedup: tuple[float, ...]
    migration_pause_seconds: float
    migration_pause_seconds_per_mib: float
    rank_memory_mib: float

    def speedup(self, threads: int) -> float:
        """Speed-up of an OpenMP team of `threads` (at least 1) against one thread."""
        table = self.openmp_speedup
        return table[min(max(threads, 1), len(table)) - 1]

    def pause(self, moved: int) -> float:
        """Seconds an app stands still while `moved` of its ranks change host."""
        per_rank = self.migration_pause_seconds_per_mib * self.rank_memory_mib
        return self.migration_pause_seconds + per_rank * moved


NUMBERS = (
    "compute_seconds_per_unit",
    "cross_host_pair_cost",
    "migration_pause_seconds",
    "migration_pause_seconds_per_mib",
    "rank_memory_mib",
)
FIELDS = (*NUMBERS, "openmp_speedup")
NOTES = {"_doc": str, "_provenance": dict}  # optional; the model ignores them


def default_calibration() -> Calibration:
    """The shipped calibration (measured by `python -m bench.calibrate`)."""
    text = resources.files("faabric.experiments").joinpath("calibration.json").read_text()
    return parse_calibration(text, "calibration.json (shipped)")


def load_calibration(path: str | Path) -> Calibration:
    """Read and check a calibration file.

    Raises:
        CalibrationError: unreadable, not JSON, or a field missing, of the wrong type or
            out of range.
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CalibrationError(f"calibration {path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CalibrationError(f"calibration {path}: not JSON: not UTF-8 text") from None
    return parse_calibration(text, str(path))


def parse_calibration(text: str, where: str) -> Calibration:
    """Check the JSON text of a calibration (`where` names it in errors)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"calibration {where}: not JSON: {exc.msg} "
                               f"(line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"calibration {where}: expected a JSON object, got "
                               f"{_kind(data)}")
    values = {name: _number(data, name, where) for name in NUMBERS}
    if values["compute_seconds_per_unit"] <= 0:
        raise _error(where, "compute_seconds_per_unit", "must be > 0, got 0")
    table = _table(data, where)
    _check_notes(data, where)
    return Calibration(openmp_speedup=table, **values)


def _check_notes(data: dict[str, Any], where: str) -> None:
    """No unknown field, and the notes of the right kind."""
    for name, value in data.items():
        kind = NOTES.get(name)
        if kind is not None and not isinstance(value, kind):
            want = "a string" if kind is str else "an object"
            raise _error(where, name, f"must be {want}, got {_kind(value)}")
        if kind is None and name not in FIELDS:
            raise _error(where, name, "unknown field (notes must start with '_')"
                         if not name.startswith("_") else "unknown note (known: _doc, "
                         "_provenance)")


def _number(data: dict[str, Any], name: str, where: str) -> float:
    if name not in data:
        raise _error(where, name, "missing field")
    return _value(data[name], name, where, positive=False)


def _table(data: dict[str, Any], where: str) -> tuple[float, ...]:
    name = "openmp_speedup"
    if name not in data:
        raise _error(where, name, "missing field")
    table = data[name]
    if not isinstance(table, list) or not table:
        raise _error(where, name, f"must be a non-empty list of numbers (speed-ups of 1, 2, "
                     f"... threads), got {_kind(table)}")
    out: list[float] = []
    for index, item in enumerate(table):
        at = f"{name}[{index}]"
        value = _value(item, at, where, positive=True)
        if out and value < out[-1]:
            raise _error(where, at, f"must not decrease: {value:g} after {out[-1]:g} "
                         "(a team never runs slower than a smaller one)")
        out.append(value)
    if out[0] != 1.0:
        raise _error(where, f"{name}[0]", f"must be 1.0 (one thread against itself), got "
                     f"{out[0]:g}")
    return tuple(out)


def _value(value: object, field: str, where: str, *, positive: bool) -> float:
    """A finite number, >= 0 (> 0 if `positive`)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _error(where, field, f"must be a number, got {_kind(value)}")
    bound = "> 0" if positive else ">= 0"
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise _error(where, field, f"must be finite and {bound}, got {_kind(value)}") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise _error(where, field, f"must be finite and {bound}, got {number:g}")
    return number


def _kind(value: object) -> str:
    """A short, one-line description of a JSON value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an empty list" if not value else f"a list of {len(value)}"
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _error(where: str, field: str, problem: str) -> CalibrationError:
    return CalibrationError(f"calibration {where}: {field}: {problem}")
