"""Shared helpers: timing, medians and percentiles, building programs, and the result table.

Every benchmark module returns `Row`s; `render_text` and `render_markdown` print them. Times
are kept in seconds and rates in items per second until they are formatted.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
KERNEL_DIR = BENCH_DIR / "kernels"
NATIVE_CC = "clang-16"
NATIVE_FLAGS = ("-O2",)

now = time.perf_counter


# -- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary of a list of samples (seconds, or items/s for rates)."""

    median: float
    p99: float
    n: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        return cls(statistics.median(samples), percentile(samples, 99.0), len(samples))


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile by linear interpolation between closest ranks."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def time_calls(call: Callable[[], object], n: int, warmup: int) -> list[float]:
    """Run `call` `warmup` times untimed, then `n` times; returns each timed call's seconds."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(n):
        start = now()
        call()
        samples.append(now() - start)
    return samples


# -- building programs ------------------------------------------------------------------------


def build_wasm(source: Path, cache_dir: Path, flags: Sequence[str] = ()) -> bytes:
    """`source` built with faabric's toolchain (cached), as wasm bytes."""
    from faabric.toolchain import build

    return build(source, flags=tuple(flags), cache_dir=cache_dir).read_bytes()


def build_native(source: Path, out_dir: Path) -> Path:
    """`source` built as a plain Linux binary with clang-16 -O2."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / source.stem
    subprocess.run([NATIVE_CC, *NATIVE_FLAGS, str(source), "-o", str(target), "-lm"],
                   check=True, capture_output=True)
    return target


# -- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: faabric against one peer on the same work.

    `ratio` is faabric / peer for the quantity shown (time or rate); `met` is None when the
    row has no goal or could not be measured.
    """

    benchmark: str
    faabric: str
    peer: str
    peer_value: str
    ratio: float | None
    goal: str
    met: bool | None

    def cells(self) -> list[str]:
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}x"
        met = {True: "yes", False: "NO", None: "-"}[self.met]
        return [self.benchmark, self.faabric, self.peer, self.peer_value, ratio, self.goal, met]


HEADER = ["benchmark", "faabric", "peer", "peer value", "ratio", "goal", "met?"]


def fmt_time(seconds: float) -> str:
    """Seconds in the unit that reads best: ns, µs, ms or s."""
    if math.isnan(seconds):
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def fmt_rate(per_second: float) -> str:
    return "n/a" if math.isnan(per_second) else f"{per_second:,.0f}/s"


def render_text(rows: Sequence[Row]) -> str:
    table = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
             for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: Sequence[Row]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [line(HEADER), line(["---"] * len(HEADER))]
    out += [line(row.cells()) for row in rows]
    return "\n".join(out)


def versus(
    benchmark: str,
    ours: float,
    peer: str,
    theirs: float | None,
    *,
    fmt: Callable[[float], str],
    goal: str = "",
    limit: float | None = None,
    higher_is_better: bool = False,
) -> Row:
    """A row comparing `ours` to `theirs`; the goal is met when ratio is within `limit`."""
    if theirs is None or math.isnan(theirs) or theirs == 0:
        return Row(benchmark, fmt(ours), peer, "skipped", None, goal, None)
    ratio = ours / theirs
    met = None
    if limit is not None:
        met = ratio >= limit if higher_is_better else ratio <= limit
    return Row(benchmark, fmt(ours), peer, fmt(theirs), ratio, goal, met)
