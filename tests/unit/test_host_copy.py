"""HostCopy: two copies of one memory on two "hosts", kept in step through diffs.

Each host's memory is a page-aligned anonymous mapping that reserves more than it exposes,
like a wasm linear memory: `grow` only moves the exposed size, the base never moves. Every
test runs with both dirty trackers (userfaultfd write-protect and the page compare).
Deliveries carry tickets: each copy applies its own 0, 1, 2, ... in that order.
"""

from __future__ import annotations

import ctypes
import itertools
import mmap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from faabric.errors import TrackingUnavailable
from faabric.snapshot import PAGE_SIZE, Diff, DirtyTracker, TrackingMode, open_tracker
from faabric.threads import host_copy
from faabric.threads.coordinator import Delivery
from faabric.threads.host_copy import HostCopy
from faabric.wasm.host import GuestFault, GuestMemory

PAGES = 16
SIZE = PAGES * PAGE_SIZE
RESERVED = 2 * SIZE
TIMEOUT = 2.0  # bound on every wait of a test thread


class Refused(Exception):
    """A fake memory that cannot grow any more."""


@dataclass
class Memory:
    """A memory reserving RESERVED bytes, of which `size` are in use."""

    size: int = SIZE
    reserved: int = RESERVED
    grown: list[int] = field(default_factory=list)
    mapping: mmap.mmap = field(init=False)
    base: int = field(init=False)

    def __post_init__(self) -> None:
        self.mapping = mmap.mmap(-1, self.reserved)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.mapping))
        assert self.base % PAGE_SIZE == 0

    def now(self) -> GuestMemory:
        return GuestMemory(self.base, self.size)

    def grow(self, size: int) -> None:
        self.grown.append(size)
        if size > self.reserved:
            raise Refused(f"cannot grow to {size} bytes")
        self.size = max(self.size, -(-size // PAGE_SIZE) * PAGE_SIZE)

    @property
    def view(self) -> npt.NDArray[np.uint8]:
        return np.frombuffer(self.mapping, np.uint8)[: self.size]


def _uffd_works() -> bool:
    memory = Memory(PAGE_SIZE, PAGE_SIZE)
    try:
        open_tracker(memory.base, PAGE_SIZE, TrackingMode.UFFD).stop()
    except TrackingUnavailable:
        return False
    return True


UFFD = pytest.param(TrackingMode.UFFD, marks=pytest.mark.skipif(
    not _uffd_works(), reason="userfaultfd write-protect is not available here"))


@pytest.fixture(params=[UFFD, TrackingMode.COMPARE], autouse=True)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> TrackingMode:
    """Make HostCopy use one tracker (it asks for AUTO, which prefers userfaultfd)."""
    chosen: TrackingMode = request.param

    def forced(address: int, length: int,
               wanted: TrackingMode = TrackingMode.AUTO) -> DirtyTracker:
        return open_tracker(address, length, chosen)

    monkeypatch.setattr(host_copy, "open_tracker", forced)
    return chosen


def no_waiting() -> str | None:
    """`give_up` for deliveries that are next in turn: it is only asked while one waits."""
    raise AssertionError("an apply waited for its turn")


@dataclass
class Host:
    memory: Memory
    copy: HostCopy
    tickets: Iterator[int] = field(default_factory=itertools.count)

    @property
    def view(self) -> npt.NDArray[np.uint8]:
        return self.memory.view

    def apply(self, *diffs: Diff) -> None:
        """Apply `diffs` as this host's next delivery (never waiting for its turn)."""
        self.copy.apply(Delivery(next(self.tickets), diffs), no_waiting)


HostPair = Callable[..., tuple[Host, Host]]


@pytest.fixture
def hosts() -> Iterator[HostPair]:
    """Makes two hosts whose memories start alike (some non-zero pages, the rest zero)."""
    made: list[HostCopy] = []

    def make(exclude: tuple[tuple[int, int], ...] = (), size: int = SIZE
             ) -> tuple[Host, Host]:
        rng = np.random.default_rng(1)
        initial = np.zeros(size, np.uint8)
        initial[: 2 * PAGE_SIZE] = rng.integers(0, 256, 2 * PAGE_SIZE, dtype=np.uint8)
        pair = []
        for _ in range(2):
            memory = Memory(size)
            memory.view[:] = initial
            copy = HostCopy(memory.now, memory.grow, initial.copy(), exclude)
            made.append(copy)
            pair.append(Host(memory, copy))
        return pair[0], pair[1]

    yield make
    for copy in made:
        copy.close()


def test_mode_fixture_applies(mode: TrackingMode, hosts: HostPair) -> None:
    a, _ = hosts()
    assert a.copy._tracker.mode is mode


def test_nothing_written_nothing_collected(hosts: HostPair) -> None:
    a, _ = hosts()
    assert a.copy.collect().blocks == ()


def test_writes_on_one_host_appear_on_the_other_and_are_not_sent_back(hosts: HostPair
                                                                       ) -> None:
    a, b = hosts()
    a.view[10] ^= 0xFF
    a.view[5 * PAGE_SIZE + 7] = 42
    a.view[PAGES * PAGE_SIZE - 1] = 9  # the last byte
    diff = a.copy.collect()
    assert diff.size == SIZE and diff.blocks
    assert a.copy.collect().blocks == ()  # the twin moved on

    b.apply(diff)
    assert np.array_equal(a.view, b.view)
    assert b.copy.collect().blocks == ()  # applied writes are not collected back
    assert b.memory.grown == []


def test_an_empty_apply_does_nothing(hosts: HostPair) -> None:
    a, b = hosts()
    b.apply()
    b.apply(a.copy.collect())
    assert np.array_equal(a.view, b.view)


def test_later_writes_to_the_same_bytes_are_collected_again(hosts: HostPair) -> None:
    a, b = hosts()
    a.view[100] = 1
    b.apply(a.copy.collect())
    a.view[100] = 2  # the same byte, after a synchronisation
    second = a.copy.collect()
    assert second.blocks
    b.apply(second)
    assert b.view[100] == 2
    b.view[100] = 3  # and back the other way
    a.apply(b.copy.collect())
    assert a.view[100] == 3


def test_excluded_ranges_are_never_collected(hosts: HostPair) -> None:
    # Overlapping, touching, unsorted and empty ranges: the union is [100, 200) and page 3.
    exclude = ((150, 200), (100, 150), (120, 130), (50, 50), (3 * PAGE_SIZE, 4 * PAGE_SIZE))
    a, b = hosts(exclude)
    before = b.view.copy()
    a.view[100:200] = 7
    a.view[3 * PAGE_SIZE: 4 * PAGE_SIZE] = 8
    a.view[99] ^= 1  # just outside
    a.view[200] ^= 1
    a.view[4 * PAGE_SIZE] = 5
    b.apply(a.copy.collect())
    expected = before.copy()
    expected[[99, 200, 4 * PAGE_SIZE]] = a.view[[99, 200, 4 * PAGE_SIZE]]
    assert np.array_equal(b.view, expected)
    a.view[3 * PAGE_SIZE] = 9  # still excluded at the next synchronisation
    assert a.copy.collect().blocks == ()


def test_writes_to_different_bytes_on_both_hosts_merge(hosts: HostPair) -> None:
    a, b = hosts()
    # Neighbouring bytes of one 32-byte block, of one page, and bytes of other pages.
    a.view[[64, 66, 9 * PAGE_SIZE]] = (1, 2, 3)
    b.view[[65, 67, 9 * PAGE_SIZE + 1, 12 * PAGE_SIZE]] = (4, 5, 6, 7)
    from_a, from_b = a.copy.collect(), b.copy.collect()
    a.apply(from_b)
    b.apply(from_a)
    assert np.array_equal(a.view, b.view)
    assert list(a.view[[64, 65, 66, 67]]) == [1, 4, 2, 5]
    assert list(a.view[[9 * PAGE_SIZE, 9 * PAGE_SIZE + 1, 12 * PAGE_SIZE]]) == [3, 6, 7]
    assert a.copy.collect().blocks == () and b.copy.collect().blocks == ()


def test_own_writes_survive_an_apply_before_they_are_collected(hosts: HostPair) -> None:
    a, b = hosts()
    a.view[300] = 11
    b.view[301] = 22  # not collected yet when a's diff arrives, same block and page
    b.apply(a.copy.collect())
    assert b.view[300] == 11 and b.view[301] == 22
    mine = b.copy.collect()  # b's own write is still found, a's is not sent back
    a.apply(mine)
    assert a.view[300] == 11 and a.view[301] == 22
    assert np.array_equal(a.view, b.view)


def test_diffs_apply_in_order(hosts: HostPair) -> None:
    a, b = hosts()
    a.view[500] = 1
    first = a.copy.collect()
    a.view[500] = 2
    second = a.copy.collect()
    b.apply(first, second)
    assert b.view[500] == 2
    assert b.copy.collect().blocks == ()


def test_a_larger_diff_grows_the_other_memory(hosts: HostPair) -> None:
    a, b = hosts()
    a.memory.grow(SIZE + 4 * PAGE_SIZE)  # a's guest grew its memory and wrote there
    a.view[SIZE + 2 * PAGE_SIZE + 5] = 77
    a.view[3] ^= 1
    diff = a.copy.collect()
    assert diff.size == SIZE + 4 * PAGE_SIZE
    assert a.copy.collect().blocks == ()

    b.apply(diff)
    assert b.memory.grown == [SIZE + 4 * PAGE_SIZE]
    assert b.memory.size == SIZE + 4 * PAGE_SIZE
    assert np.array_equal(a.view, b.view)
    assert b.copy.collect().blocks == ()

    b.view[SIZE + 3 * PAGE_SIZE] = 1  # the grown pages are tracked on b too
    a.apply(b.copy.collect())
    assert a.view[SIZE + 3 * PAGE_SIZE] == 1


def test_a_memory_that_cannot_grow_fails_the_apply(hosts: HostPair) -> None:
    a, b = hosts()
    b.memory.reserved = SIZE  # b cannot grow at all
    a.memory.grow(SIZE + PAGE_SIZE)
    a.view[SIZE] = 1
    with pytest.raises(Refused):
        b.apply(a.copy.collect())
    assert b.memory.grown == [SIZE + PAGE_SIZE]
    assert b.memory.size == SIZE

    b.apply()  # the failed delivery still took its turn: the next one does not wait


# -- ticket order ---------------------------------------------------------------------------------


class Applier:
    """A thread applying one delivery to `copy`, noting when it first waits for its turn."""

    def __init__(self, copy: HostCopy, delivery: Delivery) -> None:
        self.waiting = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(copy, delivery), daemon=True)
        self._thread.start()

    def _give_up(self) -> str | None:
        self.waiting.set()
        return None

    def _run(self, copy: HostCopy, delivery: Delivery) -> None:
        try:
            copy.apply(delivery, self._give_up)
        except BaseException as error:  # handed to the test
            self.error = error

    def wait_until_waiting(self) -> None:
        assert self.waiting.wait(TIMEOUT), "the apply never waited for its turn"
        assert self._thread.is_alive()

    def join(self) -> None:
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), "the apply is still waiting"
        if self.error is not None:
            raise self.error


