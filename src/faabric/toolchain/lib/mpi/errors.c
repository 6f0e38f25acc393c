/* Error classes, their texts and error handlers (MPI_ERRORS_ARE_FATAL, MPI_ERRORS_RETURN and
 * handlers made by MPI_Comm_create_errhandler).
 *
 * The fatal handler prints one line naming the call and the error, then ends the app through
 * fmpi_abort(1). Nothing here may swallow an error: every raise reaches a handler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

#define FM_MAX_HANDLERS 64

static const char *const texts[] = {
    [MPI_SUCCESS] = "no error",
    [MPI_ERR_BUFFER] = "invalid buffer pointer",
    [MPI_ERR_COUNT] = "invalid count argument",
    [MPI_ERR_TYPE] = "invalid datatype",
    [MPI_ERR_TAG] = "invalid tag",
    [MPI_ERR_COMM] = "invalid communicator",
    [MPI_ERR_RANK] = "invalid rank",
    [MPI_ERR_REQUEST] = "invalid request",
    [MPI_ERR_ROOT] = "invalid root",
    [MPI_ERR_GROUP] = "invalid group",
    [MPI_ERR_OP] = "invalid reduce operation",
    [MPI_ERR_TOPOLOGY] = "invalid communicator topology",
    [MPI_ERR_DIMS] = "invalid topology dimension",
    [MPI_ERR_ARG] = "invalid argument",
    [MPI_ERR_UNKNOWN] = "unknown error",
    [MPI_ERR_TRUNCATE] = "message truncated",
    [MPI_ERR_OTHER] = "other error",
    [MPI_ERR_INTERN] = "internal error",
    [MPI_ERR_IN_STATUS] = "error code is in status",
    [MPI_ERR_PENDING] = "pending request",
    [MPI_ERR_NO_MEM] = "out of memory",
    [MPI_ERR_INFO] = "invalid info object",
    [MPI_ERR_KEYVAL] = "invalid attribute key",
    [MPI_ERR_ERRHANDLER] = "invalid error handler",
    [MPI_ERR_WIN] = "invalid window",
    [MPI_ERR_FILE] = "invalid file",
    [MPI_ERR_SPAWN] = "spawn failed",
    [MPI_ERR_UNSUPPORTED_OPERATION] = "operation not supported",
    [MPI_ERR_RMA_SYNC] = "invalid RMA synchronization",
    [MPI_ERR_RMA_RANGE] = "target memory is not part of the window",
    [MPI_ERR_DISP] = "invalid displacement",
    [MPI_ERR_LOCKTYPE] = "invalid lock type",
    [MPI_ERR_ASSERT] = "invalid assertion",
};

static const char *const names[] = {
    "MPI_SUCCESS", "MPI_ERR_BUFFER", "MPI_ERR_COUNT", "MPI_ERR_TYPE", "MPI_ERR_TAG",
    "MPI_ERR_COMM", "MPI_ERR_RANK", "MPI_ERR_REQUEST", "MPI_ERR_ROOT", "MPI_ERR_GROUP",
    "MPI_ERR_OP", "MPI_ERR_TOPOLOGY", "MPI_ERR_DIMS", "MPI_ERR_ARG", "MPI_ERR_UNKNOWN",
    "MPI_ERR_TRUNCATE", "MPI_ERR_OTHER", "MPI_ERR_INTERN", "MPI_ERR_IN_STATUS",
    "MPI_ERR_PENDING", "MPI_ERR_NO_MEM", "MPI_ERR_INFO", "MPI_ERR_KEYVAL",
    "MPI_ERR_ERRHANDLER", "MPI_ERR_WIN", "MPI_ERR_FILE", "MPI_ERR_SPAWN",
    "MPI_ERR_UNSUPPORTED_OPERATION", "MPI_ERR_RMA_SYNC", "MPI_ERR_RMA_RANGE", "MPI_ERR_DISP",
    "MPI_ERR_LOCKTYPE", "MPI_ERR_ASSERT",
};

/* User handlers; slots 0..2 are NULL, fatal and return. refs == 0 marks a free slot. */
static MPI_Comm_errhandler_function *user_fns[FM_MAX_HANDLERS];
static int user_refs[FM_MAX_HANDLERS];

const char *fm_error_text(int code) {
    if (code < 0 || code > MPI_ERR_LASTCODE)
        return "unknown error code";
    return texts[code];
}

int fm_errhandler_valid(MPI_Errhandler handler) {
    if (handler == MPI_ERRORS_ARE_FATAL || handler == MPI_ERRORS_RETURN)
        return 1;
    return handler > MPI_ERRORS_RETURN && handler < FM_MAX_HANDLERS && user_refs[handler] > 0;
}

void fm_errhandler_retain(MPI_Errhandler handler) {
    if (handler > MPI_ERRORS_RETURN && handler < FM_MAX_HANDLERS)
        user_refs[handler]++;
}

void fm_errhandler_release(MPI_Errhandler handler) {
    if (handler > MPI_ERRORS_RETURN && handler < FM_MAX_HANDLERS && user_refs[handler] > 0)
        user_refs[handler]--;
}

