"""Dirty-page tracking: userfaultfd write-protect and the page-compare fallback."""

from __future__ import annotations

import ctypes
import os
import socket
from collections.abc import Iterator

import numpy as np
import pytest
from snapshot_helpers import WASM_PAGE, anonymous, make_guest, make_shared_guest, random_pages

from faabric.errors import SnapshotError, TrackingUnavailable
from faabric.snapshot import (
    PAGE_SIZE,
    CompareTracker,
    DirtyTracker,
    MemfdImage,
    TrackingMode,
    UffdTracker,
    open_tracker,
    take_snapshot,
)

MIB = 1 << 20


def _uffd_works() -> bool:
    with anonymous(PAGE_SIZE) as region:
        try:
            open_tracker(region.address, PAGE_SIZE, TrackingMode.UFFD).stop()
        except TrackingUnavailable:
            return False
    return True


UFFD = pytest.param(TrackingMode.UFFD, marks=pytest.mark.skipif(
    not _uffd_works(), reason="userfaultfd write-protect is not available here"))
MODES = [UFFD, TrackingMode.COMPARE]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Iterator[TrackingMode]:
    yield request.param


def pages(*numbers: int) -> tuple[tuple[int, int], ...]:
    return tuple((n * PAGE_SIZE, (n + 1) * PAGE_SIZE) for n in numbers)


def test_writes_are_reported_once_and_coalesced(mode: TrackingMode) -> None:
    with anonymous(MIB) as region:
        region.view[::7 * PAGE_SIZE] = 1  # some pages populated, most not
        tracker = open_tracker(region.address, MIB, mode)
        assert tracker.mode is mode
        assert tracker.dirty_pages() == ()
        region.view[5 * PAGE_SIZE + 3] = 9
        region.view[100 * PAGE_SIZE:103 * PAGE_SIZE] = 2
        region.view[MIB - 1] = 4  # the last page
        assert tracker.dirty_pages() == ((5 * PAGE_SIZE, 6 * PAGE_SIZE),
                                         (100 * PAGE_SIZE, 103 * PAGE_SIZE),
                                         (MIB - PAGE_SIZE, MIB))
        assert tracker.dirty_pages() == ()
        region.view[7 * PAGE_SIZE] = 5
        tracker.start()  # forget what was written so far
        assert tracker.dirty_pages() == ()
        tracker.stop()


def test_writes_by_a_running_wasm_guest_are_seen(mode: TrackingMode) -> None:
    guest = make_guest(pages=16)
    tracker = open_tracker(guest.address, guest.length, mode)
    guest.call("store8", 3 * PAGE_SIZE + 11, 1)
    guest.call("fill", 64 * PAGE_SIZE, 10, 2 * PAGE_SIZE, 7)  # every other page, 10 times
    expected = pages(3, *range(64, 84, 2))
    assert tracker.dirty_pages() == expected
    written = np.flatnonzero(guest.view().reshape(-1, PAGE_SIZE).any(axis=1))
    assert pages(*written.tolist()) == expected
    tracker.stop()


