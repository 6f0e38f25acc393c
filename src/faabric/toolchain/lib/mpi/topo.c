/* Cartesian topologies: MPI_Cart_* , MPI_Dims_create and MPI_Topo_test.
 *
 * Ranks map to coordinates in row-major order (the last dimension varies fastest) and are
 * never reordered. A Cartesian communicator is an ordinary one (made by MPI_Comm_split) with
 * the grid attached. Graph topologies are not supported.
 */
#include <stdlib.h>
#include <string.h>

#include "fm_internal.h"

int fm_cart_attach(fm_comm *c, int ndims, const int *dims, const int *periods) {
    fm_cart *cart = malloc(sizeof *cart);
    int *d = fm_alloc((size_t)ndims * sizeof(int)), *p = fm_alloc((size_t)ndims * sizeof(int));
    if (cart == NULL || d == NULL || p == NULL) {
        free(cart), free(d), free(p);
        return MPI_ERR_NO_MEM;
    }
    for (int i = 0; i < ndims; i++) {
        d[i] = dims[i];
        p[i] = periods[i] != 0;
    }
    *cart = (fm_cart){ndims, d, p};
    c->cart = cart;
    return MPI_SUCCESS;
}

static int cart_of(MPI_Comm comm, fm_comm **c) {
    *c = fm_comm_get(comm);
    if (*c == NULL)
        return MPI_ERR_COMM;
    return (*c)->cart == NULL ? MPI_ERR_TOPOLOGY : MPI_SUCCESS;
}

static void coords_of(const fm_cart *cart, int rank, int *coords) {
    for (int i = cart->ndims - 1; i >= 0; i--) {
        coords[i] = rank % cart->dims[i];
        rank /= cart->dims[i];
    }
}

/* Rank at coords (wrapping periodic dimensions), or MPI_PROC_NULL when off the grid. */
static int rank_at(const fm_cart *cart, const int *coords) {
    int rank = 0;
    for (int i = 0; i < cart->ndims; i++) {
        int x = coords[i], n = cart->dims[i];
        if (cart->periods[i])
            x = ((x % n) + n) % n;
        else if (x < 0 || x >= n)
            return MPI_PROC_NULL;
        rank = rank * n + x;
    }
    return rank;
}

int MPI_Cart_create(MPI_Comm comm_old, int ndims, const int dims[], const int periods[],
                    int reorder, MPI_Comm *comm_cart) {
    (void)reorder; /* faabric keeps ranks where they are */
    fm_comm *c = fm_comm_get(comm_old);
    long long cells = 1;
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Cart_create");
    if (ndims < 0 || (ndims > 0 && (dims == NULL || periods == NULL)) || comm_cart == NULL)
        return fm_raise(comm_old, MPI_ERR_ARG, "MPI_Cart_create");
    for (int i = 0; i < ndims; i++)
        cells *= dims[i] > 0 ? dims[i] : 1LL << 40;
    if (cells > c->size)
        return fm_raise(comm_old, MPI_ERR_DIMS, "MPI_Cart_create");
    int err = MPI_Comm_split(comm_old, c->rank < cells ? 0 : MPI_UNDEFINED, c->rank, comm_cart);
    if (err == MPI_SUCCESS && *comm_cart != MPI_COMM_NULL)
        err = fm_cart_attach(fm_comm_get(*comm_cart), ndims, dims, periods);
    return fm_raise(comm_old, err, "MPI_Cart_create");
}

int MPI_Cart_rank(MPI_Comm comm, const int coords[], int *rank) {
    fm_comm *c;
    int err = cart_of(comm, &c);
    if (err == MPI_SUCCESS && (coords == NULL || rank == NULL))
        err = MPI_ERR_ARG;
    if (err == MPI_SUCCESS && (*rank = rank_at(c->cart, coords)) == MPI_PROC_NULL)
        err = MPI_ERR_RANK;
    return fm_raise(comm, err, "MPI_Cart_rank");
}

int MPI_Cart_coords(MPI_Comm comm, int rank, int maxdims, int coords[]) {
    fm_comm *c;
    int err = cart_of(comm, &c);
    if (err == MPI_SUCCESS && (rank < 0 || rank >= c->size))
        err = MPI_ERR_RANK;
    if (err == MPI_SUCCESS && (maxdims < c->cart->ndims || (maxdims > 0 && coords == NULL)))
        err = MPI_ERR_ARG;
    if (err == MPI_SUCCESS)
        coords_of(c->cart, rank, coords);
    return fm_raise(comm, err, "MPI_Cart_coords");
}

int MPI_Cart_shift(MPI_Comm comm, int direction, int disp, int *rank_source, int *rank_dest) {
    fm_comm *c;
    int err = cart_of(comm, &c);
    if (err == MPI_SUCCESS && (direction < 0 || direction >= c->cart->ndims))
        err = MPI_ERR_ARG;
    if (err == MPI_SUCCESS && (rank_source == NULL || rank_dest == NULL))
        err = MPI_ERR_ARG;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Cart_shift");
    int *coords = fm_alloc((size_t)c->cart->ndims * sizeof(int));
    if (coords == NULL)
        return fm_raise(comm, MPI_ERR_NO_MEM, "MPI_Cart_shift");
    coords_of(c->cart, c->rank, coords);
    int here = coords[direction];
    coords[direction] = here + disp;
    *rank_dest = rank_at(c->cart, coords);
    coords[direction] = here - disp;
    *rank_source = rank_at(c->cart, coords);
    free(coords);
    return MPI_SUCCESS;
}

int MPI_Cart_get(MPI_Comm comm, int maxdims, int dims[], int periods[], int coords[]) {
    fm_comm *c;
    int err = cart_of(comm, &c);
    if (err == MPI_SUCCESS && maxdims < c->cart->ndims)
        err = MPI_ERR_ARG;
    if (err == MPI_SUCCESS && c->cart->ndims > 0 && (!dims || !periods || !coords))
        err = MPI_ERR_ARG;
    if (err != MPI_SUCCESS)
        return fm_raise(comm, err, "MPI_Cart_get");
    for (int i = 0; i < c->cart->ndims; i++) {
        dims[i] = c->cart->dims[i];
        periods[i] = c->cart->periods[i];
    }
    coords_of(c->cart, c->rank, coords);
    return MPI_SUCCESS;
}

int MPI_Cartdim_get(MPI_Comm comm, int *ndims) {
    fm_comm *c;
    int err = cart_of(comm, &c);
    if (err == MPI_SUCCESS && ndims == NULL)
        err = MPI_ERR_ARG;
    if (err == MPI_SUCCESS)
        *ndims = c->cart->ndims;
    return fm_raise(comm, err, "MPI_Cartdim_get");
}

int MPI_Topo_test(MPI_Comm comm, int *status) {
    fm_comm *c = fm_comm_get(comm);
    if (c == NULL)
        return fm_raise(MPI_COMM_WORLD, MPI_ERR_COMM, "MPI_Topo_test");
    if (status == NULL)
        return fm_raise(comm, MPI_ERR_ARG, "MPI_Topo_test");
    *status = c->cart ? MPI_CART : MPI_UNDEFINED;
    return MPI_SUCCESS;
}
