"""A MainRegion and a PartRegion wired together in one process, each over its own memory.

The part's `send` calls the main side's `request` directly and the main side's
`post(host, message, on_error)` hands replies, refusals and stops to the part, so every
message is delivered at once, in order (unless a test holds the answers back to hand them
over in another order, or makes the part unreachable: then `post` calls `on_error`).
Threads stand in for guest threads where a synchronisation blocks; each side's `HostCopy`
notes which delivery tickets its threads start to apply, so a test knows when one waits.
"""

from __future__ import annotations

import ctypes
import mmap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from faabric.messages.team import RegionId, TeamRefused, TeamReply, TeamRequest, TeamStop
from faabric.snapshot import PAGE_SIZE
from faabric.threads.coordinator import Delivery
from faabric.threads.host_copy import GiveUp, HostCopy
from faabric.threads.part_region import PartRegion
from faabric.threads.regions import MainRegion, OnError
from faabric.wasm.host import GuestMemory

SIZE = 8 * PAGE_SIZE
REGION = RegionId("main", 3)
PART = "part"
KEY = 0x1234
TIMEOUT = 2.0  # bound on every wait of a test thread
X, Y = 4 * PAGE_SIZE + 8, 4 * PAGE_SIZE + 9  # two bytes of a page that starts zero


class Memory:
    """A page-aligned anonymous mapping standing in for a linear memory."""

    def __init__(self, initial: npt.NDArray[np.uint8]) -> None:
        self.mapping = mmap.mmap(-1, len(initial))
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.mapping))
        self.view: npt.NDArray[np.uint8] = np.frombuffer(self.mapping, np.uint8)
        self.view[:] = initial

    def now(self) -> GuestMemory:
        return GuestMemory(self.base, len(self.view))

    def grow(self, size: int) -> None:
        raise AssertionError(f"no test grows the memory (asked for {size})")


class SpyCopy(HostCopy):
    """A HostCopy noting the ticket of every delivery a thread starts to apply."""

    def __init__(self, memory: Memory, twin: npt.NDArray[np.uint8]) -> None:
        super().__init__(memory.now, memory.grow, twin.copy(), ())
        self.entered: list[int] = []
        self._noted = threading.Condition()

    def apply(self, delivery: Delivery, give_up: GiveUp) -> None:
        with self._noted:
            self.entered.append(delivery.ticket)
            self._noted.notify_all()
        super().apply(delivery, give_up)

    def wait_entered(self, ticket: int) -> None:
        """Until some thread started applying delivery `ticket` (it may wait for its turn)."""
        with self._noted:
            assert self._noted.wait_for(lambda: ticket in self.entered, TIMEOUT), self.entered


@dataclass
class Team:
    main: MainRegion
    part: PartRegion
    main_memory: Memory
    part_memory: Memory
    main_copy: SpyCopy
    part_copy: SpyCopy
    sent: list[tuple[str, object]] = field(default_factory=list)  # main -> part
    held: list[TeamReply | TeamRefused] | None = None  # answers kept back, when a list
    unreachable: bool = False  # every post fails (through its on_error)
    lost: list[tuple[str, object]] = field(default_factory=list)  # posts that failed
    requests: list[TeamRequest] = field(default_factory=list)  # part -> main, once served
    served: threading.Condition = field(default_factory=threading.Condition)

    def wait_served(self, count: int) -> None:
        """Until the main side has taken `count` requests of the part (queued or answered)."""
        with self.served:
            assert self.served.wait_for(lambda: len(self.requests) >= count, TIMEOUT)


def make_team(deadline: float = 10.0, parts: dict[str, tuple[int, ...]] | None = None
              ) -> Team:
    initial = np.zeros(SIZE, np.uint8)
    initial[:PAGE_SIZE] = np.arange(PAGE_SIZE) % 251
    main_memory, part_memory = Memory(initial), Memory(initial)
    holder: list[Team] = []

    def main_post(host: str, message: object, on_error: OnError) -> None:
        team = holder[0]
        if team.unreachable:
            team.lost.append((host, message))
            on_error(ConnectionError(f"{host} is unreachable"))
            return
        team.sent.append((host, message))
        if host != PART:
            return
        if isinstance(message, TeamReply | TeamRefused):
            if team.held is not None:
                team.held.append(message)
            else:
                team.part.replied(message)
        elif isinstance(message, TeamStop):
            team.part.stop(message.reason)

    def part_send(message: object) -> None:
        assert isinstance(message, TeamRequest)
        team = holder[0]
        team.main.request(message)
        with team.served:
            team.requests.append(message)
            team.served.notify_all()

    end = time.monotonic() + deadline
    main_copy, part_copy = SpyCopy(main_memory, initial), SpyCopy(part_memory, initial)
    main = MainRegion(REGION, parts or {PART: (2, 3)}, 2, main_copy, end, main_post)
    part = PartRegion(REGION, PART, 2, end, part_send)
    part.copy = part_copy
    team = Team(main, part, main_memory, part_memory, main_copy, part_copy)
    holder.append(team)
    return team


class Worker:
    """A thread running `work`, keeping its result or error; joined with a bound."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self._work = work
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._work()
        except BaseException as error:  # handed to the test
            self.error = error

    def join(self, bound: float = TIMEOUT) -> object:
        self._thread.join(bound)
        assert not self._thread.is_alive(), "the thread is still blocked"
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


@pytest.fixture
def team() -> Iterator[Team]:
    made = make_team()
    yield made
    made.main.close()
    made.part.close()
