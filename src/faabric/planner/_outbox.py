"""Per-worker outgoing queue of the planner: messages in the order the core decided them,
written in as few socket writes as possible.

The service `put`s messages while it holds its lock (cheap: a list append), so their order is
the order of the core's decisions; `flush` runs outside that lock, so a slow worker never
stalls the planner. Whichever thread flushes first sends everything queued by then in one
write (many `RunBatch` frames at once under load); the others return at once. This module
must not decide what to send.
"""

from __future__ import annotations

import threading
from typing import Any

from faabric.transport.framing import FramedSocket


class Outbox:
    """The queue of messages for one worker connection."""

    def __init__(self, name: str, conn: FramedSocket) -> None:
        self.name = name
        self.conn = conn
        self._lock = threading.Lock()
        self._pending: list[Any] = []
        self._sending = False

    def put(self, message: Any) -> None:
        """Queue one message."""
        with self._lock:
            self._pending.append(message)

    def flush(self) -> None:
        """Send what is queued, unless another thread is already sending (it will send it).

        Raises:
            TransportError: the connection failed; what was queued is dropped.
        """
        while True:
            with self._lock:
                if self._sending or not self._pending:
                    return
                batch, self._pending = self._pending, []
                self._sending = True
            try:
                self.conn.send_many(batch)
            except BaseException:
                with self._lock:
                    self._sending = False
                    self._pending.clear()
                raise
            with self._lock:
                self._sending = False
