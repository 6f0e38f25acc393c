/*
 * omp_shim.c: storage clang's OpenMP lowering expects the runtime to provide.
 *
 * `#pragma omp ... reduction` makes clang reference the data symbol
 * `.gomp_critical_user_.reduction.var` (the lock name of the reduction's critical
 * section). There is no libomp in a wasm build, and with `--allow-undefined`
 * wasm-ld would silently place that symbol at address 0, so define it here.
 */
int faabric_omp_reduction_lock[8] __asm__(".gomp_critical_user_.reduction.var");
