"""The planner's table of live worker hosts: slots, claimed granules, last keep-alive.

Each host records the granules (app id, index) that hold one of its slots, so "used" is
derived, never counted separately, and a slot can only be released once. Part of the pure
planner core: no I/O, no clock of its own (times are passed in), no locking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from faabric.errors import InternalError
from faabric.messages.types import HostInfo
from faabric.scheduling import HostSlots

Granule = tuple[int, int]  # (app id, granule index)


@dataclass(slots=True)
class _Host:
    slots: int
    last_seen: float
    held: set[Granule] = field(default_factory=set)


class HostTable:
    """Live hosts by name, with the granules holding their slots."""

    def __init__(self) -> None:
        self._hosts: dict[str, _Host] = {}

    def add(self, name: str, slots: int, now: float) -> None:
        """Record a new host with all slots free, last seen at `now`."""
        if name in self._hosts:
            raise InternalError(f"host {name!r} is already registered")
        if slots < 0:
            raise InternalError(f"host {name!r} registered with {slots} slots")
        self._hosts[name] = _Host(slots=slots, last_seen=now)

    def __contains__(self, name: object) -> bool:
        return name in self._hosts

    def touch(self, name: str, now: float) -> None:
        """Refresh a host's keep-alive time; unknown names are ignored."""
        host = self._hosts.get(name)
        if host is not None:
            host.last_seen = now

    def remove(self, name: str) -> list[Granule]:
        """Drop a host; returns the granules that held its slots, sorted."""
        return sorted(self._hosts.pop(name).held)

    def silent_since(self, now: float, timeout: float) -> list[tuple[str, float]]:
        """(name, seconds since last keep-alive) of hosts silent for more than `timeout`."""
        silent = ((name, now - host.last_seen) for name, host in self._hosts.items())
        return sorted((name, idle) for name, idle in silent if idle > timeout)

    def claim(self, name: str, granule: Granule) -> None:
        """Take one slot of `name` for `granule`."""
        host = self._hosts.get(name)
        if host is None or granule in host.held or len(host.held) >= host.slots:
            raise InternalError(f"cannot claim a slot on {name!r} for granule {granule}")
        host.held.add(granule)

    def release(self, name: str, granule: Granule) -> None:
        """Free the slot `granule` holds on `name`, if that host still has it."""
        host = self._hosts.get(name)
        if host is not None:
            host.held.discard(granule)

    def release_all(self) -> None:
        """Free every slot of every host."""
        for host in self._hosts.values():
            host.held.clear()

    def held(self, name: str) -> frozenset[Granule]:
        """The granules holding slots of `name`."""
        return frozenset(self._hosts[name].held)

    def total_slots(self) -> int:
        """Sum of all live hosts' slots, used or not."""
        return sum(host.slots for host in self._hosts.values())

    def used_slots(self) -> int:
        """Sum of all live hosts' used slots."""
        return sum(len(host.held) for host in self._hosts.values())

    def capacity(self) -> list[HostSlots]:
        """Every host's capacity, as placement policies take it, sorted by name."""
        return [HostSlots(i.name, i.slots, i.used) for i in self.infos()]

    def infos(self) -> list[HostInfo]:
        """Every host as the API shows it, sorted by name."""
        return [
            HostInfo(name=name, slots=host.slots, used=len(host.held))
            for name, host in sorted(self._hosts.items())
        ]

    def names(self) -> set[str]:
        """Names of all live hosts."""
        return set(self._hosts)
