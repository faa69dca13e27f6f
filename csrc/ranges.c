/*
 * ranges.c - a set of byte ranges [a, b), kept sorted and merged.
 *
 * Pure data: the finished parts of a segmented download.  No I/O, no
 * clock, no curl.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"

void ranges_init(struct ranges *r)
{
    memset(r, 0, sizeof(*r));
}

void ranges_free(struct ranges *r)
{
    free(r->v);
    ranges_init(r);
}

void ranges_clear(struct ranges *r)
{
    r->n = 0;
}

int ranges_add(struct ranges *r, int64_t a, int64_t b)
{
    size_t i, j;
    if (b <= a)
        return 0;
    /* first range that ends at or after a: it may merge */
    for (i = 0; i < r->n && r->v[i].b < a; i++)
        ;
    /* ranges that start at or before b merge into one */
    for (j = i; j < r->n && r->v[j].a <= b; j++) {
        if (r->v[j].a < a)
            a = r->v[j].a;
        if (r->v[j].b > b)
            b = r->v[j].b;
    }
    if (j == i) {                       /* no overlap: insert at i */
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 8;
            struct range *v = realloc(r->v, cap * sizeof(*v));
            if (!v)
                return -1;
            r->v = v;
            r->cap = cap;
        }
        memmove(r->v + i + 1, r->v + i, (r->n - i) * sizeof(*r->v));
        r->n++;
    } else if (j > i + 1) {             /* several merged into i */
        memmove(r->v + i + 1, r->v + j, (r->n - j) * sizeof(*r->v));
        r->n -= j - i - 1;
    }
    r->v[i].a = a;
    r->v[i].b = b;
    return 0;
}

int ranges_copy(struct ranges *dst, const struct ranges *src)
{
    ranges_clear(dst);
    for (size_t i = 0; i < src->n; i++)
        if (ranges_add(dst, src->v[i].a, src->v[i].b) < 0)
            return -1;
    return 0;
}

int64_t ranges_total(const struct ranges *r)
{
    int64_t sum = 0;
    for (size_t i = 0; i < r->n; i++)
        sum += r->v[i].b - r->v[i].a;
    return sum;
}

int ranges_covers(const struct ranges *r, int64_t a, int64_t b)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].a <= a && r->v[i].b >= b)
            return 1;
    return b <= a;
}

/* The first part of [from, to) that is in none of the ranges. */
int ranges_first_gap(const struct ranges *r, int64_t from, int64_t to,
                     int64_t *ga, int64_t *gb)
{
    int64_t pos = from;
    for (size_t i = 0; i < r->n && pos < to; i++) {
        if (r->v[i].b <= pos)
            continue;
        if (r->v[i].a > pos) {
            *ga = pos;
            *gb = r->v[i].a < to ? r->v[i].a : to;
            return 1;
        }
        pos = r->v[i].b;
    }
    if (pos < to) {
        *ga = pos;
        *gb = to;
        return 1;
    }
    return 0;
}
