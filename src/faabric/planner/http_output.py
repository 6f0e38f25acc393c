"""GET /v1/apps/{id}/output: an app's output as Server-Sent Events, as it is produced.

Writes the event stream of one follower: `output` events (a chunk of a granule's stdout or
stderr, bytes in base64, `id` its sequence number), `lost` when chunks were dropped before
this follower read them (it fell behind the planner's bounded buffer), a comment line every
`KEEPALIVE` seconds of silence, and `end` once the app has finished and everything was
sent, after which the response ends. The wire format only: the buffers are
`faabric.planner.output`'s, and this module must not hold state between requests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from faabric.planner.output import Chunk, Ended, Lost, OutputBuffers, OutputEvent

KEEPALIVE = 10.0  # seconds of silence before a comment line proves the stream alive
STREAMS = {1: "stdout", 2: "stderr"}


def follow(buffers: OutputBuffers, app_id: int, start: int, write: Callable[[bytes], Any],
           client_gone: Callable[[], bool], status: Callable[[], int | None]) -> None:
    """Write the app's events from chunk `start` on until it ends (then `end`, carrying
    `status()`) or the client goes away. Raises OSError if a write fails."""
    while True:
        events = buffers.read(app_id, start, KEEPALIVE)
        if not events:
            if client_gone():
                return
            write(b": keep-alive\n\n")
            continue
        parts = []
        for event in events:
            parts.append(encode(event, status))
            start = _next(event, start)
        write(b"".join(parts))
        if isinstance(events[-1], Ended):
            return


def encode(event: OutputEvent, status: Callable[[], int | None]) -> bytes:
    """One event in the text/event-stream format."""
    match event:
        case Chunk(seq, index, stream, offset, data):
            doc: dict[str, Any] = {"seq": seq, "index": index, "stream": STREAMS[stream],
                                   "offset": offset,
                                   "data": base64.b64encode(data).decode("ascii")}
            return f"id: {seq}\nevent: output\ndata: {json.dumps(doc)}\n\n".encode()
        case Lost(first, after):
            doc = {"first": first, "next": after}
            return f"event: lost\ndata: {json.dumps(doc)}\n\n".encode()
        case Ended(after):
            doc = {"next": after, "status": status()}
            return f"event: end\ndata: {json.dumps(doc)}\n\n".encode()


def _next(event: OutputEvent, start: int) -> int:
    match event:
        case Chunk(seq):
            return seq + 1
        case Lost(_, after) | Ended(after):
            return max(start, after)
