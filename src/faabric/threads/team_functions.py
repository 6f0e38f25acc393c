"""The `faabric_team.*` imports of toolchain/lib/omp/fteam.h: OpenMP teams across hosts.

`plan` says how many threads of a team run on this worker (asking the planner for slots the
first time a team size is seen); `elastic_fork` / `elastic_join` bracket each region of an
elastic app whose size the program left open (`ElasticTeams` lends it slots per region);
`fork` snapshots the memory and starts the other threads on the workers the plan named; the
synchronisation functions go to the granule's current region (`MainRegion` on its own
worker, `PartRegion` elsewhere); `join` waits for the other hosts and copies their output
into the granule's. This module must not decide placement (`Planning` does) nor carry bytes
between hosts (`TeamService` does).
"""

from __future__ import annotations

import errno
import logging
import struct
import time
from collections.abc import Callable
from typing import Protocol

from faabric.abi.state import SentMemory, TeamContext, TeamPlan, Timing, state_of
from faabric.messages.team import Member, TeamStart
from faabric.snapshot import (
    Diff,
    MemfdImage,
    Snapshot,
    compute_diff,
    memory_view,
    take_snapshot,
)
from faabric.snapshot._libc import Bytes
from faabric.snapshot.pages import changed_pages, flags_to_ranges
from faabric.threads.host_copy import HostCopy
from faabric.threads.part_region import PartRegion
from faabric.threads.regions import MainRegion
from faabric.threads.service import TeamService
from faabric.threads.span_choice import SpanChoice, Way
from faabric.wasm.host import GuestFault, GuestMemory, HostCall, HostFunction

log = logging.getLogger(__name__)

IMPORT_MODULE = "faabric_team"
ATOMIC_IMPORT = f"{IMPORT_MODULE}.atomic"  # imported by modules whose atomics work across hosts
_FORK = struct.Struct("<7i")  # struct fteam_fork
_PAIR = struct.Struct("<2i")  # struct fteam_member, struct fteam_range
_U64 = (1 << 64) - 1
_WAITS = (0x01, 0x02)  # memory.atomic.wait32/64: operand b is a signed timeout
TIME_HERE = 1  # fork's answer: run this region here, timed, and call trial_done after it
SPAN_SETTING = "FAABRIC_SPAN"  # guest environment: "always" keeps spanning regions spanning

Planning = Callable[[int, int, int], TeamPlan]  # (app id, granule index, team size) -> plan


class ElasticTeams(Protocol):
    """Slots lent to the regions of elastic apps, one region at a time per granule."""

    def elastic_fork(self, app_id: int, index: int, wanted: int) -> int:
        """Threads (1..wanted, its own counted) the granule's region may run with."""
        ...

    def elastic_join(self, app_id: int, index: int, threads: int) -> None:
        """The region, which ran `threads` threads, ended: give its slots back."""
        ...


def _context(call: HostCall) -> TeamContext:
    found = state_of(call).team
    if found is None:
        raise GuestFault("OpenMP teams need a thread-capable build (faabric cc -fopenmp)")
    return found


def _region(call: HostCall) -> MainRegion | PartRegion:
    found = _context(call).region
    if found is None:
        raise GuestFault("a cross-host synchronisation outside a distributed region")
    return found


def _main(call: HostCall) -> MainRegion:
    found = _context(call).region
    if not isinstance(found, MainRegion):
        raise GuestFault("fork/join of a distributed region on a host that does not lead it")
    return found


class TeamReports(Protocol):
    """Where a worker tells the planner about its granules' teams."""

    def kept_local(self, app_id: int, index: int, threads: int, detail: str) -> None:
        """Granule `index` of app `app_id` runs its `threads`-thread team on its own worker
        from now on: spanning hosts did not pay (`detail` says what was measured)."""
        ...


