"""The bin-pack placement policy (faabric: src/batch-scheduler/BinPackScheduler.cpp).

Sort the hosts, then fill each one's free slots in that order. A new app goes first to the
hosts with the most free slots (ties: more total slots, then the greater name; the original
compared IP addresses the same way). A scale change first tops up the hosts that already run
the app, most granules first. It never over-commits a host, nor uses a host being evicted.
`bin_pack` is the policy value (placement and the migration rule of `_migrate.py`); calling
it places. Pure: no I/O, no clock, no state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from faabric.scheduling._migrate import bin_pack_migration
from faabric.scheduling._placement import (
    NOT_RUNNING,
    HostSlots,
    Migration,
    NoCapacity,
    Placed,
    Placement,
    check_request,
)


@dataclass(frozen=True, slots=True)
class BinPack:
    """The bin-pack policy (see `Policy`). Calling it is `place`, so it also serves where a
    plain placement function is expected."""

    name: str = "bin-pack"

    def place(
        self,
        hosts: Sequence[HostSlots],
        size: int,
        running: Mapping[str, int] = NOT_RUNNING,
    ) -> Placement:
        """Place `size` granules by bin-packing them onto `hosts` (see `bin_pack_place`)."""
        return bin_pack_place(hosts, size, running)

    def __call__(
        self,
        hosts: Sequence[HostSlots],
        size: int,
        running: Mapping[str, int] = NOT_RUNNING,
    ) -> Placement:
        """Same as `place`."""
        return bin_pack_place(hosts, size, running)

    def migrate(self, hosts: Sequence[HostSlots], placement: Sequence[str]) -> Migration:
        """Bin-pack's migration rule (see `bin_pack_migration`)."""
        return bin_pack_migration(hosts, placement)


bin_pack = BinPack()


def bin_pack_place(
    hosts: Sequence[HostSlots],
    size: int,
    running: Mapping[str, int] = NOT_RUNNING,
) -> Placement:
    """Place `size` granules by bin-packing them onto `hosts`.

    Args:
        hosts: the live hosts with their slot counts (names unique); hosts being evicted
            are skipped.
        size: number of granules to place, at least 1.
        running: for a scale change, host name -> granules of this app already there (names
            that are not in `hosts` are ignored); empty for a new app.

    Returns:
        `Placed` with the host of each granule in granule order, or `NoCapacity` when the
        hosts' free slots add up to less than `size`.

    Raises:
        ValueError: `size` < 1, duplicate host names, or a negative count in `running`.
    """
    check_request(hosts, size, running)
    hosts = [host for host in hosts if not host.evicting]
    free = sum(host.free for host in hosts)
    if free < size:
        return NoCapacity(requested=size, free=free)
    order = sorted(hosts, key=lambda host: _order_key(host, running), reverse=True)
    placed: list[str] = []
    for host in order:
        take = min(host.free, size - len(placed))
        placed.extend([host.name] * take)
        if len(placed) == size:
            break
    return Placed(hosts=tuple(placed))


def _order_key(host: HostSlots, running: Mapping[str, int]) -> tuple[int, int, int, str]:
    # Sorted descending. For a new app every host has count 0, leaving the NEW order
    # (free slots, total slots, name); for a scale change hosts running the app come first.
    return (running.get(host.name, 0), host.free, host.slots, host.name)
