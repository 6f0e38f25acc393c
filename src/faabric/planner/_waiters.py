"""Clients blocked until a set of apps has finished, woken by app id (push-based, no polling).

The table is not thread-safe on its own: the planner service calls every method while it
holds its lock, and tells it about each finished app as the core reports it. Waking a client
costs O(1) per finished app, however many apps it waits for. A waiter may also be woken
through a file descriptor (an eventfd), so that a client can wait for its apps and for
something else (its connection closing) in one `poll`. It must not read the core.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable


class Waiter:
    """One blocked client: the apps it still waits for, and the event that releases it
    (`done`; with `wake_fd`, also an eventfd that becomes readable then)."""

    __slots__ = ("done", "pending", "wake_fd")

    def __init__(self, pending: set[int], *, with_fd: bool = False) -> None:
        self.pending = pending
        self.done = threading.Event()
        self.wake_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK) if with_fd else -1

    def release(self) -> None:
        """Nothing is left to wait for: wake the client."""
        self.done.set()
        if self.wake_fd >= 0:
            os.eventfd_write(self.wake_fd, 1)

    def close(self) -> None:
        """Let go of the eventfd (the client stopped waiting)."""
        if self.wake_fd >= 0:
            os.close(self.wake_fd)
            self.wake_fd = -1


class WaiterTable:
    """Waiters by the app ids they wait for."""

    def __init__(self) -> None:
        self._by_app: dict[int, list[Waiter]] = {}

    def add(self, app_ids: Iterable[int], *, with_fd: bool = False) -> Waiter:
        """Register a waiter for these (unfinished) apps; with `with_fd` it also has a
        `wake_fd` (closed by `remove`)."""
        waiter = Waiter(set(app_ids), with_fd=with_fd)
        for app_id in waiter.pending:
            self._by_app.setdefault(app_id, []).append(waiter)
        if not waiter.pending:
            waiter.release()
        return waiter

    def finished(self, app_id: int) -> None:
        """The app finished (or was dropped): release waiters with nothing left to wait for."""
        for waiter in self._by_app.pop(app_id, ()):
            waiter.pending.discard(app_id)
            if not waiter.pending:
                waiter.release()

    def remove(self, waiter: Waiter) -> None:
        """Forget a waiter that stopped waiting (its time ran out)."""
        for app_id in waiter.pending:
            waiters = self._by_app.get(app_id)
            if waiters is None:
                continue
            waiters[:] = [w for w in waiters if w is not waiter]
            if not waiters:
                del self._by_app[app_id]
        waiter.pending.clear()
        waiter.close()

    def __len__(self) -> int:
        return len(self._by_app)
