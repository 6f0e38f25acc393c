"""Routing the atomic instructions of user code through helpers, on modules clang-16 built.

Each module links three C files: user code with atomics of every width, helpers named
`__faabric_atomic_*` that do the operation non-atomically and count their calls, and a
"runtime" file whose functions (read back from its archive) keep their native atomics.
The rewritten module must validate, compute what the original computes, and call the
helpers exactly for the user code's instructions.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from faabric.errors import ToolchainError
from faabric.toolchain.archive import write_archive
from faabric.toolchain.atomics import (
    MARK_SECTION,
    route_atomics,
    route_atomics_file,
    runtime_functions,
)
from faabric.toolchain.driver import link_libraries
from faabric.toolchain.wasm_code import atomic_instructions, parse_module

CLANG = shutil.which("clang-16")
pytestmark = pytest.mark.skipif(CLANG is None, reason="clang-16 is not installed")

COMPILE = ["--target=wasm32-wasi", "-O2", "-matomics", "-mbulk-memory", "-msimd128"]
# no -O when linking: clang would run any wasm-opt it finds over the module
LINK = ["--target=wasm32-wasi", "-nostdlib", "-Wl,--no-entry", "-Wl,--export-all",
        "-Wl,--no-check-features"]

USER_C = r"""
#include <stdint.h>
#define SEQ __ATOMIC_SEQ_CST
struct cells { int32_t pad[3]; int32_t i32; int64_t i64; uint8_t u8; uint8_t pad2;
               uint16_t u16; uint32_t u32; };
struct cells cells;
struct cells *state(void) { return &cells; }

int32_t add32(int32_t *p, int32_t v) { return __atomic_fetch_add(p, v, SEQ); }
void add32_dropped(int32_t *p, int32_t v) { __atomic_fetch_add(p, v, SEQ); }
void or32_dropped(int32_t *p, int32_t v) { __atomic_fetch_or(p, v, SEQ); }
int32_t field_add(struct cells *c, int32_t v) { return __atomic_fetch_add(&c->i32, v, SEQ); }
int32_t global_add(int32_t v) { return __atomic_fetch_add(&cells.i32, v, SEQ); }
int64_t add64(struct cells *c, int64_t v) { return __atomic_fetch_add(&c->i64, v, SEQ); }
void sub64_dropped(struct cells *c, int64_t v) { __atomic_fetch_sub(&c->i64, v, SEQ); }
int32_t sub8(struct cells *c, int32_t v) { return __atomic_fetch_sub(&c->u8, (uint8_t)v, SEQ); }
int32_t and16(struct cells *c, int32_t v) { return __atomic_fetch_and(&c->u16, (uint16_t)v, SEQ); }
uint32_t xor32(struct cells *c, uint32_t v) { return __atomic_fetch_xor(&c->u32, v, SEQ); }
uint64_t xor32_wide(struct cells *c, uint32_t v) { return __atomic_fetch_xor(&c->u32, v, SEQ); }
int32_t load8(struct cells *c) { return __atomic_load_n(&c->u8, SEQ); }
int32_t load16(struct cells *c) { return __atomic_load_n(&c->u16, SEQ); }
int32_t load32(struct cells *c) { return __atomic_load_n(&c->i32, SEQ); }
int64_t load64(struct cells *c) { return __atomic_load_n(&c->i64, SEQ); }
uint64_t load32_wide(struct cells *c) { return __atomic_load_n(&c->u32, SEQ); }
void store8(struct cells *c, int32_t v) { __atomic_store_n(&c->u8, (uint8_t)v, SEQ); }
void store16(struct cells *c, int32_t v) { __atomic_store_n(&c->u16, (uint16_t)v, SEQ); }
void store32(struct cells *c, int32_t v) { __atomic_store_n(&c->i32, v, SEQ); }
void store64(struct cells *c, int64_t v) { __atomic_store_n(&c->i64, v, SEQ); }
int32_t cas32(struct cells *c, int32_t expected, int32_t desired) {
    return __atomic_compare_exchange_n(&c->i32, &expected, desired, 0, SEQ, SEQ) ? -1 : expected;
}
int64_t cas64(struct cells *c, int64_t expected, int64_t desired) {
    return __atomic_compare_exchange_n(&c->i64, &expected, desired, 0, SEQ, SEQ) ? -1 : expected;
}
int32_t cas8(struct cells *c, int32_t expected, int32_t desired) {
    uint8_t e = (uint8_t)expected;
    return __atomic_compare_exchange_n(&c->u8, &e, (uint8_t)desired, 0, SEQ, SEQ) ? -1 : e;
}
int32_t xchg32(struct cells *c, int32_t v) { return __atomic_exchange_n(&c->i32, v, SEQ); }
int64_t xchg64(struct cells *c, int64_t v) { return __atomic_exchange_n(&c->i64, v, SEQ); }
void fence(void) { __atomic_thread_fence(SEQ); }
int32_t no_atomics(int32_t x) { return x * 126 + 254; }  /* 0xfe bytes in immediates */
struct far { char pad[0x7ffffff0]; int32_t x; };
void far_add(struct far *f) { __atomic_fetch_add(&f->x, 1, SEQ); }  /* offset=0x7ffffff0 */
"""

HELPERS_C = r"""
#include <stdint.h>
static int64_t calls, drops;
int64_t helper_calls(void) { return calls; }
int64_t drop_calls(void) { return drops; }
#define EA(addr, off) ((uintptr_t)((uint32_t)(addr) + (uint32_t)(off)))
#define LOAD(name, T, W) T __faabric_atomic_##name(int32_t a, int32_t off) { \
    calls++; return (T)*(W *)EA(a, off); }
