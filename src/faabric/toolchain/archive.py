"""Static archives (`.a`) of wasm32 object files, with the symbol index wasm-ld requires.

Debian's wasm toolchain has no llvm-ar-16, so faabric writes the GNU `ar` format itself: a
symbol index ("/" member) listing every global symbol each object defines, read from the
object's "linking" section, then the members. The output is deterministic (zero dates and
ids). It also reads such archives back (their members, and the functions objects define).
This module must not run compilers or know which libraries exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from faabric.errors import ToolchainError
from faabric.toolchain.wasm_bytes import WasmReader

_MAGIC = b"\0asm"
_AR_MAGIC = b"!<arch>\n"
_CUSTOM = 0
_SYMBOL_TABLE = 8
_FUNCTION, _DATA, _GLOBAL, _SECTION, _TAG, _TABLE = range(6)
_LOCAL = 0x2
_UNDEFINED = 0x10
_EXPLICIT_NAME = 0x40


def defined_symbols(obj: bytes) -> list[str]:
    """Names of the global symbols a wasm relocatable object defines (in table order)."""
    return [name for _, flags, name in _symbols(obj)
            if name and not flags & (_UNDEFINED | _LOCAL)]


def defined_functions(obj: bytes) -> list[str]:
    """Names of the functions a wasm relocatable object defines, global and local (static)."""
    return [name for kind, flags, name in _symbols(obj)
            if kind == _FUNCTION and name and not flags & _UNDEFINED]


def _symbols(obj: bytes) -> list[tuple[int, int, str]]:
    """(kind, flags, name) of each entry of the object's symbol table; name "" if it has none."""
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


def _linking_symbols(reader: WasmReader) -> list[tuple[int, int, str]]:
    reader.uleb()  # linking metadata version
    while reader.pos < reader.end:
        kind = reader.byte()
        size = reader.uleb()
        if kind == _SYMBOL_TABLE:
            return _symbol_table(reader)
        reader.pos += size
    return []


def _symbol_table(reader: WasmReader) -> list[tuple[int, int, str]]:
    symbols = []
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
        symbols.append((kind, flags, name))
    return symbols


def archive_members(data: bytes) -> list[tuple[str, bytes]]:
    """(name, bytes) of each member of a GNU ar archive, without its symbol index ("/") and
    long-names table ("//"); long names ("/<offset>") are resolved.

    Raises:
        ValueError: the bytes are not such an archive.
    """
    if not data.startswith(_AR_MAGIC):
        raise ValueError("not an ar archive")
    members: list[tuple[str, bytes]] = []
    long_names = b""
    pos = len(_AR_MAGIC)
    while pos < len(data):
        header = data[pos : pos + 60]
        if len(header) < 60 or header[58:60] != b"`\n":
            raise ValueError(f"bad member header at byte {pos}")
        name, size = header[:16].decode().rstrip(), int(header[48:58])
        body = data[pos + 60 : pos + 60 + size]
        if len(body) < size:
            raise ValueError(f"truncated member at byte {pos}")
        pos += 60 + size + size % 2
        if name == "//":
            long_names = body
        elif name.startswith("/") and name[1:].isdigit():
            start = int(name[1:])
            members.append((long_names[start : long_names.index(b"/\n", start)].decode(), body))
        elif name not in ("/", "/SYM64/"):
            members.append((name.removesuffix("/"), body))
    return members


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
        _AR_MAGIC
        + _header("/", len(index)) + _padded(index)
        + _header("//", len(long_names)) + _padded(long_names)
        + b"".join(parts)
    )
