"""faabric.abi: Python implementations of the functions guests import from the host.

Today: the `faabric.*` host interface (input, output, granule index and count). It builds on
faabric.wasm's `HostFunction` contract and must not import wasmtime.
"""

from faabric.abi.faabric_io import FAABRIC_FUNCTIONS
from faabric.abi.state import GranuleIO

__all__ = ["FAABRIC_FUNCTIONS", "GranuleIO"]
