"""One-line progress on a terminal's stderr: a spinner while compiling, and where a queued
app stands ("waiting for 4 slots, 3 apps ahead").

Both redraw one line in place (carriage return, erase) from a thread of their own and erase
it when done, so nothing of them stays in the output. They are meant for a terminal only:
the caller decides (`sys.stderr.isatty()`), and quiet ones do nothing. They must not print
anything a script could want to parse.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TextIO

FRAMES = "|/-\\"
SPIN_EVERY = 0.1  # seconds between two frames of the spinner
SPIN_AFTER = 0.3  # seconds before it shows (a cached build shows nothing)
QUEUE_EVERY = 1.0  # seconds between two looks at the queue
ERASE = "\r\x1b[K"


class Spinner:
    """`with Spinner(text, out, show=...)`: `text` and a turning bar, with the seconds spent,
    while the block runs."""

    def __init__(self, text: str, out: TextIO, *, show: bool) -> None:
        self._text = text
        self._out = out
        self._show = show
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spinner", daemon=True)

    def __enter__(self) -> Spinner:
        if self._show:
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._show:
            self._done.set()
            self._thread.join(timeout=1.0)

    def _run(self) -> None:
        started = time.monotonic()
        if self._done.wait(SPIN_AFTER):
            return
        frame = 0
        while not self._done.is_set():
            spent = time.monotonic() - started
            self._out.write(f"{ERASE}{FRAMES[frame % len(FRAMES)]} {self._text} ({spent:.0f} s)")
            self._out.flush()
            frame += 1
            self._done.wait(SPIN_EVERY)
        self._out.write(ERASE)
        self._out.flush()


@dataclass(frozen=True, slots=True)
class QueueSpot:
    """Where a queued app stands: the slots it needs, how many are free, apps before it."""

    needed: int
    free: int
    ahead: int

    def describe(self) -> str:
        apps = f"{self.ahead} app{'s' if self.ahead != 1 else ''} ahead"
        return (f"waiting for {self.needed} slot{'s' if self.needed != 1 else ''} "
                f"({self.free} free), {apps}")


def queue_spot(status: dict[str, Any], app_id: int) -> QueueSpot | None:
    """Where app `app_id` stands in the planner's `status` (GET /v1/status); None unless it
    is queued. The queue is first in, first out: apps queued with lower ids are ahead."""
    queued = [a for a in status["apps"] if a["state"] == "queued"]
    mine = next((a for a in queued if a["app_id"] == app_id), None)
    if mine is None:
        return None
    free = sum(max(0, h["slots"] - h["used"]) for h in status["hosts"]
               if not h.get("evicting"))
    ahead = sum(1 for a in queued if a["app_id"] < app_id)
    return QueueSpot(int(mine["size"]), free, ahead)


class QueueNotice:
    """While the app waits in the queue, one line saying where it stands (redrawn every
    `QUEUE_EVERY` s from `look()`, which returns the planner's status); erased once the app
    starts or `stop` is called."""

    def __init__(self, app_id: int, look: Callable[[], dict[str, Any]], out: TextIO, *,
                 show: bool) -> None:
        self._app_id = app_id
        self._look = look
        self._out = out
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-notice", daemon=True)
        if show:
            self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        shown = False
        while not self._done.is_set():
            try:
                spot = queue_spot(self._look(), self._app_id)
            except Exception:  # a notice never breaks a run
                spot = None
            if spot is None:
                break
            self._out.write(f"{ERASE}faabric: app {self._app_id} is queued: "
                            f"{spot.describe()}")
            self._out.flush()
            shown = True
            self._done.wait(QUEUE_EVERY)
        if shown:
            self._out.write(ERASE)
            self._out.flush()
