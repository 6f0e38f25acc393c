"""Moving bytes between processes: framed control-plane connections."""

from faabric.transport.framing import FramedSocket, connect, listen

__all__ = ["FramedSocket", "connect", "listen"]
