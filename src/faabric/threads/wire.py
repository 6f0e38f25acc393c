"""Team messages on the data plane: encoded with the team codec, one TEAM frame each.

This module only translates between `TeamService` and `DataPlane`; it must not interpret
the messages.
"""

from __future__ import annotations

from collections.abc import Callable

from faabric.messages.codec import Codec
from faabric.messages.team import TEAM_CODEC
from faabric.mpi.network import DataPlane


class TeamWire:
    """A `TeamNet` over a worker's data plane."""

    def __init__(self, plane: DataPlane, codec: Codec = TEAM_CODEC) -> None:
        self._plane = plane
        self._codec = codec

    @property
    def address(self) -> str:
        return self._plane.address

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None:
        self._plane.learn(peers)

    def send_team(self, host: str, message: object) -> None:
        self._plane.send_frame(host, self._codec.encode(message))

    def router(self, received: Callable[[object], None]) -> Callable[[bytearray], None]:
        """The data plane's TEAM frame handler, decoding for `received`."""
        return lambda payload: received(self._codec.decode(memoryview(payload)))
