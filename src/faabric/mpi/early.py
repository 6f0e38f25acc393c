"""The bounds on data-plane frames for apps none of whose ranks started on this worker yet.

Messages may legitimately arrive before the first local rank of their app starts (another
host's rank sent them while this worker was still fetching or compiling the module), so
they are kept; but only up to `EarlyLimits.max_bytes` in all and for `max_seconds` each app.
`EarlyArrivals` does the accounting: what each waiting app holds and since when. It decides
which apps must go; it must not hold the messages, know about sockets, or read the clock
itself (the caller passes the time).
"""

from __future__ import annotations

from dataclasses import dataclass

EARLY_MAX_BYTES = 256 << 20
EARLY_MAX_SECONDS = 120.0
APP_OVERHEAD = 4096  # bytes charged for an app's bookkeeping, so empty frames count too


@dataclass(frozen=True, slots=True)
class EarlyLimits:
    """How much, and how long, a worker keeps frames for apps with no rank here yet."""

    max_bytes: int = EARLY_MAX_BYTES
    max_seconds: float = EARLY_MAX_SECONDS


@dataclass(slots=True)
class _Waiting:
    since: float
    held: int


class EarlyArrivals:
    """What apps without a local rank hold, against the limits."""

    def __init__(self, limits: EarlyLimits) -> None:
        self.limits = limits
        self._apps: dict[int, _Waiting] = {}
        self._held = 0

    def __contains__(self, app_id: int) -> bool:
        return app_id in self._apps

    def __len__(self) -> int:
        return len(self._apps)

    @property
    def held(self) -> int:
        """Bytes charged to waiting apps in all."""
        return self._held

    def admit(self, app_id: int, size: int, now: float) -> bool:
        """A frame of `size` bytes for `app_id` arrived at `now`; False if keeping it would
        exceed the byte limit (the caller then drops the app: losing one message of an MPI
        app would only make it hang later)."""
        waiting = self._apps.get(app_id)
        charge = size + (APP_OVERHEAD if waiting is None else 0)
        if self._held + charge > self.limits.max_bytes:
            return False
        if waiting is None:
            waiting = self._apps[app_id] = _Waiting(now, 0)
        waiting.held += charge
        self._held += charge
        return True

    def forget(self, app_id: int) -> int:
        """The app started here, or went: it no longer counts. Returns what it held."""
        waiting = self._apps.pop(app_id, None)
        if waiting is None:
            return 0
        self._held -= waiting.held
        return waiting.held

    def expired(self, now: float) -> list[int]:
        """The apps that have waited longer than the limit, oldest first."""
        limit = self.limits.max_seconds
        return [app for app, waiting in self._apps.items() if now - waiting.since > limit]

    def next_expiry(self) -> float | None:
        """When the oldest waiting app expires; None if no app waits."""
        if not self._apps:
            return None
        return min(w.since for w in self._apps.values()) + self.limits.max_seconds
