"""faabric.threads: the host side of guest threads (pthreads and OpenMP teams).

The guest runtime (toolchain/lib/omp) does everything with wasm atomics except starting a
thread; `thread_functions` are the few host functions it imports for that. This package
must not import wasmtime: the wasm layer's `Threads` does the instantiating.
"""

from faabric.threads.host import IMPORT_MODULE, ThreadPolicy, ThreadSpawner, thread_functions

__all__ = ["IMPORT_MODULE", "ThreadPolicy", "ThreadSpawner", "thread_functions"]
