/* One 64 MiB message from rank 0 to the last rank (to itself at size 1), checked byte by
 * byte, and a 64 MiB reply back. Kept apart from mpi_p2p so the test suite sends it once.
 */
#include <stdint.h>
#include <stdlib.h>

#include "mpi_harness.h"

#define BYTES (64 << 20)

static uint32_t fill_value(int round, size_t i) { return (uint32_t)(i * 2654435761u) ^ round; }

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = world_rank(), size = world_size(), last = size - 1, ok = 1;
    size_t n = BYTES / sizeof(uint32_t);
    say("mpi_large on %d ranks", size);
    uint32_t *buf = malloc(BYTES);
    CHECK(buf != NULL);
    for (int round = 0; round < 2; round++) {
        int from = round == 0 ? 0 : last, to = round == 0 ? last : 0;
        MPI_Request req = MPI_REQUEST_NULL;
        if (rank == from) {
            for (size_t i = 0; i < n; i++)
                buf[i] = fill_value(round, i);
            MPI_Isend(buf, BYTES, MPI_BYTE, to, round, MPI_COMM_WORLD, &req);
        }
        if (rank == to) {
            uint32_t *in = from == to ? malloc(BYTES) : buf;
            MPI_Status st;
            int count;
            MPI_Recv(in, BYTES, MPI_BYTE, from, round, MPI_COMM_WORLD, &st);
            MPI_Get_count(&st, MPI_BYTE, &count);
            ok &= count == BYTES;
            for (size_t i = 0; i < n; i++)
                ok &= in[i] == fill_value(round, i);
            if (in != buf)
                free(in);
        }
        MPI_Wait(&req, MPI_STATUS_IGNORE);
        char what[64];
        snprintf(what, sizeof what, "64 MiB from rank %d to rank %d", from, to);
        agree(what, ok);
    }
    free(buf);
    return finish("mpi_large");
}
