"""The data plane between workers: raw TCP frames carrying MPI messages straight to memory.

Each worker listens on one port. Every connection starts with the cluster-token handshake of
`faabric.transport.auth` (both ends prove they know it) before a single frame is read. To
send to another host a worker opens one connection, once, and sends only on connections it
opened, so messages from one host to another arrive in the order they were sent. A frame is
a fixed header (kind, app, context, source, destination, tag, length, token) and the
payload; the reader thread of a connection hands payloads to the `Router`, which may read
them straight into a posted receive buffer. Readers never wait for the application
(unmatched messages are buffered), so a full receive queue cannot block a sender's progress
elsewhere. Every header is checked before its payload is read: a length over the kind's
limit (`DataLimits`; notes and acknowledgements are small), an unknown kind, or a frame that
stalls half-way closes the connection with one warning. Payloads are buffered as their
bytes arrive, never from the announced length alone. This module must not know about
matching or wasm.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from faabric._util.tally import Tally
from faabric.errors import BrokenError, FaabricError
from faabric.mpi import memory
from faabric.mpi.matching import Envelope
from faabric.transport.auth import DATA, Gate, connect_handshake
from faabric.transport.framing import timeval
from faabric.transport.limits import DATA_MAX_FRAME, NOTE_MAX_FRAME, check_length, read_growing
from faabric.wasm.host import GuestFault

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<BxxxqiiiiqI")
MESSAGE, ACK, FAILED, TEAM, FENCE, READY, MOVE = 1, 2, 3, 4, 5, 6, 7
INLINE_LIMIT = 64 << 10  # payloads up to this size go out in one send with their header
CONNECT_TIMEOUT = 10.0
MOVE_TIMEOUT = 30.0  # seconds a migrating rank's frame may take, plus its size at...
MOVE_MIN_RATE = 20e6  # ... 20 MB/s, the slowest transfer accepted
STALL_TIMEOUT = 60.0  # seconds a frame may pause half-way before its connection is closed
_SKIP_CHUNK = 1 << 20
WATCH_PERIOD = 5.0  # seconds between checks that a watched link is still in use


@dataclass(frozen=True, slots=True)
class DataLimits:
    """What a worker's data plane accepts from other workers."""

    max_frame: int = DATA_MAX_FRAME  # bytes of an MPI message, team message or moving rank
    stall_timeout: float = STALL_TIMEOUT


class Router(Protocol):
    """Where incoming frames go."""

    def arrive(self, app_id: int, envelope: Envelope, dest: int, token: int,
               reader: PayloadReader) -> None: ...

    def acknowledged(self, app_id: int, token: int) -> None: ...

    def failed(self, app_id: int, reason: str) -> None: ...

    def fenced(self, app_id: int, epoch: int, host: str) -> None: ...

    def readied(self, app_id: int, epoch: int, host: str) -> None: ...


TeamRouter = Callable[[bytearray], None]  # one TEAM frame's payload
MoveRouter = Callable[[memoryview], None]  # one MOVE frame's payload: a migrating rank


class PayloadReader:
    """Reads one frame's payload from a socket, into memory or into a buffer."""

    def __init__(self, sock: socket.socket, length: int) -> None:
        self._sock = sock
        self._left = length

    def read_into(self, address: int, n: int) -> None:
        """Read the first `n` bytes to host address `address`, then skip the rest."""
        target = memory.view(address, n) if n else memoryview(bytearray())
        _recv_exact(self._sock, target)
        self._left -= n
        self.skip()

    def read_bytes(self) -> bytearray:
        """The whole payload, in a buffer that grows as it arrives."""
        data = read_growing(lambda view: _recv_exact(self._sock, view), self._left)
        self._left = 0
        return data

    def skip(self) -> None:
        if not self._left:
            return
        scratch = memoryview(bytearray(min(self._left, _SKIP_CHUNK)))
        while self._left:
            _recv_exact(self._sock, scratch[: min(self._left, len(scratch))])
            self._left -= min(self._left, len(scratch))


