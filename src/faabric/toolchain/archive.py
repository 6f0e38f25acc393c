"""Static archives (`.a`) of wasm32 object files, with the symbol index wasm-ld requires.

Debian's wasm toolchain has no llvm-ar-16, so faabric writes the GNU `ar` format itself: a
symbol index ("/" member) listing every global symbol each object defines, read from the
object's "linking" section, then the members. The output is deterministic (zero dates and
ids). This module must not run compilers or know which libraries exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from faabric.errors import ToolchainError
from faabric.toolchain.wasm_bytes import WasmReader

_MAGIC = b"\0asm"
_CUSTOM = 0
_SYMBOL_TABLE = 8
_FUNCTION, _DATA, _GLOBAL, _SECTION, _TAG, _TABLE = range(6)
_LOCAL = 0x2
_UNDEFINED = 0x10
_EXPLICIT_NAME = 0x40


def defined_symbols(obj: bytes) -> list[str]:
    """Names of the global symbols a wasm relocatable object defines (in table order)."""
    if obj[:4] != _MAGIC:
        raise ValueError("not a wasm object")
    reader = WasmReader(obj, 8)
    while reader.pos < reader.end:
        section = reader.byte()
        size = reader.uleb()
        start = reader.pos
        if section == _CUSTOM:
            inner = WasmReader(obj, start, start + size)
            if inner.name() == "linking":
                return _linking_symbols(inner)
        reader.pos = start + size
    return []


def _linking_symbols(reader: WasmReader) -> list[str]:
    reader.uleb()  # linking metadata version
    while reader.pos < reader.end:
        kind = reader.byte()
        size = reader.uleb()
        if kind == _SYMBOL_TABLE:
            return _symbol_table(reader)
        reader.pos += size
    return []


def _symbol_table(reader: WasmReader) -> list[str]:
    names = []
    for _ in range(reader.uleb()):
        kind = reader.byte()
        flags = reader.uleb()
        undefined = bool(flags & _UNDEFINED)
        name = ""
        if kind == _DATA:
            name = reader.name()
            if not undefined:
                reader.uleb(), reader.uleb(), reader.uleb()  # segment, offset, size
        elif kind == _SECTION:
            reader.uleb()
        else:
            reader.uleb()  # function/global/tag/table index
            if not undefined or flags & _EXPLICIT_NAME:
                name = reader.name()
        if name and not undefined and not flags & _LOCAL:
            names.append(name)
    return names


def _header(name: str, size: int) -> bytes:
    fields = f"{name:<16}{0:<12}{0:<6}{0:<6}{644:<8}{size:<10}`\n"
    return fields.encode()


def _padded(data: bytes) -> bytes:
    return data + b"\n" if len(data) % 2 else data


def write_archive(objects: Sequence[Path], target: Path) -> None:
    """Write a GNU ar archive of `objects` (wasm objects) with a symbol index to `target`."""
    members: list[tuple[str, bytes, list[str]]] = []
    for path in objects:
        data = path.read_bytes()
        try:
            symbols = defined_symbols(data)
        except (ValueError, UnicodeDecodeError) as error:
            raise ToolchainError(f"cannot read symbols of {path.name}: {error}") from None
        members.append((path.name, data, symbols))
    target.write_bytes(archive_bytes(members))


def archive_bytes(members: Sequence[tuple[str, bytes, list[str]]]) -> bytes:
    """The archive for (member name, bytes, defined symbols) triples, in order."""
    long_names = b"".join(f"{name}/\n".encode() for name, _, _ in members)
    count = sum(len(symbols) for _, _, symbols in members)
    strings = b"".join(s.encode() + b"\0" for _, _, symbols in members for s in symbols)
    index_size = 4 + 4 * count + len(strings)
    offset = 8 + 60 + len(_padded(b"\0" * index_size)) + 60 + len(_padded(long_names))
    offsets: list[int] = []
    parts: list[bytes] = []
    name_at = 0
    for name, data, symbols in members:
        offsets += [offset] * len(symbols)
        parts.append(_header(f"/{name_at}", len(data)) + _padded(data))
        offset += len(parts[-1])
        name_at += len(name) + 2
    index = count.to_bytes(4, "big") + b"".join(o.to_bytes(4, "big") for o in offsets) + strings
    return (
        b"!<arch>\n"
        + _header("/", len(index)) + _padded(index)
        + _header("//", len(long_names)) + _padded(long_names)
        + b"".join(parts)
    )
