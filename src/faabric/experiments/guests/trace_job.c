/* One job of a trace, run for real by `faabric experiment live`: every rank waits out the
 * job's work (sleeping, so that many ranks fit on few cores), in steps that end at an
 * MPI_Barrier of the world: a migration point. The number of steps follows from the
 * arguments alone, so every rank leaves the loop after the same barrier wherever it runs.
 *
 * Usage: trace_job SECONDS STEP_SECONDS
 * Prints "job done" from rank 0. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void pause_for(double seconds) {
    if (seconds <= 0)
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    double step = argc > 2 ? atof(argv[2]) : 0.5;
    if (!(seconds >= 0) || !(step > 0)) {
        if (rank == 0)
            fprintf(stderr, "usage: trace_job SECONDS STEP_SECONDS (STEP > 0)\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    long steps = (long)ceil(seconds / step);
    for (long i = 0; i < steps; i++) {
        double left = seconds - (double)i * step;
        pause_for(left < step ? left : step);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    if (rank == 0)
        printf("job done\n");
    MPI_Finalize();
    return 0;
}
