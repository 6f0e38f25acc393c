"""A client of GET /v1/apps/{id}/output: follows an app's output as the planner streams it.

Opens a connection of its own (the stream holds it until the app ends), reads the
Server-Sent Events and yields them as `Chunk`, `Lost` and `Ended` values. Every read waits
at most `timeout` seconds (the planner sends a comment line at least every 10 s); `close`
from another thread ends the iteration. It must not print anything nor keep what it read.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

from faabric.errors import ApiError, AuthError, BrokenError
from faabric.planner.output import Chunk, Ended, Lost, OutputEvent

STREAMS = {"stdout": 1, "stderr": 2}
READ_TIMEOUT = 60.0  # seconds without a byte from the planner before the stream is dropped


class OutputFollower:
    """Follows one app's output from chunk `start` on, on the planner at `host`:`port`,
    sending `authorization` (the header's value)."""

    def __init__(self, host: str, port: int, authorization: str, app_id: int,
                 start: int = 0, timeout: float = READ_TIMEOUT) -> None:
        self._where = f"http://{host}:{port}"
        self._authorization = authorization
        self._path = f"/v1/apps/{app_id}/output?from={start}"
        self._conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def close(self) -> None:
        """Drop the stream (an iteration under way ends)."""
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(2)  # wakes a reader blocked on it
            except OSError:
                pass
        self._conn.close()

    def events(self) -> Iterator[OutputEvent]:
        """The events until `Ended` (the app finished) or the stream breaks.

        Raises:
            AuthError, ApiError: the planner refused the request.
            BrokenError: the planner could not be reached, or the stream broke.
        """
        try:
            self._conn.request("GET", self._path, headers={
                "Authorization": self._authorization, "Accept": "text/event-stream"})
            response = self._conn.getresponse()
            if response.status != 200:
                raw = response.read()
                error = _error(raw, response.status)
                if response.status == 401:
                    raise AuthError(error)
                raise ApiError(response.status, error)
            yield from _parse(response)
        except (OSError, http.client.HTTPException) as exc:
            raise BrokenError(f"the output stream from {self._where} broke: "
                              f"{exc or type(exc).__name__}") from exc


def _parse(response: http.client.HTTPResponse) -> Iterator[OutputEvent]:
    kind, data = "message", ""
    while True:
        line = response.readline()
        if not line:
            return  # the planner ended the stream
        text = line.decode("utf-8").rstrip("\r\n")
        if text.startswith(":"):
            continue
        if text:
            name, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "data":
                data = value
            continue
        event = _event(kind, data)
        kind, data = "message", ""
        if event is not None:
            yield event
            if isinstance(event, Ended):
                return


def _event(kind: str, data: str) -> OutputEvent | None:
    doc: dict[str, Any] = json.loads(data) if data else {}
    match kind:
        case "output":
            return Chunk(doc["seq"], doc["index"], STREAMS[doc["stream"]], doc["offset"],
                         base64.b64decode(doc["data"]))
        case "lost":
            return Lost(doc["first"], doc["next"])
        case "end":
            return Ended(doc["next"])
    return None  # an event of a later version: skipped


def _error(raw: bytes, status: int) -> str:
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return f"the planner answered HTTP {status}"
