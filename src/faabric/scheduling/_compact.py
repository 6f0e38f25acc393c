"""The compact policy (faabric: src/batch-scheduler/CompactScheduler.cpp): one user per host,
fullest hosts first, and migrations only to empty a host.

A host that runs apps of another user takes nothing of this user's. New apps fill the
fullest allowed hosts first (most used slots; ties: more slots, then the smaller name); a
scale change first tops up the hosts already running the app. A migration is taken only if
it empties a host (one more empty host than before), moving as few ranks as possible. The
policy is bound to one user with `for_user`. Pure: it must not do I/O, read a clock or keep
state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from faabric.scheduling._migrate import check_migration
from faabric.scheduling._placement import (
    NOT_RUNNING,
    DoNotMigrate,
    HostSlots,
    Migration,
    Moves,
    NoCapacity,
    Placed,
    Placement,
    check_request,
)


@dataclass(frozen=True, slots=True)
class Compact:
    """The compact policy (see `Policy`), deciding for apps of `user`."""

    user: str = ""
    name: str = "compact"

    def for_user(self, user: str) -> Compact:
        """The compact policy deciding for apps of `user`."""
        return Compact(user=user)

    def allows(self, host: HostSlots) -> bool:
        """Whether the host may take this user's granules: it is not being evicted and runs
        no other user's apps."""
        return not host.evicting and host.users <= {self.user}

    def place(
        self,
        hosts: Sequence[HostSlots],
        size: int,
        running: Mapping[str, int] = NOT_RUNNING,
    ) -> Placement:
        """Place `size` granules on the allowed hosts, fullest first (hosts running the app
        first for a scale change); `NoCapacity` names the allowed hosts' free slots."""
        check_request(hosts, size, running)
        allowed = [host for host in hosts if self.allows(host)]
        free = sum(host.free for host in allowed)
        if free < size:
            return NoCapacity(requested=size, free=free)
        order = sorted(
            allowed, key=lambda h: (-running.get(h.name, 0), -h.used, -h.slots, h.name)
        )
        placed: list[str] = []
        for host in order:
            placed.extend([host.name] * min(host.free, size - len(placed)))
            if len(placed) == size:
                break
        return Placed(hosts=tuple(placed))

    def migrate(self, hosts: Sequence[HostSlots], placement: Sequence[str]) -> Migration:
        """Empty one more host, moving as few ranks as possible (see `compact_migration`)."""
        return compact_migration(hosts, placement, self.user)


compact = Compact()


def compact_migration(
    hosts: Sequence[HostSlots], placement: Sequence[str], user: str
) -> Migration:
    """Move the app's ranks off one host that runs nothing else, onto free slots of hosts
    already in use that `user` may use (fullest first, then by name), so that one more host
    is empty. The host with the fewest of the app's ranks that can be emptied is chosen
    (ties: by name); `DoNotMigrate` if none can."""
    check_migration(hosts, placement)
    own = Counter(placement)
    by_name = {host.name: host for host in hosts}
    policy = Compact(user=user)
    targets = sorted(
        (host for host in hosts if host.used > 0 and policy.allows(host)),
        key=lambda h: (-h.used, h.name),
    )
    for name in sorted(own, key=lambda n: (own[n], n)):
        host = by_name.get(name)
        if host is None or host.used != own[name]:
            continue  # lost, or other granules run there too: moving cannot empty it
        spots = [t.name for t in targets if t.name != name for _ in range(t.free)]
        if len(spots) < own[name]:
            continue
        moved = tuple(rank for rank, where in enumerate(placement) if where == name)
        new = list(placement)
        for rank, target in zip(moved, spots, strict=False):
            new[rank] = target
        return Moves(placement=tuple(new), moved=moved)
    return DoNotMigrate()