class TeamFunctions:
    """The host functions of one worker, over its `TeamService` and slot planning. Without
    them (a runner that is not part of a cluster) every team runs on this host."""

    def __init__(self, service: TeamService | None = None,
                 planning: Planning | None = None, elastic: ElasticTeams | None = None,
                 reports: TeamReports | None = None) -> None:
        self._service = service
        self._planning = planning
        self._elastic = elastic
        self._reports = reports

    def functions(self) -> tuple[HostFunction, ...]:
        def f(name: str, params: str, results: str, impl: Callable[..., int | None]
              ) -> HostFunction:
            kinds = {"i": "i32", "I": "i64"}
            return HostFunction(IMPORT_MODULE, name, tuple(kinds[p] for p in params),  # type: ignore[misc]
                                tuple(kinds[r] for r in results), impl)  # type: ignore[misc]

        return (
            f("plan", "i", "i", self.plan),
            f("available", "i", "i", self.available),
            f("fork", "i", "i", self.fork),
            f("join", "", "", self.join),
            f("trial_done", "i", "", self.trial_done),
            f("barrier", "", "", lambda c: _region(c).barrier(c.thread_number)),
            f("acquire", "i", "", lambda c, k: _region(c).acquire(c.thread_number, k)),
            f("try_acquire", "i", "i", lambda c, k: _region(c).try_acquire(c.thread_number, k)),
            f("release", "i", "", lambda c, k: _region(c).release(c.thread_number, k)),
            f("single", "i", "i", lambda c, seq: _region(c).single(seq)),
            f("ordered_wait", "iI", "", lambda c, loop, i: _region(c).ordered_wait(loop, i)),
            f("ordered_pass", "iI", "", lambda c, loop, i: _region(c).ordered_pass(loop, i)),
            f("atomic", "iiII", "I", self.atomic),
            f("local_threads", "", "i", self.local_threads),
            f("elastic", "", "i", self.elastic),
            f("elastic_fork", "i", "i", self.elastic_fork),
            f("elastic_join", "i", "", self.elastic_join),
        )

    def plan(self, call: HostCall, nthreads: int) -> int:
        return self._plan(call, nthreads).local

    def available(self, call: HostCall, nthreads: int) -> int:
        return self._plan(call, nthreads).available

    def elastic(self, call: HostCall) -> int:
        """1 if the granule's app is elastic and this worker can lend it slots."""
        return int(self._elastic is not None and _context(call).batch.spec.elastic)

    def elastic_fork(self, call: HostCall, wanted: int) -> int:
        context = _context(call)
        if self._elastic is None or not context.batch.spec.elastic:
            raise GuestFault("an elastic fork in an app that is not elastic")
        if wanted <= 1:
            return 1
        return self._elastic.elastic_fork(context.batch.app_id, context.index, wanted)

    def elastic_join(self, call: HostCall, threads: int) -> None:
        context = _context(call)
        if self._elastic is None or not context.batch.spec.elastic:
            raise GuestFault("an elastic join in an app that is not elastic")
        self._elastic.elastic_join(context.batch.app_id, context.index, max(1, threads))

    def _plan(self, call: HostCall, nthreads: int) -> TeamPlan:
        context = _context(call)
        if nthreads <= 1 or context.region is not None or self._planning is None \
                or not context.may_span:
            return TeamPlan(max(1, nthreads), max(1, nthreads))
        found = context.plans.get(nthreads)
        if found is None:
            found = self._planning(context.batch.app_id, context.index, nthreads)
            context.plans[nthreads] = found
        return found

    def atomic(self, call: HostCall, code: int, address: int, a: int, b: int) -> int:
        """An atomic instruction of the program while its team spans hosts; the answer as
        a signed i64."""
        region = _context(call).region
        if region is None:
            raise GuestFault("an atomic operation across hosts outside a distributed region")
        value = region.atomic(call.thread_number, code, address & 0xFFFF_FFFF,
                              a & _U64, b if code & 0xFF in _WAITS else b & _U64)
        return value - (1 << 64) if value >= 1 << 63 else value

    def local_threads(self, call: HostCall) -> int:
        region = _region(call)
        return region.threads if isinstance(region, PartRegion) else region.local

    def fork(self, call: HostCall, desc: int) -> int:
        context = _context(call)
        fields = _FORK.unpack(call.memory().read(desc, _FORK.size, "team fork descriptor"))
        nthreads = fields[0]
        if nthreads in context.local_only:
            return -errno.EHOSTUNREACH
        key = (fields[6], nthreads)
        way = context.choices.setdefault(key, SpanChoice()).next_way()
        if (SPAN_SETTING, "always") in context.batch.spec.env:
            way = Way.SPAN  # the user asked for no trial on one host
        if way is Way.LOCAL:
            return -errno.EHOSTUNREACH
        if way is Way.TRIAL:
            context.timing = Timing(key, time.monotonic(), spanning=False)
            return TIME_HERE
        try:
            region = self._open(call, context, fields)
        except GuestFault:
            raise
        except Exception as error:  # the guest runs the whole team here, now and later
            log.warning("could not spread a team of %d over hosts: %s", nthreads, error)
            context.local_only.add(nthreads)
            return -errno.EHOSTUNREACH
        context.region = region
        context.timing = Timing(key, time.monotonic(), spanning=True)
        return 0

    def trial_done(self, call: HostCall, ran: int) -> None:
        """The region the last fork asked to time on this host has ended."""
        context = _context(call)
        timing, context.timing = context.timing, None
        if timing is None or timing.spanning or not ran:
            return
        verdict = context.choices[timing.region].ran_trial(time.monotonic() - timing.started)
        if verdict is None:
            return
        threads = timing.region[1]
        log.info("app %d granule %d: its %d-thread region stays on this worker (%s)",
                 context.batch.app_id, context.index, threads, verdict.describe())
        if self._reports is not None:
            self._reports.kept_local(context.batch.app_id, context.index, threads,
                                     verdict.describe())

    def join(self, call: HostCall) -> None:
        context = _context(call)
        region = _main(call)
        service = self._cluster()
        try:
            results = region.join()
        except GuestFault as fault:
            region.stop(str(fault))
            raise
        finally:
            context.region = None
            service.closed(region)
            region.close()
        timing, context.timing = context.timing, None
        if timing is not None and timing.spanning:
            context.choices[timing.region].ran_spanning(time.monotonic() - timing.started)
        for done in results:
            if done.stdout:
                call.write_output(1, done.stdout)
            if done.stderr:
                call.write_output(2, done.stderr)

    def _cluster(self) -> TeamService:
        if self._service is None:
            raise GuestFault("this runner runs every team on one host")
        return self._service

    def _open(self, call: HostCall, context: TeamContext,
              fields: tuple[int, ...]) -> MainRegion:
        """The region of the fork whose descriptor (struct fteam_fork) holds `fields`."""
        service = self._cluster()
        if context.region is not None:
            raise GuestFault("a distributed region started inside another one")
        mem = call.memory()
        nthreads, local, entry, members_at, nexclude, exclude_at, _ = fields
        plan = context.plans.get(nthreads)
        if plan is None or plan.local != local or not plan.remote:
            raise GuestFault(f"team fork of {nthreads} threads with {local} here does not "
                             "match the host's plan")
        members = _pairs(mem, members_at, nthreads - local, "team members")
        exclude = tuple((s & 0xFFFF_FFFF, e & 0xFFFF_FFFF)
                        for s, e in _pairs(mem, exclude_at, nexclude, "excluded ranges"))
        memory = memory_view(mem.base, mem.size)  # the other threads are idle at a fork
        parts: dict[str, tuple[Member, ...]] = {}
        tid = local
        for host, count in plan.remote:
            parts[host] = tuple(Member(t, *members[t - local]) for t in range(tid, tid + count))
            tid += count
        region_id = service.new_region_id()
        image = self._image(service, context, memory, set(parts))
        assert context.sent is not None
        copy = HostCopy(call.memory, call.grow_memory, context.sent.image.private_copy(),
                        exclude)
        region = MainRegion(region_id, {h: tuple(m.tid for m in ms) for h, ms in parts.items()},
                            local, copy, context.deadline, service.post)
        service.opened(context.batch.app_id, region)
        try:
            assert context.sent is not None
            for host, part_members in parts.items():
                seconds_left = context.deadline - time.monotonic()
                service.send(host, TeamStart(
                    region_id, service.address, seconds_left, context.batch, context.index,
                    entry, part_members, exclude, context.sent.key, image))
            context.sent.hosts |= set(parts)
        except Exception as error:
            region.stop("the team could not be started on every host")
            service.closed(region)
            region.close()
            raise ConnectionError(str(error)) from error
        return region

    @staticmethod
    def _image(service: TeamService, context: TeamContext, memory: Bytes,
               hosts: set[str]) -> Snapshot | Diff:
        """What to send `hosts` of the memory: the diff against what they keep if they all
        keep the last memory sent, else a whole snapshot. `memory` becomes the last sent
        (`context.sent.image`)."""
        sent = context.sent
        if sent is None or sent.hosts != hosts:
            snapshot = take_snapshot(memory)
            if sent is None:
                key = f"{service.host}/{context.batch.app_id}/{context.index}"
                sent = context.sent = SentMemory(key, MemfdImage(snapshot))
            else:
                service.forget(sent.key, sent.hosts - hosts)  # they keep an older memory
                sent.image.close()
                sent.image = MemfdImage(snapshot)
            sent.hosts = set()
            return snapshot
        previous = sent.image.view()
        common = min(len(previous), len(memory))
        changed = flags_to_ranges(changed_pages(memory[:common], previous[:common]))
        grown = ((common, len(memory)),) if len(memory) > common else ()
        diff = compute_diff(memory, previous, changed + grown)
        del previous
        sent.image.update([diff])
        sent.hosts = set()
        return diff


def _pairs(mem: GuestMemory, at: int, count: int, what: str) -> list[tuple[int, int]]:
    if count < 0 or count > 1 << 16:
        raise GuestFault(f"{what}: bad count {count}")
    data = mem.read(at, _PAIR.size * count, what)
    return [_PAIR.unpack_from(data, i * _PAIR.size) for i in range(count)]
