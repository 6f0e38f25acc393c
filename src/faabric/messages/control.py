"""Control-plane messages between a worker and the planner, and the codec that carries them.

A worker opens one connection to the planner's control port and keeps it for its life:
it registers, sends keep-alives and granule results up; the planner sends batches down.
These are values only; `faabric.transport` moves them and the services act on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from faabric.messages.codec import Codec
from faabric.messages.types import (
    AppSpec,
    Batch,
    Exited,
    Failed,
    GranuleResult,
    TimedOut,
    Trapped,
)


@dataclass(frozen=True, slots=True)
class Register:
    """First message of a worker: who it is and how many granules it can run at once."""

    name: str
    slots: int
    version: str


@dataclass(frozen=True, slots=True)
class Registered:
    """The planner accepted the worker; it must send a keep-alive every `keepalive_interval` s."""

    name: str
    keepalive_interval: float


@dataclass(frozen=True, slots=True)
class Refused:
    """The planner refused the registration (e.g. the name is taken); the worker must exit."""

    reason: str


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """The worker is still there."""


@dataclass(frozen=True, slots=True)
class RunBatch:
    """Run these granules."""

    batch: Batch


@dataclass(frozen=True, slots=True)
class StopApp:
    """Stop the app's granules on this worker; each still sends a Report when it ends."""

    app_id: int


@dataclass(frozen=True, slots=True)
class Report:
    """A granule finished."""

    result: GranuleResult


@dataclass(frozen=True, slots=True)
class Goodbye:
    """The worker is shutting down cleanly (or the planner is)."""

    reason: str


ControlMessage = (
    Register | Registered | Refused | KeepAlive | RunBatch | StopApp | Report | Goodbye
)

CONTROL_CODEC = Codec(
    [
        Register,
        Registered,
        Refused,
        KeepAlive,
        RunBatch,
        StopApp,
        Report,
        Goodbye,
        AppSpec,
        Batch,
        GranuleResult,
        Exited,
        Trapped,
        TimedOut,
        Failed,
    ]
)