static void fatal(const char *fn, int code, int printed) {
    const char *name = code >= 0 && code <= MPI_ERR_LASTCODE ? names[code] : "MPI_ERR_UNKNOWN";
    if (!printed)
        fprintf(stderr, "faabric MPI: %s: %s (%s); aborting\n", fn, fm_error_text(code), name);
    fflush(stderr);
    fm_abort(1);

}

static int dispatch(MPI_Comm comm, int code, const char *fn, int printed) {
    if (code == MPI_SUCCESS)
        return code;
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL) {
        comm = MPI_COMM_WORLD;
        c = fm_comm_get(comm);
    }
    MPI_Errhandler handler = c ? c->errhandler : MPI_ERRORS_ARE_FATAL;
    if (handler == MPI_ERRORS_RETURN)
        return code;
    if (handler == MPI_ERRORS_ARE_FATAL || !fm_errhandler_valid(handler))
        fatal(fn, code, printed);
    user_fns[handler](&comm, &code, fn);
    return code;
}

int fm_raise(MPI_Comm comm, int code, const char *fn) {
    return dispatch(comm, code, fn, 0);
}

void fm_fatal(const char *what) {
    fprintf(stderr, "faabric MPI: internal error: %s\n", what);
    fflush(stderr);
    fm_abort(1);
}

int fm_check_init(const char *fn) {
    if (fm_initialised() && !fm_finalised())
        return MPI_SUCCESS;
    fprintf(stderr, "faabric MPI: %s called %s\n", fn,
            fm_finalised() ? "after MPI_Finalize" : "before MPI_Init");
    fflush(stderr);
    fm_abort(1);
    return MPI_ERR_OTHER;
}

int MPI_Error_string(int errorcode, char *string, int *resultlen) {
    if (string == NULL || resultlen == NULL)
        return MPI_ERR_ARG;
    const char *text = fm_error_text(errorcode);
    int n = snprintf(string, MPI_MAX_ERROR_STRING, "%s: %s",
                     errorcode >= 0 && errorcode <= MPI_ERR_LASTCODE ? names[errorcode]
                                                                      : "MPI_ERR_UNKNOWN",
                     text);
    *resultlen = n < MPI_MAX_ERROR_STRING ? n : MPI_MAX_ERROR_STRING - 1;
    return MPI_SUCCESS;
}

int MPI_Error_class(int errorcode, int *errorclass) {
    if (errorclass == NULL || errorcode < 0 || errorcode > MPI_ERR_LASTCODE)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Error_class");
    *errorclass = errorcode;
    return MPI_SUCCESS;
}

int MPI_Comm_set_errhandler(MPI_Comm comm, MPI_Errhandler errhandler) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_set_errhandler");
    if (!fm_errhandler_valid(errhandler))
        return fm_raise(comm, MPI_ERR_ERRHANDLER, "MPI_Comm_set_errhandler");
    fm_errhandler_retain(errhandler);
    fm_errhandler_release(c->errhandler);
    c->errhandler = errhandler;
    return MPI_SUCCESS;
}

int MPI_Comm_get_errhandler(MPI_Comm comm, MPI_Errhandler *errhandler) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_get_errhandler");
    if (errhandler == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Comm_get_errhandler");
    fm_errhandler_retain(c->errhandler);
    *errhandler = c->errhandler;
    return MPI_SUCCESS;
}

int MPI_Comm_create_errhandler(MPI_Comm_errhandler_function *function,
                               MPI_Errhandler *errhandler) {
    if (function == NULL || errhandler == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Comm_create_errhandler");
    for (int h = MPI_ERRORS_RETURN + 1; h < FM_MAX_HANDLERS; h++) {
        if (user_refs[h] == 0) {
            user_fns[h] = function;
            user_refs[h] = 1;
            *errhandler = h;
            return MPI_SUCCESS;
        }
    }
    return fm_raise(MPI_COMM_WORLD, MPI_ERR_NO_MEM, "MPI_Comm_create_errhandler");
}

int MPI_Comm_call_errhandler(MPI_Comm comm, int errorcode) {
    if (fm_comm_get(comm) == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Comm_call_errhandler");
    fm_raise(comm, errorcode, "MPI_Comm_call_errhandler");
    return MPI_SUCCESS;
}

int MPI_Errhandler_free(MPI_Errhandler *errhandler) {
    if (errhandler == NULL || !fm_errhandler_valid(*errhandler))
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ERRHANDLER, "MPI_Errhandler_free");
    fm_errhandler_release(*errhandler);
    *errhandler = MPI_ERRHANDLER_NULL;
    return MPI_SUCCESS;
}

int fm_unsupported(const char *fn) {
    fprintf(stderr, "faabric MPI: %s is not supported\n", fn);
    fflush(stderr);
    return dispatch(MPI_COMM_WORLD, MPI_ERR_UNSUPPORTED_OPERATION, fn, 1);
}

void *fm_alloc(size_t n) {
    return malloc(n ? n : 1);
}
