"""The granules a worker holds slots for, as the planner should count them: queued, running,
or ended with a result not yet delivered.

While the worker has no planner (it restarted, or declared this worker lost), results are
kept here and sent once the worker has registered again; the registration lists every
granule held (`running`), so the planner counts their slots until their results arrive and
stops their apps. A result counts as delivered once it was handed to a live connection. It
must not talk to the planner itself: the worker passes the send function.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from faabric.messages.control import Report
from faabric.messages.types import GranuleResult

Granule = tuple[int, int]  # (app id, granule index)


class GranuleLedger:
    """Held granules and undelivered results; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[Granule] = set()
        self._unsent: list[GranuleResult] = []
        self._connected = False
        self._connection = 0  # bumped by every registration

    def taken(self, app_id: int, index: int) -> None:
        """A granule was given to this worker (to run, or to resume after a move)."""
        with self._lock:
            self._held.add((app_id, index))

    def moved(self, app_id: int, index: int) -> None:
        """A granule left for another worker (its slot here is the planner's again)."""
        with self._lock:
            self._held.discard((app_id, index))

    def running(self) -> tuple[Granule, ...]:
        """Every granule held, sorted: what a registration reports."""
        with self._lock:
            return tuple(sorted(self._held))

    def disconnected(self) -> None:
        """The planner is gone: results wait here from now on."""
        with self._lock:
            self._connected = False

    def connected(self) -> list[GranuleResult]:
        """The worker registered (again); returns the results kept meanwhile, to `report`."""
        with self._lock:
            self._connected = True
            self._connection += 1
            unsent, self._unsent = self._unsent, []
            return unsent

    def report(self, result: GranuleResult, send: Callable[[Report], bool]) -> None:
        """Deliver a granule's result with `send` (False: not sent), or keep it for the next
        registration."""
        granule = (result.app_id, result.index)
        while True:
            with self._lock:
                if not self._connected:
                    self._unsent.append(result)
                    return
                connection = self._connection
            if send(Report(result)):
                with self._lock:
                    self._held.discard(granule)
                return
            with self._lock:
                if not self._connected or self._connection == connection:
                    self._unsent.append(result)  # the next registration sends it
                    return
            # The worker registered again meanwhile: send it on the new connection.
