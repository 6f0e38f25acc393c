"""faabric.abi: Python implementations of the functions guests import from the host.

Today: the `faabric.*` host interface (input, output, granule index and count), the MPI
host interface (`faabric_mpi.*`) and the guest's clocks (WASI `clock_time_get`). It builds on
faabric.wasm's `HostFunction` contract and must not import wasmtime.
"""

from faabric.abi.clock import CLOCK_FUNCTIONS
from faabric.abi.faabric_io import FAABRIC_FUNCTIONS
from faabric.abi.state import GranuleIO

__all__ = ["CLOCK_FUNCTIONS", "FAABRIC_FUNCTIONS", "GranuleIO"]
