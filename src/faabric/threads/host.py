"""The `faabric_threads.*` imports: start a thread, end the calling one, default team size.

Every thread a guest starts goes through one `ThreadSpawner`, the place where a granule's
threads are counted against its limit, and where asking the cluster for slots for them
belongs (today a granule's threads all run on its own worker). This module must not import
wasmtime nor know whether the guest uses OpenMP or pthreads.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Protocol

from faabric.wasm.host import HostCall, HostFunction

IMPORT_MODULE = "faabric_threads"
DEFAULT_MAX_THREADS = 64


@dataclass(frozen=True, slots=True)
class ThreadPolicy:
    """How many threads a granule gets.

    Attributes:
        default_team: OpenMP team size when the guest sets no OMP_NUM_THREADS (and what
            omp_get_num_procs reports): the worker's slot count.
        max_threads: threads running at once per granule, besides its main thread.
    """

    default_team: int
    max_threads: int = DEFAULT_MAX_THREADS


class SlotSource(Protocol):
    """Where a granule's threads get their slots from (the planner, through the worker)."""

    def reserve(self, call: HostCall, threads: int) -> None:
        """The calling granule is about to run `threads` threads besides its main one."""
        ...


class ThreadSpawner:
    """Starts guest threads for the granules of one worker, within `policy`."""

    def __init__(self, policy: ThreadPolicy, slots: SlotSource | None = None) -> None:
        self.policy = policy
        self._slots = slots

    def spawn(self, call: HostCall, entry: int, arg: int, stack_top: int) -> int:
        """The new thread's number, or -EAGAIN when the granule has its maximum running."""
        team = call.threads()
        if team.running >= self.policy.max_threads:
            return -errno.EAGAIN
        if self._slots is not None:
            self._slots.reserve(call, team.running + 1)
        return team.spawn(entry, arg, stack_top)

    def functions(self) -> tuple[HostFunction, ...]:
        """The host functions to give the launcher."""
        return (
            HostFunction(IMPORT_MODULE, "spawn", ("i32", "i32", "i32"), ("i32",), self.spawn),
            HostFunction(IMPORT_MODULE, "exit", (), (), _exit_thread),
            HostFunction(IMPORT_MODULE, "default_team_size", (), ("i32",), self._team_size),
        )

    def _team_size(self, call: HostCall) -> int:
        return max(1, self.policy.default_team)


def _exit_thread(call: HostCall) -> None:
    call.end_thread()


def thread_functions(
    policy: ThreadPolicy, slots: SlotSource | None = None
) -> tuple[HostFunction, ...]:
    """The `faabric_threads.*` host functions for `policy`, through one spawner."""
    return ThreadSpawner(policy, slots).functions()