def test_growth_is_reported_then_tracked(mode: TrackingMode) -> None:
    guest = make_guest(pages=1)
    tracker = open_tracker(guest.address, guest.length, mode)
    guest.grow(2)
    tracker.resize(guest.length)
    assert tracker.dirty_pages() == ((WASM_PAGE, 3 * WASM_PAGE),)
    guest.call("store8", 2 * WASM_PAGE + 5, 1)
    assert tracker.dirty_pages() == pages(2 * WASM_PAGE // PAGE_SIZE)
    with pytest.raises(SnapshotError):
        tracker.resize(WASM_PAGE)
    tracker.stop()


def test_kernel_writes_into_the_memory_are_seen(mode: TrackingMode) -> None:
    with anonymous(MIB) as region:
        tracker = open_tracker(region.address, MIB, mode)
        left, right = socket.socketpair()
        with left, right:
            left.sendall(b"x" * 6000)
            got = right.recv_into(memoryview(region.mapping)[40 * PAGE_SIZE:], 6000)
        assert got == 6000
        assert tracker.dirty_pages() == ((40 * PAGE_SIZE, 42 * PAGE_SIZE),)
        tracker.stop()


def test_tracking_a_copy_on_write_restore(mode: TrackingMode) -> None:
    source = random_pages(MIB, 0.5, seed=8)
    with anonymous(MIB) as region, MemfdImage(take_snapshot(source)) as image:
        image.map_onto(region.address, MIB)
        tracker = open_tracker(region.address, MIB, mode)  # after the restore
        region.view[9 * PAGE_SIZE] ^= 0xFF  # a page of the image
        region.view[200 * PAGE_SIZE] = 1 + region.view[200 * PAGE_SIZE] % 200
        assert tracker.dirty_pages() == pages(9, 200)
        tracker.stop()


@pytest.mark.skipif(not _uffd_works(), reason="userfaultfd write-protect is not available")
def test_uffd_sees_writes_of_unchanged_values_and_compare_does_not() -> None:
    with anonymous(MIB) as region:
        region.view[:] = 3
        trackers: list[DirtyTracker] = [
            open_tracker(region.address, MIB, TrackingMode.UFFD),
            open_tracker(region.address, MIB, TrackingMode.COMPARE)]
        region.view[PAGE_SIZE] = 3
        assert [t.dirty_pages() for t in trackers] == [pages(1), ()]
        for tracker in trackers:
            tracker.stop()


@pytest.mark.skipif(not _uffd_works(), reason="userfaultfd write-protect is not available")
def test_remapping_under_a_uffd_tracker_is_an_error_not_silence() -> None:
    with anonymous(MIB) as region, MemfdImage(take_snapshot(region.view.copy())) as image:
        tracker = open_tracker(region.address, MIB, TrackingMode.UFFD)
        image.map_onto(region.address, MIB)
        with pytest.raises(SnapshotError, match="remapped"):
            tracker.dirty_pages()
        tracker.stop()


def test_auto_falls_back_to_compare_when_uffd_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: UffdTracker) -> None:
        raise TrackingUnavailable("userfaultfd: refused for the test")

    monkeypatch.setattr(UffdTracker, "start", refuse)
    with anonymous(MIB) as region:
        tracker = open_tracker(region.address, MIB)
        assert isinstance(tracker, CompareTracker)
        with pytest.raises(TrackingUnavailable):
            open_tracker(region.address, MIB, TrackingMode.UFFD)


def test_uffd_runs_without_privileges() -> None:
    """UFFD_USER_MODE_ONLY needs neither root nor vm.unprivileged_userfaultfd."""
    if not _uffd_works() or os.getuid() != 0:
        pytest.skip("needs userfaultfd, and root to become an unprivileged user")
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            # setuid leaves the process undumpable, which hides /proc/self/pagemap from it;
            # an ordinary unprivileged worker is dumpable.
            ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
            with anonymous(MIB) as region:
                tracker = open_tracker(region.address, MIB, TrackingMode.UFFD)
                region.view[0] = 1
                code = 0 if tracker.dirty_pages() == pages(0) else 2
        except Exception:
            code = 3
        os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_misaligned_ranges_are_refused() -> None:
    with pytest.raises(SnapshotError, match="not page-aligned"):
        UffdTracker(4097, PAGE_SIZE)
    with pytest.raises(SnapshotError, match="multiple of 4096"):
        CompareTracker(0, 100)
    with pytest.raises(SnapshotError, match="not started"):
        CompareTracker(0, PAGE_SIZE).dirty_pages()


def test_restore_and_track_a_shared_memory_of_a_thread_team(mode: TrackingMode) -> None:
    guest = make_shared_guest(pages=4)
    source = random_pages(guest.length, 0.5, seed=12)
    with MemfdImage(take_snapshot(source)) as image:
        image.map_onto(guest.address, guest.length)
        assert np.array_equal(guest.view(), source)
        tracker = open_tracker(guest.address, guest.length, mode)
        for address in (0, PAGE_SIZE + 1, 2 * PAGE_SIZE + 2, 70000):
            guest.call("store8", address, (int(source[address]) + 1) % 256)
        assert tracker.dirty_pages() == ((0, 3 * PAGE_SIZE), pages(70000 // PAGE_SIZE)[0])
        tracker.stop()
