"""What running apps print, kept briefly for clients that follow it (GET /v1/apps/{id}/output).

Workers send granules' output in chunks as it is produced; `OutputBuffers` numbers each
app's chunks (0, 1, 2, ...) and keeps the latest of them within bounds: `per_app` bytes
(and `max_chunks` chunks) per app, `total` bytes over all apps, the oldest dropped first. A
follower that asks for chunks no longer kept is told which were lost (`Lost`), never given
a silent gap. A finished app's buffer stays for followers still reading it until
`keep_finished` more apps have finished. Followers wait on a condition, woken by every new
chunk and by the app's end, each wait with a timeout. This is not scheduling state: it
must not decide anything about apps, and the complete output stays in the app's results.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

READ_BYTES = 1 << 20  # bytes handed to one follower per read, at most (one chunk at least)


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """Bounds of the buffers: bytes per app, chunks per app, bytes over all apps, and how
    many finished apps keep their buffer for followers still reading."""

    per_app: int = 8 << 20
    max_chunks: int = 16384
    total: int = 256 << 20
    keep_finished: int = 64


@dataclass(frozen=True, slots=True)
class Chunk:
    """Chunk `seq` of an app's output: bytes granule `index` wrote to `stream` (1 stdout,
    2 stderr) from byte `offset` of that stream on."""

    seq: int
    index: int
    stream: int
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Lost:
    """Chunks `first` to `next - 1` were dropped before the follower read them."""

    first: int
    next: int


@dataclass(frozen=True, slots=True)
class Ended:
    """The app has finished and every chunk before `next` was handed out: nothing follows."""

    next: int


OutputEvent = Chunk | Lost | Ended


@dataclass(slots=True)
class _AppOutput:
    chunks: deque[Chunk] = field(default_factory=deque)
    next: int = 0  # the seq of the next chunk to arrive
    size: int = 0  # bytes held
    ended: bool = False

    @property
    def first(self) -> int:
        """The seq of the oldest chunk kept (`next` if none is)."""
        return self.chunks[0].seq if self.chunks else self.next


class OutputBuffers:
    """The buffers of every app in flight (and of the last few finished); thread-safe."""

    def __init__(self, limits: OutputLimits | None = None) -> None:
        self.limits = limits or OutputLimits()
        self._apps: dict[int, _AppOutput] = {}
        self._finished: OrderedDict[int, None] = OrderedDict()
        self._total = 0
        self._changed = threading.Condition()

    def open(self, app_ids: Iterable[int]) -> None:
        """These apps were accepted: their output is kept from now on."""
        with self._changed:
            for app_id in app_ids:
                self._apps.setdefault(app_id, _AppOutput())

    def add(self, app_id: int, index: int, stream: int, offset: int, data: bytes) -> bool:
        """Keep a chunk of an app in flight; False (nothing kept) if the app is not, or no
        longer, in flight."""
        with self._changed:
            buffer = self._apps.get(app_id)
            if buffer is None or buffer.ended or not data:
                return False
            buffer.chunks.append(Chunk(buffer.next, index, stream, offset, data))
            buffer.next += 1
            buffer.size += len(data)
            self._total += len(data)
            self._trim(buffer)
            self._changed.notify_all()
            return True

    def finish(self, app_id: int) -> None:
        """The app finished: followers get what is kept, then `Ended`."""
        with self._changed:
            buffer = self._apps.get(app_id)
            if buffer is None or buffer.ended:
                return
            buffer.ended = True
            self._finished[app_id] = None
            while len(self._finished) > self.limits.keep_finished:
                gone, _ = self._finished.popitem(last=False)
                self._drop(gone)
            self._changed.notify_all()

    def clear(self) -> None:
        """Forget every app (a reset): their followers are told they ended."""
        with self._changed:
            for app_id in list(self._apps):
                self._drop(app_id)
            self._finished.clear()
            self._changed.notify_all()

    def read(self, app_id: int, start: int, timeout: float) -> list[OutputEvent]:
        """The events of the app's output from chunk `start` on, waiting up to `timeout`
        seconds for one if there is none yet (an empty list: nothing came). An app without
        a buffer (never opened, or finished long ago) reads as ended."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                buffer = self._apps.get(app_id)
                if buffer is None:
                    return [Ended(start)]
                if start < buffer.next or buffer.ended:
                    return _events(buffer, start)
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._changed.wait(left)

    @property
    def held(self) -> int:
        """Bytes held over all apps."""
        return self._total

    def _trim(self, buffer: _AppOutput) -> None:
        limits = self.limits
        while buffer.chunks and (buffer.size > limits.per_app
                                 or len(buffer.chunks) > limits.max_chunks):
            self._pop(buffer)
        while self._total > limits.total:
            largest = max(self._apps.values(), key=lambda b: b.size)
            if not largest.chunks:
                return
            self._pop(largest)

    def _pop(self, buffer: _AppOutput) -> None:
        chunk = buffer.chunks.popleft()
        buffer.size -= len(chunk.data)
        self._total -= len(chunk.data)

    def _drop(self, app_id: int) -> None:
        buffer = self._apps.pop(app_id, None)
        if buffer is not None:
            self._total -= buffer.size


def _events(buffer: _AppOutput, start: int) -> list[OutputEvent]:
    """What a follower at chunk `start` gets now (the buffer's lock is held)."""
    events: list[OutputEvent] = []
    first = buffer.first
    if start < first:
        events.append(Lost(start, first))
        start = first
    size = 0
    for chunk in itertools.islice(buffer.chunks, start - first, None):
        if size and size + len(chunk.data) > READ_BYTES:
            return events
        events.append(chunk)
        size += len(chunk.data)
    if buffer.ended:
        events.append(Ended(buffer.next))
    return events
