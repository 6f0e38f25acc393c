"""An outgoing queue for one framed connection: messages in the order they were put, written
in as few socket writes as possible, without a sender thread.

Senders `put` a message (cheap: a list append, so a caller may do it under its own lock to
fix the order) and then `flush`. Whichever thread flushes first sends everything queued by
then in one write, and keeps going while more arrives; the others return at once, so no
thread waits for another's system call and an idle connection adds no delay. The planner
keeps one per worker (many `RunBatch` frames per write under load); a worker keeps one for
its reports. This module must not decide what to send.
"""

from __future__ import annotations

import threading
from typing import Any

from faabric.transport.framing import FramedSocket


class Outbox:
    """The queue of messages for one connection (`name` says whose, for the caller)."""

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
