"""The planner's table of live worker hosts: slots, claimed granules, last keep-alive.

Each host records the granules (app id, index) that hold one of its slots, and how many slots
each app holds there through scale changes (extra threads granted to a running app), so "used"
is derived, never counted separately, and a slot can only be released once. Part of the pure
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
    scaled: dict[int, int] = field(default_factory=dict)  # app id -> slots granted to it

    @property
    def used(self) -> int:
        return len(self.held) + (sum(self.scaled.values()) if self.scaled else 0)


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

    def remove(self, name: str) -> tuple[list[Granule], list[int]]:
        """Drop a host; returns the granules that held its slots, sorted, and the ids of the
        apps that held scale-change slots there, sorted."""
        host = self._hosts.pop(name)
        return sorted(host.held), sorted(host.scaled)

    def silent_since(self, now: float, timeout: float) -> list[tuple[str, float]]:
        """(name, seconds since last keep-alive) of hosts silent for more than `timeout`."""
        silent = ((name, now - host.last_seen) for name, host in self._hosts.items())
        return sorted((name, idle) for name, idle in silent if idle > timeout)

    def claim(self, name: str, granule: Granule) -> None:
        """Take one slot of `name` for `granule`."""
        host = self._hosts.get(name)
        if host is None or granule in host.held or host.used >= host.slots:
            raise InternalError(f"cannot claim a slot on {name!r} for granule {granule}")
        host.held.add(granule)

    def release(self, name: str, granule: Granule) -> None:
        """Free the slot `granule` holds on `name`, if that host still has it."""
        host = self._hosts.get(name)
        if host is not None:
            host.held.discard(granule)

    def grant(self, name: str, app_id: int, count: int) -> None:
        """Take `count` free slots of `name` for a scale change of app `app_id`."""
        host = self._hosts.get(name)
        if host is None or count < 1 or host.used + count > host.slots:
            raise InternalError(f"cannot grant {count} slots on {name!r} to app {app_id}")
        host.scaled[app_id] = host.scaled.get(app_id, 0) + count

    def revoke(self, name: str, app_id: int, count: int) -> int:
        """Free up to `count` scale-change slots app `app_id` holds on `name`; returns how many
        were freed (fewer if it held fewer, 0 for an unknown host)."""
        host = self._hosts.get(name)
        held = 0 if host is None else host.scaled.get(app_id, 0)
        freed = min(held, max(count, 0))
        if host is not None and freed:
            if freed == held:
                del host.scaled[app_id]
            else:
                host.scaled[app_id] = held - freed
        return freed

    def scaled(self, name: str) -> dict[int, int]:
        """App id -> scale-change slots held on `name`."""
        return dict(self._hosts[name].scaled)

    def release_all(self) -> None:
        """Free every slot of every host."""
        for host in self._hosts.values():
            host.held.clear()
            host.scaled.clear()

    def held(self, name: str) -> frozenset[Granule]:
        """The granules holding slots of `name`."""
        return frozenset(self._hosts[name].held)

    def total_slots(self) -> int:
        """Sum of all live hosts' slots, used or not."""
        return sum(host.slots for host in self._hosts.values())

    def used_slots(self) -> int:
        """Sum of all live hosts' used slots."""
        return sum(host.used for host in self._hosts.values())

    def free_slots(self) -> int:
        """Sum of all live hosts' free slots."""
        return sum(host.slots - host.used for host in self._hosts.values())

    def capacity(self) -> list[HostSlots]:
        """Every host's capacity, as placement policies take it, sorted by name."""
        return [HostSlots(i.name, i.slots, i.used) for i in self.infos()]

    def infos(self) -> list[HostInfo]:
        """Every host as the API shows it, sorted by name."""
        return [
            HostInfo(name=name, slots=host.slots, used=host.used)
            for name, host in sorted(self._hosts.items())
        ]

    def names(self) -> set[str]:
        """Names of all live hosts."""
        return set(self._hosts)
