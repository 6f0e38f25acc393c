"""faabric.granule: running one granule (a wasm instance of an app) on this host.

It wires faabric.wasm (sandbox) to faabric.abi (host interface) and reports GranuleResults;
it must not schedule or talk to other hosts.
"""

from faabric.granule.runner import GranuleRunner

__all__ = ["GranuleRunner"]
