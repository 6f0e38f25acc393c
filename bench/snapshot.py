"""Snapshots for thread teams that span hosts: the cost of each step against memory size.

For a memory of 64 MiB and 1 GiB (an anonymous mapping, as wasmtime's; 75 % of its 4 KiB pages
hold random bytes, the rest are zero), one fork/join round trip without the network:

* ship: `take_snapshot` (zero-page scan, compression where it pays) and decoding it into a
  memfd image on the receiving side; the codec's encode + decode of the value is shown apart
  (one sample), as a large payload should not go through msgpack;
* restore: `MemfdImage.map_onto` (copy-on-write), against `restore_copy` into a fresh memory;
* dirty collection with 1 % of the pages written: `UffdTracker.dirty_pages` against the page
  compare of `CompareTracker` (the fallback) on the same writes; the goal is <= 20 ms per GiB;
* diff of those pages against the image, and merging it into the main memory.

A dirty page is rewritten whole with new random bytes (the largest diff a page can make). Times
are medians of `runs` samples; `python -m bench.snapshot [--quick]` prints just these rows.
"""

from __future__ import annotations

import mmap
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.common import Row, fmt_time, now, render_text, versus

MIB = 1 << 20
GIB = 1 << 30
PAGE = 4096
DIRTY = 0.01
GOAL_PER_GIB = 0.020


@dataclass(frozen=True, slots=True)
class SizeResult:
    """Median seconds of each step at one memory size."""

    size: int
    take: float
    wire: float
    image: float
    snapshot_bytes: int
    copy_peer: float
    restore_cow: float
    restore_copy: float


def _anonymous(size: int) -> npt.NDArray[np.uint8]:
    return np.frombuffer(mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS),
                         np.uint8)


