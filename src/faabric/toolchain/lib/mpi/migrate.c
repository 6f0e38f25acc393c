/* Migration points: the places where the runtime may move this rank to another host.
 *
 * A point is collective over MPI_COMM_WORLD: rank 0 asks the host whether a move is wanted
 * and tells the others, then every rank enters fmpi_migrate together. A rank that moves
 * leaves through that call (its call stack is saved in `unwind_area`) and comes back out of
 * it on its new host; afterwards every communicator learns where its ranks run now, so the
 * locality-aware collectives stay consistent across ranks. Ranks with open windows do not
 * move. Must not be called by one rank
 * alone: every rank of the world reaches the same points in the same order.
 */
#include <faabric.h>

#include "fm_internal.h"

#define UNWIND_BYTES (64 * 1024)

/* The saved call stack of a moving rank; large enough for deep call paths to a point. */
static char unwind_area[UNWIND_BYTES] __attribute__((aligned(16)));

int fm_migration_point(int at_barrier, int epoch) {
    fm_comm *world = fm_comm_get(MPI_COMM_WORLD);
    if (world == NULL || world->size < 2)
        return 0;
    if (epoch < 0) {
        int32_t offered = world->rank == 0 ? fmpi_migration_epoch(at_barrier) : 0;
        fm_bcast_raw(world, &offered, sizeof offered, 0);
        epoch = offered;
    }
    if (epoch <= 0)
        return 0;
    /* Windows are memory other ranks' hosts write at any time: no rank moves while any has
       one open (the offer stays for a later point). Every rank gets here with the epoch. */
    int open = fm_win_open() > 0, any = 0;
    MPI_Allreduce(&open, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    if (any)
        return 0;
    int moved = fmpi_migrate(epoch, unwind_area, UNWIND_BYTES);
    if (moved)
        fm_comm_refresh_hosts();
    return moved;
}

int faabric_migration_point(void) {
    if (!fm_initialised() || fm_finalised())
        return 0;
    return fm_migration_point(0, -1);
}
