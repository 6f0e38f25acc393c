/* MPI_Cart_sub (sub-grids of a Cartesian communicator) and MPI_Dims_create (balanced grid
 * shapes). Kept apart from topo.c to keep each file small; must not hold state.
 */
#include <stdlib.h>

#include "fm_internal.h"

int MPI_Cart_sub(MPI_Comm comm, const int remain_dims[], MPI_Comm *newcomm) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL || c->cart == NULL)
        return fm_raise(comm, c ? MPI_ERR_TOPOLOGY : MPI_ERR_COMM, "MPI_Cart_sub");
    if (remain_dims == NULL || newcomm == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Cart_sub");
    const fm_cart *cart = c->cart;
    int n = cart->ndims, kept = 0, color = 0, key = 0, rest = c->rank;
    int *dims = fm_alloc((size_t)n * sizeof(int)), *periods = fm_alloc((size_t)n * sizeof(int));
    int *coords = fm_alloc((size_t)n * sizeof(int));
    if (dims == NULL || periods == NULL || coords == NULL) {
        free(dims), free(periods), free(coords);
        return fm_raise(comm, MPI_ERR_NO_MEM, "MPI_Cart_sub");
    }
    for (int i = n - 1; i >= 0; i--) {
        coords[i] = rest % cart->dims[i];
        rest /= cart->dims[i];
    }
    for (int i = 0; i < n; i++) {
        if (remain_dims[i]) {
            key = key * cart->dims[i] + coords[i];
            dims[kept] = cart->dims[i];
            periods[kept++] = cart->periods[i];
        } else {
            color = color * cart->dims[i] + coords[i];
        }
    }
    int err = MPI_Comm_split(comm, color, key, newcomm);
    if (err == MPI_SUCCESS)
        err = fm_cart_attach(fm_comm_get(*newcomm), kept, dims, periods);
    free(dims), free(periods), free(coords);
    return fm_raise(comm, err, "MPI_Cart_sub");
}

static int cmp_desc(const void *a, const void *b) {
    return *(const int *)b - *(const int *)a;
}

/* Spreads the prime factors of `rest`, largest first, each onto the free dimension with the
   smallest size so far; then orders the free dimensions by decreasing size. */
static void spread(int rest, int ndims, const int *fixed, int *dims) {
    int factors[32], n = 0, free_sizes[64], nfree = 0;
    for (int f = 2; rest > 1 && n < 32; f++)
        while (rest % f == 0) {
            factors[n++] = f;
            rest /= f;
        }
    for (int k = n - 1; k >= 0; k--) {
        int best = -1;
        for (int i = 0; i < ndims; i++)
            if (!fixed[i] && (best < 0 || dims[i] < dims[best]))
                best = i;
        dims[best] *= factors[k];
    }
    for (int i = 0; i < ndims; i++)
        if (!fixed[i])
            free_sizes[nfree++] = dims[i];
    qsort(free_sizes, (size_t)nfree, sizeof(int), cmp_desc);
    for (int i = 0, k = 0; i < ndims; i++)
        if (!fixed[i])
            dims[i] = free_sizes[k++];
}

int MPI_Dims_create(int nnodes, int ndims, int dims[]) {
    int fixed[64], known = 1, nfree = 0;
    if (nnodes <= 0 || ndims < 0 || ndims > 64 || (ndims > 0 && dims == NULL))
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_ARG, "MPI_Dims_create");
    for (int i = 0; i < ndims; i++) {
        if (dims[i] < 0)
            return fm_raise(MPI_COMM_WORLD, MPI_ERR_DIMS, "MPI_Dims_create");
        fixed[i] = dims[i] > 0;
        known *= fixed[i] ? dims[i] : 1;
        nfree += !fixed[i];
    }
    if (nnodes % known != 0 || (nfree == 0 && known != nnodes))
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_DIMS, "MPI_Dims_create");
    for (int i = 0; i < ndims; i++)
        dims[i] = fixed[i] ? dims[i] : 1;
    if (nfree > 0)
        spread(nnodes / known, ndims, fixed, dims);
    return MPI_SUCCESS;
}
