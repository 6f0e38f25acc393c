"""Value types shared by every placement policy: host capacity in, a decision out.

A placement is a tagged union (`Placed | NoCapacity`), a migration decision another
(`Moves | DoNotMigrate | MustFreeze`), never a sentinel. This module holds data, the
`Policy` protocol and the request checks every policy shares; it must not do I/O, read
clocks or keep state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol


@dataclass(frozen=True, slots=True)
class HostSlots:
    """The capacity of one host as a policy sees it.

    Attributes:
        name: the host's unique name.
        slots: how many granules the host may run at once.
        used: how many of those slots are taken.
        evicting: the host was announced for eviction: no policy puts anything new on it,
            and ranks there cannot stay.
        users: the users whose apps hold slots on the host (the compact policy keeps users
            apart).
    """

    name: str
    slots: int
    used: int
    evicting: bool = False
    users: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.slots < 0 or self.used < 0 or self.used > self.slots:
            raise ValueError(
                f"host {self.name!r}: need 0 <= used <= slots, got used={self.used} "
                f"slots={self.slots}"
            )

    @property
    def free(self) -> int:
        """Slots not in use."""
        return self.slots - self.used


@dataclass(frozen=True, slots=True)
class Placed:
    """Every requested granule has a host: `hosts[i]` is the host of granule `i`."""

    hosts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NoCapacity:
    """The hosts together have fewer free slots than the request needs."""

    requested: int
    free: int


Placement = Placed | NoCapacity


@dataclass(frozen=True, slots=True)
class Moves:
    """A better placement for a running app: rank `i` should run on `placement[i]`.

    `moved` lists, ascending, the ranks whose host changes (never empty); every other rank
    stays where it is.
    """

    placement: tuple[str, ...]
    moved: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DoNotMigrate:
    """No placement the policy prefers to the app's current one."""


@dataclass(frozen=True, slots=True)
class MustFreeze:
    """The app runs on a host being evicted and fits nowhere else: it should be frozen (its
    ranks kept, not running, until slots free up)."""


Migration = Moves | DoNotMigrate | MustFreeze


# Default for `running`: a read-only empty mapping, so no mutable default is shared.
NOT_RUNNING: Mapping[str, int] = MappingProxyType({})


def check_request(hosts: Sequence[HostSlots], size: int, running: Mapping[str, int]) -> None:
    """Raise ValueError for a placement request no policy may answer: `size` < 1, duplicate
    host names, or a negative count in `running`."""
    if size < 1:
        raise ValueError(f"a placement needs at least one granule, got size={size}")
    names = [host.name for host in hosts]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate host names in {names}")
    negative = {name: count for name, count in running.items() if count < 0}
    if negative:
        raise ValueError(f"negative granule counts in running: {negative}")


class Policy(Protocol):
    """A scheduling policy: pure functions from host capacity and a request to a decision.

    `place` answers NEW apps and scale changes; `migrate` answers DIST_CHANGE (should a
    running app move?). Implementations are frozen values without state.
    """

    @property
    def name(self) -> str:
        """The name the policy is registered under (e.g. `bin-pack`)."""
        ...

    def place(
        self,
        hosts: Sequence[HostSlots],
        size: int,
        running: Mapping[str, int] = ...,
    ) -> Placement:
        """Place `size` granules on `hosts`.

        Args:
            hosts: the live hosts with their slot counts (names unique).
            size: number of granules to place, at least 1.
            running: for a scale change, host name -> granules of this app already there;
                empty for a new app.

        Returns:
            `Placed` with one host per granule, or `NoCapacity`.

        Raises:
            ValueError: `size` < 1, duplicate host names or negative counts.
        """
        ...

    def migrate(self, hosts: Sequence[HostSlots], placement: Sequence[str]) -> Migration:
        """Decide whether a running app should move.

        Args:
            hosts: the live hosts with their slot counts (names unique); the app's own
                granules are counted in `used` of the hosts they run on.
            placement: the host of every rank of the app, by rank.

        Returns:
            `Moves` with the new placement and the ranks that change host, `DoNotMigrate`,
            or `MustFreeze` (the app must leave a host being evicted and fits nowhere else).

        Raises:
            ValueError: an empty placement, duplicate host names, or a host that runs more of
                the app's granules than it has used slots.
        """
        ...

