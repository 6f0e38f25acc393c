"""How large a frame each port accepts, and reading a frame whose memory follows its bytes.

Every framed port (the planner's control port, a worker's data plane) checks the length a
peer announces against the port's limit before allocating anything (`check_length`), and
reads a large frame into a buffer that grows as its bytes arrive (`read_growing`), so a
length that lies costs only what the peer really sent, never what it announced. This
module must not own sockets nor know what the frames carry.
"""

from __future__ import annotations

from collections.abc import Callable

from faabric.errors import FrameTooLarge

CONTROL_MAX_FRAME = 128 << 20  # a Report may carry 16 + 16 MiB of stdio and 64 MiB of output
DATA_MAX_FRAME = (4 << 30) + (64 << 20)  # the largest wasm32 memory, plus its description
NOTE_MAX_FRAME = 64 << 10  # data-plane notes: a failure's reason, a worker's name
GROW_FROM = 1 << 20  # a frame's buffer starts this large and doubles as bytes arrive


def check_length(length: int, limit: int, setting: str, peer: str) -> None:
    """Raise FrameTooLarge unless `0 <= length <= limit`; `setting` names the option that
    sets the limit and `peer` the sender, for the log line."""
    if not 0 <= length <= limit:
        raise FrameTooLarge(f"{peer} announced a frame of {length} bytes, over the limit of "
                            f"{limit} bytes ({setting})")


def read_growing(fill: Callable[[memoryview], None], size: int,
                 start: bytes | bytearray | memoryview = b"") -> bytearray:
    """The `size` bytes of a frame: `start` (already received), then what `fill` writes.

    `fill(view)` must fill the whole view or raise. The buffer doubles only once the bytes
    already asked for have arrived, so it never holds more than twice what arrived plus
    GROW_FROM bytes.
    """
    buf = bytearray(min(size, max(len(start), GROW_FROM)))
    buf[: len(start)] = start
    got = len(start)
    while True:
        view = memoryview(buf)
        try:
            fill(view[got:])
        finally:
            view.release()
        got = len(buf)
        if got >= size:
            return buf
        buf += bytes(min(size - got, got))  # calloc'ed: its pages are touched only here
