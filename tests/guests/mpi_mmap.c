/* Memory from mmap (anonymous, private mappings; `faabric cc` links wasi-libc's emulation) as
 * message buffers and as a one-sided window, then unmapped.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "mpi_harness.h"

#define LEN (256 * 1024)

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = world_rank(), size = world_size();
    say("mpi_mmap on %d ranks", size);
    int *area = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(area != MAP_FAILED);
    int zeroed = 1, n = LEN / sizeof(int);
    for (int i = 0; i < n; i++)
        zeroed &= area[i] == 0;
    agree("anonymous mapping starts zeroed", zeroed);
    for (int i = 0; i < n / 2; i++)
        area[i] = rank * n + i;
    int next = (rank + 1) % size, prev = (rank + size - 1) % size;
    MPI_Sendrecv(area, n / 2, MPI_INT, next, 0, area + n / 2, n / 2, MPI_INT, prev, 0,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    int ring = 1;
    for (int i = 0; i < n / 2; i++)
        ring &= area[n / 2 + i] == prev * n + i;
    agree("a ring of 128 KiB messages between mapped buffers", ring);
    MPI_Win win;
    MPI_Win_create(area, LEN, sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &win);
    MPI_Win_fence(0, win);
    MPI_Put(area, 1000, MPI_INT, next, n - 1000, 1000, MPI_INT, win);
    MPI_Win_fence(0, win);
    int put = 1;
    for (int i = 0; i < 1000; i++)
        put &= area[n - 1000 + i] == prev * n + i;
    agree("puts into a window of mapped memory", put);
    MPI_Win_free(&win);
    long total = 0, sum = 0;
    for (int i = 0; i < n; i += 4096)
        total += area[i];
    MPI_Allreduce(&total, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    say("sampled sum over every mapping: %ld", sum);
    agree("munmap", munmap(area, LEN) == 0);
    return finish("mpi_mmap");
}
