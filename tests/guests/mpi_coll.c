/* Collective MPI: every rooted collective from every root, the all-collectives, scans and
 * reduce-scatter, with and without MPI_IN_PLACE, plus one 8 MiB allreduce and bcast.
 * Runs at any world size; only rank 0 prints.
 */
#include <stdlib.h>

#include "mpi_harness.h"

#define N 5

static int rooted_bcast_reduce(int rank, int size, int root) {
    int buf[N], ok = 1, in[N], out[N];
    for (int i = 0; i < N; i++)
        buf[i] = rank == root ? root * 100 + i : -1;
    MPI_Bcast(buf, N, MPI_INT, root, MPI_COMM_WORLD);
    for (int i = 0; i < N; i++) {
        ok &= buf[i] == root * 100 + i;
        in[i] = out[i] = (rank + 1) * (i + 1);
    }
    MPI_Reduce(rank == root ? MPI_IN_PLACE : in, out, N, MPI_INT, MPI_SUM, root,
               MPI_COMM_WORLD);
    for (int i = 0; rank == root && i < N; i++)
        ok &= out[i] == (i + 1) * size * (size + 1) / 2;
    MPI_Reduce(in, out, N, MPI_INT, MPI_MAX, root, MPI_COMM_WORLD);
    for (int i = 0; rank == root && i < N; i++)
        ok &= out[i] == (i + 1) * size;
    return ok;
}

static int rooted_gather_scatter(int rank, int size, int root) {
    int mine[2] = {rank * 10, rank * 10 + 1}, *all = malloc(2 * size * sizeof(int)), ok = 1;
    for (int i = 0; i < 2 * size; i++)
        all[i] = rank == root ? i / 2 * 10 + i % 2 : -1;
    MPI_Gather(mine, 2, MPI_INT, all, 2, MPI_INT, root, MPI_COMM_WORLD);
    for (int i = 0; rank == root && i < 2 * size; i++)
        ok &= all[i] == i / 2 * 10 + i % 2;
    if (rank == root)
        MPI_Gather(MPI_IN_PLACE, 2, MPI_INT, all, 2, MPI_INT, root, MPI_COMM_WORLD);
    else
        MPI_Gather(mine, 2, MPI_INT, NULL, 0, MPI_INT, root, MPI_COMM_WORLD);
    for (int i = 0; rank == root && i < 2 * size; i++)
        ok &= all[i] == i / 2 * 10 + i % 2;
    for (int i = 0; rank == root && i < 2 * size; i++)
        all[i] = 1000 + i;
    MPI_Scatter(all, 2, MPI_INT, mine, 2, MPI_INT, root, MPI_COMM_WORLD);
    ok &= mine[0] == 1000 + 2 * rank && mine[1] == 1001 + 2 * rank;
    MPI_Scatter(all, 2, MPI_INT, rank == root ? MPI_IN_PLACE : mine, 2, MPI_INT, root,
                MPI_COMM_WORLD);
    ok &= mine[0] == 1000 + 2 * rank;
    free(all);
    return ok;
}

/* Rank r contributes r + 1 values r; blocks sit one int apart at the root. */
static int rooted_vectors(int rank, int size, int root) {
    int *counts = malloc(size * sizeof(int)), *displs = malloc(size * sizeof(int)), total = 0;
    for (int r = 0; r < size; r++) {
        counts[r] = r + 1;
        displs[r] = total + r;
        total += r + 1;
    }
    int *mine = malloc((rank + 1) * sizeof(int)), *all = malloc((total + size) * sizeof(int));
    int ok = 1;
    for (int i = 0; i <= rank; i++)
        mine[i] = rank;
    for (int i = 0; i < total + size; i++)
        all[i] = -7;
    MPI_Gatherv(mine, rank + 1, MPI_INT, all, counts, displs, MPI_INT, root, MPI_COMM_WORLD);
    for (int r = 0; rank == root && r < size; r++)
        for (int i = 0; i <= r; i++)
            ok &= all[displs[r] + i] == r && all[displs[r] + r + 1] == -7;
    for (int r = 0; rank == root && r < size; r++)
        for (int i = 0; i <= r; i++)
            all[displs[r] + i] = r * 3 + i;
    MPI_Scatterv(all, counts, displs, MPI_INT, mine, rank + 1, MPI_INT, root, MPI_COMM_WORLD);
    for (int i = 0; i <= rank; i++)
        ok &= mine[i] == rank * 3 + i;
    free(counts), free(displs), free(mine), free(all);
    return ok;
}

