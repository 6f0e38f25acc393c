"""The schedulers an experiment compares, as configurations of the same replay through the
real planner core: which policy places apps, and whether apps reach migration points.

`whole-vm` is a policy of its own (below), passed to `PlannerCore` as its cluster policy: a
job gets ceil(size / slots) hosts that run nothing else, filled in order, and never moves;
the slots it leaves empty on its hosts stay idle, as with a VM-granular batch scheduler.
This module only describes schedulers: it must not replay, keep state or do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from faabric.errors import ConfigError
from faabric.scheduling import (
    DoNotMigrate,
    HostSlots,
    Migration,
    NoCapacity,
    Placed,
    Placement,
    Policy,
    bin_pack,
    spot,
)

_NONE: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class WholeVm:
    """Whole hosts per app (see the module doc): only empty hosts, most slots first, then by
    name; never a scale change or a migration."""

    name: str = "whole-vm"

    def place(
        self,
        hosts: Sequence[HostSlots],
        size: int,
        running: Mapping[str, int] = _NONE,
    ) -> Placement:
        """Fill empty hosts in order until `size` granules have one."""
        empty = [h for h in hosts if h.used == 0 and not h.evicting]
        free = sum(h.slots for h in empty)
        if running or free < size:
            return NoCapacity(requested=size, free=0 if running else free)
        empty.sort(key=lambda h: (-h.slots, h.name))
        placed: list[str] = []
        for host in empty:
            placed.extend([host.name] * min(host.slots, size - len(placed)))
            if len(placed) == size:
                break
        return Placed(hosts=tuple(placed))

    def migrate(self, hosts: Sequence[HostSlots], placement: Sequence[str]) -> Migration:
        """Never: a VM-granular job stays where it started."""
        return DoNotMigrate()


whole_vm = WholeVm()


@dataclass(frozen=True, slots=True)
class Baseline:
    """One scheduler of a comparison.

    Attributes:
        name: as printed by `faabric experiment compare`.
        policy: the planner core's cluster policy.
        migrate: apps reach migration points (every `--migration-period` seconds).
        elastic: OpenMP teams grow at every fork (at start, then every
            `--migration-period` seconds) to the free slots of their main host, through the
            core's up-to scale requests.
        notice: hosts about to be evicted are announced to the core (`HostEvicted`), which
            moves or freezes their apps; without it they just go away and their apps restart.
    """

    name: str
    policy: Policy
    migrate: bool
    elastic: bool = False
    notice: bool = False


BASELINES: tuple[Baseline, ...] = (
    Baseline("whole-vm", whole_vm, migrate=False),
    Baseline("per-core", bin_pack, migrate=False),
    Baseline("faabric", bin_pack, migrate=True),
)

ELASTIC = Baseline("faabric-elastic", bin_pack, migrate=True, elastic=True)
SPOT = Baseline("faabric-spot", spot, migrate=True, notice=True)
EXTRA = (ELASTIC, SPOT)


def baselines_for(mix: str) -> tuple[Baseline, ...]:
    """The baselines `compare` runs for a trace mix: the elastic one too for OpenMP, the
    one with eviction notice too for spot."""
    extra = {"openmp": (ELASTIC,), "spot": (SPOT,)}.get(mix, ())
    return (*BASELINES, *extra)


def baseline(name: str) -> Baseline:
    """The baseline called `name`.

    Raises:
        ConfigError: no baseline has that name.
    """
    for known in (*BASELINES, *EXTRA):
        if known.name == name:
            return known
    names = ", ".join(b.name for b in (*BASELINES, *EXTRA))
    raise ConfigError(f"unknown baseline {name!r} (known: {names})")
