"""The CSV files of a comparison (`faabric experiment plot`): one summary row per baseline,
the cluster's time series, and every job's times; also the per-job CSV of `replay`.

Numbers are written as replayed, with fixed decimals. This module only summarises and writes
results: it must not replay, plot or print.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faabric.errors import ConfigError
from faabric.experiments.metrics import JobTimes, Outcome

JOB_COLUMNS = "id,arrived,started,ended,wait,run,migrations,restarts"
SUMMARY_COLUMNS = ("baseline,makespan,idle,crosshost,fragmentation,wait_mean,wait_median,"
                   "wait_p95,run_mean,run_median,run_p95,migrations,restarts")
SERIES_COLUMNS = "baseline,time,used,idle,crosshost,fragmentation,stranded"


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one baseline's replay."""

    baseline: str
    outcome: Outcome


def quantile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) by linear interpolation between closest ranks (numpy's
    default); 0 without values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _spread(values: Sequence[float]) -> str:
    """Mean, median and 95th percentile, as CSV fields."""
    mean = statistics.fmean(values) if values else 0.0
    return f"{mean:.1f},{quantile(values, 0.5):.1f},{quantile(values, 0.95):.1f}"


def summary_row(result: Result) -> str:
    """One line of the summary CSV (columns `SUMMARY_COLUMNS`)."""
    out = result.outcome
    waits = [j.wait for j in out.jobs]
    runs = [j.run for j in out.jobs]
    return (f"{result.baseline},{out.makespan:.1f},{out.idle_percent:.1f},{out.crosshost:.2f},"
            f"{out.fragmentation:.1f},{_spread(waits)},{_spread(runs)},"
            f"{sum(j.migrations for j in out.jobs)},{sum(j.restarts for j in out.jobs)}")


def series_rows(result: Result) -> list[str]:
    """Lines of the time-series CSV (columns `SERIES_COLUMNS`): one per sample, the
    fragmentation field empty when no slot is free."""
    rows = []
    for s in result.outcome.series:
        share = s.fragmentation
        frag = "" if share is None else f"{share:.1f}"
        rows.append(f"{result.baseline},{s.time:.3f},{s.used},{s.idle},{s.crosshost},{frag},"
                    f"{s.stranded}")
    return rows


def job_rows(jobs: Sequence[JobTimes], prefix: str = "") -> list[str]:
    """Lines of a per-job CSV (columns `JOB_COLUMNS`), each starting with `prefix`."""
    return [f"{prefix}{j.job_id},{j.arrived:.3f},{j.started:.3f},{j.ended:.3f},{j.wait:.3f},"
            f"{j.run:.3f},{j.migrations},{j.restarts}" for j in jobs]


def write_csv(path: Path, header: str, rows: Sequence[str]) -> Path:
    """Write `header` and `rows` to `path`.

    Raises:
        ConfigError: the file cannot be written.
    """
    try:
        path.write_text("\n".join([header, *rows]) + "\n")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror}") from None
    return path


def write_csvs(out: Path, prefix: str, results: Sequence[Result]) -> list[Path]:
    """Write `<prefix>-summary.csv`, `<prefix>-timeseries.csv` and `<prefix>-jobs.csv` into
    `out` (created if missing); return their paths."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot create: {exc.strerror}") from None
    series = [row for r in results for row in series_rows(r)]
    jobs = [row for r in results for row in job_rows(r.outcome.jobs, f"{r.baseline},")]
    return [
        write_csv(out / f"{prefix}-summary.csv", SUMMARY_COLUMNS,
                  [summary_row(r) for r in results]),
        write_csv(out / f"{prefix}-timeseries.csv", SERIES_COLUMNS, series),
        write_csv(out / f"{prefix}-jobs.csv", f"baseline,{JOB_COLUMNS}", jobs),
    ]