@dataclass(slots=True)
class _Link:
    sock: socket.socket
    lock: threading.Lock


class DataPlane:
    """Listens for other workers' frames and sends this worker's; only workers that know
    `token` get past the handshake, and this one talks only to those that prove they do."""

    def __init__(self, bind: str, token: str, limits: DataLimits | None = None) -> None:
        self._token = token
        self._limits = limits or DataLimits()
        self._server = socket.create_server((bind, 0))
        self.address = f"{bind}:{self._server.getsockname()[1]}"
        self._addresses: dict[str, str] = {}
        self._links: dict[str, _Link] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._team: TeamRouter | None = None
        self._moves: MoveRouter | None = None
        self.sent = Tally(("rank",))  # bytes of migrating ranks sent to other workers

    def start(self, router: Router, team: TeamRouter | None = None,
              moves: MoveRouter | None = None) -> None:
        """Start accepting connections; MPI frames go to `router`, team frames to `team`,
        migrating ranks to `moves`."""
        self._team = team
        self._moves = moves
        gate = Gate(self._token, DATA, lambda sock: self._read_loop(sock, router),
                    what="data-plane")
        threading.Thread(target=self._accept_loop, args=(gate,), name="data-accept",
                         daemon=True).start()

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None:
        """Remember the data-plane address ("ip:port") of each named worker. A worker whose
        address changed (it restarted) is reached through a new connection from now on."""
        stale: list[_Link] = []
        with self._lock:
            for host, address in peers:
                if self._addresses.get(host, address) != address and host in self._links:
                    stale.append(self._links.pop(host))
                self._addresses[host] = address
        for link in stale:
            _shut(link)

    def linked(self, host: str) -> bool:
        """Whether a connection to `host` is open (the next frame for it goes there)."""
        with self._lock:
            return host in self._links

    def close(self) -> None:
        self._closed = True
        self._server.close()
        with self._lock:
            links, self._links = list(self._links.values()), {}
        for link in links:
            link.sock.close()

    # -- sending ------------------------------------------------------------------------------

    def send(self, host: str, app_id: int, envelope: Envelope, dest: int,
             payload: memoryview, token: int) -> None:
        header = _HEADER.pack(MESSAGE, app_id, envelope.ctx, envelope.source, dest,
                              envelope.tag, envelope.length, token)
        if envelope.length <= INLINE_LIMIT:
            self._send(host, (header + bytes(payload),))
        else:
            self._send(host, (header, payload))

    def acknowledge(self, host: str, app_id: int, token: int) -> None:
        self._send(host, (_HEADER.pack(ACK, app_id, 0, 0, 0, 0, 0, token),))

    def announce_failure(self, host: str, app_id: int, reason: str) -> None:
        """Tell `host` that app `app_id` failed; best effort (the host may be gone too), on
        a new connection if the one in use turns out to be broken."""
        text = reason.encode()[:NOTE_MAX_FRAME]
        frame = _HEADER.pack(FAILED, app_id, 0, 0, 0, 0, len(text), 0) + text
        for attempt in (1, 2):  # a failed send drops its link: the second opens a new one
            try:
                self._send(host, (frame,))
                return
            except GuestFault as exc:
                if attempt == 2:
                    log.debug("could not tell %s that app %d failed: %s", host, app_id, exc)

    def fence(self, host: str, app_id: int, epoch: int, sender: str) -> None:
        """Tell `host` that every message this worker sent it for the app before the
        migration `epoch` is on its way (it travels behind them)."""
        self._note(FENCE, host, app_id, epoch, sender)

    def ready(self, host: str, app_id: int, epoch: int, sender: str) -> None:
        """Tell `host` that every rank migration `epoch` puts here is in place."""
        self._note(READY, host, app_id, epoch, sender)

    def _note(self, kind: int, host: str, app_id: int, epoch: int, sender: str) -> None:
        name = sender.encode()[:NOTE_MAX_FRAME]
        self._send(host, (_HEADER.pack(kind, app_id, 0, 0, 0, 0, len(name), epoch) + name,))

    def send_rank(self, host: str, parts: tuple[bytes | memoryview, ...]) -> None:
        """Send a migrating rank (one MOVE frame whose payload is `parts`) to `host`. A host
        that stops taking it in (alive but not reading) fails the send after a deadline
        that grows with the frame's size, instead of holding the caller forever."""
        size = sum(len(p) for p in parts)
        self.send_frame(host, parts, kind=MOVE,
                        timeout=MOVE_TIMEOUT + size / MOVE_MIN_RATE)
        self.sent.add("rank", size)

    def send_frame(self, host: str, parts: tuple[bytes | memoryview, ...],
                   kind: int = TEAM, timeout: float | None = None) -> None:
        """Send one TEAM frame to `host`, its payload being `parts` one after the other."""
        length = sum(len(p) for p in parts)
        header = _HEADER.pack(kind, 0, 0, 0, 0, 0, length, 0)
        if length <= INLINE_LIMIT:
            self._send(host, (header + b"".join(parts),), timeout)
        else:
            self._send(host, (header, *parts), timeout)

    def _send(self, host: str, parts: tuple[bytes | memoryview, ...],
              timeout: float | None = None) -> None:
        link = self._link(host)
        with link.lock:
            try:
                if timeout is not None:  # only then: settimeout costs a system call
                    link.sock.settimeout(timeout)
                for part in parts:
                    link.sock.sendall(part)
                if timeout is not None:
                    link.sock.settimeout(None)
            except OSError as exc:  # a timeout too: the frame is cut, so is the connection
                self._drop(host, link)
                raise GuestFault(f"lost the connection to worker {host}: {exc}") from exc

    def _link(self, host: str) -> _Link:
        with self._lock:
            link = self._links.get(host)
            address = self._addresses.get(host)
            if link is not None:
                return link
        if address is None:
            raise GuestFault(f"no data-plane address is known for worker {host}")
        ip, _, port = address.rpartition(":")
        try:
            sock = socket.create_connection((ip, int(port)), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise GuestFault(f"cannot connect to worker {host} at {address}: {exc}") from exc
        try:
            connect_handshake(sock, self._token, DATA, peer=f"worker {host} at {address}",
                              me="worker")
        except FaabricError as exc:
            sock.close()
            raise GuestFault(str(exc)) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            existing = self._links.get(host)
            if existing is not None:
                sock.close()
                return existing
            link = self._links[host] = _Link(sock, threading.Lock())
        threading.Thread(target=self._watch, args=(host, link), name=f"data-link-{host}",
                         daemon=True).start()
        return link

    def _watch(self, host: str, link: _Link) -> None:
        """Drop the link once its peer closes it (the peer ended or restarted: nothing else
        ever arrives on a connection this worker opened), so the next frame for `host`
        opens a new one instead of vanishing into a dead one."""
        poller = select.poll()
        poller.register(link.sock, select.POLLIN | select.POLLRDHUP)
        while True:
            with self._lock:
                if self._links.get(host) is not link:
                    return  # dropped or replaced: its owner closes it
            try:
                if poller.poll(WATCH_PERIOD * 1000):
                    break
            except (OSError, ValueError):  # closed under us
                return
        with self._lock:
            if self._links.get(host) is not link:
                return
            del self._links[host]
        log.debug("the data-plane connection to worker %s was closed by its peer", host)
        _shut(link)

    def _drop(self, host: str, link: _Link) -> None:
        with self._lock:
            if self._links.get(host) is link:
                del self._links[host]
        link.sock.close()

    # -- receiving ----------------------------------------------------------------------------

    def _accept_loop(self, gate: Gate) -> None:
        while not self._closed:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            gate.admit(sock)  # authenticated connections go on to _read_loop

    def _read_loop(self, sock: socket.socket, router: Router) -> None:
        header = memoryview(bytearray(_HEADER.size))
        peer = _peer_name(sock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # A kernel receive timeout, not Python's (which would poll before every read).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                            timeval(self._limits.stall_timeout))
            while True:
                _recv_exact(sock, header, idle=True)
                kind, _, _, _, _, _, length, _ = fields = _HEADER.unpack(header)
                self._check(kind, length, peer)
                if kind == TEAM:
                    self._team_frame(PayloadReader(sock, length).read_bytes())
                elif kind == MOVE:
                    self._move_frame(memoryview(PayloadReader(sock, length).read_bytes()))
                else:
                    self._dispatch(sock, router, *fields)
        except BrokenError as exc:
            log.warning("closed a data-plane connection from %s: %s", peer, exc)
        except (OSError, ConnectionError) as exc:
            if not self._closed:
                log.debug("data connection closed: %s", exc)
        finally:
            sock.close()

    def _check(self, kind: int, length: int, peer: str) -> None:
        """Raise BrokenError unless the header's kind is known and its length within the
        kind's limit (checked before anything is read or allocated for the payload)."""
        if kind in (MESSAGE, TEAM, MOVE):
            check_length(length, self._limits.max_frame, "data_max_frame", peer)
        elif kind in (FAILED, FENCE, READY):
            check_length(length, NOTE_MAX_FRAME, "a note's fixed limit", peer)
        elif kind == ACK:
            check_length(length, 0, "an acknowledgement carries nothing", peer)
        else:
            raise BrokenError(f"{peer} sent a frame of unknown kind {kind}")

    def _team_frame(self, payload: bytearray) -> None:
        if self._team is None:
            log.warning("dropped a team frame: this worker does not serve teams")
            return
        try:
            self._team(payload)
        except Exception:  # one bad message must not end the connection
            log.exception("a team message could not be handled")

    def _move_frame(self, payload: memoryview) -> None:
        if self._moves is None:
            log.warning("dropped a migrating rank: this worker does not take them")
            return
        try:
            self._moves(payload)
        except Exception:  # one bad message must not end the connection
            log.exception("a migrating rank could not be taken in")

    @staticmethod
    def _dispatch(sock: socket.socket, router: Router, kind: int, app_id: int, ctx: int,
                  source: int, dest: int, tag: int, length: int, token: int) -> None:
        if kind == MESSAGE:
            reader = PayloadReader(sock, length)
            router.arrive(app_id, Envelope(ctx, source, tag, length), dest, token, reader)
            reader.skip()
        elif kind == ACK:
            router.acknowledged(app_id, token)
        elif kind == FAILED:
            router.failed(app_id, PayloadReader(sock, length).read_bytes().decode(errors="replace"))
        elif kind in (FENCE, READY):
            sender = PayloadReader(sock, length).read_bytes().decode(errors="replace")
            note = router.fenced if kind == FENCE else router.readied
            note(app_id, token, sender)
        else:
            raise ConnectionError(f"unknown frame kind {kind}")


def _recv_exact(sock: socket.socket, target: memoryview, *, idle: bool = False) -> None:
    """Fill `target` from `sock`. Before its first byte the wait is endless if `idle` (the
    gap between frames); a pause longer than the socket's receive timeout anywhere else
    raises BrokenError."""
    got, total = 0, len(target)
    while got < total:
        try:
            n = sock.recv_into(target[got:], total - got)
        except (BlockingIOError, TimeoutError):  # the kernel receive timeout
            if idle and got == 0:
                continue
            raise BrokenError("stalled in the middle of a frame") from None
        if n == 0:
            raise ConnectionError("connection closed")
        got += n


def _shut(link: _Link) -> None:
    """Close a link no longer in the table: a frame being sent on it fails at once."""
    try:
        link.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    with link.lock:
        link.sock.close()


def _peer_name(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except (OSError, ValueError):
        return "an unknown peer"
    return f"{host}:{port}"
