"""The snapshot value: the non-zero pages of a memory, compressed chunk by chunk.

A `Snapshot` is a frozen dataclass of ints and bytes, so the wire codec carries it as is. The
memory is cut into 1 MiB chunks of 4 KiB pages (OS pages, the unit of dirty tracking and of
copy-on-write). A chunk whose pages are all zero is left out; of the others only the non-zero
pages are kept, flagged in a per-chunk bitmap, and stored raw or zlib-compressed (level 1),
whichever is smaller on a 4 KiB sample: random data is not worth compressing and zlib would
spend 20 ns per byte finding that out. This module builds and decodes snapshots; it never maps
memory or owns file descriptors (see `restore`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from faabric.errors import SnapshotError
from faabric.snapshot._libc import PAGE_SIZE, Bytes
from faabric.snapshot.pages import as_pages, check_pages, nonzero_pages, zero_stale_pages

CHUNK_SIZE = 1 << 20
PAGES_PER_CHUNK = CHUNK_SIZE // PAGE_SIZE
BITMAP_BYTES = PAGES_PER_CHUNK // 8


class Encoding(IntEnum):
    """How one chunk's pages are stored."""

    RAW = 0
    ZLIB = 1


@dataclass(frozen=True, slots=True)
class SnapshotOptions:
    """How to take a snapshot.

    Attributes:
        compress: try zlib at all (False: every chunk raw, the fastest to take and restore).
        level: zlib level; 1 compresses typical heaps 5x at ~200 MB/s.
        sample: bytes of each chunk compressed first to decide whether the chunk is worth it.
        max_ratio: compress the chunk only if the sample shrinks to at most this fraction.
    """

    compress: bool = True
    level: int = 1
    sample: int = 4096
    max_ratio: float = 0.8


