"""faabric's benchmarks against its peers (Ray, ProcessPoolExecutor, native code).

Run with `python -m bench` (or `make bench`); see `bench/__main__.py` and
docs/performance.md. One module per benchmark family: `cluster` (faabric through the
planner), `peers` (Ray, ProcessPoolExecutor), `granule_start`, `compute` (wasm vs native
kernels in `bench/kernels/`); `common` holds timing, statistics and the table.
"""
