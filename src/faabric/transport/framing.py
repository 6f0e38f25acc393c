"""Length-prefixed message frames over a connected TCP socket, with timeouts.

A frame is a 4-byte big-endian length followed by that many bytes of codec output. Sending
is safe from many threads (one lock); receiving is meant for a single reader thread, which
reads ahead (up to 64 KiB per system call) so a burst of small frames costs one read. Every
blocking call has a deadline, and a peer that closes or sends garbage raises BrokenError; a
length over the limit raises FrameTooLarge before anything is allocated, and a large frame's
buffer grows only as its bytes arrive (`faabric.transport.limits`).
The socket stays in blocking mode with kernel send/receive timeouts (SO_SNDTIMEO and
SO_RCVTIMEO) rather than Python's socket timeout, which would add a poll(2) — and one more
release of the GIL — to every send and receive. This module must not know what the messages
mean.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from collections.abc import Sequence
from typing import Any

from faabric.errors import BrokenError, ClosedError, TimeoutError_
from faabric.messages.codec import Codec
from faabric.transport.limits import CONTROL_MAX_FRAME, check_length, read_growing

_HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = CONTROL_MAX_FRAME
DEFAULT_IO_TIMEOUT = 30.0
_READ_AHEAD = 64 << 10


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """Open a TCP connection with `TCP_NODELAY`; raises BrokenError with a readable reason."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise BrokenError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class FramedSocket:
    """Sends and receives codec messages as frames on one socket."""

    def __init__(
        self,
        sock: socket.socket,
        codec: Codec,
        *,
        io_timeout: float = DEFAULT_IO_TIMEOUT,
        max_frame: int = DEFAULT_MAX_FRAME,
        setting: str = "control_max_frame",
    ) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        limit = timeval(io_timeout)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        self._sock = sock
        self._codec = codec
        self._max_frame = max_frame
        self._setting = setting  # the option that sets max_frame, named in errors
        self._send_lock = threading.Lock()
        self._closed = False
        self._chunk = bytearray(_READ_AHEAD)
        self._inbox = bytearray()  # received, not yet returned from self._taken on
        self._taken = 0
        self.peer = _peer_name(sock)

    def send(self, message: Any) -> None:
        """Send one message; raises BrokenError if the peer is gone or does not read."""
        body = self._codec.encode(message)
        if len(body) > self._max_frame:
            raise BrokenError(f"message of {len(body)} bytes exceeds the frame limit")
        with self._send_lock:
            if self._closed:
                raise ClosedError("the connection is closed")
            try:
                self._sock.sendall(_HEADER.pack(len(body)) + body)
            except OSError as exc:
                raise BrokenError(f"cannot send to {self.peer}: {exc}") from exc

    def send_many(self, messages: Sequence[Any]) -> None:
        """Send several messages, in order, with one write; raises like `send`."""
        parts: list[bytes] = []
        for message in messages:
            body = self._codec.encode(message)
            if len(body) > self._max_frame:
                raise BrokenError(f"message of {len(body)} bytes exceeds the frame limit")
            parts += (_HEADER.pack(len(body)), body)
        with self._send_lock:
            if self._closed:
                raise ClosedError("the connection is closed")
            try:
                self._sock.sendall(b"".join(parts))
            except OSError as exc:
                raise BrokenError(f"cannot send to {self.peer}: {exc}") from exc

    def recv(self, timeout: float | None) -> Any:
        """Receive one message, waiting at most `timeout` s for it to start (None: forever).

        Raises:
            TimeoutError_: nothing arrived in time (the connection is still usable).
            BrokenError: the peer closed the connection or sent an invalid frame.
        """
        if self._closed:
            raise ClosedError("the connection is closed")
        if len(self._inbox) == self._taken:
            if timeout is None:
                self._await_data()
            elif not self._readable(timeout):
                raise TimeoutError_(f"no message from {self.peer} within {timeout} s")
        (length,) = _HEADER.unpack(self._read_exact(_HEADER.size))
        check_length(length, self._max_frame, self._setting, self.peer)
        return self._codec.decode(self._read_exact(length))

    def close(self) -> None:
        """Close the socket; later sends and receives raise ClosedError. Idempotent."""
        with self._send_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    def _await_data(self) -> None:
        """Block until the next message starts arriving (however long), into the inbox."""
        while True:
            try:
                n = self._recv_into(self._chunk, idle=True)
            except BlockingIOError:
                continue  # nothing for io_timeout seconds: not a stall between messages
            self._inbox += self._chunk[:n]
            return

    def _readable(self, timeout: float | None) -> bool:
        try:
            ready, _, _ = select.select([self._sock], [], [], timeout)
        except (OSError, ValueError) as exc:
            raise BrokenError(f"connection to {self.peer} failed: {exc}") from exc
        return bool(ready)

    def _read_exact(self, size: int) -> bytes | bytearray:
        # Small frames come out of the read-ahead buffer: one recv often brings several.
        buffered = len(self._inbox) - self._taken
        if size - buffered > _READ_AHEAD:  # a large frame: read the rest into its own buffer
            head = self._inbox[self._taken :]
            self._inbox.clear()
            self._taken = 0
            return read_growing(self._fill, size, head)
        while len(self._inbox) - self._taken < size:
            n = self._recv_into(self._chunk)
            self._inbox += self._chunk[:n]
        start, self._taken = self._taken, self._taken + size
        data = bytes(self._inbox[start : self._taken])
        if self._taken == len(self._inbox):
            self._inbox.clear()
            self._taken = 0
        elif self._taken > _READ_AHEAD:
            del self._inbox[: self._taken]
            self._taken = 0
        return data

    def _fill(self, view: memoryview) -> None:
        got = 0
        while got < len(view):
            got += self._recv_into(view[got:])

    def _recv_into(self, view: memoryview | bytearray, *, idle: bool = False) -> int:
        """Receive into `view`; a receive timeout raises BlockingIOError if `idle` (no message
        started yet), else BrokenError."""
        try:
            n = self._sock.recv_into(view)
        except (TimeoutError, BlockingIOError) as exc:
            if idle and not self._closed:
                raise BlockingIOError from exc
            raise BrokenError(f"{self.peer} stalled in the middle of a message") from exc
        except OSError as exc:
            if self._closed:
                raise ClosedError("the connection is closed") from exc
            raise BrokenError(f"connection to {self.peer} failed: {exc}") from exc
        if n == 0:
            raise BrokenError(f"{self.peer} closed the connection")
        return n


def timeval(seconds: float) -> bytes:
    """A `struct timeval` for SO_SNDTIMEO / SO_RCVTIMEO (at least 1 µs: 0 means never)."""
    micros = max(1, round(seconds * 1e6))
    return struct.pack("ll", micros // 1_000_000, micros % 1_000_000)


def _peer_name(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "peer"
    return f"{host}:{port}"


def listen(host: str, port: int, backlog: int = 128) -> socket.socket:
    """Bind a listening TCP socket (port 0 picks a free one); raises BrokenError on failure."""
    try:
        sock = socket.create_server((host, port), backlog=backlog, reuse_port=False)
    except OSError as exc:
        raise BrokenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock
