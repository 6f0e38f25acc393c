"""Stop checks: how a running instance is stopped from another thread without epochs.

wasmtime's epoch interruption checks the epoch on every loop back-edge and function entry,
and the out-of-line call it adds on the slow path makes Cranelift spill the loop's float and
vector values around it: naive dgemm ran 3.7 times slower with it than without. Instead, faabric
adds its own check to every module before compiling it: a one-page memory of its own,
exported as `STOP_EXPORT`, and at the start of every function and every loop

    (if (i32.atomic.load (memory STOP) (i32.const 0)) (then unreachable))

The check traps instead of calling out, so nothing is spilled: it costs a load and a
branch. The host writes a nonzero word there (`raise_stop`) to make the instance trap at its
next function entry or loop iteration. The memory is the module's last, so no index of the
module's own memories changes, and its code cannot reach it. A start function would run
while the instance is made, before anyone can stop it: it is exported as `START_EXPORT`
instead, for the launcher to call once the instance is watched. This module only rewrites bytes
and writes the flag; who decides to stop an instance is interrupt.py and the launcher's.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

from faabric.toolchain.wasm_bytes import WasmReader, uleb128
from faabric.toolchain.wasm_code import Section, import_kinds, loop_heads, parse_module

STOP_EXPORT = "faabric:stop"
START_EXPORT = "faabric:start"  # the module's start function, if it had one
REWRITE_VERSION = "stop-checks-1"  # part of the engine fingerprint of compiled modules

_IMPORT, _MEMORY, _EXPORT, _START, _CODE = 2, 5, 7, 8, 10
_FUNCTION_KIND = 0
# section ids in the order a module holds them (13: tags, 12: data count)
_ORDER = (1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11)
_MEMORY_KIND = 2
_ONE_PAGE = bytes([0x01, 0x01, 0x01])  # limits: has a maximum, minimum 1, maximum 1


def check_code(memory: int) -> bytes:
    """The check on memory `memory`: trap if its first word is not zero."""
    memarg = bytes([0x02, 0x00]) if memory == 0 else bytes([0x42, *uleb128(memory), 0x00])
    return bytes([0x41, 0x00, 0xFE, 0x10, *memarg, 0x04, 0x40, 0x00, 0x0B])


def add_stop_checks(data: bytes) -> bytes:
    """`data` with a stop memory, exported as `STOP_EXPORT`, checked at the start of every
    function and loop; its start function, if any, is exported as `START_EXPORT` instead.

    Raises:
        ValueError: the module is malformed, uses instructions the decoder does not know, or
            already exports `STOP_EXPORT`.
    """
    module = parse_module(data)
    sections = module.sections
    memory = _memory_count(data, sections)
    check = check_code(memory)
    replaced: dict[int, bytes] = {}
    added: dict[int, bytes] = {}
    exports = [_export_entry(STOP_EXPORT, _MEMORY_KIND, memory)]
    start = _find(sections, _START)
    if start is not None:
        function = WasmReader(data, start.body, start.end).uleb()
        exports.append(_export_entry(START_EXPORT, _FUNCTION_KIND, function))
        replaced[start.start] = b""
    for kind, entries in ((_MEMORY, [_ONE_PAGE]), (_EXPORT, exports)):
        found = _find(sections, kind)
        if found is None:
            added[kind] = _section(kind, uleb128(len(entries)) + b"".join(entries))
        else:
            if kind == _EXPORT and _exports_name(data, found, (STOP_EXPORT, START_EXPORT)):
                raise ValueError(f"the module already exports {STOP_EXPORT} or {START_EXPORT}")
            replaced[found.start] = _append_entries(data, found, entries)
    code = _find(sections, _CODE)
    if code is not None:
        bodies = [_checked_body(data, start, end, check) for _, start, end in module.bodies]
        replaced[code.start] = _section(_CODE, uleb128(len(bodies)) + b"".join(bodies))
    return _assemble(data, sections, replaced, added)


def raise_stop(address: int) -> None:
    """Make the instance whose stop memory starts at host `address` trap at its next check."""
    ctypes.c_int32.from_address(address).value = 1


def _checked_body(data: bytes, start: int, end: int, check: bytes) -> bytes:
    code, heads = loop_heads(data, start, end)
    out = bytearray(data[start:code])
    last = code
    for at in (code, *heads):
        out += data[last:at]
        out += check
        last = at
    out += data[last:end]
    return uleb128(len(out)) + bytes(out)


def _memory_count(data: bytes, sections: Sequence[Section]) -> int:
    """How many memories the module imports and defines."""
    count = 0
    found = _find(sections, _MEMORY)
    if found is not None:
        count += WasmReader(data, found.body, found.end).uleb()
    imports = _find(sections, _IMPORT)
    if imports is not None:
        kinds = import_kinds(WasmReader(data, imports.body, imports.end))
        count += sum(kind == _MEMORY_KIND for kind, _ in kinds)
    return count


def _exports_name(data: bytes, section: Section, names: tuple[str, ...]) -> bool:
    reader = WasmReader(data, section.body, section.end)
    for _ in range(reader.uleb()):
        if reader.name() in names:
            return True
        reader.byte()
        reader.uleb()
    return False


def _export_entry(name: str, kind: int, index: int) -> bytes:
    encoded = name.encode()
    return uleb128(len(encoded)) + encoded + bytes([kind]) + uleb128(index)


def _append_entries(data: bytes, section: Section, entries: Sequence[bytes]) -> bytes:
    """`section` (a vector section) with `entries` added at its end."""
    reader = WasmReader(data, section.body, section.end)
    count = reader.uleb()
    payload = uleb128(count + len(entries)) + data[reader.pos : section.end] + b"".join(entries)
    return _section(section.kind, payload)


def _section(kind: int, payload: bytes) -> bytes:
    return bytes([kind]) + uleb128(len(payload)) + payload


def _find(sections: Sequence[Section], kind: int) -> Section | None:
    return next((s for s in sections if s.kind == kind), None)


def _assemble(
    data: bytes, sections: Sequence[Section], replaced: dict[int, bytes], added: dict[int, bytes]
) -> bytes:
    """The module with sections `replaced` (by start) and new sections `added` (by id), each
    new one before the first known section that must follow it."""
    out = bytearray(data[:8])
    pending = dict(added)
    for section in sections:
        if section.kind:
            due = [k for k in pending if _ORDER.index(k) < _ORDER.index(section.kind)]
            for kind in sorted(due, key=_ORDER.index):
                out += pending.pop(kind)
        out += replaced.get(section.start, data[section.start : section.end])
    for kind in sorted(pending, key=_ORDER.index):
        out += pending[kind]
    return bytes(out)
