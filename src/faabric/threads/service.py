"""A worker's distributed regions: the ones its granules lead and the parts it runs.

`TeamService` routes team messages from other workers to the right `MainRegion` or
`PartRegion`, starts a part (on its own thread, through `RunPart`) when a `TeamStart`
arrives and reports its end with `TeamDone`, and stops the regions of an app that is being
stopped. It keeps the snapshot service of the worker: the memory each remote granule last
sent (a `SnapshotStore` entry per granule, replaced by a whole snapshot or updated with a
diff at each fork, deleted by `TeamForget` or when the app is stopped here). This module
must not run wasm or open sockets: it is given a `TeamNet` and a `RunPart`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from faabric.messages.team import (
    RegionId,
    TeamDone,
    TeamForget,
    TeamReply,
    TeamRequest,
    TeamStart,
    TeamStop,
)
from faabric.messages.types import Failed, Outcome
from faabric.snapshot import Diff, Snapshot, SnapshotStore
from faabric.threads.regions import MainRegion, PartRegion

log = logging.getLogger(__name__)


class TeamNet(Protocol):
    """Sending team messages to other workers (the data plane)."""

    @property
    def address(self) -> str:
        """This worker's data-plane address ("ip:port")."""
        ...

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None: ...

    def send_team(self, host: str, message: object) -> None: ...


@dataclass(frozen=True, slots=True)
class PartResult:
    """How a part's threads ended, what they printed, and their last writes."""

    outcome: Outcome
    stdout: bytes
    stderr: bytes
    diff: Diff | None


RunPart = Callable[[TeamStart, PartRegion, Snapshot], PartResult]


class TeamService:
    """The distributed regions on one worker."""

    def __init__(self, host: str, net: TeamNet) -> None:
        self.host = host
        self._net = net
        self._run_part: RunPart | None = None
        self._numbers = iter(range(1, 1 << 62))
        self._main: dict[RegionId, tuple[int, MainRegion]] = {}  # id -> (app id, region)
        self._parts: dict[RegionId, tuple[int, PartRegion]] = {}
        self._lock = threading.Lock()
        self._snapshots = SnapshotStore()  # guarded by _lock

    def kept_snapshots(self) -> tuple[str, ...]:
        """The keys of the snapshots this worker keeps for other workers' granules."""
        with self._lock:
            return self._snapshots.keys()

    def serve_parts(self, run_part: RunPart) -> None:
        """Run the parts other workers start here with `run_part`."""
        self._run_part = run_part

    @property
    def address(self) -> str:
        return self._net.address

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None:
        self._net.learn(peers)

    def send(self, host: str, message: object) -> None:
        self._net.send_team(host, message)

    def new_region_id(self) -> RegionId:
        with self._lock:
            return RegionId(self.host, next(self._numbers))

    def opened(self, app_id: int, region: MainRegion) -> None:
        with self._lock:
            self._main[region.region] = (app_id, region)

    def closed(self, region: MainRegion) -> None:
        with self._lock:
            self._main.pop(region.region, None)

    def forget(self, key: str, hosts: set[str]) -> None:
        """Tell `hosts` to drop the snapshot `key` (best effort: a lost worker kept nothing)."""
        for host in hosts:
            try:
                self.send(host, TeamForget(key))
            except Exception as error:
                log.info("could not tell %s to forget %s: %s", host, key, error)

    def stop_app(self, app_id: int, reason: str) -> None:
        """Fail the waits of every region of `app_id` here (the app is being stopped)."""
        with self._lock:
            mains = [r for a, r in self._main.values() if a == app_id]
            parts = [r for a, r in self._parts.values() if a == app_id]
        for main in mains:
            main.stop(reason)
        for part in parts:
            part.stop(reason)
        with self._lock:
            self._snapshots.release_app(app_id)

    # -- messages from other workers ----------------------------------------------------------

    def received(self, message: object) -> None:
        """One team message from another worker (called on a data-plane reader thread: it
        must not block)."""
        match message:
            case TeamStart():
                threading.Thread(target=self._part, args=(message,), daemon=True,
                                 name=f"team-part-{message.region.number}").start()
            case TeamRequest():
                found = self._main_region(message.region)
                if found is None:
                    self.send(message.host, TeamReply(message.region, message.request_id, -1,
                                                      failure="the region has ended"))
                else:
                    found.request(message)
            case TeamDone():
                found = self._main_region(message.region)
                if found is not None:
                    found.part_done(message)
            case TeamReply():
                part = self._part_region(message.region)
                if part is not None:
                    part.replied(message)
            case TeamStop():
                part = self._part_region(message.region)
                if part is not None:
                    part.stop(message.reason)
            case TeamForget():
                with self._lock:
                    if message.base in self._snapshots:
                        self._snapshots.delete(message.base)
            case _:
                log.warning("unexpected team message %s", type(message).__name__)

    def _main_region(self, region: RegionId) -> MainRegion | None:
        with self._lock:
            found = self._main.get(region)
        return found[1] if found is not None else None

    def _part_region(self, region: RegionId) -> PartRegion | None:
        with self._lock:
            found = self._parts.get(region)
        return found[1] if found is not None else None

    def _part(self, start: TeamStart) -> None:
        origin = start.region.host
        self.learn(((origin, start.origin_address),))
        deadline = time.monotonic() + start.batch.spec.timeout
        part = PartRegion(start.region, self.host, len(start.members), deadline,
                          lambda message: self.send(origin, message))
        with self._lock:
            self._parts[start.region] = (start.batch.app_id, part)
        try:
            result = self._run(start, part)
            done = TeamDone(start.region, self.host, result.outcome, result.stdout,
                            result.stderr, result.diff)
            self.send(origin, done)
        except Exception as error:  # the main host must hear of it, or it waits in vain
            log.exception("part of region %s failed", start.region)
            try:
                self.send(origin, TeamDone(start.region, self.host,
                                           Failed(f"internal error: {error}"), b"", b""))
            except Exception:
                log.warning("could not tell %s that its region part failed", origin)
        finally:
            with self._lock:
                self._parts.pop(start.region, None)
            part.close()

    def _run(self, start: TeamStart, part: PartRegion) -> PartResult:
        if self._run_part is None:
            return PartResult(Failed(f"worker {self.host} does not run team parts"),
                              b"", b"", None)
        snapshot = self._memory_of(start)
        if snapshot is None:
            return PartResult(Failed(f"worker {self.host} no longer keeps the memory of "
                                     f"granule {start.base}"), b"", b"", None)
        try:
            return self._run_part(start, part, snapshot)
        finally:
            with self._lock:
                self._snapshots.release(start.base)

    def _memory_of(self, start: TeamStart) -> Snapshot | None:
        """The granule's memory for this region, kept (and in use) until the part ends."""
        with self._lock:
            store = self._snapshots
            if isinstance(start.image, Snapshot):
                store.push(start.base, start.batch.app_id, start.image)
            elif start.base in store:
                store.update(start.base, [start.image])
            else:
                return None
            return store.acquire(start.base)
