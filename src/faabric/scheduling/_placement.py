"""Value types shared by every placement policy: host capacity in, a placement decision out.

A decision is a tagged union (`Placed | NoCapacity`), never a sentinel. This module holds data
and the `Policy` call signature only; it must not do I/O, read clocks or keep state.
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
    """

    name: str
    slots: int
    used: int

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

# Default for `running`: a read-only empty mapping, so no mutable default is shared.
NOT_RUNNING: Mapping[str, int] = MappingProxyType({})


class Policy(Protocol):
    """A placement policy: a pure function from host capacity and a request to a decision."""

    def __call__(
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
