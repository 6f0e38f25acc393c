/* One-sided communication: windows made by MPI_Win_create and MPI_Win_allocate and their
 * attributes, fence epochs with puts, gets and accumulates (contiguous and strided types),
 * passive-target epochs (exclusive and shared locks, lock_all, flushes) served while the
 * target does not call MPI, Fetch_and_op, Compare_and_swap and Get_accumulate, and a window
 * on a sub-communicator.
 */
#include <stdlib.h>
#include <time.h>

#include "mpi_harness.h"

#define N 8

static void attributes(int size) {
    int buf[N];
    MPI_Win win;
    MPI_Win_create(buf, sizeof buf, sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &win);
    void *base;
    MPI_Aint *wsize;
    int *unit, *flavor, *model, f1, f2, f3, f4, f5, gsize;
    MPI_Win_get_attr(win, MPI_WIN_BASE, &base, &f1);
    MPI_Win_get_attr(win, MPI_WIN_SIZE, &wsize, &f2);
    MPI_Win_get_attr(win, MPI_WIN_DISP_UNIT, &unit, &f3);
    MPI_Win_get_attr(win, MPI_WIN_CREATE_FLAVOR, &flavor, &f4);
    MPI_Win_get_attr(win, MPI_WIN_MODEL, &model, &f5);
    MPI_Group group;
    MPI_Win_get_group(win, &group);
    MPI_Group_size(group, &gsize);
    MPI_Group_free(&group);
    CHECK(f1 && f2 && f3 && f4 && f5);
    say("create: base is buf %d, size %ld, disp unit %d, flavor create %d, unified %d, "
        "group of %d", base == (void *)buf, (long)*wsize, *unit,
        *flavor == MPI_WIN_FLAVOR_CREATE, *model == MPI_WIN_UNIFIED, gsize == size);
    MPI_Win_free(&win);
    CHECK(win == MPI_WIN_NULL);
    double *mem = NULL;
    MPI_Win_allocate(4 * sizeof(double), sizeof(double), MPI_INFO_NULL, MPI_COMM_WORLD, &mem,
                     &win);
    MPI_Win_get_attr(win, MPI_WIN_BASE, &base, &f1);
    MPI_Win_get_attr(win, MPI_WIN_SIZE, &wsize, &f2);
    MPI_Win_get_attr(win, MPI_WIN_CREATE_FLAVOR, &flavor, &f4);
    say("allocate: base is the memory %d, size %ld, flavor allocate %d", base == (void *)mem,
        (long)*wsize, *flavor == MPI_WIN_FLAVOR_ALLOCATE);
    MPI_Win_free(&win);
}

static void fence_epochs(int rank, int size) {
    int *buf;
    MPI_Win win;
    MPI_Win_allocate(N * sizeof(int), sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &buf, &win);
    for (int i = 0; i < N; i++)
        buf[i] = -1;
    MPI_Win_fence(MPI_MODE_NOPRECEDE, win);
    int next = (rank + 1) % size, prev = (rank + size - 1) % size, v = 100 + rank;
    MPI_Put(&v, 1, MPI_INT, next, rank, 1, MPI_INT, win);
    MPI_Win_fence(0, win);
    int got[2] = {-1, -1};
    MPI_Get(got, 2, MPI_INT, prev, 0, 2, MPI_INT, win);
    MPI_Win_fence(0, win);
    say_all("rank %d: put from %d landed %d; got %d %d from %d", rank, prev, buf[prev], got[0],
            got[1], prev);
    int one[2] = {rank + 1, 10 * (rank + 1)};
    MPI_Accumulate(one, 2, MPI_INT, 0, N - 2, 2, MPI_INT, MPI_SUM, win);
    MPI_Accumulate(&rank, 1, MPI_INT, size - 1, 0, 1, MPI_INT, MPI_MAX, win);
    MPI_Win_fence(MPI_MODE_NOSUCCEED, win);
    if (rank == 0)
        say("accumulate sum at rank 0: %d %d", buf[N - 2], buf[N - 1]);
    MPI_Barrier(MPI_COMM_WORLD);
    int max = buf[0];
    MPI_Bcast(&max, 1, MPI_INT, size - 1, MPI_COMM_WORLD);
    say("accumulate max at rank %d: %d", size - 1, max);
    MPI_Win_free(&win);
}

static void strided(int rank, int size) {
    double buf[N];
    for (int i = 0; i < N; i++)
        buf[i] = rank * 100 + i;
    MPI_Win win;
    MPI_Win_create(buf, sizeof buf, sizeof(double), MPI_INFO_NULL, MPI_COMM_WORLD, &win);
    MPI_Datatype every_other;
    MPI_Type_vector(N / 2, 1, 2, MPI_DOUBLE, &every_other);
    MPI_Type_commit(&every_other);
    double mine[N / 2], fetched[N];
    for (int i = 0; i < N / 2; i++)
        mine[i] = -(rank * 10 + i);
    for (int i = 0; i < N; i++)
        fetched[i] = 0;
    int next = (rank + 1) % size;
    MPI_Win_fence(0, win);
    MPI_Get(fetched, 1, every_other, next, 1, N / 2, MPI_DOUBLE, win);
    MPI_Win_fence(0, win);
    MPI_Put(mine, N / 2, MPI_DOUBLE, next, 0, 1, every_other, win);
    MPI_Win_fence(0, win);
    say_all("rank %d: strided get %g %g %g %g %g %g; window %g %g %g %g", rank, fetched[0],
            fetched[1], fetched[2], fetched[3], fetched[4], fetched[6], buf[0], buf[1], buf[2],
            buf[7]);
    MPI_Type_free(&every_other);
    MPI_Win_free(&win);
}

