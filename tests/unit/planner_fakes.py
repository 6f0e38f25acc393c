"""A fake worker for planner tests: it speaks the control protocol over a real socket to a
real planner, records what the planner sends, and reports results the test builds."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest

from faabric import __version__
from faabric.errors import TimeoutError_, TransportError
from faabric.messages.control import (
    CONTROL_CODEC,
    Register,
    Report,
    RunBatch,
    ScaleGranted,
    ScaleRefused,
    StopApp,
)
from faabric.messages.types import Batch, Exited, GranuleResult, Outcome
from faabric.runtime import RunningPlanner
from faabric.transport.framing import FramedSocket, connect

TIMEOUT = 5.0
SUCCESS = Exited(0)


class FakeWorker:
    """A worker that registers over the control port and reports results built by the test."""

    def __init__(self, planner: RunningPlanner, name: str, slots: int) -> None:
        self.name = name
        sock = connect("127.0.0.1", planner.control.port, timeout=TIMEOUT)
        self.conn = FramedSocket(sock, CONTROL_CODEC, io_timeout=TIMEOUT)
        self.conn.send(Register(name, slots, __version__))
        self.first = self.conn.recv(TIMEOUT)
        self.batches: queue.Queue[Batch] = queue.Queue()
        self.stops: queue.Queue[int] = queue.Queue()
        self.answers: queue.Queue[ScaleGranted | ScaleRefused] = queue.Queue()
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
            if isinstance(message, RunBatch):
                self.batches.put(message.batch)
            elif isinstance(message, StopApp):
                self.stops.put(message.app_id)
            elif isinstance(message, ScaleGranted | ScaleRefused):
                self.answers.put(message)

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

    def send(self, message: Any) -> None:
        self.conn.send(message)

    def report(self, batch: Batch, index: int, outcome: Outcome = SUCCESS, **kw: Any) -> None:
        result = GranuleResult(batch.app_id, index, self.name, outcome, **kw)
        self.conn.send(Report(result))

    def finish(self, batch: Batch, outcome: Outcome = SUCCESS) -> None:
        for index in batch.indices:
            self.report(batch, index, outcome)

    def close(self) -> None:
        self.conn.close()
        self._reader.join(timeout=TIMEOUT)