def test_tickets_start_at_zero_on_each_copy(hosts: HostPair) -> None:
    a, b = hosts()
    a.view[7] = 1
    diff = a.copy.collect()  # collecting takes no ticket
    b.copy.apply(Delivery(0, (diff,)), no_waiting)  # each copy counts its own deliveries
    a.copy.apply(Delivery(0, ()), no_waiting)
    assert b.view[7] == 1
    with pytest.raises(GuestFault, match="not its turn"):  # ticket 1 is next on b, not 2
        b.copy.apply(Delivery(2, (diff,)), lambda: "not its turn")


def test_deliveries_that_overtook_an_earlier_one_wait_for_it(hosts: HostPair) -> None:
    a, b = hosts()
    diffs = []
    for value in (1, 2, 3):  # three writes to one byte, one after the other
        a.view[600] = value
        a.view[1000 + value] = value
        diffs.append(a.copy.collect())
    before = b.view.copy()

    third = Applier(b.copy, Delivery(2, (diffs[2],)))  # they arrive last first ...
    third.wait_until_waiting()
    second = Applier(b.copy, Delivery(1, (diffs[1],)))
    second.wait_until_waiting()
    assert np.array_equal(b.view, before)  # ... and wait, touching nothing

    b.copy.apply(Delivery(0, (diffs[0],)), no_waiting)  # the first one is next: it goes
    second.join()
    third.join()
    assert b.view[600] == 3  # applied 0, 1, 2: the last write wins
    assert list(b.view[1001:1004]) == [1, 2, 3]
    assert np.array_equal(a.view, b.view)
    assert b.copy.collect().blocks == ()
    b.copy.apply(Delivery(3, ()), no_waiting)  # and the count goes on from there


