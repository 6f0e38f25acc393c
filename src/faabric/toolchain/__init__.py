"""faabric.toolchain: C/C++ to wasm32-wasi with faabric's headers (`faabric cc`, cached builds).

Only compiles; it never loads or runs modules (that is faabric.wasm).
"""

from faabric.toolchain.builder import build, default_flags_for
from faabric.toolchain.driver import cc_main

__all__ = ["build", "cc_main", "default_flags_for"]
