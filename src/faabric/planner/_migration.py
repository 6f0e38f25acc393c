"""Migration decisions of the planner core (DIST_CHANGE): offer running apps better
placements, reserve their slots, commit claims, follow ranks as they move, withdraw offers.

The protocol is in `faabric.messages.control`. An offer reserves, on each new host, a slot for
every rank that would move there, so a moving rank holds two slots (old and new host) from
the offer until it has moved. The state of an app's migration lives on its `AppRecord`
(`move`, `last_epoch`, `migrations`, `events`), and the policy deciding it too (`policy`);
this object keeps only the ids of the apps that may move. Offers of apps with a rank on a
host being evicted (evacuations, made by `_spot.py` through `reserve`) are not withdrawn for
the queue. Part of the pure planner core, called by `PlannerCore` alone: no I/O, no
clock of its own (times are passed in), no threads. It must not start, queue or finish apps.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import assert_never

from faabric.errors import InternalError
from faabric.messages.types import AppState
from faabric.planner._apps import AppEventKind, AppRecord, Committed, Offered
from faabric.planner._events import (
    CancelMigration,
    Command,
    MigrationClaimed,
    OfferMigration,
    RankMovedAway,
    StartMigration,
    WithdrawMigration,
)
from faabric.planner._hosts import HostTable
from faabric.scheduling import (
    BinPack,
    DoNotMigrate,
    HostSlots,
    Migration,
    Moves,
    MustFreeze,
    Spot,
)
from faabric.scheduling._migrate import FreeSlots


@dataclass(slots=True)
class _Settled:
    """An app found not worth moving at host table `version` (`roomier_version` if
    `monotone`: only a host gaining room can change its policy's answer), on `hosts`, its
    smallest part `smallest` ranks. `version` moves on while no gain matters to it."""

    version: int
    monotone: bool
    hosts: frozenset[str]
    smallest: int


class Migrations:
    """The apps that may move, and every step of their migrations.

    Args:
        hosts: the core's host table (slots are reserved and released there).
        offer_timeout: an offer unclaimed for longer is withdrawn by `expire`.

    Each app's own policy (`AppRecord.policy`) decides where it should run.
    """

    def __init__(self, hosts: HostTable, offer_timeout: float) -> None:
        self._hosts = hosts
        self._timeout = offer_timeout
        self._movable: set[int] = set()  # running apps that reached a migration point
        # app id -> when and where the app was last found not worth moving (`_Settled`):
        # until capacities change in a way that matters to its policy, asking the policy
        # again gives the same answer.
        self._settled: dict[int, _Settled] = {}

    # -- membership ---------------------------------------------------------------------------

    def movable(self) -> frozenset[int]:
        """Ids of the running apps that reached a migration point and may be moved."""
        return frozenset(self._movable)

    def points_reached(self, app: AppRecord | None) -> None:
        """Rank 0 of `app` reached a migration point: it may be offered placements from now
        on, unless it is not running or must never move."""
        if app is not None and app.state is AppState.RUNNING and app.spec.migrate_every > 0:
            self._movable.add(app.app_id)

    def forget(self, app_id: int) -> None:
        """The app finished: it can no longer move."""
        self._movable.discard(app_id)
        self._settled.pop(app_id, None)

    def clear(self) -> None:
        """Every app was dropped."""
        self._movable.clear()
        self._settled.clear()

    # -- offers -------------------------------------------------------------------------------

    def offer(
        self, apps: Mapping[int, AppRecord], now: float, skip: Collection[int] = ()
    ) -> list[Command]:
        """Reserve a better placement for each candidate app, by app id, and offer it.

        A candidate is running, reached a migration point, has every rank still running, no
        scale-change slots and no migration or freeze open, and is not in `skip`. Each sees
        the slots the previous ones took.
        """
        commands: list[Command] = []
        capacity = None  # made once, and again only after a reservation changed it
        free: FreeSlots | None = None
        for app_id in sorted(self._movable):
            app = apps[app_id]
            if app.move or app.freeze or app.results or app.scaled or app_id in skip:
                continue
            if self._still_settled(app):
                continue
            if capacity is None:
                if self._hosts.free_slots() == 0:
                    break  # a rank can only move to a free slot: it holds both until it moved
                capacity = self._hosts.all_capacity()
                free = FreeSlots(capacity)
            decision = self._decide(app, capacity, free)
            match decision:
                case Moves():
                    commands.append(self.reserve(app, decision, now))
                    capacity = free = None
                case DoNotMigrate() | MustFreeze():
                    self._settle(app)  # only an evacuation freezes (see `_spot.py`)
                case _:
                    assert_never(decision)
        return commands

    def _settle(self, app: AppRecord) -> None:
        own = Counter(app.placement.values())
        monotone = isinstance(app.policy, BinPack | Spot)
        version = self._hosts.roomier_version if monotone else self._hosts.version
        self._settled[app.app_id] = _Settled(version, monotone, frozenset(own), min(own.values()))

    def _still_settled(self, app: AppRecord) -> bool:
        """Whether the app's last "do not move" still stands: no host changed since (any
        policy), or only hosts whose new room cannot matter. Spot moves an app only off a
        host of its own being evicted. Bin-pack looks for the best placement the free slots
        allow (filling the largest rooms first): fewer free slots allow no better one, and a
        host of someone else's with fewer free slots than the app's smallest part comes after
        all of the app's own hosts in that order, which already hold it all."""
        settled = self._settled.get(app.app_id)
        if settled is None:
            return False
        if not settled.monotone:
            return settled.version == self._hosts.version
        gains = self._hosts.gains_since(settled.version)
        if not gains:
            return gains is not None
        bin_pack = isinstance(app.policy, BinPack)
        for name in gains:
            if name is None or name in settled.hosts or (
                    bin_pack and self._hosts.room(name) >= settled.smallest):
                return False
        settled.version = self._hosts.roomier_version
        return True

    @staticmethod
    def _decide(app: AppRecord, capacity: list[HostSlots], free: FreeSlots | None) -> Migration:
        current = tuple(app.placement.values())  # in rank order: filled by rank
        if isinstance(app.policy, BinPack) and free is not None and (
                (len(set(current)) == 1 and current[0] in free)
                or not free.may_improve(current)):
            return DoNotMigrate()  # the usual cases: skip bin-pack's full re-placement
        return app.policy.migrate(capacity, current)

    def reserve(self, app: AppRecord, decision: Moves, now: float) -> OfferMigration:
        """Reserve the slots of `decision` for the running `app` and offer it.

        Raises:
            InternalError: the decision breaks the rules (wrong size, `moved` not the ranks
                whose host changes, a rank sent to a full host or one being evicted).
        """
        current = tuple(app.placement[rank] for rank in range(app.spec.size))
        placement, moved = decision.placement, decision.moved
        self._check_decision(app, current, placement, moved)
        for rank in moved:
            self._hosts.claim(placement[rank], (app.app_id, rank))
        app.last_epoch += 1
        app.move = Offered(app.last_epoch, now, placement, frozenset(moved))
        detail = f"offered: {_describe(current, placement, moved)}"
        _note(app, now, AppEventKind.OFFERED, app.last_epoch, detail,
              moved, _ends(current, placement, moved))
        return OfferMigration(current[0], app.app_id, app.last_epoch)

    def _check_decision(
        self,
        app: AppRecord,
        current: tuple[str, ...],
        placement: tuple[str, ...],
        moved: tuple[int, ...],
    ) -> None:
        if len(placement) != len(current):
            raise InternalError(f"policy placed app {app.app_id} on {placement}")
        changed = tuple(r for r, host in enumerate(placement) if host != current[r])
        if not moved or moved != changed:
            raise InternalError(f"policy moved {moved} of app {app.app_id} to {placement}")
        free = {host.name: host.free for host in self._hosts.capacity()}
        needed = Counter(placement[rank] for rank in moved)
        if any(count > free.get(name, 0) for name, count in needed.items()):
            raise InternalError(f"policy moved app {app.app_id} to full hosts: {placement}")

    def yielding_slots(self, apps: Mapping[int, AppRecord]) -> int:
        """Slots the unclaimed offers reserve (evacuations of hosts being evicted left out):
        what withdrawing them would give the queue."""
        return sum(len(move.moving) for i in self._movable
                   if self._yields(apps[i]) and (move := apps[i].move))

    def withdraw_offers(
        self, apps: Mapping[int, AppRecord], now: float, reason: str
    ) -> list[Command]:
        """Withdraw every unclaimed offer but evacuations, releasing its slots."""
        commands: list[Command] = []
        for app_id in sorted(self._movable):
            app = apps[app_id]
            if isinstance(app.move, Offered) and self._yields(app):
                commands += self._withdraw(app, app.move, now, reason)
        return commands

    def _yields(self, app: AppRecord) -> bool:
        """Whether the app's offer is one the queue may take back: not an evacuation."""
        return isinstance(app.move, Offered) and not self._hosts.any_evicting(
            app.placement.values()
        )

    def withdraw_touching(
        self, apps: Mapping[int, AppRecord], names: set[str], now: float, reason: str
    ) -> list[Command]:
        """Withdraw the unclaimed offers of apps running on, or moving ranks to, any of
        `names`."""
        commands: list[Command] = []
        for app_id in sorted(self._movable):
            app = apps[app_id]
            move = app.move
            if isinstance(move, Offered):
                new_hosts = {move.placement[rank] for rank in move.moving}
                if names & (set(app.placement.values()) | new_hosts):
                    commands += self._withdraw(app, move, now, reason)
        return commands

    def expire(
        self, apps: Mapping[int, AppRecord], now: float
    ) -> tuple[list[Command], set[int]]:
        """Withdraw the offers left unclaimed for longer than the offer timeout. Returns the
        commands and the ids of the apps whose offers expired."""
        commands: list[Command] = []
        expired: set[int] = set()
        for app_id in sorted(self._movable):
            app = apps[app_id]
            move = app.move
            if isinstance(move, Offered) and now - move.at > self._timeout:
                commands += self._withdraw(app, move, now, f"unclaimed for {self._timeout:g} s")
                expired.add(app_id)
        return commands, expired

    def _withdraw(
        self,
        app: AppRecord,
        move: Offered,
        now: float,
        reason: str,
        gone: Iterable[str] = (),
    ) -> list[Command]:
        self._release_reserved(app, move.placement, move.moving)
        app.move = None
        _note(app, now, AppEventKind.WITHDRAWN, move.epoch, f"withdrawn: {reason}")
        rank0 = app.placement[0]
        if rank0 not in self._hosts or rank0 in set(gone):
            return []
        return [WithdrawMigration(rank0, app.app_id, move.epoch)]

    def _release_reserved(
        self, app: AppRecord, placement: tuple[str, ...], ranks: Iterable[int]
    ) -> None:
        for rank in ranks:
            self._hosts.release(placement[rank], (app.app_id, rank))

    # -- claims and moves ---------------------------------------------------------------------

    def claim(
        self, apps: Mapping[int, AppRecord], event: MigrationClaimed, now: float
    ) -> list[Command]:
        """Commit the offer claimed, answering every host involved with `StartMigration`, or
        refuse the claim with `CancelMigration` to every host of the app (and the claimer).
        A repeated claim of the migration under way is ignored."""
        app = apps.get(event.app_id)
        if app is None:
            reason = f"app {event.app_id} is unknown"
            return [CancelMigration(event.host, event.app_id, event.epoch, reason)]
        move = app.move
        if isinstance(move, Committed) and move.epoch == event.epoch:
            return []
        if (
            isinstance(move, Offered)
            and move.epoch == event.epoch
            and app.placement[0] == event.host
        ):
            return self._commit(app, move, now)
        return self.refuse(app, event, _refusal(app, event), now)

    def _commit(self, app: AppRecord, move: Offered, now: float) -> list[Command]:
        ranks = tuple(sorted(move.moving))
        current = tuple(app.placement[rank] for rank in range(app.spec.size))
        app.move = Committed(move.epoch, move.placement, move.moving, ranks)
        detail = f"started: {_describe(current, move.placement, ranks)}"
        _note(app, now, AppEventKind.STARTED, move.epoch, detail,
              ranks, _ends(current, move.placement, ranks))
        involved = tuple(sorted(set(current) | set(move.placement)))
        return [
            StartMigration(host, app.app_id, move.epoch, move.placement, involved)
            for host in involved
        ]

    def refuse(
        self, app: AppRecord, event: MigrationClaimed, reason: str, now: float
    ) -> list[Command]:
        """Refuse the claim with `CancelMigration` to every live host of the app with a rank
        still running, and to the claimer."""
        hosts = {h for rank, h in app.placement.items() if rank not in app.results}
        hosts = {h for h in hosts | {event.host} if h in self._hosts}
        _note(app, now, AppEventKind.CANCELLED, event.epoch, f"claim refused: {reason}")
        return [CancelMigration(h, app.app_id, event.epoch, reason) for h in sorted(hosts)]

    def moved(self, apps: Mapping[int, AppRecord], event: RankMovedAway, now: float) -> bool:
        """A rank left its old host: free its slot there. Returns whether a slot was freed.

        Reports that do not match the migration under way (the app finished or was
        abandoned, the rank already ended, another epoch) are ignored: the rank's result
        frees its slot then. For an app no longer recorded, the slot is freed all the same.
        """
        granule = (event.app_id, event.index)
        app = apps.get(event.app_id)
        if app is None:
            self._hosts.release(event.host, granule)
            return True
        move = app.move
        if not (
            isinstance(move, Committed)
            and move.epoch == event.epoch
            and event.index in move.moving
            and app.placement.get(event.index) == event.host
            and move.placement[event.index] == event.to
        ):
            return False
        self._hosts.release(event.host, granule)
        app.placement[event.index] = event.to
        self._advance(app, move, event.index, now)
        return True

    def _advance(self, app: AppRecord, move: Committed, rank: int, now: float) -> None:
        moving = move.moving - {rank}
        if moving:
            app.move = dataclasses.replace(move, moving=moving)
            return
        app.move = None
        app.migrations += 1
        plural = "s" if len(move.ranks) > 1 else ""
        hosts = tuple(sorted({move.placement[r] for r in move.ranks}))
        detail = f"migrated: rank{plural} {rank_ranges(move.ranks)} now on {', '.join(hosts)}"
        _note(app, now, AppEventKind.MIGRATED, move.epoch, detail, move.ranks, hosts)

    # -- ranks ending, apps ending, hosts leaving ---------------------------------------------

    def holders(self, app: AppRecord, rank: int) -> list[str]:
        """The hosts where the app's `rank` holds a slot: where it runs, and where it moves."""
        hosts = [app.placement[rank]]
        move = app.move
        if move is not None and rank in move.moving:
            hosts.append(move.placement[rank])
        return hosts

    def granule_ended(self, app: AppRecord, rank: int, host: str, now: float) -> list[Command]:
        """`rank` reported a result from `host`; the core already freed its slots (see
        `holders`). An open offer is withdrawn; a moving rank is done moving."""
        move = app.move
        if isinstance(move, Offered):
            return self._withdraw(app, move, now, f"rank {rank} ended")
        if isinstance(move, Committed) and rank in move.moving:
            if host == move.placement[rank]:
                app.placement[rank] = host  # it ended on its new host before its old one told
            self._advance(app, move, rank, now)
        return []

    def scaling(self, app: AppRecord, now: float) -> list[Command]:
        """The app asks for scale-change slots: its open offer, if any, is withdrawn."""
        if isinstance(app.move, Offered):
            return self._withdraw(app, app.move, now, "the app asked for more slots")
        return []

    def drop(self, app: AppRecord, now: float, reason: str) -> tuple[list[Command], set[str]]:
        """The app ends while a migration is open: release every reserved slot. Returns the
        commands (a withdrawn offer) and the live hosts ranks were moving to (they must be
        told to stop the app too)."""
        move = app.move
        if isinstance(move, Offered):
            return self._withdraw(app, move, now, reason), set()
        if isinstance(move, Committed):
            self._release_reserved(app, move.placement, move.moving)
            app.move = None
            _note(app, now, AppEventKind.ABANDONED, move.epoch, f"abandoned: {reason}")
            return [], {h for r in move.moving if (h := move.placement[r]) in self._hosts}
        return [], set()

    def hosts_lost(
        self, apps: Mapping[int, AppRecord], names: set[str], now: float
    ) -> tuple[list[Command], dict[int, str]]:
        """Before `names` are removed: withdraw the offers that involve them, and release
        the slots reserved on them by migrations under way. Returns the commands and, for
        each app whose migration lost a new host, that host: such an app must be abandoned
        as if it had lost a rank there."""
        commands: list[Command] = []
        hit: dict[int, str] = {}
        for app_id in sorted(self._movable):
            app = apps[app_id]
            move = app.move
            if move is None:
                continue
            new_hosts = {move.placement[rank] for rank in move.moving}
            if isinstance(move, Offered):
                touched = names & (set(app.placement.values()) | new_hosts)
                if touched:
                    reason = f"worker {min(touched)} was lost"
                    commands += self._withdraw(app, move, now, reason, gone=names)
                continue
            lost = [rank for rank in move.moving if move.placement[rank] in names]
            self._release_reserved(app, move.placement, lost)
            if lost:
                hit[app_id] = min(move.placement[rank] for rank in lost)
        return commands, hit

    def destinations(self, app: AppRecord) -> set[str]:
        """The live hosts ranks of a migration under way are moving to."""
        move = app.move
        if not isinstance(move, Committed):
            return set()
        return {h for rank in move.moving if (h := move.placement[rank]) in self._hosts}

    def reserved(self, apps: Mapping[int, AppRecord]) -> int:
        """How many slots moving ranks hold on their new hosts."""
        return sum(len(move.moving) for i in self._movable if (move := apps[i].move))