DEFAULT_OPTIONS = SnapshotOptions()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The contents of a memory of `size` bytes (pages absent from it are zero).

    Attributes:
        size: bytes of memory the snapshot covers (a multiple of the 4 KiB page).
        chunks: little-endian uint64 chunk numbers (chunk i covers bytes [i MiB, i+1 MiB)).
        bitmaps: per stored chunk, 32 bytes with one bit per page (little bit order).
        encodings: one `Encoding` byte per stored chunk.
        ends: little-endian uint64 end offset of each chunk's payload in `data`.
        data: the payloads, one after the other; a payload is the chunk's flagged pages.
    """

    size: int
    chunks: bytes = b""
    bitmaps: bytes = b""
    encodings: bytes = b""
    ends: bytes = b""
    data: bytes = b""

    def __post_init__(self) -> None:
        count = len(self.encodings)
        check_pages(self.size, "a snapshot")
        if (len(self.chunks), len(self.bitmaps), len(self.ends)) != (
                8 * count, BITMAP_BYTES * count, 8 * count):
            raise SnapshotError("malformed snapshot: its chunk tables disagree in length")
        if count and (self.chunk_numbers()[-1] * CHUNK_SIZE >= self.size
                      or int(self.payload_ends()[-1]) != len(self.data)):
            raise SnapshotError("malformed snapshot: a chunk lies outside it")

    def chunk_numbers(self) -> np.ndarray:
        return np.frombuffer(self.chunks, "<u8").astype(np.int64)

    def payload_ends(self) -> np.ndarray:
        return np.frombuffer(self.ends, "<u8").astype(np.int64)

    def page_flags(self) -> np.ndarray:
        """One flag per page of the memory: True when the snapshot stores that page."""
        flags = np.zeros(self.size // PAGE_SIZE + PAGES_PER_CHUNK, np.bool_)
        bits = np.frombuffer(self.bitmaps, np.uint8).reshape(-1, BITMAP_BYTES)
        per_chunk = np.unpackbits(bits, axis=1, bitorder="little").astype(np.bool_)
        flags.reshape(-1, PAGES_PER_CHUNK)[self.chunk_numbers()] = per_chunk
        return flags[: self.size // PAGE_SIZE]

    @property
    def stored_pages(self) -> int:
        return int(np.unpackbits(np.frombuffer(self.bitmaps, np.uint8)).sum())


def take_snapshot(memory: Bytes, options: SnapshotOptions = DEFAULT_OPTIONS) -> Snapshot:
    """Snapshot the memory a numpy view shows (its length must be whole pages)."""
    check_pages(len(memory), "the memory")
    pages = as_pages(memory)
    numbers, bitmaps, encodings, payloads = [], [], bytearray(), []
    for chunk in range((len(pages) + PAGES_PER_CHUNK - 1) // PAGES_PER_CHUNK):
        part = pages[chunk * PAGES_PER_CHUNK:(chunk + 1) * PAGES_PER_CHUNK]
        flags = nonzero_pages(part.reshape(-1))
        if not flags.any():
            continue
        payload = part.reshape(-1) if flags.all() else part[flags].reshape(-1)
        encoding, stored = _encode(payload, options)
        numbers.append(chunk)
        padded = np.zeros(PAGES_PER_CHUNK, np.bool_)
        padded[: len(flags)] = flags
        bitmaps.append(np.packbits(padded, bitorder="little").tobytes())
        encodings.append(encoding)
        payloads.append(stored)
    ends = np.cumsum([len(p) for p in payloads], dtype=np.int64)
    return Snapshot(len(memory), np.asarray(numbers, "<u8").tobytes(), b"".join(bitmaps),
                    bytes(encodings), ends.astype("<u8").tobytes(), b"".join(payloads))


def _encode(payload: Bytes, options: SnapshotOptions) -> tuple[Encoding, bytes | memoryview]:
    if options.compress:
        sample = payload[: options.sample]
        if len(zlib.compress(sample.data, options.level)) <= options.max_ratio * len(sample):
            packed = zlib.compress(payload.data, options.level)
            if len(packed) < len(payload):
                return Encoding.ZLIB, packed
    return Encoding.RAW, payload.data


def chunk_payloads(snapshot: Snapshot, wanted: set[int] | None = None) -> Iterator[
        tuple[int, np.ndarray, Bytes]]:
    """(chunk number, page numbers within the chunk, decoded pages) of each stored chunk.

    `wanted` limits the walk to those chunk numbers.
    """
    numbers = snapshot.chunk_numbers()
    ends = snapshot.payload_ends()
    bits = np.frombuffer(snapshot.bitmaps, np.uint8).reshape(-1, BITMAP_BYTES)
    data = memoryview(snapshot.data)
    for i, chunk in enumerate(numbers.tolist()):
        if wanted is not None and chunk not in wanted:
            continue
        start = int(ends[i - 1]) if i else 0
        raw: bytes | memoryview = data[start:int(ends[i])]
        if snapshot.encodings[i] == Encoding.ZLIB:
            raw = zlib.decompress(raw)
        page_numbers = np.flatnonzero(np.unpackbits(bits[i], bitorder="little"))
        decoded = np.frombuffer(raw, np.uint8)
        if len(decoded) != len(page_numbers) * PAGE_SIZE:
            raise SnapshotError(f"malformed snapshot: chunk {chunk} holds {len(decoded)} bytes "
                                f"for {len(page_numbers)} pages")
        yield chunk, page_numbers, decoded


def decode_into(snapshot: Snapshot, target: Bytes, *, zero_absent: bool) -> None:
    """Write the snapshot's pages into the first `snapshot.size` bytes of `target`.

    With `zero_absent`, pages the snapshot leaves out are zeroed too (only those that are not
    zero already, so untouched memory stays untouched); without it they are not written.
    """
    if len(target) < snapshot.size:
        raise SnapshotError(f"the memory is {len(target)} bytes, the snapshot "
                            f"{snapshot.size}: grow the memory first")
    pages = as_pages(target[: snapshot.size])
    for chunk, page_numbers, decoded in chunk_payloads(snapshot):
        first = chunk * PAGES_PER_CHUNK
        if len(page_numbers) == min(PAGES_PER_CHUNK, len(pages) - first):
            pages[first:first + len(page_numbers)] = decoded.reshape(-1, PAGE_SIZE)
        else:
            pages[first + page_numbers] = decoded.reshape(-1, PAGE_SIZE)
    if zero_absent:
        zero_stale_pages(target[: snapshot.size], snapshot.page_flags())


def expand(snapshot: Snapshot) -> Bytes:
    """The snapshot's memory as a new numpy array (absent pages read as zero)."""
    out = np.zeros(snapshot.size, np.uint8)
    decode_into(snapshot, out, zero_absent=False)
    return out
