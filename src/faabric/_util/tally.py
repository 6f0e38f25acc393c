"""Named monotonic counters that several threads add to, read whole for metrics.

A `Tally` is for paths where a lock per add costs nothing next to the work counted (sending
a snapshot, a migrating rank); the MPI send path counts under the locks it already holds
instead. This module must not know what is counted nor how it is exported.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class Tally:
    """Counters by name, each starting at 0; only the names given at creation exist."""

    def __init__(self, names: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(names, 0)

    def add(self, name: str, amount: int = 1) -> None:
        """Add `amount` (>= 0) to counter `name`; KeyError if there is no such counter."""
        with self._lock:
            self._values[name] += amount

    def values(self) -> dict[str, int]:
        """Every counter's value at one moment."""
        with self._lock:
            return dict(self._values)
