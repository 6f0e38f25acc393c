"""The threads of one granule: instances of its module on the granule's shared memory.

A thread-capable module's `_start` runs in the granule's main instance. A guest that wants
another thread asks the host to `spawn` one: a new instance of the same module, in its own
Store on its own Python thread (wasm releases the GIL), importing the same SharedMemory. The
host sets the new instance's `__stack_pointer` to a stack the guest allocated and calls
`__indirect_function_table[function](arg)`: through the table, because in command-model
modules every export re-runs the C constructors. The first thread that ends the granule
(the main instance returning, any thread calling exit() or trapping) decides its outcome;
the others are then stopped. This module must not know what the guest does with its threads
(OpenMP, pthreads) nor decide how many it may have.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import wasmtime

from faabric.messages.types import Cancelled, Failed, Outcome, TimedOut
from faabric.wasm import _raw
from faabric.wasm.host import U32_MASK, GuestFault
from faabric.wasm.interrupt import CancelRequested, DeadlinePassed, Watch

STACK_POINTER = "__stack_pointer"
TABLE = "__indirect_function_table"
STOP_GRACE = 2.0  # seconds to wait for stopped threads before leaving them behind


@dataclass(frozen=True, slots=True)
class Member:
    """A started sibling instance, ready to call into (made by the launcher)."""

    store: Any
    instance: Any
    finish: Callable[[BaseException | None], Outcome | None]  # how its call ended -> outcome
    release: Callable[[], None]


NewMember = Callable[[int], Member]


class Team:
    """The running threads of one granule besides its main instance."""

    def __init__(self, new_member: NewMember, stop: threading.Event) -> None:
        self._new_member = new_member
        self.stop = stop  # set once the granule ends: every member stops at its next slice
        self._numbers = itertools.count(1)
        self._threads: dict[int, threading.Thread] = {}  # started and not yet ended
        self._lock = threading.Lock()
        self._outcome: list[Outcome] = []

    @property
    def running(self) -> int:
        """Threads started and not yet ended (the main instance not counted)."""
        with self._lock:
            return len(self._threads)

    def spawn(self, function: int, arg: int, stack_top: int) -> int:
        """Start `table[function](arg)` on a new thread with its stack at `stack_top`; returns
        the thread's number (1, 2, ...). The instance is made on the new thread."""
        if self.stop.is_set():
            raise GuestFault("cannot start a thread: the granule is ending")
        number = next(self._numbers)
        thread = threading.Thread(
            target=self._run, args=(number, function, arg, stack_top),
            name=f"granule-thread-{number}", daemon=True,
        )
        with self._lock:
            self._threads[number] = thread
            thread.start()
        return number

    def conclude(self, outcome: Outcome) -> None:
        """Record how the granule ends (the first call wins) and stop every thread."""
        with self._lock:
            if not self._outcome:
                self._outcome.append(outcome)
        self.stop.set()

    @property
    def outcome(self) -> Outcome | None:
        """The granule's outcome if a thread has decided it."""
        with self._lock:
            return self._outcome[0] if self._outcome else None

    def wait_all(self, watch: Watch, timeout: float) -> Outcome | None:
        """Wait until every thread ended or one decided the outcome; a cancelled or expired
        `watch` decides it too (the threads stop at their next slice)."""
        while True:
            with self._lock:
                if self._outcome or not self._threads:
                    return self._outcome[0] if self._outcome else None
                thread = next(iter(self._threads.values()))
            thread.join(watch.slice)
            match watch.verdict():
                case CancelRequested(reason):
                    self.conclude(Cancelled(reason))
                case DeadlinePassed():
                    self.conclude(TimedOut(timeout))
                case _:
                    pass

    def stop_all(self, grace: float = STOP_GRACE) -> None:
        """Stop the threads and wait up to `grace` seconds for them. A thread blocked in a
        host call (a long sleep) is left to end on its own: it holds its memory alive."""
        self.stop.set()
        deadline = time.monotonic() + grace
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self, number: int, function: int, arg: int, stack_top: int) -> None:
        try:
            member = self._new_member(number)
        except Exception as error:  # the thread never ran: the granule cannot go on
            self.conclude(_start_failure(number, error))
            with self._lock:
                self._threads.pop(number, None)
            return
        ended: BaseException | None = None
        try:
            _call(member, function, arg, stack_top)
        except (wasmtime.Trap, wasmtime.WasmtimeError, GuestFault) as error:
            ended = error
        except Exception as error:  # a faabric bug: still end the granule cleanly
            ended = error
        try:
            outcome = member.finish(ended)
            if outcome is not None:
                self.conclude(outcome)
        finally:
            member.release()
            with self._lock:
                self._threads.pop(number, None)


def _call(member: Member, function: int, arg: int, stack_top: int) -> None:
    store, exports = member.store, member.instance.exports(member.store)
    stack_pointer = exports[STACK_POINTER]
    table = exports[TABLE]
    if not isinstance(stack_pointer, wasmtime.Global) or not isinstance(table, wasmtime.Table):
        raise GuestFault(f"the module does not export {STACK_POINTER} and {TABLE}")
    stack_pointer.set_value(store, wasmtime.Val.i32(stack_top))
    func = table.get(store, function & U32_MASK)
    if not isinstance(func, wasmtime.Func):
        raise GuestFault(f"thread entry {function} is not a function of the module's table")
    ty = func.type(store)
    if [str(p) for p in ty.params] != ["i32"] or list(ty.results):
        raise GuestFault(f"thread entry {function} is not a function taking one i32")
    _raw.call_i32_arg(store, func._func, arg)


def _start_failure(number: int, error: Exception) -> Outcome:
    return Failed(f"thread {number} could not start: {error}")
