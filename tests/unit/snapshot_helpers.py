"""Shared pieces of the snapshot tests: anonymous memory regions and a tiny wasm guest."""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import wasmtime

from faabric.snapshot import memory_view

WASM_PAGE = 1 << 16

# A guest that imports its memory and writes to it: store8(addr, value) and
# fill(start, count, stride, value), which stores a byte every `stride` bytes.
GUEST_WAT = """
(module
  (import "env" "memory" (memory 1))
  (func (export "store8") (param $a i32) (param $v i32)
    (i32.store8 (local.get $a) (local.get $v)))
  (func (export "fill") (param $start i32) (param $n i32) (param $stride i32) (param $v i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (i32.store8 (local.get $start) (local.get $v))
      (local.set $start (i32.add (local.get $start) (local.get $stride)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))))
"""


@dataclass
class Region:
    """An anonymous private mapping standing in for a linear memory."""

    mapping: mmap.mmap
    view: npt.NDArray[np.uint8]

    @property
    def address(self) -> int:
        return int(self.view.ctypes.data)


@contextmanager
def anonymous(length: int) -> Iterator[Region]:
    mapping = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    # Not closed explicitly: views may outlive the block; the GC unmaps it.
    yield Region(mapping, np.frombuffer(mapping, np.uint8))


@dataclass
class Guest:
    """A wasmtime Memory with an instance of GUEST_WAT writing into it."""

    store: wasmtime.Store
    memory: wasmtime.Memory
    instance: wasmtime.Instance

    @property
    def address(self) -> int:
        import ctypes

        return ctypes.addressof(self.memory.data_ptr(self.store).contents)

    @property
    def length(self) -> int:
        return int(self.memory.data_len(self.store))

    def view(self) -> npt.NDArray[np.uint8]:
        return memory_view(self.address, self.length)

    def call(self, name: str, *args: int) -> None:
        func = self.instance.exports(self.store)[name]
        assert isinstance(func, wasmtime.Func)
        func(self.store, *args)

    def grow(self, pages: int) -> None:
        self.memory.grow(self.store, pages)


def make_guest(pages: int, maximum: int = 1024) -> Guest:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(pages, maximum)))
    module = wasmtime.Module(engine, wasmtime.wat2wasm(GUEST_WAT))
    instance = wasmtime.Instance(store, module, [memory])
    return Guest(store, memory, instance)


def random_pages(length: int, fraction: float, seed: int = 0) -> npt.NDArray[np.uint8]:
    """`length` bytes where about `fraction` of the 4 KiB pages hold random bytes."""
    rng = np.random.default_rng(seed)
    out = np.zeros(length, np.uint8)
    pages = out.reshape(-1, 4096)
    chosen = rng.random(len(pages)) < fraction
    pages[chosen] = rng.integers(0, 256, (int(chosen.sum()), 4096), dtype=np.uint8)
    return out


@dataclass
class SharedGuest:
    """A wasmtime SharedMemory (what a thread team shares) with a guest writing into it."""

    store: wasmtime.Store
    memory: wasmtime.SharedMemory
    instance: wasmtime.Instance

    @property
    def address(self) -> int:
        import ctypes

        return ctypes.addressof(self.memory.data_ptr().contents)

    @property
    def length(self) -> int:
        return int(self.memory.data_len())

    def view(self) -> npt.NDArray[np.uint8]:
        return memory_view(self.address, self.length)

    def call(self, name: str, *args: int) -> None:
        func = self.instance.exports(self.store)[name]
        assert isinstance(func, wasmtime.Func)
        func(self.store, *args)


def make_shared_guest(pages: int, maximum: int = 1024) -> SharedGuest:
    from faabric.wasm._patch import apply

    apply()  # wasmtime-py 50.0.1 cannot link a SharedMemory without it
    config = wasmtime.Config()
    config.shared_memory = True
    config.wasm_threads = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    kind = wasmtime.MemoryType(wasmtime.Limits(pages, maximum), shared=True)
    memory = wasmtime.SharedMemory(engine, kind)
    linker = wasmtime.Linker(engine)
    linker.define(store, "env", "memory", memory)
    wat = GUEST_WAT.replace('(memory 1)', '(memory 1 1024 shared)')
    instance = linker.instantiate(store, wasmtime.Module(engine, wasmtime.wat2wasm(wat)))
    return SharedGuest(store, memory, instance)
