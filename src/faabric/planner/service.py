"""The planner's I/O shell: feeds events to the pure `PlannerCore` and carries out its commands.

All state lives in the core; this class adds one lock around it, a condition variable that
wakes clients waiting for apps (push-based, no polling), the module store, and the table of
worker connections that `Dispatch` commands are sent on. Sends happen outside the lock so a
slow worker cannot stall the planner. It must not make scheduling decisions itself.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence

from faabric.errors import TransportError
from faabric.messages.control import Registered, RunBatch, StopApp
from faabric.messages.types import AppInfo, AppSpec, GranuleResult, HostInfo
from faabric.planner.core import (
    AppSubmitted,
    AppView,
    Cancel,
    Command,
    Dispatch,
    Event,
    Finish,
    GranuleFinished,
    HostAlive,
    HostLeft,
    HostRegistered,
    PlannerCore,
    Reject,
    Reset,
    Ticked,
)
from faabric.planner.modules import ModuleStore
from faabric.transport.framing import FramedSocket

log = logging.getLogger(__name__)


class PlannerService:
    """Thread-safe planner: the only object that touches the core."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        keepalive_timeout: float,
        retain_finished: int,
        max_module_bytes: int,
    ) -> None:
        self.keepalive_timeout = keepalive_timeout
        # The core keeps time on `clock` (monotonic); documents show Unix time.
        self.wall_offset = time.time() - clock()
        self.modules = ModuleStore(max_module_bytes)
        self._core = PlannerCore(
            clock=clock, keepalive_timeout=keepalive_timeout, retain_finished=retain_finished
        )
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._connections: dict[str, FramedSocket] = {}
        self._app_ids = itertools.count(1)

    # -- events from workers ------------------------------------------------------------------

    def register(self, name: str, slots: int, conn: FramedSocket) -> str | None:
        """Add a worker; returns a refusal reason, or None if it was accepted.

        `Registered` is sent under the lock, so it reaches the worker before any batch.
        """
        if slots < 1:
            return "a worker needs at least one slot"
        with self._lock:
            if self._core.has_host(name):
                return f"a worker named {name} is already registered"
            try:
                conn.send(Registered(name, self.keepalive_timeout / 3))
            except TransportError as exc:
                return f"the connection failed: {exc}"
            self._connections[name] = conn
            commands = self._core.handle(HostRegistered(name, slots))
        log.info("worker %s joined with %d slots", name, slots)
        self._execute(commands)
        return None

    def host_alive(self, name: str) -> None:
        """A keep-alive arrived."""
        self._feed(HostAlive(name))

    def host_left(self, name: str, reason: str, conn: FramedSocket) -> None:
        """A worker said goodbye or its connection broke."""
        with self._lock:
            if self._connections.get(name) is not conn:
                return  # already removed (expired, or replaced)
            del self._connections[name]
            commands = self._core.handle(HostLeft(name, reason))
        conn.close()
        log.info("worker %s left: %s", name, reason)
        self._execute(commands)

    def granule_finished(self, result: GranuleResult) -> None:
        """A worker reported a granule's result."""
        self._feed(GranuleFinished(result))

    def tick(self) -> None:
        """Expire workers whose keep-alive lapsed and close their connections."""
        with self._lock:
            commands = self._core.handle(Ticked())
            gone = [n for n in self._connections if not self._core.has_host(n)]
            conns = [self._connections.pop(n) for n in gone]
        for name, conn in zip(gone, conns, strict=True):
            log.warning("worker %s expired: no keep-alive for %g s", name, self.keepalive_timeout)
            conn.close()
        self._execute(commands)

    # -- requests from clients ----------------------------------------------------------------

    def submit(self, spec: AppSpec) -> int:
        """Accept an app; returns its id. Raises NotEnoughSlots if it can never fit."""
        with self._lock:
            app_id = next(self._app_ids)
            commands = self._core.handle(AppSubmitted(app_id, spec))
        for command in commands:
            if isinstance(command, Reject) and command.app_id == app_id:
                raise command.error()
        self._execute(commands)
        return app_id

    def wait(self, app_id: int, timeout: float) -> AppView | None:
        """The app's view once it has finished, or as it is when `timeout` runs out."""
        with self._changed:
            self._changed.wait_for(lambda: self._finished_or_gone(app_id), timeout=timeout)
            return self._core.app(app_id)

    def app(self, app_id: int) -> AppView | None:
        """The app's current view, or None if unknown."""
        with self._lock:
            return self._core.app(app_id)

    def hosts(self) -> list[HostInfo]:
        """Registered workers."""
        with self._lock:
            return self._core.hosts()

    def in_flight(self) -> list[AppInfo]:
        """Queued and running apps."""
        with self._lock:
            return self._core.in_flight()

    def reset(self) -> None:
        """Forget every app; workers stay registered."""
        self._feed(Reset())

    def close_connections(self, reason: str) -> None:
        """Drop every worker connection (planner shutdown)."""
        with self._lock:
            conns = list(self._connections.values())
            self._connections.clear()
        for conn in conns:
            conn.close()
        log.info("closed %d worker connections: %s", len(conns), reason)

    # -- internals ----------------------------------------------------------------------------

    def _finished_or_gone(self, app_id: int) -> bool:
        view = self._core.app(app_id)
        return view is None or view.finished is not None

    def _feed(self, event: Event) -> None:
        with self._lock:
            commands = self._core.handle(event)
        self._execute(commands)

    def _execute(self, commands: Sequence[Command]) -> None:
        if any(isinstance(c, Finish) for c in commands):
            with self._changed:
                self._changed.notify_all()
        for command in commands:
            match command:
                case Dispatch(host, batch):
                    self._send(host, RunBatch(batch))
                case Cancel(host, app_id):
                    self._send(host, StopApp(app_id))

    def _send(self, host: str, message: RunBatch | StopApp) -> None:
        with self._lock:
            conn = self._connections.get(host)
        if conn is None:
            return  # the host left meanwhile; the core has failed its granules
        try:
            conn.send(message)
        except TransportError as exc:
            self.host_left(host, f"cannot send it work: {exc}", conn)