static void rooted(int rank, int size) {
    for (int root = 0; root < size; root++) {
        char what[64];
        snprintf(what, sizeof what, "bcast and reduce from root %d", root);
        agree(what, rooted_bcast_reduce(rank, size, root));
        snprintf(what, sizeof what, "gather and scatter at root %d", root);
        agree(what, rooted_gather_scatter(rank, size, root));
        snprintf(what, sizeof what, "gatherv and scatterv at root %d", root);
        agree(what, rooted_vectors(rank, size, root));
    }
}

static void allgathers(int rank, int size) {
    int *all = malloc(2 * size * sizeof(int)), mine[2] = {rank, -rank}, ok = 1;
    MPI_Allgather(mine, 2, MPI_INT, all, 2, MPI_INT, MPI_COMM_WORLD);
    for (int r = 0; r < size; r++)
        ok &= all[2 * r] == r && all[2 * r + 1] == -r;
    for (int i = 0; i < 2 * size; i++)
        all[i] = i / 2 == rank ? 50 + i : -1;
    MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, 2, MPI_INT, MPI_COMM_WORLD);
    for (int i = 0; i < 2 * size; i++)
        ok &= all[i] == 50 + i;
    int *counts = malloc(size * sizeof(int)), *displs = malloc(size * sizeof(int)), total = 0;
    for (int r = 0; r < size; r++) {
        counts[r] = size - r;
        displs[r] = total;
        total += size - r;
    }
    int *v = malloc(total * sizeof(int)), *mv = malloc(size * sizeof(int));
    for (int i = 0; i < size - rank; i++)
        mv[i] = rank * 100 + i;
    MPI_Allgatherv(mv, size - rank, MPI_INT, v, counts, displs, MPI_INT, MPI_COMM_WORLD);
    for (int r = 0; r < size; r++)
        for (int i = 0; i < size - r; i++)
            ok &= v[displs[r] + i] == r * 100 + i;
    CHECK(ok);
    agree("allgather, in place and allgatherv", ok);
    free(all), free(counts), free(displs), free(v), free(mv);
}

static void alltoalls(int rank, int size) {
    int *out = malloc(size * 2 * sizeof(int)), *in = malloc(size * 2 * sizeof(int)), ok = 1;
    for (int r = 0; r < size; r++)
        out[2 * r] = rank * 100 + r, out[2 * r + 1] = -(rank * 100 + r);
    MPI_Alltoall(out, 2, MPI_INT, in, 2, MPI_INT, MPI_COMM_WORLD);
    for (int r = 0; r < size; r++)
        ok &= in[2 * r] == r * 100 + rank && in[2 * r + 1] == -(r * 100 + rank);
    MPI_Alltoall(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, 2, MPI_INT, MPI_COMM_WORLD);
    for (int r = 0; r < size; r++)
        ok &= out[2 * r] == r * 100 + rank;
    /* alltoallv: rank s sends r + 1 ints to rank r, valued s * 10 + r */
    int *sc = malloc(size * sizeof(int)), *sd = malloc(size * sizeof(int));
    int *rc = malloc(size * sizeof(int)), *rd = malloc(size * sizeof(int)), st = 0, rt = 0;
    for (int r = 0; r < size; r++) {
        sc[r] = r + 1, sd[r] = st, st += r + 1;
        rc[r] = rank + 1, rd[r] = rt, rt += rank + 1;
    }
    int *sv = malloc(st * sizeof(int)), *rv = malloc(rt * sizeof(int));
    for (int r = 0; r < size; r++)
        for (int i = 0; i <= r; i++)
            sv[sd[r] + i] = rank * 10 + r;
    MPI_Alltoallv(sv, sc, sd, MPI_INT, rv, rc, rd, MPI_INT, MPI_COMM_WORLD);
    for (int r = 0; r < size; r++)
        for (int i = 0; i <= rank; i++)
            ok &= rv[rd[r] + i] == r * 10 + rank;
    CHECK(ok);
    agree("alltoall, in place and alltoallv", ok);
    free(out), free(in), free(sc), free(sd), free(rc), free(rd), free(sv), free(rv);
}