def _median(call: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = now()
        call()
        samples.append(now() - start)
    return statistics.median(samples)


def _copy_time(view: npt.NDArray[np.uint8], runs: int) -> float:
    """The DESIGN baseline for a snapshot: np.copyto into an existing buffer."""
    buffer = np.empty(len(view), np.uint8)
    np.copyto(buffer, view)
    return _median(lambda: np.copyto(buffer, view), runs)


def _fill(view: npt.NDArray[np.uint8], rng: np.random.Generator) -> None:
    pages = view.reshape(-1, PAGE)
    chosen = np.flatnonzero(rng.random(len(pages)) < 0.75)
    for part in np.array_split(chosen, max(1, len(chosen) // 4096)):
        pages[part] = rng.integers(0, 256, (len(part), PAGE), dtype=np.uint8)


def _dirty(view: npt.NDArray[np.uint8], rng: np.random.Generator) -> int:
    pages = view.reshape(-1, PAGE)
    chosen = rng.choice(len(pages), max(1, int(len(pages) * DIRTY)), replace=False)
    pages[chosen] = rng.integers(0, 256, (len(chosen), PAGE), dtype=np.uint8)
    return len(chosen)


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """Median seconds of the steps after a fork on the remote, and back on main."""

    uffd_start: float
    uffd_collect: float
    compare_collect: float
    dirty_pages: int
    diff: float
    diff_bytes: int
    merge: float


def measure_size(size: int, runs: int) -> tuple[SizeResult, RoundTrip]:
    from faabric.messages.codec import Codec
    from faabric.snapshot import WIRE_TYPES, MemfdImage, restore_copy, take_snapshot

    rng = np.random.default_rng(size)
    main = _anonymous(size)
    _fill(main, rng)
    codec = Codec(WIRE_TYPES)
    take = _median(lambda: take_snapshot(main), runs)
    snapshot = take_snapshot(main)
    wire = _median(lambda: codec.decode(codec.encode(snapshot)), 1)
    image_time = _median(lambda: MemfdImage(snapshot).close(), runs)
    copy_peer = _copy_time(main, runs)
    with MemfdImage(snapshot) as image:
        remote = _anonymous(size)
        address = int(remote.ctypes.data)
        cow = _median(lambda: image.map_onto(address, size), runs)
        fresh = [_anonymous(size) for _ in range(runs)]
        plain = _median(lambda: restore_copy(snapshot, fresh.pop()), runs)
        trip = _round_trip(main, remote, image.view(), runs, rng)
    result = SizeResult(size, take, wire, image_time, len(snapshot.data), copy_peer, cow, plain)
    return result, trip


def _round_trip(main: npt.NDArray[np.uint8], remote: npt.NDArray[np.uint8],
                original: npt.NDArray[np.uint8], runs: int,
                rng: np.random.Generator) -> RoundTrip:
    """Dirty 1 % of the remote's pages, collect them (uffd and compare), diff, merge."""
    from faabric.snapshot import CompareTracker, UffdTracker, compute_diff, merge_diffs

    address, size = int(remote.ctypes.data), len(remote)
    uffd, compare = UffdTracker(address, size), CompareTracker(address, size)
    uffd_start = _median(uffd.start, 1)
    compare.start()
    times: dict[str, list[float]] = {"collect": [], "compare": [], "diff": [], "merge": []}
    for _ in range(runs):
        dirtied = _dirty(remote, rng)
        start = now()
        dirty = uffd.dirty_pages()
        times["collect"].append(now() - start)
        start = now()
        if compare.dirty_pages() != dirty:
            raise RuntimeError("the two dirty trackers disagree")
        times["compare"].append(now() - start)
        start = now()
        diff = compute_diff(remote, original, dirty)
        times["diff"].append(now() - start)
        start = now()
        merge_diffs(main, [diff])
        times["merge"].append(now() - start)
    uffd.stop()
    compare.stop()
    med = {name: statistics.median(values) for name, values in times.items()}
    return RoundTrip(uffd_start, med["collect"], med["compare"], dirtied, med["diff"],
                     diff.payload_bytes, med["merge"])


def rows_for(res: SizeResult, trip: RoundTrip) -> list[Row]:
    label = f"{res.size // GIB} GiB" if res.size >= GIB else f"{res.size // MIB} MiB"
    ship = res.take + res.image
    gib = res.size / GIB
    goal = GOAL_PER_GIB * max(gib, 1 / 16)
    return [
        versus(f"snapshot ship {label}: take {fmt_time(res.take)} + decode into a memfd "
               f"{fmt_time(res.image)} ({res.snapshot_bytes / MIB:.0f} MiB stored)", ship,
               "np.copyto into a buffer", res.copy_peer, fmt=fmt_time),
        Row(f"snapshot {label} through the msgpack codec, encode + decode [diag]",
            fmt_time(res.wire), "-", "-", None, "", None),
        versus(f"snapshot restore {label}, memfd copy-on-write", res.restore_cow,
               "restore_copy into fresh memory", res.restore_copy, fmt=fmt_time),
        Row(f"dirty collection {label}, 1 % of pages ({trip.dirty_pages}), userfaultfd",
            fmt_time(trip.uffd_collect), "numpy page compare", fmt_time(trip.compare_collect),
            trip.uffd_collect / trip.compare_collect,
            f"<= {fmt_time(goal)} ({fmt_time(GOAL_PER_GIB)}/GiB)", trip.uffd_collect <= goal),
        Row(f"dirty tracking start {label} (register + write-protect) [diag]",
            fmt_time(trip.uffd_start), "-", "-", None, "", None),
        Row(f"diff {label}, 1 % of pages rewritten ({trip.diff_bytes / MIB:.1f} MiB of runs)",
            fmt_time(trip.diff), "-", "-", None, "", None),
        Row(f"merge {label}, that diff into main", fmt_time(trip.merge), "-", "-", None, "",
            None),
    ]


def measure(quick: bool, notes: list[str]) -> list[Row]:
    """The rows of `python -m bench`; adds a note when userfaultfd tracking is unavailable."""
    from faabric.errors import TrackingUnavailable

    runs = 3 if quick else 5
    rows: list[Row] = []
    for size in (64 * MIB, GIB):
        try:
            rows += rows_for(*measure_size(size, runs))
        except TrackingUnavailable as exc:
            notes.append(f"snapshot rows skipped: {exc}")
            break
    return rows


if __name__ == "__main__":
    found: list[str] = []
    print(render_text(measure("--quick" in sys.argv, found)))
    for note in found:
        print(f"note: {note}")
