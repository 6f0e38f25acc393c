/* Derived datatypes: contiguous, vector, hvector, indexed, indexed_block, struct, resized;
 * sizes and extents, sending non-contiguous data (both sides may use different types),
 * collectives and reductions on derived types, MPI_Get_elements and MPI_Pack/Unpack.
 */
#include <stddef.h>
#include <stdlib.h>

#include "mpi_harness.h"

typedef struct particle {
    int id;
    double mass;
    char tag[3];
} particle;

static void describe(const char *name, MPI_Datatype t) {
    int size;
    MPI_Aint lb, extent, tlb, textent;
    MPI_Type_size(t, &size);
    MPI_Type_get_extent(t, &lb, &extent);
    MPI_Type_get_true_extent(t, &tlb, &textent);
    say("%s: size %d lb %ld extent %ld true lb %ld true extent %ld", name, size, (long)lb,
        (long)extent, (long)tlb, (long)textent);
}

static MPI_Datatype particle_type(void) {
    int lens[3] = {1, 1, 3};
    MPI_Aint disps[3] = {offsetof(particle, id), offsetof(particle, mass),
                         offsetof(particle, tag)};
    MPI_Datatype types[3] = {MPI_INT, MPI_DOUBLE, MPI_CHAR}, raw, resized;
    MPI_Type_create_struct(3, lens, disps, types, &raw);
    describe("struct {int; double; char[3]}", raw);
    MPI_Type_create_resized(raw, 0, sizeof(particle), &resized);
    MPI_Type_free(&raw);
    MPI_Type_commit(&resized);
    describe("struct resized to sizeof", resized);
    return resized;
}

static void shapes(void) {
    MPI_Datatype contig, vec, hvec, idx, blk;
    int lens[3] = {2, 1, 3}, disps[3] = {0, 4, 7}, bdisps[2] = {1, 5};
    MPI_Type_contiguous(3, MPI_INT, &contig);
    MPI_Type_vector(3, 2, 4, MPI_INT, &vec);
    MPI_Type_create_hvector(2, 1, 12, MPI_SHORT, &hvec);
    MPI_Type_indexed(3, lens, disps, MPI_DOUBLE, &idx);
    MPI_Type_create_indexed_block(2, 2, bdisps, MPI_FLOAT, &blk);
    describe("contiguous(3, int)", contig);
    describe("vector(3, 2, 4, int)", vec);
    describe("hvector(2, 1, 12 bytes, short)", hvec);
    describe("indexed({2,1,3}, {0,4,7}, double)", idx);
    describe("indexed_block(2, 2, {1,5}, float)", blk);
    MPI_Type_free(&contig), MPI_Type_free(&vec), MPI_Type_free(&hvec);
    MPI_Type_free(&idx), MPI_Type_free(&blk);
}

/* Rank 0 sends column 1 of a 4x4 matrix; the last rank receives it as 4 contiguous ints,
   then sends back a row that rank 0 receives into column 2. */