/* Keeps a rank away from MPI for a while: its window must be served all the same. */
static void busy(double seconds) {
    struct timespec ts = {0, (long)(seconds * 1e9)};
    nanosleep(&ts, NULL);
}

static void passive(int rank, int size) {
    int counter[2] = {0, 0};
    MPI_Win win;
    MPI_Win_create(counter, sizeof counter, sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &win);
    if (rank == 0)
        busy(0.2);
    for (int k = 0; k < 5; k++) { /* read, flush, write: atomic only under the lock */
        int seen = -1;
        MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win);
        MPI_Get(&seen, 1, MPI_INT, 0, 0, 1, MPI_INT, win);
        MPI_Win_flush(0, win);
        seen += 1;
        MPI_Put(&seen, 1, MPI_INT, 0, 0, 1, MPI_INT, win);
        MPI_Win_unlock(0, win);
    }
    int ticket = -1, one = 1;
    MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, win);
    MPI_Fetch_and_op(&one, &ticket, MPI_INT, 0, 1, MPI_SUM, win);
    MPI_Win_unlock(0, win);
    int tickets = 0;
    MPI_Allreduce(&ticket, &tickets, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    say("exclusive counter %d (expected %d); tickets sum %d (expected %d), count %d",
        counter[0], 5 * size, tickets, size * (size - 1) / 2, counter[1]);
    CHECK(rank != 0 || (counter[0] == 5 * size && counter[1] == size));
    MPI_Win_free(&win);
}

static void compare_and_swap(int rank, int size) {
    int owner = -1;
    MPI_Win win;
    MPI_Win_create(&owner, sizeof owner, sizeof(int), MPI_INFO_NULL, MPI_COMM_WORLD, &win);
    int none = -1, previous = -2;
    MPI_Win_lock_all(0, win);
    MPI_Compare_and_swap(&rank, &none, &previous, MPI_INT, size - 1, 0, win);
    MPI_Win_flush_all(win);
    MPI_Win_unlock_all(win);
    int winners = previous == -1, total = 0;
    MPI_Allreduce(&winners, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    int final = owner;
    MPI_Bcast(&final, 1, MPI_INT, size - 1, MPI_COMM_WORLD);
    int mine = final == rank, agree = 0;
    MPI_Allreduce(&mine, &agree, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    say("compare_and_swap: %d winner(s), owner is a rank %d", total, agree == 1);
    MPI_Win_free(&win);
}

static void lock_all_puts(int rank, int size) {
    long *slots;
    MPI_Win win;
    MPI_Win_allocate(size * sizeof(long), sizeof(long), MPI_INFO_NULL, MPI_COMM_WORLD, &slots,
                     &win);
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, rank, 0, win); /* local stores under a lock */
    for (int i = 0; i < size; i++)
        slots[i] = 0;
    MPI_Win_unlock(rank, win);
    MPI_Barrier(MPI_COMM_WORLD);
    long v = 1000 + rank;
    MPI_Win_lock_all(0, win);
    for (int t = 0; t < size; t++)
        MPI_Put(&v, 1, MPI_LONG, t, rank, 1, MPI_LONG, win);
    MPI_Win_flush_all(win);
    MPI_Win_unlock_all(win);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_lock(MPI_LOCK_SHARED, rank, 0, win);
    long sum = 0;
    for (int i = 0; i < size; i++)
        sum += slots[i];
    MPI_Win_unlock(rank, win);
    MPI_Barrier(MPI_COMM_WORLD); /* every rank read its slots before they change again */
    long old[2] = {0, 0}, add[2] = {1, 2};
    MPI_Win_lock(MPI_LOCK_SHARED, (rank + 1) % size, 0, win);
    MPI_Get_accumulate(add, 1, MPI_LONG, old, 1, MPI_LONG, (rank + 1) % size, rank, 1,
                       MPI_LONG, MPI_SUM, win);
    MPI_Win_unlock((rank + 1) % size, win);
    MPI_Barrier(MPI_COMM_WORLD);
    say_all("rank %d: lock_all sum %ld, get_accumulate saw %ld, slot now %ld", rank, sum,
            old[0], slots[(rank + size - 1) % size]);
    MPI_Win_free(&win);
}

static void sub_communicator(int rank, int size) {
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
    int sub, subsize, value = -1;
    MPI_Comm_rank(half, &sub);
    MPI_Comm_size(half, &subsize);
    MPI_Win win;
    MPI_Win_create(&value, sizeof value, sizeof value, MPI_INFO_NULL, half, &win);
    MPI_Win_fence(0, win);
    if (sub == 0)
        for (int t = 0; t < subsize; t++)
            MPI_Put(&rank, 1, MPI_INT, t, 0, 1, MPI_INT, win);
    MPI_Win_fence(0, win);
    say_all("rank %d: window on sub-communicator %d of %d holds %d", rank, sub, subsize,
            value);
    MPI_Win_free(&win);
    MPI_Comm_free(&half);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = world_rank(), size = world_size();
    say("mpi_rma on %d ranks", size);
    attributes(size);
    fence_epochs(rank, size);
    strided(rank, size);
    passive(rank, size);
    compare_and_swap(rank, size);
    lock_all_puts(rank, size);
    sub_communicator(rank, size);
    return finish("mpi_rma");
}
