"""Clients blocked until a set of apps has finished, woken by app id (push-based, no polling).

The table is not thread-safe on its own: the planner service calls every method while it
holds its lock, and tells it about each finished app as the core reports it. Waking a client
costs O(1) per finished app, however many apps it waits for. It must not read the core.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class Waiter:
    """One blocked client: the apps it still waits for, and the event that releases it."""

    __slots__ = ("done", "pending")

    def __init__(self, pending: set[int]) -> None:
        self.pending = pending
        self.done = threading.Event()


class WaiterTable:
    """Waiters by the app ids they wait for."""

    def __init__(self) -> None:
        self._by_app: dict[int, list[Waiter]] = {}

    def add(self, app_ids: Iterable[int]) -> Waiter:
        """Register a waiter for these (unfinished) apps."""
        waiter = Waiter(set(app_ids))
        for app_id in waiter.pending:
            self._by_app.setdefault(app_id, []).append(waiter)
        if not waiter.pending:
            waiter.done.set()
        return waiter

    def finished(self, app_id: int) -> None:
        """The app finished (or was dropped): release waiters with nothing left to wait for."""
        for waiter in self._by_app.pop(app_id, ()):
            waiter.pending.discard(app_id)
            if not waiter.pending:
                waiter.done.set()

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

    def __len__(self) -> int:
        return len(self._by_app)