def test_an_apply_waiting_for_its_turn_gives_up_when_told_why(
        hosts: HostPair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_copy, "TURN_SLICE", 0.001)  # check often: this test waits
    a, b = hosts()
    a.view[700] = 5
    diff = a.copy.collect()
    before = b.view.copy()
    reasons = iter([None, None, "the region broke"])
    asked: list[int] = []

    def give_up() -> str | None:
        asked.append(1)
        return next(reasons)

    with pytest.raises(GuestFault, match="the region broke"):
        b.copy.apply(Delivery(1, (diff,)), give_up)  # ticket 0 never comes
    assert len(asked) == 3  # it kept asking until there was a reason
    assert np.array_equal(b.view, before)

    # Giving up took no turn: ticket 0 and then ticket 1 still apply at once.
    b.copy.apply(Delivery(0, ()), no_waiting)
    b.copy.apply(Delivery(1, (diff,)), no_waiting)
    assert b.view[700] == 5


def test_a_waiting_apply_gives_up_when_the_reason_comes_later(
        hosts: HostPair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_copy, "TURN_SLICE", 0.001)
    _, b = hosts()
    waiting = threading.Event()
    broken = threading.Event()
    failed: list[BaseException] = []

    def give_up() -> str | None:
        waiting.set()
        return "stopped" if broken.is_set() else None

    def run() -> None:
        try:
            b.copy.apply(Delivery(3, ()), give_up)
        except GuestFault as error:
            failed.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert waiting.wait(TIMEOUT)
    broken.set()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert [str(e) for e in failed] == ["stopped"]
