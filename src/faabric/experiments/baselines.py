"""The schedulers an experiment compares, as configurations of the same replay through the
real planner core: which policy places apps, and whether apps reach migration points.

`whole-vm` is the planner's whole-VM policy (`faabric.scheduling.WholeVm`): a job gets
ceil(size / slots) hosts that run nothing else, filled in order, and never moves; the slots
it leaves empty on its hosts stay idle, as with a VM-granular batch scheduler. This module
only describes schedulers: it must not replay, keep state or do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from faabric.errors import ConfigError
from faabric.scheduling import Policy, bin_pack, spot, whole_vm


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
