"""The guests' clocks (abi/clock.py): monotonic from the granule's base, wall clock as is."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from faabric.abi.clock import ERRNO_INVAL, ERRNO_SUCCESS, MONOTONIC, REALTIME, clock_time_get
from faabric.abi.state import GranuleIO, GranuleState


@dataclass
class _Memory:
    writes: dict[int, bytes] = field(default_factory=dict)

    def write(self, ptr: int, data: bytes, what: str = "") -> None:
        self.writes[ptr] = data


@dataclass
class _Call:
    state: GranuleState
    mem: _Memory = field(default_factory=_Memory)

    def memory(self) -> _Memory:
        return self.mem


def _read(call: _Call, ptr: int) -> int:
    return int.from_bytes(call.mem.writes[ptr], "little")


def test_a_moved_granule_s_monotonic_clock_goes_on_from_its_base() -> None:
    # As after a migration: the granule's clock read 5 s when it arrived here just now.
    io = GranuleIO(index=0, count=1, clock_base=time.monotonic_ns() - 5_000_000_000)
    call = _Call(GranuleState(1, io))
    assert clock_time_get(call, MONOTONIC, 1, 64) == ERRNO_SUCCESS  # type: ignore[arg-type]
    assert 5.0 <= _read(call, 64) / 1e9 < 6.0


def test_the_wall_clock_is_the_host_s_and_cpu_clocks_are_refused() -> None:
    call = _Call(GranuleState(1, GranuleIO(index=0, count=1)))
    assert clock_time_get(call, REALTIME, 1, 8) == ERRNO_SUCCESS  # type: ignore[arg-type]
    assert abs(_read(call, 8) / 1e9 - time.time()) < 5
    assert clock_time_get(call, 2, 1, 16) == ERRNO_INVAL  # type: ignore[arg-type]
    assert 16 not in call.mem.writes
