"""Routes the atomic instructions of a program's own code through the runtime's helpers.

An OpenMP team may span hosts, each holding its own copy of memory; an atomic instruction
of the program must then be done at one home host. After a thread-capable link, each atomic
instruction (0xFE prefix) of every function not in the runtime becomes `i32.const <offset>;
call __faabric_atomic_<op>`, a helper faabric's runtime library defines (lib/omp/
atomic_route.c); `atomic.fence` becomes a plain call. An add/sub/and/or/xor whose result is
dropped calls the `_drop` variant instead when the module has it. The runtime's functions
(`keep`), the helpers themselves and the linker's own functions (`__wasm_*`, such as the
start function that initialises memory) keep their native instructions.

Every other section stays byte-for-byte the same, except that debug sections go when code
changed (their offsets would be stale), and a "faabric.atomics" custom section marks the
result, so routing twice changes nothing. This module must not compile, link or run modules.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from faabric.errors import ToolchainError
from faabric.toolchain.archive import archive_members, defined_functions
from faabric.toolchain.wasm_bytes import sleb128, uleb128
from faabric.toolchain.wasm_code import (
    FENCE,
    AtomicInstruction,
    Signature,
    WasmModule,
    atomic_instructions,
    parse_module,
)

HELPER_PREFIX = "__faabric_atomic_"
MARK_SECTION = "faabric.atomics"
_LINKER_PREFIX = "__wasm_"  # functions wasm-ld synthesises
_I32, _I64 = 0x7F, 0x7E
_CALL, _I32_CONST = 0x10, 0x41
_CUSTOM, _CODE = 0, 10


@dataclass(frozen=True, slots=True)
class Routed:
    """A module whose atomic instructions were routed, and how much changed."""

    module: bytes
    rewritten: int  # instructions replaced by calls
    functions: int  # functions changed


@dataclass(frozen=True, slots=True)
class Helper:
    """The helper an atomic instruction becomes a call to."""

    name: str
    signature: Signature
    droppable: bool = False  # an add/sub/and/or/xor: a `_drop` variant may exist


def _helper_table() -> dict[int, Helper]:
    def helper(name: str, params: tuple[int, ...], results: tuple[int, ...],
               droppable: bool = False) -> Helper:
        return Helper(HELPER_PREFIX + name, Signature(params, results), droppable)

    table = {
        0x00: helper("notify", (_I32, _I32, _I32), (_I32,)),
        0x01: helper("wait32", (_I32, _I32, _I64, _I32), (_I32,)),
        0x02: helper("wait64", (_I32, _I64, _I64, _I32), (_I32,)),
        FENCE: helper("fence", (), ()),
    }
    widths = (("i32", "", "", _I32), ("i64", "", "", _I64), ("i32", "8", "_u", _I32),
              ("i32", "16", "_u", _I32), ("i64", "8", "_u", _I64), ("i64", "16", "_u", _I64),
              ("i64", "32", "_u", _I64))
    operations = ("add", "sub", "and", "or", "xor", "xchg", "cmpxchg")
    for i, (kind, bits, unsigned, value) in enumerate(widths):
        table[0x10 + i] = helper(f"{kind}_load{bits}{unsigned}", (_I32, _I32), (value,))
        table[0x17 + i] = helper(f"{kind}_store{bits}", (_I32, value, _I32), ())
        for k, operation in enumerate(operations):
            operands = (value, value) if operation == "cmpxchg" else (value,)
            table[0x1E + 7 * k + i] = helper(f"{kind}_rmw{bits}_{operation}{unsigned}",
                                             (_I32, *operands, _I32), (value,), k < 5)
    return table


HELPERS: Mapping[int, Helper] = _helper_table()  # by sub-opcode after the 0xFE prefix


def route_atomics(module: bytes, keep: frozenset[str], *, name: str = "the module") -> Routed:
    """`module` with the atomic instructions of every function not named in `keep` (nor a
    helper, nor one of the linker's `__wasm_*`) routed through the helpers, which are found
    by name (defined or imported functions); `name` labels errors.

    Raises:
        ToolchainError: the module has no name section, lacks a helper it needs (or has one
            of the wrong type), or holds code this rewrite does not understand.
    """
    try:
        return _route(parse_module(module), keep)
    except ValueError as error:
        raise ToolchainError(f"cannot route atomics of {name}: {error}") from None


def route_atomics_file(path: Path, keep: frozenset[str]) -> Routed:
    """Route the atomics of the module at `path` in place (see `route_atomics`)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ToolchainError(f"cannot read {path}: {error.strerror}") from None
    routed = route_atomics(data, keep, name=path.name)
    if routed.module == data:
        return routed
    fd, tmp_name = tempfile.mkstemp(prefix=".atomics-", suffix=".wasm", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(routed.module)
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except OSError as error:
        raise ToolchainError(f"cannot write {path}: {error.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return routed


ROUTED_MEMBERS = frozenset({"pthread_sync.o"})  # runtime objects routed like the program


def runtime_functions(archives: Sequence[Path],
                      routed: frozenset[str] = ROUTED_MEMBERS) -> frozenset[str]:
    """Names of the functions (global and static) every object of the `archives` defines,
    except the objects named in `routed` (the program's pthread objects live in its memory:
    their words are shared data)."""
    names: set[str] = set()
    for path in archives:
        try:
            members = archive_members(path.read_bytes())
            for member, obj in members:
                if member not in routed:
                    names.update(defined_functions(obj))
        except OSError as error:
            raise ToolchainError(f"cannot read {path}: {error.strerror}") from None
        except ValueError as error:
            raise ToolchainError(f"cannot read the functions of {path.name}: {error}") from None
    return frozenset(names)


def _route(module: WasmModule, keep: frozenset[str]) -> Routed:
    if module.names is None:
        raise ValueError("the module has no name section (do not strip thread-capable builds)")
    data, helpers = module.data, _Helpers(module)
    bodies: dict[int, bytes] = {}
    rewritten = 0
    for k, (_, start, end) in enumerate(module.bodies):
        index = module.imported + k
        label = module.names.get(index)
        if label is not None and _kept(label, keep):
            continue
        if data.find(b"\xfe", start, end) < 0:
            continue
        user = label or f"#{index}"
        try:
            found = atomic_instructions(data, start, end)
        except ValueError as error:
            raise ValueError(f"function {user}: {error}") from None
        if found:
            bodies[k] = _rewrite_body(data, start, end, found, helpers, user)
            rewritten += len(found)
    code = _code_payload(module, bodies) if bodies else None
    return Routed(_assemble(module, code), rewritten, len(bodies))


def _kept(name: str, keep: frozenset[str]) -> bool:
    return name in keep or name.startswith((HELPER_PREFIX, _LINKER_PREFIX))


class _Helpers:
    """The helpers of one module by name, with their types checked once each."""

    def __init__(self, module: WasmModule) -> None:
        self._module = module
        self._by_name: dict[str, int] = {}
        for index, name in (module.names or {}).items():
            self._by_name.setdefault(name, index)
        self._checked: dict[str, int] = {}

    def has(self, name: str) -> bool:
        return name in self._by_name

    def index(self, name: str, signature: Signature, user: str) -> int:
        found = self._checked.get(name)
        if found is not None:
            return found
        index = self._by_name.get(name)
        if index is None:
            raise ValueError(f"the module does not define {name} (needed by {user})")
        actual = self._module.signature(index)
        if actual != signature:
            raise ValueError(f"{name} has type {actual}, expected {signature}")
        self._checked[name] = index
        return index


def _rewrite_body(data: bytes, start: int, end: int, found: Sequence[AtomicInstruction],
                  helpers: _Helpers, user: str) -> bytes:
    parts: list[bytes] = []
    at = start
    for instruction in found:
        code, after = _replacement(instruction, helpers, user)
        parts += [data[at : instruction.start], code]
        at = after
    parts.append(data[at:end])
    return b"".join(parts)


def _replacement(instruction: AtomicInstruction, helpers: _Helpers,
                 user: str) -> tuple[bytes, int]:
    """The code replacing `instruction`, and where the original code resumes after it."""
    if instruction.memory != 0:
        raise ValueError(f"function {user}: an atomic instruction on memory "
                         f"{instruction.memory} (only memory 0 can be routed)")
    helper = HELPERS[instruction.op]
    name, signature, end = helper.name, helper.signature, instruction.end
    if instruction.op == FENCE:
        return bytes([_CALL]) + uleb128(helpers.index(name, signature, user)), end
    if helper.droppable and instruction.then_drop and helpers.has(name + "_drop"):
        name, signature = name + "_drop", Signature(signature.params, ())
        end += 1  # the drop goes too
    offset = instruction.offset
    if offset >= 1 << 32:
        raise ValueError(f"function {user}: offset {offset} does not fit in 32 bits")
    const = offset - (1 << 32) if offset >= 1 << 31 else offset
    call = uleb128(helpers.index(name, signature, user))
    return bytes([_I32_CONST]) + sleb128(const) + bytes([_CALL]) + call, end


def _code_payload(module: WasmModule, bodies: Mapping[int, bytes]) -> bytes:
    parts = [uleb128(len(module.bodies))]
    data = module.data
    for k, (entry, _, end) in enumerate(module.bodies):
        body = bodies.get(k)
        parts.append(data[entry:end] if body is None else uleb128(len(body)) + body)
    return b"".join(parts)


def _assemble(module: WasmModule, code: bytes | None) -> bytes:
    data = module.data
    parts = [data[:8]]
    for section in module.sections:
        if section.kind == _CUSTOM and (section.name == MARK_SECTION or (
                code is not None and section.name.startswith(".debug"))):
            continue
        if section.kind == _CODE and code is not None:
            parts.append(bytes([_CODE]) + uleb128(len(code)) + code)
        else:
            parts.append(data[section.start : section.end])
    mark = uleb128(len(MARK_SECTION)) + MARK_SECTION.encode() + b"1"
    parts.append(bytes([_CUSTOM]) + uleb128(len(mark)) + mark)
    return b"".join(parts)
