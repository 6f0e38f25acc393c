"""The code of a linked wasm module: its layout, the atomic instructions and loops of a function.

`parse_module` finds the sections, function types, function names and bodies.
`atomic_instructions` and `loop_heads` walk a body's instructions; they know the immediates
of every instruction clang-16 emits for wasm32 (MVP, sign-ext, non-trapping float-to-int,
bulk memory, reference types, tail calls, 128-bit and relaxed SIMD, and threads), so that
only real instruction starts count: a 0xFE or 0x1A byte inside an immediate is not an
instruction. This module reads only: it must not rewrite code or decide which functions to
route (atomics.py does both). Malformed code and unknown opcodes raise ValueError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from faabric.toolchain.wasm_bytes import WasmReader

DROP = 0x1A
ATOMIC_PREFIX = 0xFE
FENCE = 0x03
LOOP = 0x03

_Skip = Callable[[WasmReader], None]


@dataclass(frozen=True, slots=True)
class AtomicInstruction:
    """One atomic instruction (0xFE prefix) of a function body, by offsets into the module."""

    start: int  # the 0xFE prefix
    end: int  # just past its immediates
    op: int  # the sub-opcode after the prefix
    memory: int  # the memarg's memory index (0 for atomic.fence)
    offset: int  # the memarg's constant offset (0 for atomic.fence)
    then_drop: bool  # the next instruction is `drop`


def atomic_instructions(data: bytes, start: int, end: int) -> list[AtomicInstruction]:
    """The atomic instructions of the function body at data[start:end] (locals first).

    Raises:
        ValueError: the body is truncated or holds an opcode this decoder does not know.
    """
    reader = WasmReader(data, start, end)
    for _ in range(reader.uleb()):  # local declarations: count, value type
        reader.uleb()
        reader.byte()
    found: list[AtomicInstruction] = []
    while reader.pos < end:
        at = reader.pos
        op = data[at]
        reader.pos = at + 1
        if op == ATOMIC_PREFIX:
            found.append(_atomic(reader, at))
            continue
        skip = _SKIPS[op]
        if skip is None:
            raise ValueError(f"unknown opcode 0x{op:02x} at byte {at}")
        skip(reader)
    return found


def loop_heads(data: bytes, start: int, end: int) -> tuple[int, list[int]]:
    """Where the code of the function body at data[start:end] begins (past its locals) and
    where each of its loops' code begins (just past `loop` and its block type).

    Raises:
        ValueError: the body is truncated or holds an opcode this decoder does not know.
    """
    reader = WasmReader(data, start, end)
    for _ in range(reader.uleb()):  # local declarations: count, value type
        reader.uleb()
        reader.byte()
    code = reader.pos
    heads: list[int] = []
    while reader.pos < end:
        at = reader.pos
        op = data[at]
        reader.pos = at + 1
        skip = _atomic_skip if op == ATOMIC_PREFIX else _SKIPS[op]
        if skip is None:
            raise ValueError(f"unknown opcode 0x{op:02x} at byte {at}")
        skip(reader)
        if op == LOOP:
            heads.append(reader.pos)
    return code, heads


def _atomic_skip(reader: WasmReader) -> None:
    _atomic(reader, reader.pos - 1)


def _atomic(reader: WasmReader, at: int) -> AtomicInstruction:
    op = reader.uleb()
    memory = offset = 0
    if op == FENCE:
        reader.byte()  # reserved flags
    elif op <= 0x02 or 0x10 <= op <= 0x4E:
        align = reader.uleb()
        memory = reader.uleb() if align & 0x40 else 0
        offset = reader.uleb()
    else:
        raise ValueError(f"unknown opcode 0xfe 0x{op:02x} at byte {at}")
    end = reader.pos
    then_drop = end < reader.end and reader.data[end] == DROP
    return AtomicInstruction(at, end, op, memory, offset, then_drop)


def _none(reader: WasmReader) -> None:
    pass


def _index(reader: WasmReader) -> None:
    reader.uleb()


def _two_indices(reader: WasmReader) -> None:
    reader.uleb()
    reader.uleb()


def _signed(reader: WasmReader) -> None:  # i32/i64.const; block types (0x40, a value type, s33)
    reader.sleb()


def _one_byte(reader: WasmReader) -> None:
    reader.skip(1)


def _f32(reader: WasmReader) -> None:
    reader.skip(4)


def _f64(reader: WasmReader) -> None:
    reader.skip(8)


def _memarg(reader: WasmReader) -> None:
    if reader.uleb() & 0x40:
        reader.uleb()  # memory index
    reader.uleb()


def _br_table(reader: WasmReader) -> None:
    for _ in range(reader.uleb() + 1):  # the targets, then the default
        reader.uleb()


def _typed_select(reader: WasmReader) -> None:
    reader.skip(reader.uleb())  # one byte per value type


def _bulk(reader: WasmReader) -> None:  # 0xFC: saturating truncations, bulk memory, tables
    at = reader.pos - 1
    op = reader.uleb()
    if op <= 7:
        return
    if op > 17:
        raise ValueError(f"unknown opcode 0xfc 0x{op:02x} at byte {at}")
    for _ in range(_BULK_INDICES[op - 8]):
        reader.uleb()


# immediates (indices) of 0xFC 8..17: memory.init, data.drop, memory.copy, memory.fill,
# table.init, elem.drop, table.copy, table.grow, table.size, table.fill
_BULK_INDICES = (2, 1, 2, 1, 2, 1, 2, 1, 1, 1)


def _simd(reader: WasmReader) -> None:  # 0xFD
    at = reader.pos - 1
    op = reader.uleb()
    if op <= 11 or op in (92, 93):  # loads, stores, load_zero
        _memarg(reader)
    elif op in (12, 13):  # v128.const, i8x16.shuffle
        reader.skip(16)
    elif 21 <= op <= 34:  # extract_lane, replace_lane
        reader.skip(1)
    elif 84 <= op <= 91:  # load_lane, store_lane
        _memarg(reader)
        reader.skip(1)
    elif op > 0x113:  # 0x100-0x113: relaxed SIMD, no immediates
        raise ValueError(f"unknown opcode 0xfd 0x{op:x} at byte {at}")


def _skip_table() -> tuple[_Skip | None, ...]:
    table: list[_Skip | None] = [None] * 256
    spans: list[tuple[int, int, _Skip]] = [
        (0x00, 0x01, _none),  # unreachable, nop
        (0x02, 0x04, _signed),  # block, loop, if
        (0x05, 0x05, _none),  # else
        (0x0B, 0x0B, _none),  # end
        (0x0C, 0x0D, _index),  # br, br_if
        (0x0E, 0x0E, _br_table),
        (0x0F, 0x0F, _none),  # return
        (0x10, 0x10, _index),  # call
        (0x11, 0x11, _two_indices),  # call_indirect: type, table
        (0x12, 0x12, _index),  # return_call
        (0x13, 0x13, _two_indices),  # return_call_indirect
        (0x1A, 0x1B, _none),  # drop, select
        (0x1C, 0x1C, _typed_select),
        (0x20, 0x26, _index),  # local.*, global.*, table.get/set
        (0x28, 0x3E, _memarg),  # loads and stores
        (0x3F, 0x40, _index),  # memory.size, memory.grow
        (0x41, 0x42, _signed),  # i32.const, i64.const
        (0x43, 0x43, _f32),
        (0x44, 0x44, _f64),
        (0x45, 0xC4, _none),  # numeric operators, sign extension
        (0xD0, 0xD0, _one_byte),  # ref.null: reference type
        (0xD1, 0xD1, _none),  # ref.is_null
        (0xD2, 0xD2, _index),  # ref.func
        (0xFC, 0xFC, _bulk),
        (0xFD, 0xFD, _simd),
    ]
    for first, last, skip in spans:
        table[first : last + 1] = [skip] * (last - first + 1)
    return tuple(table)


_SKIPS = _skip_table()


# --- a linked module's layout: sections, function types, names, bodies -----------------------

_CUSTOM, _TYPE, _IMPORT, _FUNCTION, _CODE = 0, 1, 2, 3, 10
_VALUE_TYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128",
                0x70: "funcref", 0x6F: "externref"}


@dataclass(frozen=True, slots=True)
class Signature:
    """A function type: value type codes (0x7F i32, 0x7E i64, ...) of params and results."""

    params: tuple[int, ...]
    results: tuple[int, ...]

    def __str__(self) -> str:
        def show(types: tuple[int, ...]) -> str:
            return ", ".join(_VALUE_TYPES.get(t, f"0x{t:02x}") for t in types)
        return f"({show(self.params)}) -> ({show(self.results)})"


@dataclass(frozen=True, slots=True)
class Section:
    """A section of a module, by offsets into it."""

    kind: int  # the section id (0: custom)
    start: int  # its id byte
    body: int  # its payload (after a custom section's name)
    end: int
    name: str = ""  # a custom section's name


@dataclass(frozen=True, slots=True)
class WasmModule:
    """What the atomics rewrite needs of a module; offsets index into `data`."""

    data: bytes
    sections: tuple[Section, ...]
    types: tuple[Signature, ...]
    function_types: tuple[int, ...]  # the type index of every function, imported ones first
    imported: int  # how many functions are imported
    bodies: tuple[tuple[int, int, int], ...]  # (entry with its size, body start, end)
    names: Mapping[int, str] | None  # function names by index; None: no name section

    def signature(self, function: int) -> Signature:
        return self.types[self.function_types[function]]


def parse_module(data: bytes) -> WasmModule:
    """The layout of a wasm module.

    Raises:
        ValueError: the bytes are not a well-formed module (or use types beyond wasm 2.0).
    """
    if data[:8] != b"\0asm\x01\0\0\0":
        raise ValueError("not a WebAssembly module")
    sections = _sections(data)
    types: tuple[Signature, ...] = ()
    imported: list[int] = []
    defined: list[int] = []
    bodies: tuple[tuple[int, int, int], ...] = ()
    names: dict[int, str] | None = None
    for section in sections:
        reader = WasmReader(data, section.body, section.end)
        if section.kind == _TYPE:
            types = tuple(_signature(reader) for _ in range(reader.uleb()))
        elif section.kind == _IMPORT:
            imported = _function_imports(reader)
        elif section.kind == _FUNCTION:
            defined = [reader.uleb() for _ in range(reader.uleb())]
        elif section.kind == _CODE:
            bodies = _bodies(reader)
        elif section.name == "name":
            names = _function_names(reader)
    if len(bodies) != len(defined):
        raise ValueError("the code and function sections disagree")
    return WasmModule(data, tuple(sections), types, (*imported, *defined), len(imported),
                      bodies, names)


def _sections(data: bytes) -> list[Section]:
    reader = WasmReader(data, 8)
    sections = []
    while reader.pos < reader.end:
        start = reader.pos
        kind = reader.byte()
        size = reader.uleb()
        body, end = reader.pos, reader.pos + size
        if end > reader.end:
            raise ValueError(f"section {kind} at byte {start} is truncated")
        name = ""
        if kind == _CUSTOM:
            inner = WasmReader(data, body, end)
            name = inner.name()
            body = inner.pos
        sections.append(Section(kind, start, body, end, name))
        reader.pos = end
    return sections


def _signature(reader: WasmReader) -> Signature:
    form = reader.byte()
    if form != 0x60:
        raise ValueError(f"unsupported type form 0x{form:02x}")
    params = tuple(reader.byte() for _ in range(reader.uleb()))
    return Signature(params, tuple(reader.byte() for _ in range(reader.uleb())))


def _function_imports(reader: WasmReader) -> list[int]:
    return [index for kind, index in import_kinds(reader) if kind == 0]


def import_kinds(reader: WasmReader) -> list[tuple[int, int]]:
    """(kind, type index) of every entry of an import section read by `reader`: kind 0 is a
    function (with its type), 1 a table, 2 a memory, 3 a global, 4 a tag (type index -1
    where there is none)."""
    entries = []
    for _ in range(reader.uleb()):
        reader.name(), reader.name()
        kind, index = reader.byte(), -1
        if kind == 0:  # function: its type
            index = reader.uleb()
        elif kind in (1, 2):  # table (reference type, limits), memory (limits)
            if kind == 1:
                reader.byte()
            if reader.byte() & 1:
                reader.uleb()
            reader.uleb()
        elif kind == 3:  # global: value type, mutability
            reader.skip(2)
        elif kind == 4:  # tag: attribute, type
            reader.byte()
            reader.uleb()
        else:
            raise ValueError(f"unknown import kind {kind}")
        entries.append((kind, index))
    return entries


def _bodies(reader: WasmReader) -> tuple[tuple[int, int, int], ...]:
    bodies = []
    for _ in range(reader.uleb()):
        entry = reader.pos
        size = reader.uleb()
        start = reader.pos
        reader.skip(size)
        bodies.append((entry, start, reader.pos))
    return tuple(bodies)


def _function_names(reader: WasmReader) -> dict[int, str]:
    names: dict[int, str] = {}
    while reader.pos < reader.end:
        kind = reader.byte()
        size = reader.uleb()
        end = reader.pos + size
        if kind == 1:  # function names
            for _ in range(reader.uleb()):
                index = reader.uleb()
                names[index] = reader.name()
        reader.pos = end
    return names
