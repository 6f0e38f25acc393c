/* Pipelines that hand work on through shared flags: thread t waits for thread t-1 to finish
 * column j before it works on column j (a wavefront). The first publishes its flags with
 * `omp flush` and spins on plain reads between flushes; the second uses atomic reads and
 * writes of the flags, as OpenMP 5 allows. Both must give the serial result. */
#include <omp.h>
#include <stdio.h>

#ifndef ROWS
#define ROWS 64
#endif
#ifndef COLS
#define COLS 48
#endif

static double grid[ROWS][COLS];
static int done_upto[64]; /* the last column each thread finished */

static void reset(void) {
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++)
            grid[i][j] = i == 0 ? j : j == 0 ? i : 0;
    for (int t = 0; t < 64; t++)
        done_upto[t] = 0;
}

static void cell_block(int lo, int hi, int j) {
    for (int i = lo; i < hi; i++)
        grid[i][j] = (grid[i - 1][j] + grid[i][j - 1] + grid[i - 1][j - 1]) / 3.0 + 1;
}

static double checksum(void) {
    double sum = 0;
    for (int i = 0; i < ROWS; i++)
        for (int j = 0; j < COLS; j++)
            sum += grid[i][j] * (1 + (i + j) % 7);
    return sum;
}

static void flush_pipeline(void) {
#pragma omp parallel
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int lo = 1 + (ROWS - 1) * t / n, hi = 1 + (ROWS - 1) * (t + 1) / n;
        for (int j = 1; j < COLS; j++) {
            if (t > 0) {
#pragma omp flush
                while (done_upto[t - 1] < j) {
#pragma omp flush
                }
            }
            cell_block(lo, hi, j);
#pragma omp flush
            done_upto[t] = j;
#pragma omp flush
        }
    }
}

static void atomic_pipeline(void) {
#pragma omp parallel
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int lo = 1 + (ROWS - 1) * t / n, hi = 1 + (ROWS - 1) * (t + 1) / n;
        for (int j = 1; j < COLS; j++) {
            if (t > 0) {
                int ready;
                do {
#pragma omp atomic read seq_cst
                    ready = done_upto[t - 1];
                } while (ready < j);
            }
            cell_block(lo, hi, j);
#pragma omp atomic write seq_cst
            done_upto[t] = j;
        }
    }
}

int main(void) {
    reset();
    flush_pipeline();
    printf("flush pipeline: corner %.6f checksum %.4f\n", grid[ROWS - 1][COLS - 1], checksum());
    reset();
    atomic_pipeline();
    printf("atomic pipeline: corner %.6f checksum %.4f\n", grid[ROWS - 1][COLS - 1],
           checksum());
    return 0;
}
