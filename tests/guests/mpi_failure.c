/* Rank 1 fails in the way argv[1] names while the other ranks wait for it in MPI calls:
 * "trap" (a wasm trap), "exit" (returns from main without MPI_Finalize), "abort"
 * (MPI_Abort(MPI_COMM_WORLD, 7)). The other ranks must fail too, naming rank 1, not hang.
 */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    int rank, value = 0;
    const char *how = argc > 1 ? argv[1] : "trap";
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 1) {
        if (strcmp(how, "trap") == 0)
            __builtin_trap();
        if (strcmp(how, "exit") == 0)
            return 0;
        if (strcmp(how, "abort") == 0)
            MPI_Abort(MPI_COMM_WORLD, 7);
    }
    if (rank == 0)
        MPI_Recv(&value, 1, MPI_INT, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    else
        MPI_Barrier(MPI_COMM_WORLD);
    printf("rank %d not reached\n", rank);
    MPI_Finalize();
    return 0;
}
