"""The data plane between workers: raw TCP frames carrying MPI messages straight to memory.

Each worker listens on one port. To send to another host it opens one connection, once, and
sends only on connections it opened, so messages from one host to another arrive in the
order they were sent. A frame is a fixed header (kind, app, context, source, destination,
tag, length, token) and the payload, sent with one `sendmsg` (no joined copy). The reader
thread of a connection reads into a buffer of its own, so a small frame costs one `recv`;
it hands payloads to the `Router`, which may have the rest of a large one read straight into
a posted receive buffer. Readers never wait for the application (unmatched messages are
buffered), so a full receive queue cannot block a sender's progress elsewhere. This module
must not know about matching or wasm.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Protocol

from faabric.mpi import memory
from faabric.mpi.matching import Envelope
from faabric.wasm.host import GuestFault

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<BxxxqiiiiqI")
MESSAGE, ACK, FAILED = 1, 2, 3
INBOX_SIZE = 256 << 10  # bytes a reader asks the socket for at once
CONNECT_TIMEOUT = 10.0


class Router(Protocol):
    """Where incoming frames go."""

    def arrive(self, app_id: int, envelope: Envelope, dest: int, token: int,
               reader: PayloadReader) -> None: ...

    def acknowledged(self, app_id: int, token: int) -> None: ...

    def failed(self, app_id: int, reason: str) -> None: ...


class Inbox:
    """The receiving end of one connection: bytes read ahead of the frame being parsed."""

    def __init__(self, sock: socket.socket, size: int = INBOX_SIZE) -> None:
        self._sock = sock
        self._view = memoryview(bytearray(size))
        self._start = 0
        self._end = 0

    def header(self) -> tuple[int, ...]:
        """The next frame's header fields (waits for them)."""
        self._fill(_HEADER.size)
        fields = _HEADER.unpack_from(self._view, self._start)
        self._start += _HEADER.size
        return fields

    def read(self, target: memoryview) -> None:
        """Fill `target` with the next bytes: first what is buffered, the rest straight in."""
        take = min(self._end - self._start, len(target))
        target[:take] = self._view[self._start:self._start + take]
        self._start += take
        if take < len(target):
            _recv_exact(self._sock, target[take:])

    def skip(self, n: int) -> None:
        while n:
            take = min(self._end - self._start, n)
            self._start += take
            n -= take
            if n:
                self._fill(1)

    def _fill(self, need: int) -> None:
        """Buffer at least `need` bytes (at most the inbox's size)."""
        if self._end - self._start >= need:
            return
        if self._start:  # move the unread tail to the front
            left = self._end - self._start
            self._view[:left] = self._view[self._start:self._end]
            self._start, self._end = 0, left
        while self._end < need:
            n = self._sock.recv_into(self._view[self._end:])
            if n == 0:
                raise ConnectionError("connection closed")
            self._end += n


class PayloadReader:
    """Reads one frame's payload from a connection, into memory or into a buffer."""

    def __init__(self, inbox: Inbox, length: int) -> None:
        self._inbox = inbox
        self._left = length

    def read_into(self, address: int, n: int) -> None:
        """Read the first `n` bytes to host address `address`, then skip the rest."""
        if n:
            self._inbox.read(memory.view(address, n))
        self._left -= n
        self.skip()

    def read_bytes(self) -> bytearray:
        data = bytearray(self._left)
        self._inbox.read(memoryview(data))
        self._left = 0
        return data

    def skip(self) -> None:
        self._inbox.skip(self._left)
        self._left = 0


@dataclass(slots=True)
class _Link:
    sock: socket.socket
    lock: threading.Lock


class DataPlane:
    """Listens for other workers' frames and sends this worker's."""

    def __init__(self, bind: str) -> None:
        self._server = socket.create_server((bind, 0))
        self.address = f"{bind}:{self._server.getsockname()[1]}"
        self._addresses: dict[str, str] = {}
        self._links: dict[str, _Link] = {}
        self._lock = threading.Lock()
        self._closed = False

    def start(self, router: Router) -> None:
        """Start accepting connections; their frames go to `router`."""
        threading.Thread(target=self._accept_loop, args=(router,), name="data-accept",
                         daemon=True).start()

    def learn(self, peers: tuple[tuple[str, str], ...]) -> None:
        """Remember the data-plane address ("ip:port") of each named worker."""
        with self._lock:
            self._addresses.update(peers)

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
        self._send(host, (header, payload))

    def acknowledge(self, host: str, app_id: int, token: int) -> None:
        self._send(host, (_HEADER.pack(ACK, app_id, 0, 0, 0, 0, 0, token),))

    def announce_failure(self, host: str, app_id: int, reason: str) -> None:
        """Tell `host` that app `app_id` failed; best effort (the host may be gone too)."""
        text = reason.encode()
        try:
            self._send(host, (_HEADER.pack(FAILED, app_id, 0, 0, 0, 0, len(text), 0) + text,))
        except GuestFault as exc:
            log.debug("could not tell %s that app %d failed: %s", host, app_id, exc)

    def _send(self, host: str, parts: tuple[bytes | memoryview, ...]) -> None:
        link = self._link(host)
        with link.lock:
            try:
                _send_all(link.sock, parts)
            except OSError as exc:
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
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            existing = self._links.get(host)
            if existing is not None:
                sock.close()
                return existing
            link = self._links[host] = _Link(sock, threading.Lock())
            return link

    def _drop(self, host: str, link: _Link) -> None:
        with self._lock:
            if self._links.get(host) is link:
                del self._links[host]
        link.sock.close()

    # -- receiving ----------------------------------------------------------------------------

    def _accept_loop(self, router: Router) -> None:
        while not self._closed:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._read_loop, args=(sock, router), name="data-reader",
                             daemon=True).start()

    def _read_loop(self, sock: socket.socket, router: Router) -> None:
        inbox = Inbox(sock)
        try:
            while True:
                self._dispatch(inbox, router, *inbox.header())
        except (OSError, ConnectionError) as exc:
            if not self._closed:
                log.debug("data connection closed: %s", exc)
        finally:
            sock.close()

    @staticmethod
    def _dispatch(inbox: Inbox, router: Router, kind: int, app_id: int, ctx: int,
                  source: int, dest: int, tag: int, length: int, token: int) -> None:
        if kind == MESSAGE:
            reader = PayloadReader(inbox, length)
            router.arrive(app_id, Envelope(ctx, source, tag, length), dest, token, reader)
            reader.skip()
        elif kind == ACK:
            router.acknowledged(app_id, token)
        elif kind == FAILED:
            text = PayloadReader(inbox, length).read_bytes()
            router.failed(app_id, text.decode(errors="replace"))
        else:
            raise ConnectionError(f"unknown frame kind {kind}")


def _send_all(sock: socket.socket, parts: tuple[bytes | memoryview, ...]) -> None:
    """Send every part, in order, with as few `sendmsg` calls as the socket allows."""
    views = [memoryview(part) for part in parts if len(part)]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views.pop(0))
        if sent:
            views[0] = views[0][sent:]


def _recv_exact(sock: socket.socket, target: memoryview) -> None:
    got, total = 0, len(target)
    while got < total:
        n = sock.recv_into(target[got:], total - got)
        if n == 0:
            raise ConnectionError("connection closed")
        got += n
