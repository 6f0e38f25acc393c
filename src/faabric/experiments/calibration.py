"""The cost model of the replay, read from a small JSON file (`calibration.json` next to this
module by default): compute speed, the cost of cross-host rank pairs, OpenMP speed-up by team
size, and the pause of a migration.

The shipped values are placeholders; bench/ will measure them. This module only reads and
checks the file: it must not measure anything, and a malformed file is one
`CalibrationError` line, never a traceback.
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
            (the last entry also holds for larger teams).
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


_NUMBERS = (
    "compute_seconds_per_unit",
    "cross_host_pair_cost",
    "migration_pause_seconds",
    "migration_pause_seconds_per_mib",
    "rank_memory_mib",
)


def default_calibration() -> Calibration:
    """The shipped calibration (placeholders until bench/ measures them)."""
    text = resources.files("faabric.experiments").joinpath("calibration.json").read_text()
    return parse_calibration(text, "calibration.json (shipped)")


def load_calibration(path: str | Path) -> Calibration:
    """Read and check a calibration file.

    Raises:
        CalibrationError: unreadable, not JSON, or a field missing or out of range.
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CalibrationError(f"calibration {path}: cannot read: {exc.strerror}") from None
    return parse_calibration(text, str(path))


def parse_calibration(text: str, where: str) -> Calibration:
    """Check the JSON text of a calibration (`where` names it in errors)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"calibration {where}: not JSON: {exc.msg} "
                               f"(line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"calibration {where}: expected a JSON object")
    values = {name: _number(data, name, where) for name in _NUMBERS}
    if values["compute_seconds_per_unit"] <= 0:
        raise CalibrationError(f"calibration {where}: compute_seconds_per_unit must be > 0")
    return Calibration(openmp_speedup=_table(data, where), **values)


def _number(data: dict[str, Any], name: str, where: str) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalibrationError(f"calibration {where}: {name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise CalibrationError(f"calibration {where}: {name} must be finite and >= 0")
    return float(value)


def _table(data: dict[str, Any], where: str) -> tuple[float, ...]:
    table = data.get("openmp_speedup")
    if not isinstance(table, list) or not table or not all(_positive(v) for v in table):
        raise CalibrationError(f"calibration {where}: openmp_speedup must be a non-empty list "
                               f"of positive numbers, got {table!r}")
    return tuple(float(v) for v in table)


def _positive(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value > 0
