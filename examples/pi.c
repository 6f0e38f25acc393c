/* Monte Carlo estimate of pi: every granule draws its own samples, seeded by its index.
 * Run: faabric run -n 4 examples/pi.c -- 2000000 */
#include <faabric.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t next(uint64_t *s) {
    /* xorshift64*: small, fast and good enough for a demo */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

int main(int argc, char **argv) {
    long samples = argc > 1 ? atol(argv[1]) : 1000000;
    int me = faabric_granule_index();
    int n = faabric_granule_count();
    uint64_t state = 0x9E3779B97F4A7C15ULL * (uint64_t)(me + 1);
    long hits = 0;
    for (long i = 0; i < samples; i++) {
        double x = (double)(next(&state) >> 11) / 9007199254740992.0;
        double y = (double)(next(&state) >> 11) / 9007199254740992.0;
        hits += x * x + y * y <= 1.0;
    }
    printf("granule %d of %d: %ld samples, pi ~ %.6f\n", me, n, samples, 4.0 * hits / samples);
    return 0;
}
