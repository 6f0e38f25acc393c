/* Pi by numerical integration with MPI: every rank integrates a slice of 4/(1+x^2) over
 * [0, 1] and MPI_Reduce sums the slices on rank 0. An unmodified MPI program: it builds
 * with `faabric cc` as it does with `mpicc`.
 * Run: faabric run -n 4 --hosts 2 --slots 2 examples/mpi_pi.c -- 50000000 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int rank, size, name_length;
    char name[MPI_MAX_PROCESSOR_NAME];
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Get_processor_name(name, &name_length);

    long steps = argc > 1 ? atol(argv[1]) : 10000000;
    double width = 1.0 / (double)steps, slice = 0.0;
    double started = MPI_Wtime();
    for (long i = rank; i < steps; i += size) {
        double x = ((double)i + 0.5) * width;
        slice += 4.0 / (1.0 + x * x);
    }
    slice *= width;

    double pi = 0.0;
    MPI_Reduce(&slice, &pi, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    double took = MPI_Wtime() - started;

    /* faabric prints each rank's output in rank order. */
    if (rank == 0)
        printf("pi ~ %.12f (%ld steps, %d ranks, %.3f s)\n", pi, steps, size, took);
    printf("rank %d ran on %s\n", rank, name);
    MPI_Finalize();
    return 0;
}
