"""The bounds of the planner's HTTP server: timeouts, request framing, nesting, JSON errors.

`GuardedHandler` is the base of the API's request handler. It reads every connection through
a reader with deadlines: a connection may stay silent `idle_timeout` seconds, a request's
line and headers must arrive within `header_timeout` seconds of its first byte, and a body
(or an answer, going out) within `idle_timeout` plus its length at MIN_BODY_RATE. It
accepts exactly one well-formed Content-Length and no Transfer-Encoding, refuses documents
nested deeper than `max_depth` before parsing them, and answers everything it refuses (a
malformed request line or header included) with a JSON error body, never an HTML page.
`GuardedServer` logs a connection that fails in one line. This module must not route
requests nor know the API's endpoints.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import sys
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgpack
import numpy as np

log = logging.getLogger(__name__)

MIN_BODY_RATE = 1 << 20  # bytes per second a body may arrive at, at the slowest
MAX_DEPTH = 64  # nesting of arrays and objects in a request's document
_LENGTH = re.compile(r"[0-9]{1,18}")
_REASON_LIMIT = 200  # characters of a refused request line quoted back
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_TO_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_DEPTH_CHUNK = 1 << 20


class ApiFailure(Exception):
    """Raised by a route to answer with an error status and a one-line reason."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """How long the planner's HTTP server waits for clients, and how deep documents go."""

    idle_timeout: float = 30.0
    header_timeout: float = 10.0
    max_depth: int = MAX_DEPTH


class GuardedServer(ThreadingHTTPServer):
    """A threading HTTP server whose handlers know `limits`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[GuardedHandler],
                 limits: HttpLimits) -> None:
        self.limits = limits
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection failed outside a request's handling (it reset, say): one line."""
        log.info("an HTTP connection from %s failed: %s", client_address, sys.exc_info()[1])


class _DeadlineReader(io.RawIOBase):
    """Reads a socket under the handler's deadlines (see the module's description)."""

    def __init__(self, sock: socket.socket, limits: HttpLimits) -> None:
        self._sock = sock
        self._limits = limits
        self._deadline: float | None = None  # None: waiting for a request's first byte

    def readable(self) -> bool:
        return True

    def await_request(self) -> None:
        """The next bytes start a request: wait for them up to the idle timeout."""
        self._deadline = None

    def allow(self, seconds: float) -> None:
        """What is read from now on must arrive within `seconds`."""
        self._deadline = time.monotonic() + seconds

    def readinto(self, buffer: Any) -> int:
        idle = self._limits.idle_timeout
        timeout = idle
        if self._deadline is not None:
            timeout = min(idle, self._deadline - time.monotonic())
            if timeout <= 0:
                raise TimeoutError("the request did not arrive in time")
        self._sock.settimeout(timeout)
        try:
            n = self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(idle)  # what writes wait for
        if n and self._deadline is None:
            self.allow(self._limits.header_timeout)
        return n


class _DeadlineWriter(io.BufferedIOBase):
    """Writes to a socket, each write within `idle_timeout` plus its length at MIN_BODY_RATE
    (a socket timeout bounds a whole `sendall`, so a large answer needs longer)."""

    def __init__(self, sock: socket.socket, limits: HttpLimits) -> None:
        self._sock = sock
        self._idle = limits.idle_timeout

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self._sock.settimeout(self._idle + size / MIN_BODY_RATE)
        try:
            self._sock.sendall(data)
        finally:
            self._sock.settimeout(self._idle)
        return size


