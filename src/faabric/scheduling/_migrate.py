"""The bin-pack migration rule (faabric: BinPackScheduler's DIST_CHANGE and
`minimiseNumOfMigrations`): should a running app move, and which ranks?

Give the app its own slots back, re-place it greedily on the hosts with the most free slots,
and accept the result only if it spans fewer hosts, or as many with fewer cross-host rank
pairs. Then keep every rank it can on its old host. Hosts being evicted take no rank. The
re-placement and the fewest-moves step are shared with the spot policy. It only decides: it
must not do I/O, read a clock, keep state or reserve slots (the planner reserves them and
talks to workers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from faabric.scheduling._placement import (
    DoNotMigrate,
    HostSlots,
    Migration,
    Moves,
    NoCapacity,
)


def bin_pack_migration(hosts: Sequence[HostSlots], placement: Sequence[str]) -> Migration:
    """Decide whether the app running on `placement` should move (see `Policy.migrate`).

    Hosts are sorted by free slots counting the app's own as free (descending), ties broken
    by how many of the app's ranks each runs, then total slots, then name; the ranks fill
    them in that order. Ranks on hosts being evicted or missing from `hosts` cannot stay
    where they are.
    """
    check_migration(hosts, placement)
    first = placement[0]
    if all(host == first for host in placement) and any(
        h.name == first and not h.evicting for h in hosts
    ):
        return DoNotMigrate()  # on one usable host already: nothing is better (the usual case)
    repacked = repack(hosts, placement)
    if isinstance(repacked, NoCapacity):
        return DoNotMigrate()  # only possible when some of its hosts are missing or evicted
    size = len(placement)
    if _cost(repacked.counts, size) >= _cost(Counter(placement), size):
        return DoNotMigrate()
    return fewest_moves(placement, repacked.counts, repacked.order)


@dataclass(frozen=True, slots=True)
class Repacked:
    """The app re-placed from scratch: how many ranks each host gets (`counts`, hosts with
    none left out), and the host order that filled them."""

    counts: Mapping[str, int]
    order: tuple[str, ...]


def repack(hosts: Sequence[HostSlots], placement: Sequence[str]) -> Repacked | NoCapacity:
    """Give the app its own slots back and fill the hosts not being evicted greedily, in
    bin-pack's migration order (see `bin_pack_migration`)."""
    own = Counter(placement)
    usable = [host for host in hosts if not host.evicting]
    free = {host.name: host.free + own.get(host.name, 0) for host in usable}
    order = sorted(
        usable,
        key=lambda h: (free[h.name], own.get(h.name, 0), h.slots, h.name),
        reverse=True,
    )
    size = len(placement)
    if sum(free.values()) < size:
        return NoCapacity(requested=size, free=sum(free.values()))
    counts: dict[str, int] = {}
    left = size
    for host in order:
        take = min(free[host.name], left)
        if take:
            counts[host.name] = take
            left -= take
    return Repacked(counts, tuple(host.name for host in order))


def cross_host_links(counts: Mapping[str, int]) -> int:
    """How many pairs of ranks run on different hosts: sum of n_h * (N - n_h) / 2."""
    size = sum(counts.values())
    return sum(n * (size - n) for n in counts.values()) // 2


def _cost(counts: Mapping[str, int], size: int) -> tuple[int, int]:
    # Lexicographic: fewer hosts first, then fewer cross-host pairs.
    used = {name: n for name, n in counts.items() if n}
    return len(used), cross_host_links(used)


def fewest_moves(
    placement: Sequence[str], counts: Mapping[str, int], order: Sequence[str]
) -> Moves:
    """Keep each rank on its old host while the new per-host counts allow (lowest ranks
    first), and send the others to the remaining places in the policy's host order."""
    left = dict(counts)
    moved: list[int] = []
    for rank, host in enumerate(placement):
        if left.get(host, 0) > 0:
            left[host] -= 1
        else:
            moved.append(rank)
    targets = [name for name in order for _ in range(left.get(name, 0))]
    new = list(placement)
    for rank, host in zip(moved, targets, strict=True):
        new[rank] = host
    return Moves(placement=tuple(new), moved=tuple(moved))


def check_migration(hosts: Sequence[HostSlots], placement: Sequence[str]) -> None:
    """Raise ValueError for a migration request no policy may answer (see `Policy.migrate`)."""
    if not placement:
        raise ValueError("a migration needs an app with at least one rank")
    used = {host.name: host.used for host in hosts}
    if len(used) != len(hosts):
        raise ValueError(f"duplicate host names in {[host.name for host in hosts]}")
    over = sorted(name for name, n in Counter(placement).items() if n > used.get(name, n))
    if over:
        raise ValueError(f"hosts {over} run more of the app's ranks than they have used slots")


class FreeSlots:
    """The free slots of the hosts not being evicted, sorted once for a round of migration
    decisions, to tell cheaply which apps bin-pack cannot improve (`may_improve`)."""

    def __init__(self, hosts: Sequence[HostSlots]) -> None:
        usable = [(h.slots - h.used, h.name) for h in hosts if not h.evicting]
        self._free = dict((name, free) for free, name in usable)
        self._largest = sorted(usable, reverse=True) or [(0, "")]

    def __contains__(self, host: str) -> bool:
        """Whether `host` is live and not being evicted."""
        return host in self._free

    def may_improve(self, placement: Sequence[str]) -> bool:
        """False when no placement of the app on these free slots (its own counted as free)
        spans fewer hosts, or as many with fewer cross-host pairs: then bin-pack's
        re-placement cannot either. Filling the largest capacities first gives the fewest
        hosts and the most uneven split, which has the fewest pairs."""
        own = Counter(placement)
        if any(host not in self._free for host in own):
            return True  # a rank on a host being evicted (or gone) cannot stay
        if len(own) == 1:
            return False
        room = [n + self._free[host] for host, n in own.items()]
        if sum(room) == len(placement) and self._largest[0][0] <= min(own.values()):
            return False  # its hosts are full and no other host has room for a whole part
        size = len(placement)
        for free, name in self._largest:
            if len(room) >= len(own) + size or free == 0:
                break
            if name not in own:
                room.append(free)
        counts, left = {}, size
        for index, capacity in enumerate(sorted(room, reverse=True)):
            if left == 0:
                break
            counts[str(index)] = min(capacity, left)
            left -= counts[str(index)]
        return left == 0 and _cost(counts, size) < _cost(own, size)
