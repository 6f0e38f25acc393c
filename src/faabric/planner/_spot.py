"""Evictions, freezes and thaws of the planner core (faabric's spot VMs, #433).

A host announced for eviction gets nothing new (the host table leaves it out of
`capacity()`). Each app with a rank there that can move (it reached a migration point, every
rank runs, it holds no scale-change slots) is offered an evacuation: a move its policy
decides, or, if it fits nowhere else, a freeze. The claim of a freeze sends every rank to a
park worker (the live host not being evicted with the most free slots, then the smallest
name), which keeps it without a slot; once every rank is parked the app is FROZEN. Frozen
apps are thawed first in, first out whenever their policy can place them again: their slots
are claimed and the park worker sends the ranks there. The protocol is in
`faabric.messages.control`; the freeze of an app lives on its `AppRecord` (`freeze`).

Part of the pure planner core, called by `PlannerCore` alone: no I/O, no clock of its own
(times are passed in), no threads. It must not start, queue or finish apps: it says which
apps the core must finish or abandon.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Collection, Mapping

from faabric.errors import InternalError
from faabric.messages.types import AppState, Failed, GranuleResult, Outcome
from faabric.planner._apps import (
    AppEventKind,
    AppRecord,
    FreezeOffered,
    Freezing,
    Frozen,
    Thawing,
)
from faabric.planner._events import (
    Command,
    FreezeApp,
    MigrationClaimed,
    OfferMigration,
    RankMovedAway,
    Thaw,
    WithdrawMigration,
)
from faabric.planner._hosts import HostTable
from faabric.planner._migration import Migrations, rank_ranges
from faabric.scheduling import Moves, MustFreeze, NoCapacity, evacuate


class Evictions:
    """Hosts being evicted, the apps leaving them, and the frozen apps waiting for slots.

    Args:
        hosts: the core's host table (where hosts are marked and slots claimed).
        moves: the core's migrations (evacuation moves are ordinary offers).
    """

    def __init__(self, hosts: HostTable, moves: Migrations) -> None:
        self._hosts = hosts
        self._moves = moves
        self._frozen: deque[int] = deque()  # FROZEN app ids, oldest freeze first

    def frozen(self) -> tuple[int, ...]:
        """Ids of the frozen apps, in the order they will be thawed."""
        return tuple(self._frozen)

    def clear(self) -> None:
        """Every app was dropped."""
        self._frozen.clear()

    # -- eviction and evacuation ------------------------------------------------------------

    def evicted(self, apps: Mapping[int, AppRecord], name: str, now: float) -> list[Command]:
        """`name` was just announced for eviction: record it on every app in flight with a
        rank or scale-change slots there, and withdraw the offers that involve it (they are
        decided again, as evacuations)."""
        for app in apps.values():
            ranks = tuple(sorted(
                i for i, h in app.placement.items() if h == name and i not in app.results
            ))
            if app.state is AppState.FINISHED or not (ranks or name in app.scaled):
                continue
            what = "keeps the frozen app" if app.state is AppState.FROZEN else (
                f"runs rank{'s' if len(ranks) > 1 else ''} {rank_ranges(ranks)}"
                if ranks else "holds scale-change slots of the app")
            app.note(now, AppEventKind.EVICTED, app.last_epoch,
                     f"evicted: worker {name}, which {what}, is being evicted", ranks, (name,))
        reason = f"worker {name} is being evicted"
        return self._moves.withdraw_touching(apps, {name}, now, reason)

    def evacuate(
        self, apps: Mapping[int, AppRecord], now: float, skip: Collection[int] = ()
    ) -> list[Command]:
        """Offer each app that can move and has a rank on a host being evicted a way off
        it, by app id: a move if its policy finds room (replacing a freeze offered earlier),
        else a freeze. Evacuations do not wait for the queue."""
        if not self._hosts.evicting():
            return []
        commands: list[Command] = []
        for app_id in sorted(self._moves.movable()):
            app = apps[app_id]
            if app_id in skip or app.move or app.results or app.scaled:
                continue
            if isinstance(app.freeze, Freezing | Frozen | Thawing):
                continue  # a thawing app moves once its park has sent every rank
            if self._hosts.any_evicting(app.placement.values()):
                commands += self._evacuate(app, now)
        return commands

    def _evacuate(self, app: AppRecord, now: float) -> list[Command]:
        decision = self._decide(app)
        offered = app.freeze
        if isinstance(decision, Moves):
            commands: list[Command] = []
            if isinstance(offered, FreezeOffered):
                commands = self._withdraw(app, offered, now, "there is room to move now")
            return [*commands, self._moves.reserve(app, decision, now)]
        if offered is not None:
            return []  # the freeze offered stays open
        if self._park() is None:
            self._strand(app, now)
            return []
        app.last_epoch += 1
        app.freeze = FreezeOffered(app.last_epoch, now)
        ranks = tuple(range(app.spec.size))
        hosts = tuple(sorted(set(app.placement.values())))
        app.note(now, AppEventKind.OFFERED, app.last_epoch,
                 "offered: freeze (no room for the app off the hosts being evicted)",
                 ranks, hosts)
        return [OfferMigration(app.placement[0], app.app_id, app.last_epoch)]

    def _decide(self, app: AppRecord) -> Moves | MustFreeze:
        """The app's policy decides; an answer that leaves ranks on a host being evicted is
        replaced by `evacuate` (only those ranks move, placed by the policy)."""
        current = tuple(app.placement[rank] for rank in range(app.spec.size))
        hosts = self._hosts.all_capacity()
        decision = app.policy.migrate(hosts, current)
        if isinstance(decision, MustFreeze):
            return decision
        if isinstance(decision, Moves) and not self._hosts.any_evicting(decision.placement):
            return decision
        return evacuate(app.policy, hosts, current)

    def _park(self) -> str | None:
        """Where a frozen app is kept: the live host not being evicted with the most free
        slots, then the smallest name; None if every host is being evicted."""
        hosts = self._hosts.capacity()
        return min(hosts, key=lambda h: (-h.free, h.name)).name if hosts else None

    def _strand(self, app: AppRecord, now: float) -> None:
        last = app.events[-1] if app.events else None
        if last is None or last.kind is not AppEventKind.STRANDED:
            detail = ("stranded: no room off the hosts being evicted and no live host to keep "
                      "it frozen; it ends with its host")
            app.note(now, AppEventKind.STRANDED, app.last_epoch, detail)

    def _withdraw(
        self, app: AppRecord, offered: FreezeOffered, now: float, reason: str
    ) -> list[Command]:
        app.freeze = None
        app.note(now, AppEventKind.WITHDRAWN, offered.epoch, f"withdrawn: freeze, {reason}")
        rank0 = app.placement[0]
        if rank0 not in self._hosts:
            return []
        return [WithdrawMigration(rank0, app.app_id, offered.epoch)]

    # -- freezing ------------------------------------------------------------------------------

    def owns(self, app: AppRecord | None) -> bool:
        """Whether the app's claims and moved ranks are a freeze's (one is offered or under
        way), not a migration's."""
        return app is not None and isinstance(app.freeze, FreezeOffered | Freezing | Thawing)

    def freezing(self, app: AppRecord) -> bool:
        """Whether the app's ranks are on their way to their park."""
        return isinstance(app.freeze, Freezing)

    def claim(
        self, apps: Mapping[int, AppRecord], event: MigrationClaimed, now: float
    ) -> list[Command]:
        """Commit the freeze claimed (see `owns`), answering every host of the app with
        `FreezeApp`, or refuse the claim. A repeated claim of the freeze under way is
        ignored."""
        app = apps[event.app_id]
        freeze = app.freeze
        if isinstance(freeze, Freezing) and freeze.epoch == event.epoch:
            return []
        if not isinstance(freeze, FreezeOffered) or freeze.epoch != event.epoch:
            reason = f"epoch {event.epoch} is stale (epoch {app.last_epoch} is open)"
            return self._moves.refuse(app, event, reason, now)
        if app.placement[0] != event.host:
            reason = f"{event.host} does not run rank 0 of app {app.app_id}"
            return self._moves.refuse(app, event, reason, now)
        park = self._park()
        if park is None or app.scaled:  # the freeze offered can no longer be carried out
            app.freeze = None
            if park is None:
                self._strand(app, now)
            why = "it holds scale-change slots" if park else "no live worker can keep it"
            return self._moves.refuse(app, event, f"the app cannot be frozen: {why}", now)
        ranks = tuple(range(app.spec.size))
        hosts = tuple(sorted(set(app.placement.values())))
        app.freeze = Freezing(freeze.epoch, park, frozenset(ranks))
        app.note(now, AppEventKind.STARTED, freeze.epoch,
                 f"started: freeze, ranks {rank_ranges(ranks)} go to {park}",
                 ranks, tuple(sorted({*hosts, park})))
        return [FreezeApp(host, app.app_id, freeze.epoch, park) for host in hosts]

    def parked(self, apps: Mapping[int, AppRecord], event: RankMovedAway, now: float) -> bool:
        """A rank of a freezing app reached its park: free its slot. Returns whether a slot
        was freed; reports that do not match the freeze under way are ignored."""
        app = apps[event.app_id]
        freeze = app.freeze
        if isinstance(freeze, Thawing):
            if event.host == freeze.park and app.placement.get(event.index) == event.to:
                self._sent(app, freeze, event.epoch, event.index)
            return False  # the thawed rank's slot on its new host stays taken
        if not (
            isinstance(freeze, Freezing)
            and freeze.epoch == event.epoch
            and event.index in freeze.moving
            and app.placement.get(event.index) == event.host
            and event.to == freeze.park
        ):
            return False
        self._hosts.release(event.host, (app.app_id, event.index))
        app.placement[event.index] = freeze.park
        moving = freeze.moving - {event.index}
        if moving:
            app.freeze = dataclasses.replace(freeze, moving=moving)
        else:
            self._freeze(app, freeze, now)
        return True

    @staticmethod
    def _sent(app: AppRecord, thawing: Thawing, epoch: int, index: int) -> None:
        """Rank `index` of a thawing app left its park (or already ended on its new host)."""
        if epoch == thawing.epoch and index in thawing.pending:
            pending = thawing.pending - {index}
            app.freeze = dataclasses.replace(thawing, pending=pending) if pending else None

    def _freeze(self, app: AppRecord, freeze: Freezing, now: float) -> None:
        for host, count in app.scaled.items():  # granted while it froze: a frozen app holds none
            self._hosts.revoke(host, app.app_id, count)
        app.scaled.clear()
        app.freeze = Frozen(freeze.epoch, freeze.park, now)
        app.state = AppState.FROZEN
        self._moves.forget(app.app_id)
        self._frozen.append(app.app_id)
        ranks = tuple(range(app.spec.size))
        app.note(now, AppEventKind.FROZEN, freeze.epoch,
                 f"frozen: ranks {rank_ranges(ranks)} kept on {freeze.park}", ranks,
                 (freeze.park,))

    # -- thawing -------------------------------------------------------------------------------

    def thaw(self, apps: Mapping[int, AppRecord], now: float) -> list[Command]:
        """Thaw the frozen apps, oldest freeze first, while their policy places them on the
        hosts not being evicted; stop at the first that does not fit."""
        commands: list[Command] = []
        while self._frozen:
            app = apps[self._frozen[0]]
            if self._hosts.free_slots() < app.spec.size:
                break  # no policy can place it (a cheap test: this runs on every result)
            placed = app.policy.place(self._hosts.capacity(), app.spec.size)
            if isinstance(placed, NoCapacity):
                break
            self._frozen.popleft()
            commands.append(self._thaw(app, placed.hosts, now))
        return commands

    def _thaw(self, app: AppRecord, hosts: tuple[str, ...], now: float) -> Thaw:
        frozen = app.freeze
        if not isinstance(frozen, Frozen) or len(hosts) != app.spec.size:
            raise InternalError(f"cannot thaw app {app.app_id} ({frozen}) onto {hosts}")
        for index, host in enumerate(hosts):
            self._hosts.claim(host, (app.app_id, index))
            app.placement[index] = host
        app.state = AppState.RUNNING
        app.last_epoch += 1
        app.freeze = Thawing(app.last_epoch, frozen.park, frozenset(range(app.spec.size)))
        self._moves.points_reached(app)  # it was at a migration point when it froze
        ranks = tuple(range(app.spec.size))
        targets = tuple(sorted(set(hosts)))
        app.note(now, AppEventKind.THAWED, app.last_epoch,
                 f"thawed: ranks {rank_ranges(ranks)} go from {frozen.park} to "
                 f"{', '.join(targets)}", ranks, tuple(sorted({*targets, frozen.park})))
        return Thaw(frozen.park, app.app_id, app.last_epoch, hosts)

    # -- apps ending, hosts leaving ------------------------------------------------------------

    def granule_ended(self, app: AppRecord, rank: int, now: float) -> list[Command]:
        """`rank` of the running app reported a result: an open freeze offer is withdrawn
        (a freeze under way makes the core abandon the app, see `freezing`)."""
        if isinstance(app.freeze, FreezeOffered):
            return self._withdraw(app, app.freeze, now, f"rank {rank} ended")
        if isinstance(app.freeze, Thawing):  # it arrived, so its park sent it
            self._sent(app, app.freeze, app.freeze.epoch, rank)
        return []

    def drop(self, app: AppRecord, now: float, reason: str) -> frozenset[int]:
        """The running app ends while a freeze is open: forget it. Returns the ranks already
        parked (they hold no slot; their park must be told to drop them)."""
        freeze = app.freeze
        app.freeze = None
        if isinstance(freeze, FreezeOffered):
            app.note(now, AppEventKind.WITHDRAWN, freeze.epoch, f"withdrawn: freeze, {reason}")
        if not isinstance(freeze, Freezing):
            return frozenset()
        app.note(now, AppEventKind.ABANDONED, freeze.epoch, f"abandoned: freeze, {reason}")
        return frozenset(range(app.spec.size)) - freeze.moving

    def cancelled(self, app: AppRecord, outcome: Outcome) -> str | None:
        """The frozen or thawing app was cancelled: the ranks its park still keeps end as
        `outcome`, and the slots taken for them on their new hosts (thawing) are freed.
        Returns the park, which must be told to drop them; None if the app has none."""
        freeze = app.freeze
        if isinstance(freeze, Frozen):
            self._frozen.remove(app.app_id)
            kept = frozenset(range(app.spec.size))
        elif isinstance(freeze, Thawing):
            kept = freeze.pending
            for index in kept:
                self._hosts.release(app.placement[index], (app.app_id, index))
        else:
            return None
        app.freeze = None
        for index in sorted(kept):
            app.results[index] = GranuleResult(app.app_id, index, freeze.park, outcome)
        return freeze.park

    def _lost_in_thaw(self, app: AppRecord, thawing: Thawing, reason: str) -> None:
        """The park died before it sent these ranks on: they fail and free the slots
        taken for them on their new hosts (nothing will ever report there)."""
        app.freeze = None
        for index in sorted(thawing.pending):
            self._hosts.release(app.placement[index], (app.app_id, index))
            outcome = Failed(f"worker {thawing.park} was lost before it sent rank {index} "
                             f"to its new host: {reason}")
            app.results[index] = GranuleResult(app.app_id, index, thawing.park, outcome)

    def hosts_lost(
        self, apps: Mapping[int, AppRecord], lost: Mapping[str, str], now: float
    ) -> tuple[list[AppRecord], dict[int, str]]:
        """Before the hosts of `lost` (name -> reason) are removed: the ranks parked there
        fail. Returns the frozen apps that lost their park (every rank failed: the core must
        finish them) and, for each freezing or thawing app that lost its park, the park (the
        core must abandon it)."""
        ended: list[AppRecord] = []
        hit: dict[int, str] = {}
        for app in apps.values():
            freeze = app.freeze
            if isinstance(freeze, Thawing) and freeze.park in lost:
                self._lost_in_thaw(app, freeze, lost[freeze.park])
                hit[app.app_id] = freeze.park
                continue
            if not isinstance(freeze, Freezing | Frozen) or freeze.park not in lost:
                continue
            outcome = Failed(f"worker {freeze.park} was lost while it kept the frozen app: "
                             f"{lost[freeze.park]}")
            # Ranks of a freezing app still running on the park hold a slot: the core fails
            # them with the host's other granules.
            running = freeze.moving if isinstance(freeze, Freezing) else frozenset()
            for index, host in app.placement.items():
                if host == freeze.park and index not in app.results and index not in running:
                    app.results[index] = GranuleResult(app.app_id, index, host, outcome)
            if isinstance(freeze, Frozen):
                app.freeze = None
                self._frozen.remove(app.app_id)
                ended.append(app)
            else:
                hit[app.app_id] = freeze.park
        return ended, hit