class GuardedHandler(BaseHTTPRequestHandler):
    """Request plumbing within bounds; subclasses route (`do_*`) and answer."""

    server: GuardedServer
    _reader: _DeadlineReader
    _content_length: int | None = None

    def setup(self) -> None:
        super().setup()
        limits = self.server.limits
        self.connection.settimeout(limits.idle_timeout)
        self._reader = _DeadlineReader(self.connection, limits)
        self.rfile = io.BufferedReader(self._reader)
        self.wfile = _DeadlineWriter(self.connection, limits)

    def handle_one_request(self) -> None:
        self._reader.await_request()
        self._content_length = None
        super().handle_one_request()

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Refuse a request the standard library could not parse, in JSON like any other."""
        status = HTTPStatus(code)
        reason = (message or status.phrase)[:_REASON_LIMIT]
        self.log_error("code %d, message %s", code, reason)
        self.close_connection = True
        self.request_version = self.protocol_version  # headers even for HTTP/0.9 garbage
        self.send_json(status, {"error": reason})

    def send_json(self, status: HTTPStatus, document: Any) -> None:
        """An answer with a JSON body; closes the connection if `close_connection`."""
        payload = json.dumps(document).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def check_framing(self) -> None:
        """Refuse a request whose body's length is not given by exactly one Content-Length
        of plain digits (chunked bodies are not taken); the connection then closes."""
        lengths = self.headers.get_all("Content-Length") or []
        if self.headers.get_all("Transfer-Encoding"):
            self.close_connection = True
            if lengths:
                raise ApiFailure(HTTPStatus.BAD_REQUEST,
                                 "send Content-Length or Transfer-Encoding, not both")
            raise ApiFailure(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length header")
        if len(lengths) > 1:
            self.close_connection = True
            raise ApiFailure(HTTPStatus.BAD_REQUEST, "send exactly one Content-Length header")
        if lengths and not _LENGTH.fullmatch(lengths[0].strip()):
            self.close_connection = True
            raise ApiFailure(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        self._content_length = int(lengths[0]) if lengths else None

    @property
    def body_pending(self) -> bool:
        """Whether the request announced a body that was not read."""
        return bool(self._content_length)

    def read_body(self, limit: int) -> bytes:
        """The request's body (empty if none), at most `limit` bytes; after `check_framing`."""
        length = self._content_length
        if not length:
            return b""
        if length > limit:
            self.close_connection = True  # do not read a body we refuse
            raise ApiFailure(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body of {length} bytes exceeds the limit of {limit} bytes",
            )
        self._content_length = 0
        seconds = self.server.limits.idle_timeout + length / MIN_BODY_RATE
        self._reader.allow(seconds)
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            raise ApiFailure(HTTPStatus.REQUEST_TIMEOUT,
                             f"the body did not arrive within {seconds:.0f} s") from None
        if len(body) != length:
            self.close_connection = True
            raise ApiFailure(HTTPStatus.BAD_REQUEST, "the body ended before Content-Length")
        return body

    def decode_document(self, body: bytes, binary: bool) -> Any:
        """The JSON (or, `binary`, msgpack) document in `body`; ApiFailure(400) if it is not
        one or nests deeper than the limit."""
        limit = self.server.limits.max_depth
        too_deep = ApiFailure(HTTPStatus.BAD_REQUEST,
                              f"the document nests deeper than {limit} levels")
        try:
            if binary:
                document = msgpack.unpackb(body, raw=False)
                if document_depth(document) > limit:
                    raise too_deep
                return document
            if json_depth(body) > limit:
                raise too_deep
            return json.loads(body or b"null")
        except RecursionError:
            raise too_deep from None
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ApiFailure(HTTPStatus.BAD_REQUEST, f"the body is not valid: {exc}") from exc


def json_depth(text: bytes) -> int:
    """How deep arrays and objects nest in JSON `text`, without parsing it (brackets inside
    strings do not count). Linear in the size, bounded memory, no recursion."""
    brackets = _STRING.sub(b"", text).translate(_TO_SQUARE, _NOT_BRACKETS)
    steps = np.frombuffer(brackets, dtype=np.uint8)
    depth = deepest = 0
    for start in range(0, len(steps), _DEPTH_CHUNK):
        levels = np.cumsum(0x5C - steps[start:start + _DEPTH_CHUNK].astype(np.int64)) + depth
        deepest = max(deepest, int(levels.max()))
        depth = int(levels[-1])
    return deepest


def document_depth(document: Any) -> int:
    """How deep lists, tuples and dicts nest in a decoded document (iteratively)."""
    deepest = 0
    stack = [(document, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list | tuple):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest
