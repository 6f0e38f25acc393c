"""Moving an app off the hosts being evicted with any policy's placement rule.

The planner asks the app's policy first (`Policy.migrate`); when its answer leaves ranks on
a host being evicted, it falls back to `evacuate`: only those ranks move, placed by the
policy's own `place` as a scale change of the app (hosts already running it first). Pure: it
must not do I/O, read a clock or keep state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from faabric.scheduling._migrate import check_migration
from faabric.scheduling._placement import (
    HostSlots,
    Moves,
    MustFreeze,
    NoCapacity,
    Policy,
)


def evacuate(
    policy: Policy, hosts: Sequence[HostSlots], placement: Sequence[str]
) -> Moves | MustFreeze:
    """Move the ranks of `placement` that run on hosts being evicted (or missing from
    `hosts`) to the other hosts as `policy` places them; `MustFreeze` if they do not fit.

    Raises:
        ValueError: no rank needs to move, or the request is malformed (see
            `Policy.migrate`).
    """
    check_migration(hosts, placement)
    usable = [host for host in hosts if not host.evicting]
    names = {host.name for host in usable}
    leaving = tuple(rank for rank, host in enumerate(placement) if host not in names)
    if not leaving:
        raise ValueError("no rank of the app runs on a host being evicted")
    staying = Counter(host for host in placement if host in names)
    placed = policy.place(usable, len(leaving), staying)
    if isinstance(placed, NoCapacity):
        return MustFreeze()
    new = list(placement)
    for rank, host in zip(leaving, placed.hosts, strict=True):
        new[rank] = host
    return Moves(placement=tuple(new), moved=leaving)
