"""Wire types shared by planner, workers and clients, and their codec."""

from faabric.messages.types import (
    AppInfo,
    AppSpec,
    AppState,
    Batch,
    Exited,
    Failed,
    GranuleResult,
    HostInfo,
    Outcome,
    TimedOut,
    Trapped,
    describe,
    exit_status,
)

__all__ = [
    "AppInfo",
    "AppSpec",
    "AppState",
    "Batch",
    "Exited",
    "Failed",
    "GranuleResult",
    "HostInfo",
    "Outcome",
    "TimedOut",
    "Trapped",
    "describe",
    "exit_status",
]
