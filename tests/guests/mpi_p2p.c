/* Point-to-point MPI: message sizes, tag matching, MPI_ANY_SOURCE/ANY_TAG, probes,
 * nonblocking completion in any order, send modes, persistent requests, MPI_PROC_NULL.
 * Runs at any world size; only rank 0 prints.
 */
#include <stdlib.h>

#include "mpi_harness.h"

static unsigned char pattern(int source, int i) { return (unsigned char)(source * 31 + i * 7); }

static void ring_sizes(int rank, int size) {
    static const int sizes[] = {0, 1, 7, 4096, 65536 + 3, 1 << 20};
    int next = (rank + 1) % size, prev = (rank + size - 1) % size;
    for (int s = 0; s < 6; s++) {
        int n = sizes[s], ok = 1;
        unsigned char *out = malloc(n + 1), *in = malloc(n + 1);
        for (int i = 0; i < n; i++)
            out[i] = pattern(rank, i);
        MPI_Status st;
        MPI_Sendrecv(out, n, MPI_BYTE, next, s, in, n, MPI_BYTE, prev, s, MPI_COMM_WORLD, &st);
        int count;
        MPI_Get_count(&st, MPI_BYTE, &count);
        ok &= count == n && st.MPI_SOURCE == prev && st.MPI_TAG == s;
        for (int i = 0; i < n; i++)
            ok &= in[i] == pattern(prev, i);
        CHECK(ok);
        char what[64];
        snprintf(what, sizeof what, "ring of %d bytes", n);
        agree(what, ok);
        free(out);
        free(in);
    }
}

