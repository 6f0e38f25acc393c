/* The steps of coll_ring.c's reductions on one ring of members: reduce-scatter and
 * allgather, as recursive halving and doubling when the ring has a power-of-two size (log2 n
 * exchanges, each with half the data of the one before) and as a ring otherwise (n - 1
 * exchanges of 1/n each). Both move the same bytes; halving needs fewer rounds. Every
 * exchange sends and receives at once (fm_cexchange). Must not decide which calls come here.
 */
#include "coll_ring.h"

/* Elements [*blo, *bhi) of block k when [lo, hi) is cut into n nearly equal blocks. */
static void block_of(int lo, int hi, int n, int k, int *blo, int *bhi) {
    long long len = (long long)hi - lo;
    *blo = lo + (int)(len * k / n);
    *bhi = lo + (int)(len * (k + 1) / n);
}

/* Sends `out` to the next member and receives `in` from the previous one. */
static void exchange(const fm_ring *r, const char *out, int outlen, char *in, int inlen) {
    fm_cexchange(r->c, FM_TAG_RING, r->members[(r->i + 1) % r->n], out, outlen,
                 r->members[(r->i + r->n - 1) % r->n], in, inlen);
}

/* Applies the halvings of member i of n (a power of two) to [*lo, *hi), for the bits from
   n/2 down to `last`: each keeps the lower half when i has the bit clear. */
static void halve(int n, int i, int last, int *lo, int *hi) {
    for (int mask = n >> 1; mask >= last && mask > 0; mask >>= 1) {
        int mid = *lo + (int)(((long long)*hi - *lo) / 2);
        if (i & mask)
            *lo = mid;
        else
            *hi = mid;
    }
}

void fm_ring_owned(int n, int i, int lo, int hi, int *olo, int *ohi) {
    *olo = lo;
    *ohi = hi;
    if (n & (n - 1))
        block_of(lo, hi, n, (i + 1) % n, olo, ohi);
    else
        halve(n, i, 1, olo, ohi);
}

/* Recursive halving (n a power of two): log2 n exchanges with partner i ^ mask, each of
   half the data of the step before. */
static int halving_rs(const fm_combine *k, const fm_ring *r, const char *src, char *dst, int lo,
                      int hi) {
    int err = MPI_SUCCESS, esz = k->esz;
    for (int mask = r->n >> 1; mask > 0; mask >>= 1, src = dst) {
        int mid = lo + (int)(((long long)hi - lo) / 2), up = r->i & mask;
        int klo = up ? mid : lo, khi = up ? hi : mid; /* the half I keep */
        int glo = up ? lo : mid, ghi = up ? mid : hi; /* the half I give */
        int peer = r->members[r->i ^ mask];
        char *land = src == dst ? k->tmp : dst + (size_t)klo * esz;
        fm_cexchange(r->c, FM_TAG_RING, peer, src + (size_t)glo * esz, (ghi - glo) * esz, peer,
                     land, (khi - klo) * esz);
        const char *mine = src == dst ? k->tmp : src + (size_t)klo * esz;
        err |= fm_op_apply(k->op, k->type, mine, dst + (size_t)klo * esz, khi - klo);
        lo = klo;
        hi = khi;
    }
    return err;
}

/* Recursive doubling, the mirror of halving_rs: each exchange doubles what a member holds. */
static void doubling_ag(const fm_combine *k, const fm_ring *r, char *dst, int lo, int hi) {
    for (int mask = 1; mask < r->n; mask <<= 1) {
        int plo = lo, phi = hi, peer = r->members[r->i ^ mask];
        halve(r->n, r->i, mask << 1, &plo, &phi); /* what the pair holds together after */
        int mid = plo + (int)(((long long)phi - plo) / 2);
        int mlo = r->i & mask ? mid : plo, mhi = r->i & mask ? phi : mid;
        int tlo = r->i & mask ? plo : mid, thi = r->i & mask ? mid : phi;
        fm_cexchange(r->c, FM_TAG_RING, peer, dst + (size_t)mlo * k->esz, (mhi - mlo) * k->esz,
                     peer, dst + (size_t)tlo * k->esz, (thi - tlo) * k->esz);
    }
}

int fm_ring_rs(const fm_combine *k, const fm_ring *r, const char *src, char *dst, int lo, int hi) {
    if ((r->n & (r->n - 1)) == 0)
        return halving_rs(k, r, src, dst, lo, hi);
    int n = r->n, esz = k->esz, err = MPI_SUCCESS, slo, shi, blo, bhi;
    for (int s = 0; s < n - 1; s++) {
        block_of(lo, hi, n, (r->i - s + n) % n, &slo, &shi);
        block_of(lo, hi, n, (r->i - s - 1 + n) % n, &blo, &bhi);
        const char *out = (s == 0 ? src : dst) + (size_t)slo * esz;
        char *land = src == dst ? k->tmp : dst + (size_t)blo * esz;
        exchange(r, out, (shi - slo) * esz, land, (bhi - blo) * esz);
        const char *mine = src == dst ? k->tmp : src + (size_t)blo * esz;
        err |= fm_op_apply(k->op, k->type, mine, dst + (size_t)blo * esz, bhi - blo);
    }
    return err;
}

void fm_ring_ag(const fm_combine *k, const fm_ring *r, char *dst, int lo, int hi) {
    if ((r->n & (r->n - 1)) == 0) {
        doubling_ag(k, r, dst, lo, hi);
        return;
    }
    int n = r->n, esz = k->esz, slo, shi, blo, bhi;
    for (int s = 0; s < n - 1; s++) {
        block_of(lo, hi, n, (r->i + 1 - s + n) % n, &slo, &shi);
        block_of(lo, hi, n, (r->i - s + n) % n, &blo, &bhi);
        exchange(r, dst + (size_t)slo * esz, (shi - slo) * esz, dst + (size_t)blo * esz,
                 (bhi - blo) * esz);
    }
}