static void reductions(int rank, int size) {
    long long v[3] = {rank + 1, (rank + 1) * 10, -(rank + 1)}, sum[3], pre[3], ex[3];
    MPI_Allreduce(v, sum, 3, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Scan(v, pre, 3, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    ex[0] = 12345;
    MPI_Exscan(v, ex, 3, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    long long tri = (long long)size * (size + 1) / 2, mine = (long long)(rank + 1) * (rank + 2) / 2;
    int ok = sum[0] == tri && sum[1] == 10 * tri && sum[2] == -tri && pre[0] == mine &&
             pre[1] == 10 * mine && (rank == 0 ? ex[0] == 12345 : ex[0] == mine - rank - 1);
    say("allreduce sums: %lld %lld %lld", sum[0], sum[1], sum[2]);
    int x = rank + 1;
    MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_INT, MPI_PROD, MPI_COMM_WORLD);
    say("allreduce product in place: %d", x);
    MPI_Scan(MPI_IN_PLACE, v, 3, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    ok &= v[0] == rank + 1 && v[2] == -1;
    int *blocks = malloc(2 * size * sizeof(int)), got[2], *counts = malloc(size * sizeof(int));
    for (int i = 0; i < 2 * size; i++)
        blocks[i] = i + rank;
    MPI_Reduce_scatter_block(blocks, got, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    ok &= got[0] == 2 * rank * size + size * (size - 1) / 2;
    for (int r = 0; r < size; r++)
        counts[r] = r == size - 1 ? 2 : (r % 2);
    int start = 0;
    for (int r = 0; r < rank; r++)
        start += counts[r];
    got[0] = -1;
    MPI_Reduce_scatter(blocks, got, counts, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    ok &= counts[rank] == 0 || got[0] == start + size - 1;
    MPI_Barrier(MPI_COMM_WORLD);
    CHECK(ok);
    agree("allreduce, scan, exscan and reduce_scatter", ok);
    free(blocks), free(counts);
}

/* Large reductions of other shapes: in place, a count no rank count divides, a root other
   than 0, and a communicator of every other rank. */
static int large_more(int rank, int size) {
    int n = (1 << 18) + 7, ok = 1, *v = malloc(n * sizeof(int)), *w = malloc(n * sizeof(int));
    for (int i = 0; i < n; i++)
        v[i] = (i * 7 + rank * 13) % 1001;
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int r = 0; r < size; r++)
            best = (i * 7 + r * 13) % 1001 > best ? (i * 7 + r * 13) % 1001 : best;
        ok &= v[i] == best;
        v[i] = i + rank;
        w[i] = -1;
    }
    MPI_Reduce(v, w, n, MPI_INT, MPI_SUM, size - 1, MPI_COMM_WORLD);
    for (int i = 0; rank == size - 1 && i < n; i++)
        ok &= w[i] == i * size + size * (size - 1) / 2;
    MPI_Reduce(rank == 0 ? MPI_IN_PLACE : v, v, n, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    for (int i = 0; rank == 0 && i < n; i++)
        ok &= v[i] == i * size + size * (size - 1) / 2;
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
    int members = (size - rank % 2 + 1) / 2;
    for (int i = 0; i < n; i++)
        v[i] = 1;
    MPI_Allreduce(v, w, n, MPI_INT, MPI_SUM, half);
    for (int i = 0; i < n; i++)
        ok &= w[i] == members;
    MPI_Comm_free(&half);
    free(v), free(w);
    return ok;
}

static void large(int rank, int size) {
    int n = 1 << 20, ok = 1; /* 8 MiB of doubles */
    double *a = malloc(n * sizeof(double)), *b = malloc(n * sizeof(double));
    for (int i = 0; i < n; i++)
        a[i] = (double)(i % 1000) * (rank + 1);
    MPI_Allreduce(a, b, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    for (int i = 0; i < n; i++)
        ok &= b[i] == (double)(i % 1000) * size * (size + 1) / 2;
    MPI_Bcast(a, n, MPI_DOUBLE, size - 1, MPI_COMM_WORLD);
    for (int i = 0; i < n; i++)
        ok &= a[i] == (double)(i % 1000) * size;
    ok &= large_more(rank, size);
    CHECK(ok);
    agree("8 MiB allreduce and bcast", ok);
    free(a), free(b);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = world_rank(), size = world_size();
    say("mpi_coll on %d ranks", size);
    rooted(rank, size);
    allgathers(rank, size);
    alltoalls(rank, size);
    reductions(rank, size);
    large(rank, size);
    return finish("mpi_coll");
}
