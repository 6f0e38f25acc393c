"""The planner's control port: one long-lived connection per worker.

An accept thread hands each connection to a thread of its own, which first makes the worker
prove it knows the cluster token (`faabric.transport.auth`), then expects `Register` and
then turns keep-alives, counters, reports, scale requests and releases, team reports, migration
points, claims and moved ranks, and goodbyes into calls on `PlannerService`. A connection that
breaks, or a worker that stops sending keep-alives, removes the worker and fails its running
granules. This module only translates frames into service calls.
"""

from __future__ import annotations

import logging
import socket
import threading

from faabric import __version__
from faabric.errors import ClosedError, FrameTooLarge, TransportError
from faabric.messages.control import (
    CONTROL_CODEC,
    Goodbye,
    KeepAlive,
    MigrationClaim,
    MigrationPoints,
    OutputChunk,
    RankMoved,
    Refused,
    Register,
    Report,
    ScaleRelease,
    ScaleRequest,
    TeamKeptLocal,
    TeamResized,
    WorkerCounters,
)
from faabric.planner.service import PlannerService
from faabric.transport.auth import CONTROL, Gate
from faabric.transport.framing import FramedSocket
from faabric.transport.limits import CONTROL_MAX_FRAME

log = logging.getLogger(__name__)

REGISTER_TIMEOUT = 10.0


class ControlServer:
    """Accepts worker connections on a listening socket until closed; only workers that
    know `token` get past the handshake."""

    def __init__(self, listener: socket.socket, service: PlannerService, *, token: str,
                 max_frame: int = CONTROL_MAX_FRAME) -> None:
        self._listener = listener
        self._service = service
        self._max_frame = max_frame
        self._gate = Gate(token, CONTROL, self._serve_socket, what="control")
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="control-accept")
        self._thread.daemon = True

    @property
    def port(self) -> int:
        """The port workers connect to."""
        return int(self._listener.getsockname()[1])

    def start(self) -> None:
        """Start accepting connections."""
        self._thread.start()

    def close(self) -> None:
        """Stop accepting and drop every worker connection."""
        self._closed.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._service.close_connections("the planner is shutting down")
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self._gate.admit(sock)

    def _serve_socket(self, sock: socket.socket) -> None:
        """Serve one authenticated worker connection until it ends."""
        conn = FramedSocket(sock, CONTROL_CODEC, max_frame=self._max_frame)
        name = self._register(conn)
        if name is None:
            conn.close()
            return
        reason = "its connection closed"
        try:
            reason = self._read_loop(name, conn)
        except ClosedError:
            pass  # we closed it: expiry or shutdown already handled the worker
        except FrameTooLarge as exc:
            log.warning("closed the control connection of worker %s: %s", name, exc)
            reason = str(exc)
        except TransportError as exc:
            reason = str(exc)
        self._service.host_left(name, reason, conn)

    def _register(self, conn: FramedSocket) -> str | None:
        try:
            first = conn.recv(REGISTER_TIMEOUT)
        except TransportError as exc:
            log.warning("connection from %s did not register: %s", conn.peer, exc)
            return None
        if not isinstance(first, Register):
            log.warning("connection from %s sent %s before registering", conn.peer, first)
            return None
        refusal = self._service.register(first.name, first.slots, conn, first.data_address,
                                         first.incarnation, first.running)
        if refusal is not None:
            try:
                conn.send(Refused(refusal))
            except TransportError:
                pass
            return None
        if first.version != __version__:
            log.warning("worker %s runs faabric %s, the planner %s", first.name,
                        first.version, __version__)
        return first.name

    def _read_loop(self, name: str, conn: FramedSocket) -> str:
        while True:
            message = conn.recv(timeout=None)  # a silent worker is expired by the ticker
            match message:
                case KeepAlive():
                    self._service.host_alive(name)
                case WorkerCounters():
                    self._service.worker_counters(name, message)
                case Report(result):
                    self._service.granule_finished(result, name)
                case OutputChunk(app_id, index, stream, offset, data):
                    self._service.granule_output(name, app_id, index, stream, offset, data)
                case ScaleRequest(app_id, request_id, count, local, up_to):
                    self._service.scale_requested(name, app_id, request_id, count, local,
                                                  up_to)
                case ScaleRelease(app_id, count):
                    self._service.scale_released(name, app_id, count)
                case TeamResized(app_id, index, threads):
                    self._service.team_resized(name, app_id, index, threads)
                case TeamKeptLocal(app_id, index, threads, detail):
                    self._service.team_kept_local(name, app_id, index, threads, detail)
                case MigrationPoints(app_id):
                    self._service.migration_points(name, app_id)
                case MigrationClaim(app_id, epoch):
                    self._service.migration_claimed(name, app_id, epoch)
                case RankMoved(app_id, index, epoch, to):
                    self._service.rank_moved(name, app_id, index, epoch, to)
                case Goodbye(reason):
                    return f"it said goodbye ({reason})"
                case _:
                    log.warning("worker %s sent an unexpected %s", name, type(message).__name__)
