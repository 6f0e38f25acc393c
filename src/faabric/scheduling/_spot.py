"""The spot policy (faabric: src/batch-scheduler/SpotScheduler.cpp): bin-pack on hosts that
may be taken away at short notice.

Placement is bin-pack's, which never uses a host being evicted. A migration concerns only an
app with a rank on such a host: it is re-placed from scratch on the other hosts (bin-pack's
migration order, keeping every rank it can where it is), with no "better" test; if it does
not fit, the answer is `MustFreeze`. Pure: it must not do I/O, read a clock or keep state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from faabric.scheduling._binpack import bin_pack_place
from faabric.scheduling._migrate import check_migration, fewest_moves, repack
from faabric.scheduling._placement import (
    NOT_RUNNING,
    DoNotMigrate,
    HostSlots,
    Migration,
    MustFreeze,
    NoCapacity,
    Placement,
)


@dataclass(frozen=True, slots=True)
class Spot:
    """The spot policy (see `Policy`)."""

    name: str = "spot"

    def place(
        self,
        hosts: Sequence[HostSlots],
        size: int,
        running: Mapping[str, int] = NOT_RUNNING,
    ) -> Placement:
        """Place like bin-pack, never on a host being evicted."""
        return bin_pack_place(hosts, size, running)

    def migrate(self, hosts: Sequence[HostSlots], placement: Sequence[str]) -> Migration:
        """Move the app off the hosts being evicted (see `spot_migration`)."""
        return spot_migration(hosts, placement)


spot = Spot()


def spot_migration(hosts: Sequence[HostSlots], placement: Sequence[str]) -> Migration:
    """`DoNotMigrate` unless a rank of the app runs on a host being evicted; then the app
    re-placed on the other hosts with as few ranks moved as possible, or `MustFreeze` when
    their free slots (counting the app's own) are too few."""
    check_migration(hosts, placement)
    evicting = {host.name for host in hosts if host.evicting}
    if evicting.isdisjoint(placement):
        return DoNotMigrate()
    repacked = repack(hosts, placement)
    if isinstance(repacked, NoCapacity):
        return MustFreeze()
    return fewest_moves(placement, repacked.counts, repacked.order)
