"""A cursor over WebAssembly binaries: bytes, LEB128 integers and length-prefixed names, and
the two LEB128 writers.

Shared by the archive writer (symbol tables of objects), the migration rewrite (imports of
modules), the atomics rewrite (function bodies) and the stop checks. It raises ValueError
for truncated input and knows no sections.
"""

from __future__ import annotations


class WasmReader:
    """A cursor over wasm bytes (LEB128 integers and length-prefixed names)."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ValueError("truncated")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uleb(self) -> int:
        return self._leb()[0]

    def sleb(self) -> int:
        """A signed LEB128 integer (i32.const, i64.const, block types)."""
        value, bits, last = self._leb()
        return value - (1 << bits) if last & 0x40 else value

    def _leb(self) -> tuple[int, int, int]:
        """A LEB128 integer's unsigned value, its bit count and its last byte."""
        result = shift = 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result, shift, byte

    def skip(self, count: int) -> None:
        """Move past `count` raw bytes."""
        if self.pos + count > self.end:
            raise ValueError("truncated")
        self.pos += count

    def name(self) -> str:
        length = self.uleb()
        if self.pos + length > self.end:
            raise ValueError("truncated name")
        text = self.data[self.pos : self.pos + length].decode()
        self.pos += length
        return text


def uleb128(value: int) -> bytes:
    """`value` (>= 0) as an unsigned LEB128 integer."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def sleb128(value: int) -> bytes:
    """`value` as a signed LEB128 integer."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)
