/*
 * fuzz_ranges.c - libFuzzer harness for csrc/ranges.c, the set of finished
 * byte ranges that a control file and each Content-Range feed.
 *
 * The input is a list of operations on a small universe of offsets, run on
 * a struct ranges and, side by side, on a plain bitmap.  After each one the
 * set must be sorted, disjoint and merged (no two ranges touch), hold
 * exactly the bitmap's bytes, and answer ranges_total, ranges_covers and
 * ranges_first_gap as the bitmap does; ranges_copy gives an equal set.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "fuzz.h"

#define FZ_SPAN 512                     /* offsets 0..FZ_SPAN-1 */

static void fz_check_shape(const struct ranges *r, const unsigned char *bm)
{
    int64_t count = 0, pos = 0;
    FZ_CHECK(r->n <= r->cap);
    for (size_t i = 0; i < r->n; i++) {
        FZ_CHECK(r->v[i].a < r->v[i].b);
        FZ_CHECK(i == 0 || r->v[i - 1].b < r->v[i].a);
        FZ_CHECK(r->v[i].a >= 0 && r->v[i].b <= FZ_SPAN);
        for (; pos < r->v[i].a; pos++)
            FZ_CHECK(!bm[pos]);
        for (; pos < r->v[i].b; pos++)
            FZ_CHECK(bm[pos]);
        count += r->v[i].b - r->v[i].a;
    }
    for (; pos < FZ_SPAN; pos++)
        FZ_CHECK(!bm[pos]);
    FZ_CHECK(ranges_total(r) == count);
}

static void fz_check_queries(const struct ranges *r, const unsigned char *bm,
                             int64_t a, int64_t b)
{
    int64_t ga = -1, gb = -1, x;
    int covered = 1, found;
    for (x = a; x < b; x++)
        covered = covered && bm[x];
    FZ_CHECK(ranges_covers(r, a, b) == covered);
    found = ranges_first_gap(r, a, b, &ga, &gb);
    for (x = a; x < b && bm[x]; x++)
        ;
    FZ_CHECK(found == (x < b));
    if (found) {
        FZ_CHECK(ga == x && gb > ga && gb <= b);
        for (x = ga; x < gb; x++)
            FZ_CHECK(!bm[x]);
        FZ_CHECK(gb == b || bm[gb]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ranges r, copy;
    unsigned char bm[FZ_SPAN];
    memset(bm, 0, sizeof(bm));
    ranges_init(&r);
    ranges_init(&copy);
    for (size_t i = 0; i + 3 <= size; i += 3) {
        /* op: low bit; a, b: 9-bit offsets from the three bytes */
        int64_t a = data[i + 1] | ((data[i] >> 1) & 1) << 8;
        int64_t b = data[i + 2] | ((data[i] >> 2) & 1) << 8;
        if (data[i] & 1) {
            FZ_CHECK(ranges_add(&r, a, b) == 0);
            for (int64_t x = a; x < b; x++)
                bm[x] = 1;
        } else if (a <= b) {
            fz_check_queries(&r, bm, a, b);
        }
        if ((data[i] & 0xf8) == 0xf8) {
            FZ_CHECK(ranges_copy(&copy, &r) == 0);
            fz_check_shape(&copy, bm);
        }
        fz_check_shape(&r, bm);
    }
    ranges_free(&r);
    ranges_free(&copy);
    return 0;
}
