/* MPI errors with MPI_ERRORS_RETURN: truncation (return code and status.MPI_ERROR), bad
 * rank, tag, count, root, datatype and operation, MPI_ERR_IN_STATUS from MPI_Waitall, and a
 * user error handler. With an argument "fatal" it instead makes one invalid call under the
 * default MPI_ERRORS_ARE_FATAL handler, which must end the program.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "mpi_harness.h"

static const char *name(int code) {
    static const struct { int code; const char *name; } known[] = {
        {MPI_SUCCESS, "MPI_SUCCESS"}, {MPI_ERR_TRUNCATE, "MPI_ERR_TRUNCATE"},
        {MPI_ERR_RANK, "MPI_ERR_RANK"}, {MPI_ERR_TAG, "MPI_ERR_TAG"},
        {MPI_ERR_COUNT, "MPI_ERR_COUNT"}, {MPI_ERR_ROOT, "MPI_ERR_ROOT"},
        {MPI_ERR_TYPE, "MPI_ERR_TYPE"}, {MPI_ERR_OP, "MPI_ERR_OP"},
        {MPI_ERR_IN_STATUS, "MPI_ERR_IN_STATUS"}, {MPI_ERR_BUFFER, "MPI_ERR_BUFFER"}};
    int cls = code;
    MPI_Error_class(code, &cls);
    for (unsigned i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].code == cls)
            return known[i].name;
    return "another error";
}

static void truncation(int rank) {
    int big[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, small[5] = {0}, count;
    MPI_Request req;
    MPI_Status st;
    MPI_Isend(big, 10, MPI_INT, rank, 1, MPI_COMM_WORLD, &req);
    int rc = MPI_Recv(small, 5, MPI_INT, rank, 1, MPI_COMM_WORLD, &st);
    MPI_Get_count(&st, MPI_INT, &count);
    MPI_Wait(&req, MPI_STATUS_IGNORE);
    say("recv of 10 ints into 5: rc %s, status %s, count %d, kept %d..%d", name(rc),
        name(st.MPI_ERROR), count, small[0], small[4]);
    MPI_Request reqs[2];
    MPI_Status sts[2];
    MPI_Irecv(small, 5, MPI_INT, rank, 2, MPI_COMM_WORLD, &reqs[0]);
    MPI_Isend(big, 6, MPI_INT, rank, 2, MPI_COMM_WORLD, &reqs[1]);
    rc = MPI_Waitall(2, reqs, sts);
    say("waitall with a truncated receive: rc %s, statuses %s and %s", name(rc),
        name(sts[0].MPI_ERROR), name(sts[1].MPI_ERROR));
}

static void bad_arguments(int rank, int size) {
    int x = 0, y = 0;
    say("send to rank %d: %s", size, name(MPI_Send(&x, 1, MPI_INT, size, 0, MPI_COMM_WORLD)));
    say("send with tag -5: %s", name(MPI_Send(&x, 1, MPI_INT, rank, -5, MPI_COMM_WORLD)));
    say("send of -1 ints: %s", name(MPI_Send(&x, -1, MPI_INT, rank, 0, MPI_COMM_WORLD)));
    say("send of MPI_DATATYPE_NULL: %s",
        name(MPI_Send(&x, 1, MPI_DATATYPE_NULL, rank, 0, MPI_COMM_WORLD)));
    say("recv from rank -7: %s",
        name(MPI_Recv(&x, 1, MPI_INT, -7, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE)));
    say("bcast from root %d: %s", size, name(MPI_Bcast(&x, 1, MPI_INT, size, MPI_COMM_WORLD)));
    bool b = true, c;
    say("sum of MPI_C_BOOL: %s",
        name(MPI_Allreduce(&b, &c, 1, MPI_C_BOOL, MPI_SUM, MPI_COMM_WORLD)));
    say("bitwise and of MPI_DOUBLE: %s",
        name(MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_BAND, MPI_COMM_WORLD)));
}

static int handled, handled_code;

static void handler(MPI_Comm *comm, int *code, ...) {
    (void)comm;
    handled++;
    handled_code = *code;
}

static void user_handler(int rank, int size) {
    MPI_Errhandler h, got;
    int x = 0;
    MPI_Comm_create_errhandler(handler, &h);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, h);
    MPI_Comm_get_errhandler(MPI_COMM_WORLD, &got);
    int rc = MPI_Send(&x, 1, MPI_INT, size + 3, 0, MPI_COMM_WORLD);
    say("user handler: called %d time(s) with %s, call returned %s, handle kept %d", handled,
        name(handled_code), name(rc), got == h);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Errhandler_free(&h);
    MPI_Errhandler_free(&got);
    (void)rank;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = world_rank(), size = world_size(), x = 0;
    if (argc > 1 && strcmp(argv[1], "fatal") == 0) {
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == size - 1)
            MPI_Send(&x, 1, MPI_INT, size, 0, MPI_COMM_WORLD);
        MPI_Barrier(MPI_COMM_WORLD);
        say("not reached");
        return finish("mpi_errors");
    }
    if (argc > 1 && strcmp(argv[1], "unsupported") == 0) {
        MPI_Win win;
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        int rc = MPI_Win_create_dynamic(MPI_INFO_NULL, MPI_COMM_WORLD, &win);
        say("unsupported call returned an error: %s", rc != MPI_SUCCESS ? "yes" : "no");
        return finish("mpi_errors");
    }
    say("mpi_errors on %d ranks", size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    truncation(rank);
    bad_arguments(rank, size);
    user_handler(rank, size);
    return finish("mpi_errors");
}
