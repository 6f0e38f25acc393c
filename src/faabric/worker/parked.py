"""Frozen apps' ranks kept on this worker until the planner thaws them elsewhere.

When a host is about to be taken away and no other host has room, the planner freezes the
app: every rank suspends and sends its state here (a MOVE frame marked frozen), where it
waits without running and without a slot. A thaw sends each rank on to its new host under
a new migration epoch, where it resumes as any moved rank does. This module keeps packages
and rewrites them for a thaw; it must not send anything or run granules.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

from faabric.granule.transfer import RankPackage


@dataclass(frozen=True, slots=True)
class Parked:
    """One frozen rank: its package and its memory."""

    package: RankPackage
    memory: memoryview


@dataclass(frozen=True, slots=True)
class Thawed:
    """A frozen rank rewritten for its new host."""

    host: str
    package: RankPackage
    memory: memoryview


class ParkedRanks:
    """The frozen ranks kept here, by app and rank."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apps: dict[int, dict[int, Parked]] = {}

    def park(self, package: RankPackage, memory: memoryview) -> None:
        """Keep a frozen rank until its app is thawed or dropped."""
        with self._lock:
            ranks = self._apps.setdefault(package.batch.app_id, {})
            ranks[package.index] = Parked(package, memory)

    def thaw(self, app_id: int, epoch: int, placement: tuple[str, ...],
             peers: tuple[tuple[str, str], ...]) -> tuple[list[Thawed], list[int]]:
        """Take the app's ranks out, each rewritten to resume on `placement[rank]` under
        `epoch`; also returns the ranks of the placement that are not kept here."""
        with self._lock:
            ranks = self._apps.pop(app_id, {})
        thawed = []
        for index, parked in sorted(ranks.items()):
            package = parked.package
            batch = dataclasses.replace(package.batch, placement=placement, peers=peers)
            moved = dataclasses.replace(package, batch=batch, epoch=epoch, frozen=False)
            thawed.append(Thawed(placement[index], moved, parked.memory))
        missing = [i for i in range(len(placement)) if i not in ranks]
        return thawed, missing

    def drop(self, app_id: int) -> int:
        """Forget the app's frozen ranks (it was stopped); returns how many there were."""
        with self._lock:
            return len(self._apps.pop(app_id, {}))

    def drop_all(self) -> int:
        """Forget every rank kept; returns how many there were."""
        with self._lock:
            dropped = sum(len(ranks) for ranks in self._apps.values())
            self._apps.clear()
            return dropped

    def count(self) -> int:
        """How many frozen ranks are kept here."""
        with self._lock:
            return sum(len(ranks) for ranks in self._apps.values())
