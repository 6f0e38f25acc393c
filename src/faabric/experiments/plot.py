"""The figures of a comparison (`faabric experiment plot`): idle slots, cross-host pairs and
fragmentation over time per baseline, CDFs of wait and run times, and makespan per baseline,
as small PNGs.

matplotlib is an optional dependency (`pip install 'faabric[experiments]'`): it is imported
here only, inside the functions, with the non-interactive Agg backend; without it `require`
raises one `PlotError` line. This module only draws what it is given: it must not replay,
write CSVs or print.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from faabric.errors import ConfigError
from faabric.experiments.metrics import Sample
from faabric.experiments.report import Result

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
SIZE = (6.4, 3.0)  # inches: 640 x 300 pixels
# One look per baseline, the same in every figure; lines that coincide stay visible.
STYLES = {
    "whole-vm": ("tab:gray", "-"),
    "per-core": ("tab:blue", "-"),
    "faabric": ("tab:orange", "--"),
    "faabric-elastic": ("tab:green", "-"),
    "faabric-spot": ("tab:red", "-"),
}


class PlotError(ConfigError):
    """The figures cannot be drawn (matplotlib missing) or written."""


def require() -> None:
    """Raise PlotError unless matplotlib can be imported."""
    try:
        import matplotlib
    except ImportError:
        raise PlotError("figures need matplotlib: pip install 'faabric[experiments]' "
                        "(or make experiments), or pass --no-figures") from None
    matplotlib.use("Agg")


def figures(out: Path, prefix: str, results: Sequence[Result], title: str) -> list[Path]:
    """Draw every figure of `results` into `out` as `<prefix>-<what>.png`; return the paths.

    Raises:
        PlotError: matplotlib is missing or a file cannot be written.
    """
    require()
    series: list[tuple[str, str, Callable[[Sample], float]]] = [
        ("idle", "idle slots (%)", lambda s: s.idle_percent),
        ("crosshost", "cross-host rank pairs", lambda s: float(s.crosshost)),
        ("fragmentation", "free slots stranded (%)", _fragmentation),
    ]
    paths = [_over_time(out / f"{prefix}-{name}.png", results, label, value, title)
             for name, label, value in series]
    paths.append(_cdfs(out / f"{prefix}-cdf.png", results, title))
    paths.append(_makespans(out / f"{prefix}-makespan.png", results, title))
    return paths


def _fragmentation(sample: Sample) -> float:
    share = sample.fragmentation
    return math.nan if share is None else share  # no free slot: a gap in the line


def _style(name: str) -> tuple[str, str]:
    return STYLES.get(name, ("tab:purple", ":"))


def _figure(columns: int = 1) -> tuple[Figure, list[Axes]]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, columns, figsize=SIZE, squeeze=False, layout="constrained")
    return fig, list(axes[0])


def _save(fig: Figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=DPI)
    except OSError as exc:
        raise PlotError(f"{path}: cannot write: {exc.strerror}") from None
    finally:
        plt.close(fig)
    return path


def _over_time(
    path: Path, results: Sequence[Result], label: str, value: Callable[[Sample], float],
    title: str,
) -> Path:
    """One step line per baseline: the value holds from a sample to the next."""
    fig, (ax,) = _figure()
    for result in results:
        color, dash = _style(result.baseline)
        times = [s.time for s in result.outcome.series]
        ax.step(times, [value(s) for s in result.outcome.series], where="post",
                color=color, linestyle=dash, linewidth=1.0, label=result.baseline)
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel(label)
    ax.set_title(title, fontsize="medium")
    ax.set_xlim(left=0)  # the y axis keeps its margin: a line at 0 stays visible
    ax.legend(fontsize="small")
    return _save(fig, path)


def _cdfs(path: Path, results: Sequence[Result], title: str) -> Path:
    """Wait and run time CDFs side by side."""
    fig, axes = _figure(2)
    picks: list[tuple[str, Callable[[Result], list[float]]]] = [
        ("wait (s)", lambda r: [j.wait for j in r.outcome.jobs]),
        ("run (s)", lambda r: [j.run for j in r.outcome.jobs]),
    ]
    for ax, (label, values) in zip(axes, picks, strict=True):
        for result in results:
            color, dash = _style(result.baseline)
            ordered = sorted(values(result))
            shares = [(i + 1) / len(ordered) for i in range(len(ordered))]
            ax.step(ordered, shares, where="post", color=color, linestyle=dash,
                    linewidth=1.0, label=result.baseline)
        ax.set_xlabel(label)  # the x axis keeps its margin: jobs that never wait show
    axes[0].set_ylabel("share of jobs")
    axes[1].legend(fontsize="small")
    fig.suptitle(title, fontsize="medium")
    return _save(fig, path)


def _makespans(path: Path, results: Sequence[Result], title: str) -> Path:
    fig, (ax,) = _figure()
    names = [r.baseline for r in results]
    spans = [r.outcome.makespan for r in results]
    bars = ax.bar(names, spans, color=[_style(n)[0] for n in names])
    ax.bar_label(bars, labels=[f"{s:.0f}" for s in spans], fontsize="small")
    ax.margins(y=0.12)  # room for the labels
    ax.set_ylabel("makespan (s)")
    ax.set_title(title, fontsize="medium")
    return _save(fig, path)
