/* Helpers shared by the MPI test programs (tests/guests/mpi_*.c): checks that count failures,
 * deterministic output (only rank 0 prints; other ranks' lines are gathered to it) and the
 * final verdict. Plain MPI: the programs build with `faabric cc` and with OpenMPI's mpicc.
 */
#ifndef MPI_HARNESS_H
#define MPI_HARNESS_H

#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LINE 160

static int harness_failures;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            harness_failures++;                                                                \
            fprintf(stderr, "check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
        }                                                                                      \
    } while (0)

static inline int world_rank(void) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

static inline int world_size(void) {
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    return size;
}

/* Rank 0 prints a line (every rank may call; only rank 0's text appears). */
static inline void say(const char *fmt, ...) {
    if (world_rank() != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* Collective over MPI_COMM_WORLD: every rank formats a line; rank 0 prints them in order. */
static inline void say_all(const char *fmt, ...) {
    char mine[LINE], all[64 * LINE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mine, sizeof mine, fmt, ap);
    va_end(ap);
    MPI_Gather(mine, LINE, MPI_CHAR, all, LINE, MPI_CHAR, 0, MPI_COMM_WORLD);
    for (int r = 0; world_rank() == 0 && r < world_size(); r++)
        printf("%s\n", all + r * LINE);
}

/* Collective: prints "<what>: ok" when every rank's `ok` holds, else "<what>: FAILED". */
static inline void agree(const char *what, int ok) {
    int all = 0;
    harness_failures += !ok;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    say("%s: %s", what, all ? "ok" : "FAILED");
}

/* Collective: the program's verdict; returns the exit status. */
static inline int finish(const char *program) {
    int total = 0;
    MPI_Allreduce(&harness_failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    say("%s: %s", program, total == 0 ? "all checks passed" : "CHECKS FAILED");
    fflush(stdout);
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}

#endif
