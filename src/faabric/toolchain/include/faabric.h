/*
 * faabric.h: the host interface a faabric granule can call.
 *
 * Every function here is imported from the WebAssembly import module "faabric"
 * and implemented by the faabric worker that runs the granule. Build with
 * `faabric cc` / `faabric c++`, which put this header on the include path.
 *
 * A granule is one instance of an app's module. An app of size N runs N granules,
 * numbered 0..N-1; all of them receive the same input bytes, and each one has its
 * own output buffer that the client gets back with the granule's result.
 */
#ifndef FAABRIC_H
#define FAABRIC_H

#ifdef __cplusplus
extern "C" {
#endif

#define FAABRIC_IMPORT(name) \
    __attribute__((import_module("faabric"), import_name(name)))

/* Size in bytes of the app's input (0 when the client sent none). */
FAABRIC_IMPORT("faabric_input_size")
int faabric_input_size(void);

/*
 * Copies up to `len` bytes of the input, from its beginning, into `buf`.
 * Returns the number of bytes copied: min(len, faabric_input_size()).
 * A `buf` that does not lie inside the granule's memory stops the granule.
 */
FAABRIC_IMPORT("faabric_read_input")
int faabric_read_input(void *buf, int len);

/*
 * Appends `len` bytes from `buf` to the granule's output. Calls accumulate:
 * the result carries the concatenation of every write, in order.
 */
FAABRIC_IMPORT("faabric_write_output")
void faabric_write_output(const void *buf, int len);

/* This granule's index within its app, from 0 to faabric_granule_count() - 1. */
FAABRIC_IMPORT("faabric_granule_index")
int faabric_granule_index(void);

/* The number of granules in the app (its size). */
FAABRIC_IMPORT("faabric_granule_count")
int faabric_granule_count(void);

#undef FAABRIC_IMPORT

/*
 * A migration point: in an MPI program, every rank of MPI_COMM_WORLD must call it at the
 * same place (as for a collective); the runtime may then move ranks to other hosts, where
 * they carry on from this call with all their state. Returns 1 if ranks moved, else 0.
 * MPI_Barrier on MPI_COMM_WORLD is a migration point too. Outside MPI (before MPI_Init,
 * after MPI_Finalize, or in a program that does not use MPI) it does nothing and returns 0.
 */
int faabric_migration_point(void);

#ifdef __cplusplus
}
#endif

#endif /* FAABRIC_H */
