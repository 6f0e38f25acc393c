"""The worker's counters for the planner's metrics, read in one place.

The counting happens where the work does (MPI worlds, the team wire, the data plane), each
under a lock it already holds or a `Tally`; `WorkerMeter.read` gathers the values into one
`WorkerCounters` message, which the worker sends with its keep-alives and before each
report. This module must not count anything itself, nor send anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from faabric.messages.control import WorkerCounters
from faabric.mpi.network import DataPlane
from faabric.mpi.worlds import Worlds
from faabric.threads.wire import TeamWire


@dataclass(frozen=True, slots=True)
class WorkerMeter:
    """Reads the counters of one worker's parts."""

    worlds: Worlds
    wire: TeamWire
    plane: DataPlane

    def read(self) -> WorkerCounters:
        """Every counter's value now (each monotonic since the worker started)."""
        traffic = self.worlds.traffic()
        memory = self.wire.sent.values()
        return WorkerCounters(
            mpi_bytes_same_host=traffic.same_host,
            mpi_bytes_cross_host=traffic.cross_host,
            snapshot_bytes=memory["snapshot"],
            diff_bytes=memory["diff"],
            rank_bytes=self.plane.sent.values()["rank"],
        )