def _refusal(app: AppRecord, event: MigrationClaimed) -> str:
    move = app.move
    if app.state is not AppState.RUNNING:
        return f"app {app.app_id} is {app.state}"
    if move is None:
        return f"no offer is open (epoch {event.epoch} is gone)"
    if move.epoch != event.epoch:
        return f"epoch {event.epoch} is stale (epoch {move.epoch} is open)"
    return f"{event.host} does not run rank 0 of app {app.app_id}"


def _note(
    app: AppRecord,
    now: float,
    kind: AppEventKind,
    epoch: int,
    detail: str,
    ranks: tuple[int, ...] = (),
    hosts: tuple[str, ...] = (),
) -> None:
    app.note(now, kind, epoch, detail, ranks, hosts)


def _ends(
    current: tuple[str, ...], placement: tuple[str, ...], ranks: Iterable[int]
) -> tuple[str, ...]:
    """The old and new hosts of `ranks`, sorted."""
    return tuple(sorted({current[r] for r in ranks} | {placement[r] for r in ranks}))


def _describe(current: tuple[str, ...], placement: tuple[str, ...], ranks: Iterable[int]) -> str:
    """`ranks 2-3 b -> a; rank 5 c -> a`: which ranks go where."""
    routes: dict[tuple[str, str], list[int]] = {}
    for rank in ranks:
        routes.setdefault((current[rank], placement[rank]), []).append(rank)
    return "; ".join(
        f"rank{'s' if len(rs) > 1 else ''} {rank_ranges(rs)} {src} -> {dst}"
        for (src, dst), rs in sorted(routes.items())
    )


def rank_ranges(ranks: Iterable[int]) -> str:
    """`0-3,6`: sorted ranks as inclusive ranges."""
    parts: list[str] = []
    for rank in sorted(ranks):
        if parts and rank == int(parts[-1].rpartition("-")[2]) + 1:
            first = parts[-1].partition("-")[0]
            parts[-1] = f"{first}-{rank}"
        else:
            parts.append(str(rank))
    return ",".join(parts)
