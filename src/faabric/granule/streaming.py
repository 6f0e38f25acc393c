"""Streams what running granules print: their stdout and stderr go out in chunks as produced.

An `OutputStreamer` owns one thread that, while any granule runs, reads the new bytes of
each running granule's output files every `interval` seconds and hands them to `send` as
`OutputChunk`s (at most `chunk_size` bytes each); a granule's last bytes are read and sent
when its run ends, before its result. Only the first `limit` bytes of each stream go out,
as the result keeps no more. The thread sleeps while no granule runs. It must not hold
output of its own (the capture files hold it) nor know where the chunks go.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from faabric.messages.control import OutputChunk
from faabric.wasm.capture import Tailable

log = logging.getLogger(__name__)

STDOUT, STDERR = 1, 2
FLUSH_INTERVAL = 0.05  # seconds between two reads of the running granules' output
CHUNK_SIZE = 256 << 10  # bytes per chunk at most
READ_PER_FLUSH = 4 << 20  # bytes read per stream per flush at most (the rest at the next)
Send = Callable[[OutputChunk], object]


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """How much goes out: `limit` bytes per stream per granule, in chunks of `chunk_size`,
    read every `interval` seconds."""

    limit: int
    chunk_size: int = CHUNK_SIZE
    interval: float = FLUSH_INTERVAL


class OutputStreamer:
    """Follows the output files of the granules running on this worker."""

    def __init__(self, send: Send, limits: StreamLimits) -> None:
        self._send = send
        self.limits = limits
        self._taps: set[GranuleTap] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="output-stream", daemon=True)
        self._thread.start()

    def tap(self, app_id: int, index: int, base: tuple[int, int] = (0, 0)) -> GranuleTap:
        """A tap for one run of granule `index` of app `app_id`; `base` is how many bytes of
        stdout and stderr it wrote before this run (a rank that moved here)."""
        return GranuleTap(self, app_id, index, base)

    def close(self) -> None:
        """Stop the thread (taps still attached are read once more when detached)."""
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def _attached(self, tap: GranuleTap) -> None:
        with self._lock:
            self._taps.add(tap)
        self._wake.set()

    def _detached(self, tap: GranuleTap) -> None:
        with self._lock:
            self._taps.discard(tap)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            with self._lock:
                taps = list(self._taps)
                if not taps:
                    self._wake.clear()
            if not taps:
                self._wake.wait(timeout=60.0)  # until a granule starts
                continue
            for tap in taps:
                try:
                    tap.pump(READ_PER_FLUSH)
                except Exception:  # a broken tap must not end the streaming of the others
                    log.exception("streaming the output of app %d granule %d failed",
                                  tap.app_id, tap.index)
                    self._detached(tap)
            self._stopped.wait(self.limits.interval)


class GranuleTap:
    """The streamed part of one granule run's output (an `OutputTap` of the launcher)."""

    def __init__(self, streamer: OutputStreamer, app_id: int, index: int,
                 base: tuple[int, int]) -> None:
        self.app_id = app_id
        self.index = index
        self._streamer = streamer
        self._base = base
        self._files: tuple[Tailable, Tailable] | None = None
        self._sent = [0, 0]  # bytes of this run sent, per stream
        self._lock = threading.Lock()  # one reader at a time, so chunks go out in order

    def attach(self, stdout: Tailable, stderr: Tailable) -> None:
        with self._lock:
            self._files = (stdout, stderr)
        self._streamer._attached(self)

    def detach(self) -> None:
        """The run's output is complete: send what is left, then let go of the files."""
        self._streamer._detached(self)
        try:
            self.pump(None)
        finally:
            with self._lock:
                self._files = None

    def pump(self, most: int | None) -> None:
        """Send what was written since the last pump (at most `most` bytes per stream)."""
        with self._lock:
            if self._files is None:
                return
            for which, file in enumerate(self._files):
                self._pump_one(which, file, most)

    def _pump_one(self, which: int, file: Tailable, most: int | None) -> None:
        limits = self._streamer.limits
        offset = self._base[which] + self._sent[which]
        room = limits.limit - offset
        if most is not None:
            room = min(room, most)
        while room > 0:
            data = file.read_from(self._sent[which], min(room, limits.chunk_size))
            if not data:
                return
            self._streamer._send(OutputChunk(self.app_id, self.index, which + 1,
                                             offset, data))
            self._sent[which] += len(data)
            offset += len(data)
            room -= len(data)