static void columns(int rank, int size) {
    int m[4][4], col[4], last = size - 1, ok = 1;
    MPI_Datatype column;
    MPI_Type_vector(4, 1, 4, MPI_INT, &column);
    MPI_Type_commit(&column);
    for (int i = 0; i < 16; i++)
        m[i / 4][i % 4] = rank == 0 ? i : -1;
    MPI_Request req;
    if (rank == 0)
        MPI_Isend(&m[0][1], 1, column, last, 0, MPI_COMM_WORLD, &req);
    if (rank == last) {
        MPI_Status st;
        int count, elements;
        MPI_Recv(col, 4, MPI_INT, 0, 0, MPI_COMM_WORLD, &st);
        MPI_Get_count(&st, column, &count);
        MPI_Get_elements(&st, column, &elements);
        ok &= col[0] == 1 && col[3] == 13 && count == 1 && elements == 4;
        for (int i = 0; i < 4; i++)
            col[i] *= 100;
        MPI_Send(col, 4, MPI_INT, 0, 1, MPI_COMM_WORLD);
    }
    if (rank == 0) {
        MPI_Wait(&req, MPI_STATUS_IGNORE);
        MPI_Recv(&m[0][2], 1, column, last, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        say("column received: %d %d %d %d (untouched neighbour %d)", m[0][2], m[1][2], m[2][2],
            m[3][2], m[3][3]);
        ok &= m[3][2] == 1300 && m[3][3] == 15;
    }
    CHECK(ok);
    MPI_Type_free(&column);
}

static void collectives(int rank, int size, MPI_Datatype ptype) {
    particle ps[2];
    for (int i = 0; i < 2; i++)
        ps[i] = (particle){rank == 0 ? 7 + i : 0, rank == 0 ? 1.5 * (i + 1) : 0, {'a', 'b', 0}};
    MPI_Bcast(ps, 2, ptype, 0, MPI_COMM_WORLD);
    CHECK(ps[1].id == 8 && ps[1].mass == 3.0 && ps[1].tag[1] == 'b');
    particle *all = malloc(size * sizeof(particle)), mine = {rank, rank * 0.5, {'x', 0, 0}};
    MPI_Allgather(&mine, 1, ptype, all, 1, ptype, MPI_COMM_WORLD);
    for (int r = 0; r < size; r++)
        CHECK(all[r].id == r && all[r].mass == r * 0.5 && all[r].tag[0] == 'x');
    say("particles: bcast id %d mass %.1f, allgather of %d ok", ps[1].id, ps[1].mass, size);
    free(all);
    /* a transpose: rank r's row lands in column r at rank 0 */
    int row[4], *grid = malloc(4 * size * sizeof(int));
    for (int i = 0; i < 4; i++)
        row[i] = rank * 10 + i;
    MPI_Datatype col, col1;
    MPI_Type_vector(4, 1, size, MPI_INT, &col);
    MPI_Type_create_resized(col, 0, sizeof(int), &col1);
    MPI_Type_commit(&col1);
    MPI_Gather(row, 4, MPI_INT, grid, 1, col1, 0, MPI_COMM_WORLD);
    if (rank == 0)
        say("transposed last row: %d .. %d", grid[3 * size], grid[4 * size - 1]);
    MPI_Type_free(&col), MPI_Type_free(&col1);
    free(grid);
}

/* User operations see elements in the type's own layout: a pair of ints, and a vector of
   two doubles with a gap between them that the reduction must leave alone. */
static void add_pairs(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    for (int i = 0; i < 2 * *len; i++)
        ((int *)inout)[i] += ((int *)in)[i];
}

static void max_strided(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    for (int i = 0; i < *len; i++)
        for (int k = 0; k < 3; k += 2) {
            double *x = (double *)in + 3 * i + k, *y = (double *)inout + 3 * i + k;
            *y = *x > *y ? *x : *y;
        }
}

static void reductions(int rank) {
    MPI_Datatype pair, strided;
    MPI_Op add, max;
    MPI_Type_contiguous(2, MPI_INT, &pair);
    MPI_Type_vector(2, 1, 2, MPI_DOUBLE, &strided);
    MPI_Type_commit(&pair), MPI_Type_commit(&strided);
    MPI_Op_create(add_pairs, 1, &add);
    MPI_Op_create(max_strided, 1, &max);
    int v[4] = {rank, 1, rank * 2, 2}, s[4];
    MPI_Allreduce(v, s, 2, pair, add, MPI_COMM_WORLD);
    double d[3] = {rank + 1.0, -5.0, rank * 3.0}, r[3] = {0, 42.0, 0};
    MPI_Allreduce(d, r, 1, strided, max, MPI_COMM_WORLD);
    say("derived reductions: %d %d %d %d, strided max %.1f gap %.1f %.1f", s[0], s[1], s[2],
        s[3], r[0], r[1], r[2]);
    MPI_Op_free(&add), MPI_Op_free(&max);
    MPI_Type_free(&pair), MPI_Type_free(&strided);
}

static void packing(int rank, MPI_Datatype ptype) {
    char buf[256];
    int pos = 0, n = 3, packsize, back_n;
    particle p = {42, 2.25, {'q', 'r', 's'}}, q;
    MPI_Pack_size(1, ptype, MPI_COMM_WORLD, &packsize);
    MPI_Pack(&n, 1, MPI_INT, buf, sizeof buf, &pos, MPI_COMM_WORLD);
    MPI_Pack(&p, 1, ptype, buf, sizeof buf, &pos, MPI_COMM_WORLD);
    int end = pos;
    pos = 0;
    MPI_Unpack(buf, end, &pos, &back_n, 1, MPI_INT, MPI_COMM_WORLD);
    MPI_Unpack(buf, end, &pos, &q, 1, ptype, MPI_COMM_WORLD);
    CHECK(back_n == 3 && q.id == 42 && q.mass == 2.25 && q.tag[2] == 's' && pos == end);
    say("pack: %d bytes for a particle, unpacked id %d mass %.2f", packsize, q.id, q.mass);
    (void)rank;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank = world_rank(), size = world_size();
    say("mpi_types on %d ranks", size);
    shapes();
    MPI_Datatype ptype = particle_type();
    columns(rank, size);
    collectives(rank, size, ptype);
    reductions(rank);
    packing(rank, ptype);
    MPI_Type_free(&ptype);
    return finish("mpi_types");
}
