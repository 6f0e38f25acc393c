/* Shared by coll_ring.c and coll_ring_steps.c only: a ring of members and how its steps
 * combine data. Must not be included elsewhere (the rest of the library sees fm_internal.h).
 */
#ifndef FAABRIC_COLL_RING_H
#define FAABRIC_COLL_RING_H

#include "fm_internal.h"

typedef struct fm_ring {
    const fm_comm *c;
    int *members; /* comm ranks in ring order */
    int n, i;     /* members, and my index among them */
} fm_ring;

typedef struct fm_combine {
    MPI_Datatype type;
    MPI_Op op;
    int esz;   /* bytes per element (dense types only) */
    char *tmp; /* room for half the data, for combining into data that is also being sent */
} fm_combine;

/* Reduce-scatter of elements [lo, hi) of every member's `src` into `dst` (src == dst is
   allowed); afterwards fm_ring_owned() of dst holds the combination of all members. */
int fm_ring_rs(const fm_combine *k, const fm_ring *r, const char *src, char *dst, int lo,
               int hi);
/* Allgather of [lo, hi) in dst, each member starting with its fm_ring_owned() part. */
void fm_ring_ag(const fm_combine *k, const fm_ring *r, char *dst, int lo, int hi);
/* Elements of [lo, hi) that member i of an n-member ring holds after fm_ring_rs. */
void fm_ring_owned(int n, int i, int lo, int hi, int *olo, int *ohi);

#endif
