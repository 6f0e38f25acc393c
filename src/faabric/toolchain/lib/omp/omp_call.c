/*
 * omp_call.c: calling a parallel region's outlined function with its shared variables.
 *
 * clang outlines a region into a function taking (gtid*, btid*, then one pointer-sized value
 * per shared variable). A wasm call must match that exact signature, so each count has its
 * own call below. Must not do anything else.
 */
#include "omp_internal.h"

typedef void *P;
#define A4(i) a[i], a[i + 1], a[i + 2], a[i + 3]

void omp_call_micro(kmpc_micro fn, kmp_int32 gtid, kmp_int32 tid, int argc, void **a) {
    kmp_int32 g = gtid, b = tid;
    switch (argc) {
    case 0: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *);
        ((F)fn)(&g, &b);
        return;
    }
    case 1: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P);
        ((F)fn)(&g, &b, a[0]);
        return;
    }
    case 2: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P);
        ((F)fn)(&g, &b, a[0], a[1]);
        return;
    }
    case 3: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P);
        ((F)fn)(&g, &b, a[0], a[1], a[2]);
        return;
    }
    case 4: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P);
        ((F)fn)(&g, &b, A4(0));
        return;
    }
    case 5: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P, P);
        ((F)fn)(&g, &b, A4(0), a[4]);
        return;
    }
    case 6: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P, P, P);
        ((F)fn)(&g, &b, A4(0), a[4], a[5]);
        return;
    }
    case 7: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P, P, P, P);
        ((F)fn)(&g, &b, A4(0), a[4], a[5], a[6]);
        return;
    }
    case 8: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P, P, P, P, P);
        ((F)fn)(&g, &b, A4(0), A4(4));
        return;
    }
    case 9: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P, P, P, P, P, P);
        ((F)fn)(&g, &b, A4(0), A4(4), a[8]);
        return;
    }
    case 10: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P, P, P, P, P, P, P);
        ((F)fn)(&g, &b, A4(0), A4(4), a[8], a[9]);
        return;
    }
    case 11: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P, P, P, P, P, P, P, P);
        ((F)fn)(&g, &b, A4(0), A4(4), a[8], a[9], a[10]);
        return;
    }
    case 12: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P, P, P, P, P, P, P, P, P);
        ((F)fn)(&g, &b, A4(0), A4(4), A4(8));
        return;
    }
    case 13: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P, P, P, P, P, P, P, P, P, P);
        ((F)fn)(&g, &b, A4(0), A4(4), A4(8), a[12]);
        return;
    }
    case 14: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P, P, P, P, P, P, P, P, P, P, P);
        ((F)fn)(&g, &b, A4(0), A4(4), A4(8), a[12], a[13]);
        return;
    }
    case 15: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P);
        ((F)fn)(&g, &b, A4(0), A4(4), A4(8), a[12], a[13], a[14]);
        return;
    }
    case 16: {
        typedef void (*F)(kmp_int32 *, kmp_int32 *, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P);
        ((F)fn)(&g, &b, A4(0), A4(4), A4(8), A4(12));
        return;
    }
    default:
        fth_fatal("a parallel region shares more than 16 variables");
    }
}