#define STORE(name, T, W) void __faabric_atomic_##name(int32_t a, T v, int32_t off) { \
    calls++; *(W *)EA(a, off) = (W)v; }
#define RMW(name, T, W, EXPR) T __faabric_atomic_##name(int32_t a, T v, int32_t off) { \
    calls++; W *p = (W *)EA(a, off), old = *p; *p = (W)(EXPR); return (T)old; }
#define DROP(name, T, W, EXPR) void __faabric_atomic_##name##_drop(int32_t a, T v, int32_t off) { \
    calls++; drops++; W *p = (W *)EA(a, off), old = *p; *p = (W)(EXPR); }
#define CAS(name, T, W) T __faabric_atomic_##name(int32_t a, T e, T r, int32_t off) { \
    calls++; W *p = (W *)EA(a, off), old = *p; if (old == (W)e) *p = (W)r; return (T)old; }
#define WIDTHS(M, op, EXPR) \
    M(i32_rmw_##op, int32_t, uint32_t, EXPR) M(i64_rmw_##op, int64_t, uint64_t, EXPR) \
    M(i32_rmw8_##op##_u, int32_t, uint8_t, EXPR) M(i32_rmw16_##op##_u, int32_t, uint16_t, EXPR) \
    M(i64_rmw8_##op##_u, int64_t, uint8_t, EXPR) M(i64_rmw16_##op##_u, int64_t, uint16_t, EXPR) \
    M(i64_rmw32_##op##_u, int64_t, uint32_t, EXPR)
LOAD(i32_load, int32_t, uint32_t) LOAD(i64_load, int64_t, uint64_t)
LOAD(i32_load8_u, int32_t, uint8_t) LOAD(i32_load16_u, int32_t, uint16_t)
LOAD(i64_load8_u, int64_t, uint8_t) LOAD(i64_load16_u, int64_t, uint16_t)
LOAD(i64_load32_u, int64_t, uint32_t)
STORE(i32_store, int32_t, uint32_t) STORE(i64_store, int64_t, uint64_t)
STORE(i32_store8, int32_t, uint8_t) STORE(i32_store16, int32_t, uint16_t)
STORE(i64_store8, int64_t, uint8_t) STORE(i64_store16, int64_t, uint16_t)
STORE(i64_store32, int64_t, uint32_t)
WIDTHS(RMW, add, old + v) WIDTHS(RMW, sub, old - v) WIDTHS(RMW, and, old & v)
WIDTHS(RMW, or, old | v) WIDTHS(RMW, xor, old ^ v)
/* dropped variants of add and sub only: a dropped or keeps the plain helper and its drop */
WIDTHS(DROP, add, old + v) WIDTHS(DROP, sub, old - v)
#ifndef WITHOUT_XCHG
RMW(i32_rmw_xchg, int32_t, uint32_t, v)
#endif
RMW(i64_rmw_xchg, int64_t, uint64_t, v)
CAS(i32_rmw_cmpxchg, int32_t, uint32_t) CAS(i64_rmw_cmpxchg, int64_t, uint64_t)
CAS(i32_rmw8_cmpxchg_u, int32_t, uint8_t) CAS(i32_rmw16_cmpxchg_u, int32_t, uint16_t)
int32_t __faabric_atomic_notify(int32_t a, int32_t n, int32_t off) { calls++; return 0; }
int32_t __faabric_atomic_wait32(int32_t a, int32_t e, int64_t t, int32_t off) { calls++; return 1; }
int32_t __faabric_atomic_wait64(int32_t a, int64_t e, int64_t t, int32_t off) { calls++; return 1; }
#ifdef WRONG_FENCE
int32_t __faabric_atomic_fence(int32_t x) { calls++; return x; }
#else
void __faabric_atomic_fence(void) { calls++; }
#endif
"""

RUNTIME_C = r"""
#include <stdint.h>
__attribute__((noinline)) static int32_t bump(int32_t *p, int32_t v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
int32_t runtime_add(int32_t *p, int32_t v) { return bump(p, v) + 1000; }
"""

SIMD_C = r"""
#include <stdint.h>
#include <wasm_simd128.h>
typedef float (*op_fn)(float, float);
static float mul(float a, float b) { return a * b; }
static float sub(float a, float b) { return a - b; }
op_fn ops[2] = {mul, sub};
float in[256], out[256];
uint8_t bytes[64];
int32_t counter;

__attribute__((noinline)) static int pick(int k) {
    switch (k & 7) {  /* a br_table */
    case 0: return k * 3; case 1: return k ^ 17; case 2: return k + 254; case 3: return k << 7;
    case 4: return -k; case 5: return k % 0x1a; default: return (int)out[k];
    }
}

int64_t mix(int n) {
    for (int i = 0; i < 256; i++) in[i] = (float)i * 0.5f + 1.25f;
    for (int i = 0; i < 256; i++) out[i] = in[i] * 2.0f + in[255 - i];
    __builtin_memcpy(bytes, out, 32 + ((unsigned)n & 31));
    __builtin_memset(bytes + 8, 0xfe, (unsigned)n & 31);
    v128_t a = wasm_v128_load(in), b = wasm_f32x4_splat(3.0f);
    v128_t s = wasm_i8x16_shuffle(a, b, 0, 17, 2, 19, 4, 21, 6, 23, 8, 25, 10, 27, 12, 29, 14, 31);
    v128_t c = wasm_v128_load32_lane(&counter, wasm_i32x4_const(1, 254, 126, 0x1a), 2);
    v128_t z = wasm_v128_load32_zero(&in[4]);
    v128_t x = wasm_i32x4_add(wasm_v128_xor(s, c), z);
    wasm_v128_store8_lane(&bytes[60], x, 3);
    int64_t acc = wasm_i32x4_extract_lane(x, 1) + wasm_i8x16_extract_lane(x, 5);
    acc += (int64_t)(ops[n & 1](out[3], 1.5f) * 100.0) + 0x1a1a1a1a1a1aLL;
    __atomic_fetch_add(&counter, pick(n) + 0xfe, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&counter, 0x1a, __ATOMIC_SEQ_CST);
    acc += __atomic_load_n(&counter, __ATOMIC_SEQ_CST) * (n > 3 ? 7 : 9);
    for (int i = 0; i < 64; i++) acc += bytes[i] * (i + 1);
    return acc + (double)out[n & 255] * 1e-3;
}
"""


def _compile(source: str, path: Path, *flags: str) -> Path:
    path.write_text(source)
    obj = path.with_suffix(".o")
    subprocess.run([str(CLANG), *COMPILE, *flags, "-c", str(path), "-o", str(obj)], check=True)
    return obj


def _link(objects: list[Path], target: Path, *flags: str) -> bytes:
    subprocess.run([str(CLANG), *LINK, *flags, *map(str, objects), "-o", str(target)],
                   check=True)
    return target.read_bytes()


class Built:
    """The test modules, built once per test module."""

    def __init__(self, root: Path) -> None:
        user = _compile(USER_C, root / "user.c")
        helpers = _compile(HELPERS_C, root / "helpers.c")
        runtime = _compile(RUNTIME_C, root / "runtime.c")
        write_archive([runtime], root / "libruntime.a")
        self.archive = root / "libruntime.a"
        self.keep = runtime_functions([self.archive])
        self.module = _link([user, helpers, runtime], root / "app.wasm")
        self.stripped = _link([user, helpers, runtime], root / "stripped.wasm",
                              "-Wl,--strip-all")
        missing = _compile(HELPERS_C, root / "missing.c", "-DWITHOUT_XCHG")
        self.missing = _link([user, missing, runtime], root / "missing.wasm")
        wrong = _compile(HELPERS_C, root / "wrong.c", "-DWRONG_FENCE")
        self.wrong = _link([user, wrong, runtime], root / "wrong.wasm")
        debug = _compile(USER_C, root / "debug.c", "-g")
        self.debug = _link([debug, helpers, runtime], root / "debug.wasm")
        simd = _compile(SIMD_C, root / "simd.c")
        self.simd = _link([simd, helpers], root / "simd.wasm")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return Built(tmp_path_factory.mktemp("atomics"))


class Instance:
    """A module instantiated without imports, its exports called by name."""

    def __init__(self, module: bytes) -> None:
        config = wasmtime.Config()
        config.wasm_threads = True
        engine = wasmtime.Engine(config)
        self.store = wasmtime.Store(engine)
        self.exports = wasmtime.Instance(self.store, wasmtime.Module(engine, module), []).exports(
            self.store)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        func = self.exports[name]
        assert isinstance(func, wasmtime.Func)
        return lambda *args: func(self.store, *args)

    def memory(self, start: int, size: int) -> bytes:
        memory = self.exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        return bytes(memory.read(self.store, start, start + size))


def _exercise(app: Instance) -> list[Any]:
    """Every user function, in an order whose results depend on the earlier calls."""
    c = app.state()
    p = c + 12
    return [
        app.add32(p, 5), app.add32_dropped(p, 7), app.or32_dropped(p, 0x100),
        app.field_add(c, 3), app.global_add(-20), app.add64(c, 1 << 40),
        app.sub64_dropped(c, 9), app.sub8(c, 1), app.and16(c, 0x0F0F), app.xor32(c, 0xFFFF0000),
        app.xor32_wide(c, 0x12345678), app.store8(c, 0xAB), app.store16(c, 0xBEEF),
        app.store32(c, -77), app.store64(c, -(1 << 50)), app.load8(c), app.load16(c),
        app.load32(c), app.load64(c), app.load32_wide(c), app.cas32(c, 1, 2),
        app.cas32(c, -77, 5), app.cas64(c, -(1 << 50), 11), app.cas8(c, 0xAB, 0x11),
        app.xchg32(c, 42), app.xchg64(c, 43), app.fence(), app.no_atomics(3),
        app.runtime_add(p, 1000), app.memory(c, 32),
    ]


def test_routed_module_computes_what_the_original_does(built: Built) -> None:
    routed = route_atomics(built.module, built.keep)
    original, app = Instance(built.module), Instance(routed.module)
    assert _exercise(app) == _exercise(original)
    assert original.helper_calls() == 0
    # one instruction in each of 27 user functions (far_add is not run); cas32 ran twice,
    # runtime_add calls none
    assert routed.rewritten == routed.functions == 27
    assert app.helper_calls() == 27
    assert app.drop_calls() == 2  # add32_dropped and sub64_dropped; or32_dropped has no _drop


def test_offsets_pass_as_i32_those_of_2_gib_or_more_negative(built: Built) -> None:
    module = parse_module(built.module)
    assert module.names is not None
    index = next(i for i, name in module.names.items() if name == "far_add")
    _, start, end = module.bodies[index - module.imported]
    memarg = bytes.fromhex("f0 ff ff ff 07")  # offset=0x7ffffff0
    at = module.data.index(memarg, start, end)
    routed = route_atomics(built.module, built.keep).module
    # the same offset as i32.const, then the call
    assert bytes.fromhex("41 f0 ff ff ff 07 10") in routed
    # offset=0x8ffffff0 (same length), passed as -0x70000010
    patched = module.data[: at + 4] + b"\x08" + module.data[at + 5 :]
    assert bytes.fromhex("41 f0 ff ff ff 78 10") in route_atomics(patched, built.keep).module


def test_runtime_functions_include_static_ones_and_keep_their_atomics(built: Built) -> None:
    assert built.keep == {"bump", "runtime_add"}
    routed = parse_module(route_atomics(built.module, built.keep).module)
    assert routed.names is not None
    for k, (_, start, end) in enumerate(routed.bodies):
        name = routed.names[routed.imported + k]
        found = atomic_instructions(routed.data, start, end)
        assert bool(found) == (name == "bump"), name


def test_routing_twice_changes_nothing(built: Built) -> None:
    once = route_atomics(built.module, built.keep)
    twice = route_atomics(once.module, built.keep)
    assert (twice.module, twice.rewritten, twice.functions) == (once.module, 0, 0)


def test_the_result_is_marked(built: Built) -> None:
    for module in (route_atomics(built.module, built.keep).module,
                   route_atomics(built.module, frozenset({"nothing"})).module):
        last = parse_module(module).sections[-1]
        assert (last.name, module[last.body : last.end]) == (MARK_SECTION, b"1")
        assert [s.name for s in parse_module(module).sections].count(MARK_SECTION) == 1


def test_debug_sections_go_when_code_changes(built: Built) -> None:
    names = [s.name for s in parse_module(built.debug).sections]
    assert ".debug_info" in names and "name" in names
    routed = route_atomics(built.debug, built.keep).module
    left = [s.name for s in parse_module(routed).sections]
    assert not [name for name in left if name.startswith(".debug")]
    assert "name" in left
    Instance(routed)


def test_a_stripped_module_is_refused(built: Built) -> None:
    with pytest.raises(ToolchainError, match=r"^cannot route atomics of the module: the module "
                       r"has no name section \(do not strip thread-capable builds\)$"):
        route_atomics(built.stripped, built.keep)


def test_a_missing_or_mistyped_helper_is_named(built: Built) -> None:
    with pytest.raises(ToolchainError, match=r"^cannot route atomics of app\.wasm: the module "
                       r"does not define __faabric_atomic_i32_rmw_xchg \(needed by xchg32\)$"):
        route_atomics(built.missing, built.keep, name="app.wasm")
    with pytest.raises(ToolchainError, match=r"__faabric_atomic_fence has type \(i32\) -> "
                                             r"\(i32\), expected \(\) -> \(\)$"):
        route_atomics(built.wrong, built.keep)


def test_simd_and_bulk_memory_code_decodes_and_still_runs(built: Built) -> None:
    routed = route_atomics(built.simd, frozenset())
    assert routed.functions == 1 and routed.rewritten >= 3
    original, app = Instance(built.simd), Instance(routed.module)
    assert [app.mix(n) for n in range(9)] == [original.mix(n) for n in range(9)]
    assert app.helper_calls() == 9 * routed.rewritten
    assert app.drop_calls() == 9 * 2
    module = parse_module(built.simd)
    for _, start, end in module.bodies:  # every body decodes, not only those with 0xfe
        atomic_instructions(module.data, start, end)


def test_unknown_opcodes_name_the_function(built: Built) -> None:
    module = parse_module(built.module)
    assert module.names is not None
    index = next(i for i, name in module.names.items() if name == "add32")
    _, start, _ = module.bodies[index - module.imported]
    assert module.data[start : start + 2] == b"\x00\x20"  # no locals; local.get
    broken = module.data[:start + 1] + b"\x06" + module.data[start + 2 :]  # try (exceptions)
    with pytest.raises(ToolchainError, match=rf"function add32: unknown opcode 0x06 at byte "
                                             rf"{start + 1}$"):
        route_atomics(broken, built.keep)


def test_a_file_is_routed_in_place(built: Built, tmp_path: Path) -> None:
    path = tmp_path / "app.wasm"
    path.write_bytes(built.module)
    path.chmod(0o755)
    routed = route_atomics_file(path, built.keep)
    assert path.read_bytes() == routed.module
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["app.wasm"]
    stripped = tmp_path / "stripped.wasm"
    stripped.write_bytes(built.stripped)
    with pytest.raises(ToolchainError, match=r"^cannot route atomics of stripped\.wasm: "):
        route_atomics_file(stripped, built.keep)
    assert stripped.read_bytes() == built.stripped


def test_decoding_300_kb_of_code_takes_well_under_a_second(built: Built) -> None:
    module = parse_module(built.simd)
    code = sum(end - start for _, start, end in module.bodies)
    started = time.perf_counter()
    for _ in range(300_000 // code + 1):  # every body, not only those holding a 0xfe byte
        for _, start, end in module.bodies:
            atomic_instructions(module.data, start, end)
    assert time.perf_counter() - started < 0.5


def test_the_runtime_keeps_its_atomics_but_pthread_objects_are_routed(tmp_path: Path) -> None:
    archives = link_libraries(["-fopenmp", "x.c"], tmp_path)
    keep = runtime_functions(archives)
    assert {"fth_lock", "fth_wait", "__kmpc_barrier"} <= keep
    assert not {"pthread_mutex_lock", "pthread_cond_wait", "pthread_once"} & keep
