"""A worker's distributed regions: the ones its granules lead and the parts it runs.

`TeamService` routes team messages from other workers to the right `MainRegion` or
`PartRegion`, starts a part (on its own thread, through `RunPart`) when a `TeamStart`
arrives and reports its end with `TeamDone`, and stops the regions of an app that is being
stopped. It is the worker's snapshot service too: it keeps, per granule of another worker,
the memory that granule last sent, as a memfd image (pushed as a whole snapshot, then
updated in place with each fork's diff, so a fork costs the diff rather than the whole
memory; parts restore from it copy-on-write), and drops it on `TeamForget` or when the app
is stopped here (a region already restored keeps its copy-on-write mappings; one still
starting then fails, which only happens to an app being stopped). This module must
not run wasm or open sockets: it is given a `TeamNet` and a `RunPart`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from faabric.messages.team import (
    RegionId,
    TeamDone,
    TeamForget,
    TeamRefused,
    TeamReply,
    TeamRequest,
    TeamStart,
    TeamStop,
)
from faabric.messages.types import Failed, Outcome
from faabric.snapshot import Diff, MemfdImage, Snapshot
from faabric.threads.part_region import PartRegion
from faabric.threads.regions import MainRegion, OnError

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


RunPart = Callable[[TeamStart, PartRegion, MemfdImage], PartResult]  # ... on this memory


@dataclass(slots=True)
class _Kept:
    app_id: int
    image: MemfdImage


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
        self._kept: dict[str, _Kept] = {}  # granule key -> memory last sent
        self._kept_lock = threading.Lock()
        self._outbox: queue.SimpleQueue[tuple[str, object, OnError]] = queue.SimpleQueue()
        threading.Thread(target=self._send_loop, name="team-outbox", daemon=True).start()

    def kept_snapshots(self) -> tuple[str, ...]:
        """The keys of the memories this worker keeps for other workers' granules."""
        with self._kept_lock:
            return tuple(sorted(self._kept))

    def serve_parts(self, run_part: RunPart) -> None:
        """Run the parts other workers start here with `run_part`."""
        self._run_part = run_part

    @property
    def address(self) -> str:
        return self._net.address

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None:
        self._net.learn(peers)

    def send(self, host: str, message: object) -> None:
        """Send now, on the calling thread (which must not be a data-plane reader)."""
        self._net.send_team(host, message)

    def post(self, host: str, message: object, on_error: OnError) -> None:
        """Send soon, from the service's own thread; never blocks nor raises (reader
        threads answer through it). `on_error` hears of a message that could not go."""
        self._outbox.put((host, message, on_error))

    def _send_loop(self) -> None:
        while True:
            host, message, on_error = self._outbox.get()
            try:
                self._net.send_team(host, message)
            except Exception as error:
                log.info("team message to %s lost: %s", host, error)
                try:
                    on_error(error)
                except Exception:  # the outbox must outlive any one region
                    log.exception("handling a lost team message failed")

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
            self.post(host, TeamForget(key), _ignore)

    def stop_app(self, app_id: int, reason: str) -> None:
        """Fail the waits of every region of `app_id` here (the app is being stopped)."""
        with self._lock:
            mains = [r for a, r in self._main.values() if a == app_id]
            parts = [r for a, r in self._parts.values() if a == app_id]
        for main in mains:
            main.stop(reason)
        for part in parts:
            part.stop(reason)
        with self._kept_lock:
            for key in [k for k, kept in self._kept.items() if kept.app_id == app_id]:
                self._kept.pop(key).image.close()

    # -- messages from other workers ----------------------------------------------------------

    def received(self, message: object) -> None:
        """One team message from another worker (called on a data-plane reader thread: it
        must not block)."""
        match message:
            case TeamStart():
                threading.Thread(target=self._part, args=(message, self._register(message)),
                                 daemon=True, name=f"team-part-{message.region.number}").start()
            case TeamRequest():
                found = self._main_region(message.region)
                if found is None:
                    self.post(message.host, TeamRefused(message.region, message.request_id,
                                                        "the region has ended"), _ignore)
                else:
                    found.request(message)
            case TeamDone():
                found = self._main_region(message.region)
                if found is not None:
                    found.part_done(message)
            case TeamReply() | TeamRefused():
                waiting = self._part_region(message.region)
                if waiting is not None:
                    waiting.replied(message)
            case TeamStop():
                stopping = self._part_region(message.region)
                if stopping is not None:
                    stopping.stop(message.reason)
            case TeamForget():
                with self._kept_lock:
                    gone = self._kept.pop(message.base, None)
                if gone is not None:
                    gone.image.close()
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

    def _register(self, start: TeamStart) -> PartRegion:
        """The part of `start`, known before its thread starts (a TeamStop may follow)."""
        origin = start.region.host
        self.learn(((origin, start.origin_address),))
        deadline = time.monotonic() + start.seconds_left
        part = PartRegion(start.region, self.host, len(start.members), deadline,
                          lambda message: self.send(origin, message))
        with self._lock:
            self._parts[start.region] = (start.batch.app_id, part)
        return part

    def _part(self, start: TeamStart, part: PartRegion) -> None:
        origin = start.region.host
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
        image = self._memory_of(start)
        if image is None:
            return PartResult(Failed(f"worker {self.host} no longer keeps the memory of "
                                     f"granule {start.base}"), b"", b"", None)
        return self._run_part(start, part, image)

    def _memory_of(self, start: TeamStart) -> MemfdImage | None:
        """The granule's memory for this region: the snapshot sent, or the memory kept
        with the diff sent merged into it; None if a diff came for nothing kept."""
        if isinstance(start.image, Snapshot):
            image = MemfdImage(start.image, f"faabric-team-{start.base}")
            with self._kept_lock:
                replaced = self._kept.get(start.base)
                self._kept[start.base] = _Kept(start.batch.app_id, image)
            if replaced is not None:
                replaced.image.close()
            return image
        with self._kept_lock:
            kept = self._kept.get(start.base)
        if kept is None:
            return None
        kept.image.update([start.image])
        return kept.image


def _ignore(error: Exception) -> None:
    """A message that may be lost (its receiver is gone or no longer needs it)."""
