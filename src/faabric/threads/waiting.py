"""One thread of a distributed region blocked until the referee answers it.

A `Waiter` is answered once, from another thread, with `Granted` (and the delivery to apply
before going on) or `Broken`. `wait` ends by the deadline, or as soon as the region is seen
broken, and applies the delivery in its host's ticket order. This module must not know how
answers travel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from faabric.threads.coordinator import Broken, Granted
from faabric.threads.host_copy import HostCopy
from faabric.wasm.host import GuestFault

WAIT_SLICE = 0.1  # seconds between checks of a blocked wait's deadline
Reason = Callable[[], str | None]  # why the region broke, if it did


@dataclass(slots=True)
class Waiter:
    """One blocked synchronisation."""

    event: threading.Event = field(default_factory=threading.Event)
    outcome: Granted | Broken | None = None

    def answer(self, outcome: Granted | Broken) -> None:
        self.outcome = outcome
        self.event.set()

    def wait(self, deadline: float, what: str, broken: Reason, copy: HostCopy) -> int:
        """The granted value, once its delivery is applied to `copy`; GuestFault if the
        region broke or the deadline passed first."""
        while not self.event.wait(max(0.0, min(WAIT_SLICE, deadline - time.monotonic()))):
            reason = broken()
            if reason is not None:
                raise GuestFault(reason)
            if time.monotonic() >= deadline:
                raise GuestFault(timed_out(what))
        match self.outcome:
            case Broken(reason):
                raise GuestFault(reason)
            case Granted(value, delivery):
                if delivery is not None:
                    copy.apply(delivery, lambda: broken() or late(deadline, what))
                return value
        raise AssertionError("an answered waiter has an outcome")


def timed_out(what: str) -> str:
    return f"timed out waiting for {what} across hosts"


def late(deadline: float, what: str) -> str | None:
    """The timeout message once `deadline` has passed, else None."""
    return timed_out(what) if time.monotonic() >= deadline else None
