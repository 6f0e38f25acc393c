"""The planner's table of live worker hosts: slots, claimed granules, last keep-alive,
eviction.

Each host records the granules (app id, index) that hold one of its slots, and how many slots
each app holds there through scale changes (extra threads granted to a running app), so "used"
is derived, never counted separately, and a slot can only be released once. It also counts
the slots each user's apps hold there (for the compact policy) and whether the host was
announced for eviction: such a host is left out of `capacity()`, so nothing new is placed
on it. Part of the pure planner core: no I/O, no clock of its own (times are passed in), no
locking.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from faabric.errors import InternalError
from faabric.messages.types import HostInfo
from faabric.scheduling import HostSlots

Granule = tuple[int, int]  # (app id, granule index)


@dataclass(frozen=True, slots=True)
class Eviction:
    """The host was announced for eviction; `held` and `scaled` are what held its slots
    then (it may only lose holders from then on)."""

    held: frozenset[Granule]
    scaled: tuple[tuple[int, int], ...]


@dataclass(slots=True)
class _Host:
    slots: int
    last_seen: float
    held: dict[Granule, str] = field(default_factory=dict)  # granule -> its app's user
    scaled: dict[int, int] = field(default_factory=dict)  # app id -> slots granted to it
    scaled_users: dict[int, str] = field(default_factory=dict)  # app id -> its user
    users: Counter[str] = field(default_factory=Counter)  # user -> slots held (> 0)
    user_names: frozenset[str] = frozenset()  # the keys of `users`, kept for `capacity()`
    eviction: Eviction | None = None

    @property
    def used(self) -> int:
        return len(self.held) + (sum(self.scaled.values()) if self.scaled else 0)

    def count(self, user: str, delta: int) -> None:
        held = self.users[user] + delta
        if held > 0:
            self.users[user] = held
        else:
            del self.users[user]
        if (held > 0) != (user in self.user_names):
            self.user_names = frozenset(self.users)


_GAINS_KEPT = 4096  # changes `gains_since` can list


class HostTable:
    """Live hosts by name, with the granules holding their slots.

    Args:
        user_of: the user of a recorded app, by app id (asked when it claims a slot).
    """

    def __init__(self, user_of: Callable[[int], str] = lambda app_id: "") -> None:
        self._hosts: dict[str, _Host] = {}
        self._user_of = user_of
        self._evicting: set[str] = set()
        self._version = 0  # bumped by every change of any host's slots or state
        # The hosts that may have more room than before (a slot freed, a host added,
        # removed or announced for eviction), in order; None: every host (a reset). Only the
        # last `_GAINS_KEPT` are kept; `_gains_dropped` counts the others.
        self._gains: list[str | None] = []
        self._gains_dropped = 0
        self._views: dict[str, HostSlots] = {}  # capacity of the hosts unchanged since read
        self._names: list[str] | None = None  # sorted host names, until one comes or goes
        self._free = (-1, 0)  # (version, free_slots()) when last counted

    @property
    def version(self) -> int:
        """A number that changes whenever any host's slots, users or state change: equal
        versions mean equal capacities."""
        return self._version

    @property
    def roomier_version(self) -> int:
        """A number that changes whenever a host comes or goes, is announced for eviction or
        frees a slot; claims and grants leave it alone. Equal numbers mean no host has
        gained free slots since (`gains_since` says which did)."""
        return self._gains_dropped + len(self._gains)

    def gains_since(self, version: int) -> Sequence[str | None] | None:
        """The hosts that changed as `roomier_version` counts since it was `version`, in
        order (None for all hosts at once); None if that is too long ago to tell."""
        start = version - self._gains_dropped
        return None if start < 0 else self._gains[start:]

    def _changed(self, name: str | None, *, roomier: bool = True) -> None:
        self._version += 1
        if name is None:
            self._views.clear()
        else:
            self._views.pop(name, None)
        if roomier:
            self._gains.append(name)
            if len(self._gains) > 2 * _GAINS_KEPT:
                del self._gains[:_GAINS_KEPT]
                self._gains_dropped += _GAINS_KEPT

    def add(self, name: str, slots: int, now: float) -> None:
        """Record a new host with all slots free, last seen at `now`."""
        if name in self._hosts:
            raise InternalError(f"host {name!r} is already registered")
        if slots < 0:
            raise InternalError(f"host {name!r} registered with {slots} slots")
        self._hosts[name] = _Host(slots=slots, last_seen=now)
        self._names = None
        self._changed(name)

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
        self._evicting.discard(name)
        self._names = None
        self._changed(name)
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
        user = self._user_of(granule[0])
        host.held[granule] = user
        host.count(user, 1)
        self._changed(name, roomier=False)

    def release(self, name: str, granule: Granule) -> None:
        """Free the slot `granule` holds on `name`, if that host still has it."""
        host = self._hosts.get(name)
        if host is not None and granule in host.held:
            host.count(host.held.pop(granule), -1)
            self._changed(name)

    def grant(self, name: str, app_id: int, count: int) -> None:
        """Take `count` free slots of `name` for a scale change of app `app_id`."""
        host = self._hosts.get(name)
        if host is None or count < 1 or host.used + count > host.slots:
            raise InternalError(f"cannot grant {count} slots on {name!r} to app {app_id}")
        host.scaled[app_id] = host.scaled.get(app_id, 0) + count
        user = host.scaled_users.setdefault(app_id, self._user_of(app_id))
        host.count(user, count)
        self._changed(name, roomier=False)

    def revoke(self, name: str, app_id: int, count: int) -> int:
        """Free up to `count` scale-change slots app `app_id` holds on `name`; returns how many
        were freed (fewer if it held fewer, 0 for an unknown host)."""
        host = self._hosts.get(name)
        held = 0 if host is None else host.scaled.get(app_id, 0)
        freed = min(held, max(count, 0))
        if host is not None and freed:
            host.count(host.scaled_users[app_id], -freed)
            if freed == held:
                del host.scaled[app_id]
                del host.scaled_users[app_id]
            else:
                host.scaled[app_id] = held - freed
            self._changed(name)
        return freed

    def scaled(self, name: str) -> dict[int, int]:
        """App id -> scale-change slots held on `name`."""
        return dict(self._hosts[name].scaled)

    def release_all(self) -> None:
        """Free every slot of every host."""
        for host in self._hosts.values():
            host.held.clear()
            host.scaled.clear()
            host.scaled_users.clear()
            host.users.clear()
            host.user_names = frozenset()
        self._changed(None)

    def held(self, name: str) -> frozenset[Granule]:
        """The granules holding slots of `name`."""
        return frozenset(self._hosts[name].held)

    def users(self, name: str) -> dict[str, int]:
        """User -> slots their apps hold on `name` (granules and scale-change slots)."""
        return dict(self._hosts[name].users)

    # -- eviction ----------------------------------------------------------------------------

    def evict(self, name: str) -> bool:
        """Announce `name` for eviction; returns False if it is unknown or already evicting."""
        host = self._hosts.get(name)
        if host is None or host.eviction is not None:
            return False
        host.eviction = Eviction(frozenset(host.held), tuple(sorted(host.scaled.items())))
        self._evicting.add(name)
        self._changed(name)
        return True

    def evicting(self) -> frozenset[str]:
        """Names of the live hosts announced for eviction."""
        return frozenset(self._evicting)

    def is_evicting(self, name: str) -> bool:
        """Whether `name` is a live host announced for eviction."""
        return name in self._evicting

    def any_evicting(self, names: Iterable[str]) -> bool:
        """Whether any of `names` is a live host announced for eviction."""
        return bool(self._evicting) and not self._evicting.isdisjoint(names)

    def eviction(self, name: str) -> Eviction | None:
        """What held the slots of `name` when its eviction was announced (None if it was
        not)."""
        return self._hosts[name].eviction

    # -- totals and views ---------------------------------------------------------------------

    def total_slots(self) -> int:
        """Sum of all live hosts' slots, used or not."""
        return sum(host.slots for host in self._hosts.values())

    def usable_slots(self) -> int:
        """Sum of the slots of the live hosts not being evicted, used or not."""
        return sum(h.slots for n, h in self._hosts.items() if n not in self._evicting)

    def used_slots(self) -> int:
        """Sum of all live hosts' used slots."""
        return sum(host.used for host in self._hosts.values())

    def free_slots(self) -> int:
        """Sum of the free slots of the live hosts not being evicted."""
        if self._free[0] != self._version:
            free = sum(h.slots - h.used for n, h in self._hosts.items() if n not in self._evicting)
            self._free = (self._version, free)
        return self._free[1]

    def room(self, name: str) -> int:
        """Free slots of `name` (0 if it is gone or being evicted)."""
        host = self._hosts.get(name)
        if host is None or name in self._evicting:
            return 0
        return host.slots - host.used

    def capacity(self) -> list[HostSlots]:
        """The capacity of every host not being evicted, as placement policies take it,
        sorted by name: where new granules and scale-change slots may go."""
        every = self.all_capacity()
        return [slots for slots in every if not slots.evicting] if self._evicting else every

    def all_capacity(self) -> list[HostSlots]:
        """Every live host's capacity, those being evicted flagged, sorted by name: what a
        migration decision needs (ranks on an evicting host must leave it)."""
        if self._names is None:
            self._names = sorted(self._hosts)
        views = self._views
        return [views.get(name) or self._view(name) for name in self._names]

    def _view(self, name: str) -> HostSlots:
        host = self._hosts[name]
        view = HostSlots(name, host.slots, host.used, host.eviction is not None, host.user_names)
        self._views[name] = view
        return view

    def infos(self) -> list[HostInfo]:
        """Every host as the API shows it, sorted by name."""
        return [
            HostInfo(name=name, slots=host.slots, used=host.used,
                     evicting=host.eviction is not None)
            for name, host in sorted(self._hosts.items())
        ]

    def names(self) -> set[str]:
        """Names of all live hosts."""
        return set(self._hosts)
