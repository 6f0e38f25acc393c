"""A fake worker for planner tests: it speaks the control protocol over a real socket to a
real planner, records what the planner sends (everything in order, and sorted by kind:
batches, stops, scale answers, migration messages), and reports results the test builds."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest

from faabric import __version__
from faabric.errors import TimeoutError_, TransportError
from faabric.messages.control import (
    CONTROL_CODEC,
    MigrationCancel,
    MigrationFreeze,
    MigrationOffer,
    MigrationStart,
    MigrationWithdrawn,
    Register,
    Report,
    RunBatch,
    ScaleGranted,
    ScaleRefused,
    StopApp,
    ThawApp,
)
from faabric.messages.types import Batch, Exited, GranuleResult, Outcome
from faabric.runtime import RunningPlanner
from faabric.transport.auth import CONTROL, connect_handshake
from faabric.transport.framing import FramedSocket, connect

TIMEOUT = 5.0
TOKEN = "unit-test-cluster-token-0123456789abcdef"  # every planner of the unit tests uses it
Migrating = (
    MigrationOffer | MigrationWithdrawn | MigrationStart | MigrationCancel | MigrationFreeze
    | ThawApp
)
SUCCESS = Exited(0)


class FakeWorker:
    """A worker that registers over the control port and reports results built by the test."""

    def __init__(self, planner: RunningPlanner, name: str, slots: int,
                 address: str = "", *, incarnation: str = "",
                 running: tuple[tuple[int, int], ...] = ()) -> None:
        self.name = name
        self.address = address  # its data-plane address, as registered
        sock = connect("127.0.0.1", planner.control.port, timeout=TIMEOUT)
        connect_handshake(sock, TOKEN, CONTROL, peer="the planner", me="worker")
        self.conn = FramedSocket(sock, CONTROL_CODEC, io_timeout=TIMEOUT)
        self.conn.send(Register(name, slots, __version__, address, incarnation, running))
        self.first = self.conn.recv(TIMEOUT)
        self.inbox: queue.Queue[Any] = queue.Queue()  # every message, in order
        self.batches: queue.Queue[Batch] = queue.Queue()
        self.stops: queue.Queue[int] = queue.Queue()
        self.answers: queue.Queue[ScaleGranted | ScaleRefused] = queue.Queue()
        self.moves: queue.Queue[Migrating] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self.conn.closed:
            try:
                message = self.conn.recv(timeout=0.05)
            except TimeoutError_:
                continue
            except TransportError:
                return
            self.inbox.put(message)
            if isinstance(message, RunBatch):
                self.batches.put(message.batch)
            elif isinstance(message, StopApp):
                self.stops.put(message.app_id)
            elif isinstance(message, ScaleGranted | ScaleRefused):
                self.answers.put(message)
            elif isinstance(message, Migrating):
                self.moves.put(message)

    def next_batch(self) -> Batch:
        try:
            return self.batches.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"{self.name} received no batch within {TIMEOUT} s")

    def next_answer(self) -> ScaleGranted | ScaleRefused:
        try:
            return self.answers.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"{self.name} received no scale answer within {TIMEOUT} s")

    def next_message(self) -> Any:
        """The next message of any kind from the planner."""
        return self.inbox.get(timeout=TIMEOUT)

    def next_move(self) -> Migrating:
        """The next migration message from the planner."""
        return self.moves.get(timeout=TIMEOUT)

    def no_more_moves(self) -> bool:
        """Whether no migration message arrives within a tenth of a second."""
        time.sleep(0.1)
        return self.moves.empty()

    def send(self, message: Any) -> None:
        self.conn.send(message)

    def report(self, batch: Batch, index: int, outcome: Outcome = SUCCESS, **kw: Any) -> None:
        result = GranuleResult(batch.app_id, index, self.name, outcome, **kw)
        self.conn.send(Report(result))

    def report_index(self, app_id: int, index: int) -> None:
        """Report granule `index` of app `app_id` exited 0 (without its batch at hand)."""
        self.conn.send(Report(GranuleResult(app_id, index, self.name, SUCCESS)))

    def finish(self, batch: Batch, outcome: Outcome = SUCCESS) -> None:
        for index in batch.indices:
            self.report(batch, index, outcome)

    def close(self) -> None:
        self.conn.close()
        self._reader.join(timeout=TIMEOUT)