static void tag_matching(int rank, int size) {
    int peer = size > 1 ? 1 : 0, values[3] = {0, 0, 0}, tags[3] = {0, 0, 0};
    MPI_Request sends[3];
    if (rank == peer)
        for (int t = 0; t < 3; t++) {
            static int payload[3] = {50, 60, 70};
            MPI_Isend(&payload[t], 1, MPI_INT, 0, 5 + t, MPI_COMM_WORLD, &sends[t]);
        }
    if (rank == 0) {
        MPI_Status st;
        MPI_Recv(&values[0], 1, MPI_INT, peer, 7, MPI_COMM_WORLD, &st);
        tags[0] = st.MPI_TAG;
        MPI_Recv(&values[1], 1, MPI_INT, peer, 5, MPI_COMM_WORLD, &st);
        tags[1] = st.MPI_TAG;
        MPI_Recv(&values[2], 1, MPI_INT, peer, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        tags[2] = st.MPI_TAG;
        say("tags: got %d/%d then %d/%d then any: %d/%d", values[0], tags[0], values[1],
            tags[1], values[2], tags[2]);
        CHECK(values[0] == 70 && values[1] == 50 && values[2] == 60 && tags[2] == 6);
    }
    if (rank == peer)
        MPI_Waitall(3, sends, MPI_STATUSES_IGNORE);
}

static void any_source(int rank, int size) {
    if (rank != 0) {
        MPI_Send(&rank, 1, MPI_INT, 0, 100 + rank, MPI_COMM_WORLD);
        MPI_Barrier(MPI_COMM_WORLD); /* nothing else may reach rank 0's wildcard receives */
        return;
    }
    int sum = 0, seen = 0;
    for (int k = 1; k < size; k++) {
        int v;
        MPI_Status st;
        MPI_Recv(&v, 1, MPI_INT, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        CHECK(st.MPI_SOURCE == v && st.MPI_TAG == 100 + v);
        sum += v;
        seen |= 1 << v;
    }
    say("any source: %d messages, sum of senders %d", size - 1, sum);
    CHECK(seen == ((1 << size) - 2));
    MPI_Barrier(MPI_COMM_WORLD);
}

static void probes(int rank, int size) {
    int sender = size - 1, data[3] = {rank, rank * 2, rank * 3};
    MPI_Request req = MPI_REQUEST_NULL;
    if (rank == sender)
        MPI_Isend(data, 3, MPI_INT, 0, 9, MPI_COMM_WORLD, &req);
    if (rank == 0) {
        MPI_Status st;
        int flag = 1, count;
        MPI_Iprobe(MPI_ANY_SOURCE, 99, MPI_COMM_WORLD, &flag, &st);
        MPI_Probe(MPI_ANY_SOURCE, 9, MPI_COMM_WORLD, &st); /* later phases also send to 0 */
        MPI_Get_count(&st, MPI_INT, &count);
        int *buf = malloc(count * sizeof(int));
        MPI_Recv(buf, count, MPI_INT, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        say("probe: iprobe(tag 99)=%d, probed %d ints from %d tag %d: %d %d %d", flag, count,
            st.MPI_SOURCE, st.MPI_TAG, buf[0], buf[1], buf[2]);
        CHECK(flag == 0 && count == 3 && st.MPI_SOURCE == sender && buf[2] == sender * 3);
        free(buf);
    }
    MPI_Wait(&req, MPI_STATUS_IGNORE);
}

static void any_order(int rank, int size) {
    int *in = calloc(size, sizeof(int)), *out = malloc(size * sizeof(int)), ok = 1;
    MPI_Request *reqs = malloc(2 * size * sizeof(MPI_Request));
    for (int r = 0; r < size; r++)
        MPI_Irecv(&in[r], 1, MPI_INT, r, 3, MPI_COMM_WORLD, &reqs[r]);
    for (int k = size - 1; k >= 0; k--) {
        out[k] = rank * 1000 + k;
        MPI_Isend(&out[k], 1, MPI_INT, k, 3, MPI_COMM_WORLD, &reqs[size + k]);
    }
    for (int done = 0; done < 2 * size; done++) {
        int index;
        MPI_Status st;
        MPI_Waitany(2 * size, reqs, &index, &st);
        ok &= index >= 0 && reqs[index] == MPI_REQUEST_NULL;
        if (index < size)
            ok &= st.MPI_SOURCE == index && st.MPI_TAG == 3;
    }
    int index;
    MPI_Waitany(2 * size, reqs, &index, MPI_STATUS_IGNORE);
    ok &= index == MPI_UNDEFINED;
    for (int r = 0; r < size; r++)
        ok &= in[r] == r * 1000 + rank;
    CHECK(ok);
    agree("waitany in any order", ok);
    free(in), free(out), free(reqs);
}

static void some_and_test(int rank, int size) {
    int next = (rank + 1) % size, prev = (rank + size - 1) % size, ok = 1;
    int in[4] = {0}, out[4] = {1, 2, 3, 4}, outcount, indices[8], flag = 0;
    MPI_Request reqs[8];
    for (int k = 0; k < 4; k++) {
        MPI_Irecv(&in[k], 1, MPI_INT, prev, 20 + k, MPI_COMM_WORLD, &reqs[k]);
        MPI_Issend(&out[3 - k], 1, MPI_INT, next, 23 - k, MPI_COMM_WORLD, &reqs[4 + k]);
    }
    int completed = 0;
    while (completed < 8) {
        MPI_Waitsome(8, reqs, &outcount, indices, MPI_STATUSES_IGNORE);
        completed += outcount;
    }
    MPI_Testall(8, reqs, &flag, MPI_STATUSES_IGNORE);
    MPI_Waitsome(8, reqs, &outcount, indices, MPI_STATUSES_IGNORE);
    ok &= flag == 1 && outcount == MPI_UNDEFINED;
    for (int k = 0; k < 4; k++)
        ok &= in[k] == k + 1;
    CHECK(ok);
    agree("waitsome, issend and testall", ok);
}

static void modes_and_null(int rank, int size) {
    int next = (rank + 1) % size, prev = (rank + size - 1) % size, v = -1, ok = 1;
    static char bsend_space[1 << 12];
    MPI_Request req;
    MPI_Status st;
    MPI_Buffer_attach(bsend_space, sizeof bsend_space);
    MPI_Irecv(&v, 1, MPI_INT, prev, 30, MPI_COMM_WORLD, &req);
    MPI_Bsend(&rank, 1, MPI_INT, next, 30, MPI_COMM_WORLD);
    MPI_Wait(&req, MPI_STATUS_IGNORE);
    ok &= v == prev;
    void *detached;
    int detached_size;
    MPI_Buffer_detach(&detached, &detached_size);
    ok &= detached == (void *)bsend_space && detached_size == (int)sizeof bsend_space;
    MPI_Irecv(&v, 1, MPI_INT, prev, 31, MPI_COMM_WORLD, &req);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Rsend(&rank, 1, MPI_INT, next, 31, MPI_COMM_WORLD);
    MPI_Wait(&req, MPI_STATUS_IGNORE);
    ok &= v == prev;
    MPI_Send(&rank, 1, MPI_INT, MPI_PROC_NULL, 32, MPI_COMM_WORLD);
    v = 77;
    MPI_Recv(&v, 1, MPI_INT, MPI_PROC_NULL, 32, MPI_COMM_WORLD, &st);
    int count;
    MPI_Get_count(&st, MPI_INT, &count);
    ok &= v == 77 && st.MPI_SOURCE == MPI_PROC_NULL && st.MPI_TAG == MPI_ANY_TAG && count == 0;
    CHECK(ok);
    agree("bsend, rsend and MPI_PROC_NULL", ok);
}

static void persistent_and_replace(int rank, int size) {
    int next = (rank + 1) % size, prev = (rank + size - 1) % size, in = -1, out, ok = 1;
    MPI_Request reqs[2];
    MPI_Recv_init(&in, 1, MPI_INT, prev, 40, MPI_COMM_WORLD, &reqs[0]);
    MPI_Send_init(&out, 1, MPI_INT, next, 40, MPI_COMM_WORLD, &reqs[1]);
    for (int round = 0; round < 3; round++) {
        out = rank * 10 + round;
        MPI_Startall(2, reqs);
        MPI_Waitall(2, reqs, MPI_STATUSES_IGNORE);
        ok &= in == prev * 10 + round && reqs[0] != MPI_REQUEST_NULL;
    }
    MPI_Request_free(&reqs[0]);
    MPI_Request_free(&reqs[1]);
    int buf[2] = {rank, -rank};
    MPI_Sendrecv_replace(buf, 2, MPI_INT, next, 41, prev, 41, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
    ok &= buf[0] == prev && buf[1] == -prev;
    CHECK(ok);
    agree("persistent requests and sendrecv_replace", ok);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = world_rank(), size = world_size();
    say("mpi_p2p on %d ranks", size);
    ring_sizes(rank, size);
    tag_matching(rank, size);
    any_source(rank, size);
    probes(rank, size);
    any_order(rank, size);
    some_and_test(rank, size);
    modes_and_null(rank, size);
    persistent_and_replace(rank, size);
    return finish("mpi_p2p");
}
