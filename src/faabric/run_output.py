"""How `faabric run` prints an app's output: live as the planner streams it, then the rest.

An `OutputPrinter` writes each granule's stdout and stderr bytes in order, as they arrive,
to this process's stdout and stderr. With one granule bytes go out as they come; with more
(or with `tag`), whole lines, so that granules' lines never mix; `tag` prefixes each line
with `[APP,INDEX]<stdout>:` (or `<stderr>:`), as `mpirun --tag-output` does. A stream
that missed bytes (the client fell behind the planner's buffer) stops printing live; when
the app ends, `finish` prints from its results whatever was not printed yet, so the output
is complete and in order either way, and never printed twice. Lines faabric adds to a
trapped granule's stderr (the backtrace) are printed only when `verbose`. It must not talk
to the planner (`follow_into` is handed the events).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from faabric.errors import FaabricError
from faabric.planner.output import Chunk, OutputEvent

NOTE = b"\n[faabric] "  # how the lines faabric adds to a granule's stderr start
NAMES = {1: "stdout", 2: "stderr"}
FOLLOW_GRACE = 0.5  # seconds the stream may take to end once the app has (then the
# results give what it did not carry: the same bytes, printed once)


@dataclass(slots=True)
class _Stream:
    printed: int = 0  # bytes of the stream consumed: written, or held in `partial`
    partial: bytearray = field(default_factory=bytearray)  # an unfinished line
    behind: bool = False  # bytes went missing: the rest comes from the results


class OutputPrinter:
    """Prints app `app_id`'s output to `out` and `err` (binary files)."""

    def __init__(self, app_id: int, size: int, out: BinaryIO, err: BinaryIO, *,
                 tag: bool = False, verbose: bool = False,
                 before_output: Callable[[], object] | None = None) -> None:
        self._app_id = app_id
        self._before_output = before_output  # called once, before the first byte is printed
        self._files = {1: out, 2: err}
        self._lines = tag or size > 1
        self._tag = tag
        self._verbose = verbose
        self._streams: dict[tuple[int, int], _Stream] = {}
        self._lock = threading.Lock()

    def take(self, events: Iterable[OutputEvent]) -> None:
        """Print the chunks among `events` (a stream that finds a gap stops printing)."""
        for event in events:
            if isinstance(event, Chunk):
                with self._lock:
                    self._chunk(event)

    def _chunk(self, chunk: Chunk) -> None:
        stream = self._streams.setdefault((chunk.index, chunk.stream), _Stream())
        if stream.behind:
            return
        if chunk.offset > stream.printed:
            stream.behind = True
            return
        data = chunk.data[stream.printed - chunk.offset:]
        if data:
            stream.printed += len(data)
            self._write(chunk.index, chunk.stream, stream, data)

    def finish(self, results: Iterable[dict[str, Any]]) -> None:
        """The app ended: print, granule by granule, what its results hold past what was
        printed, and the granules' unfinished lines."""
        with self._lock:
            for result in sorted(results, key=lambda r: r["index"]):
                for number, name in NAMES.items():
                    self._rest(result["index"], number, bytes(result[name]))
            for file in self._files.values():
                file.flush()

    def _rest(self, index: int, number: int, whole: bytes) -> None:
        stream = self._streams.setdefault((index, number), _Stream())
        end = len(whole)
        if number == 2 and not self._verbose:
            note = whole.find(NOTE, min(stream.printed, end))
            end = note if note >= 0 else end
        if stream.printed < end:
            self._write(index, number, stream, whole[stream.printed:end])
            stream.printed = end
        if stream.partial:
            self._emit(index, number, bytes(stream.partial) + (b"\n" if self._tag else b""))
            stream.partial.clear()

    def _write(self, index: int, number: int, stream: _Stream, data: bytes) -> None:
        if not self._lines:
            self._emit(index, number, data)
            return
        stream.partial += data
        cut = stream.partial.rfind(b"\n") + 1
        if cut:
            self._emit(index, number, bytes(stream.partial[:cut]))
            del stream.partial[:cut]

    def _emit(self, index: int, number: int, data: bytes) -> None:
        before, self._before_output = self._before_output, None
        if before is not None:
            before()
        file = self._files[number]
        if self._tag:
            prefix = f"[{self._app_id},{index}]<{NAMES[number]}>:".encode()
            data = b"".join(prefix + line for line in data.splitlines(keepends=True))
        file.write(data)
        file.flush()


class Follower(Protocol):
    """Where the events come from (`faabric.planner.follow.OutputFollower`)."""

    def events(self) -> Iterator[OutputEvent]: ...

    def close(self) -> None: ...


class Follow:
    """A thread that feeds `printer` from `follower` until the app's stream ends."""

    def __init__(self, follower: Follower, printer: OutputPrinter) -> None:
        self._follower = follower
        self._printer = printer
        self.error: FaabricError | None = None
        self._thread = threading.Thread(target=self._run, name="follow-output", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._printer.take(self._follower.events())
        except FaabricError as exc:  # the results still hold everything: nothing is lost
            self.error = exc
        except OSError as exc:  # our own stdout went away
            self.error = FaabricError(str(exc))

    def stop(self, grace: float = FOLLOW_GRACE) -> None:
        """The app ended: let the stream end within `grace` seconds, else drop it."""
        self._thread.join(grace)
        self._follower.close()
        self._thread.join(grace)
