"""The exception tree of faabric.

Every error faabric raises on purpose derives from `FaabricError`, so callers (the CLI above
all) can turn it into a one-line message. This module must stay free of imports from the rest
of the package: every layer imports it.

    FaabricError
    ├── ConfigError          bad option value, unreadable config file
    ├── ToolchainError       compiler missing or compilation failed
    ├── ModuleError          not a wasm module, no `_start`, cannot be compiled
    ├── SchedulingError      the planner refused a request
    │   └── NotEnoughSlots   the app is larger than the whole cluster
    ├── TransportError
    │   ├── ClosedError      we closed the channel ourselves
    │   ├── BrokenError      the peer went away or sent garbage
    │   │   └── FrameTooLarge  the peer announced a frame over the port's limit
    │   └── TimeoutError_    no answer within the deadline
    ├── AuthError            a peer refused our cluster token or did not prove it knows it
    ├── ApiError             the planner's HTTP API answered with an error status
    ├── SnapshotError        a snapshot, diff or merge region does not fit the memory
    │   └── TrackingUnavailable  the kernel or permissions refuse a dirty-tracking mechanism
    └── InternalError        a bug in faabric
"""

from __future__ import annotations


class FaabricError(Exception):
    """Root of every error faabric raises on purpose."""


class ConfigError(FaabricError):
    """An option has a bad value or a config file cannot be read."""


class ToolchainError(FaabricError):
    """The C/C++ compiler is missing or rejected the program."""


class ModuleError(FaabricError):
    """A WebAssembly module cannot be used: not wasm, no entry point, fails to compile."""


class SchedulingError(FaabricError):
    """The planner refused a request."""


class NotEnoughSlots(SchedulingError):
    """The request needs more slots than the whole cluster has."""

    def __init__(self, requested: int, available: int) -> None:
        super().__init__(
            f"not enough slots: the app needs {requested}, the cluster has {available}"
        )
        self.requested = requested
        self.available = available


class TransportError(FaabricError):
    """A control-plane or data-plane channel failed."""


class ClosedError(TransportError):
    """The channel was closed by this side."""


class BrokenError(TransportError):
    """The peer disappeared or sent something that is not a valid frame."""


class FrameTooLarge(BrokenError):
    """The peer announced a frame longer than the port accepts (nothing was allocated)."""


class TimeoutError_(TransportError):
    """No answer arrived before the deadline."""


class AuthError(FaabricError):
    """A peer refused this side's cluster token, or did not prove that it knows the token."""


class ApiError(FaabricError):
    """The planner's HTTP API answered with an error status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class SnapshotError(FaabricError):
    """A snapshot, diff or merge region cannot be applied to the memory it was given."""


class TrackingUnavailable(SnapshotError):
    """A dirty-tracking mechanism is refused by this kernel or these permissions."""


class InternalError(FaabricError):
    """A bug in faabric: an invariant did not hold."""
