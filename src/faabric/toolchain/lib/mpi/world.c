/* The MPI environment: initialisation, finalisation, abort, clocks, names and versions.
 *
 * This file owns the "initialised" and "finalised" flags; it must not hold communicator or
 * request state (comm.c and request.c do).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fm_internal.h"

static int initialised;
static int finalised;
static int thread_level = MPI_THREAD_SINGLE;

int fm_initialised(void) { return initialised; }
int fm_finalised(void) { return finalised; }

int MPI_Init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (initialised) {
        fprintf(stderr, "faabric MPI: MPI_Init called twice\n");
        fflush(stderr);
        fm_abort(1);
    }
    fmpi_init();
    if (fm_world_setup() != MPI_SUCCESS) {
        fprintf(stderr, "faabric MPI: MPI_Init: out of memory\n");
        fflush(stderr);
        fm_abort(1);
    }
    initialised = 1;
    return MPI_SUCCESS;
}

int MPI_Init_thread(int *argc, char ***argv, int required, int *provided) {
    int err = MPI_Init(argc, argv);
    /* A rank is one wasm instance; MPI calls from other threads of it are not supported. */
    thread_level = required < MPI_THREAD_FUNNELED ? required : MPI_THREAD_FUNNELED;
    if (thread_level < MPI_THREAD_SINGLE)
        thread_level = MPI_THREAD_SINGLE;
    if (provided != NULL)
        *provided = thread_level;
    return err;
}

int MPI_Query_thread(int *provided) {
    if (provided == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Query_thread");
    *provided = thread_level;
    return MPI_SUCCESS;
}

int MPI_Is_thread_main(int *flag) {
    if (flag == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Is_thread_main");
    *flag = 1;
    return MPI_SUCCESS;
}

int MPI_Initialized(int *flag) {
    if (flag == NULL)
        return MPI_ERR_ARG;
    *flag = initialised;
    return MPI_SUCCESS;
}

int MPI_Finalized(int *flag) {
    if (flag == NULL)
        return MPI_ERR_ARG;
    *flag = finalised;
    return MPI_SUCCESS;
}

int MPI_Finalize(void) {
    int err = fm_check_init("MPI_Finalize");
    if (err != MPI_SUCCESS)
        return err;
    fm_requests_drain();
    fmpi_finalize();
    finalised = 1;
    return MPI_SUCCESS;
}

_Noreturn void fm_abort(int code) {
    fmpi_abort(code);
    _Exit(code);
}

int MPI_Abort(MPI_Comm comm, int errorcode) {
    (void)comm; /* MPI allows aborting every process; faabric always ends the whole app */
    fflush(stdout);
    fflush(stderr);
    fm_abort(errorcode);
    return MPI_SUCCESS;
}

double MPI_Wtime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double MPI_Wtick(void) {
    struct timespec ts;
    if (clock_getres(CLOCK_MONOTONIC, &ts) != 0 || (ts.tv_sec == 0 && ts.tv_nsec == 0))
        return 1e-9;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int MPI_Get_processor_name(char *name, int *resultlen) {
    int err = fm_check_init("MPI_Get_processor_name");
    if (err != MPI_SUCCESS)
        return err;
    if (name == NULL || resultlen == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Get_processor_name");
    int full = fmpi_processor_name(name, MPI_MAX_PROCESSOR_NAME - 1);
    int len = full < MPI_MAX_PROCESSOR_NAME - 1 ? full : MPI_MAX_PROCESSOR_NAME - 1;
    name[len] = '\0';
    *resultlen = len;
    return MPI_SUCCESS;
}

int MPI_Get_version(int *version, int *subversion) {
    if (version == NULL || subversion == NULL)
        return MPI_ERR_ARG;
    *version = MPI_VERSION;
    *subversion = MPI_SUBVERSION;
    return MPI_SUCCESS;
}

int MPI_Get_library_version(char *version, int *resultlen) {
    static const char text[] = "faabric MPI (MPI 3.1 subset over WebAssembly)";
    if (version == NULL || resultlen == NULL)
        return MPI_ERR_ARG;
    memcpy(version, text, sizeof text);
    *resultlen = (int)sizeof text - 1;
    return MPI_SUCCESS;
}

int MPI_Alloc_mem(MPI_Aint size, MPI_Info info, void *baseptr) {
    if (size < 0 || baseptr == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Alloc_mem");
    if (info != MPI_INFO_NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_INFO, "MPI_Alloc_mem");
    void *mem = fm_alloc((size_t)size);
    if (mem == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_NO_MEM, "MPI_Alloc_mem");
    memcpy(baseptr, &mem, sizeof mem);
    return MPI_SUCCESS;
}

int MPI_Free_mem(void *base) {
    free(base);
    return MPI_SUCCESS;
}

int MPI_Get_address(const void *location, MPI_Aint *address) {
    if (address == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Get_address");
    *address = (MPI_Aint)(uintptr_t)location;
    return MPI_SUCCESS;
}

MPI_Aint MPI_Aint_add(MPI_Aint base, MPI_Aint disp) { return base + disp; }

MPI_Aint MPI_Aint_diff(MPI_Aint addr1, MPI_Aint addr2) { return addr1 - addr2; }
