/*
 * fuzz_controlfile.c - libFuzzer harness for cf_load() (csrc/controlfile.c).
 *
 * cf_load() reads a path, so the input goes into a memfd and the reader
 * opens /proc/self/fd/N.  A loaded state must be one the engine can trust:
 * 0 < size <= CF_SIZE_MAX, the ranges sorted, disjoint, not touching and
 * inside [0, size), validators without newlines; rendering it with
 * cf_render() and loading that gives the same state back.  A refused file
 * leaves the state empty.  ASan's leak check covers every path.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine.h"
#include "fuzz.h"

static int fz_fd = -1;
static char fz_path[64];

static int fz_load(const void *data, size_t size, struct resume_state *st)
{
    if (fz_fd < 0) {
        fz_fd = memfd_create("fuzz-ctl", MFD_CLOEXEC);
        FZ_CHECK(fz_fd >= 0);
        snprintf(fz_path, sizeof(fz_path), "/proc/self/fd/%d", fz_fd);
    }
    FZ_CHECK(ftruncate(fz_fd, 0) == 0);
    FZ_CHECK(size == 0 || pwrite(fz_fd, data, size, 0) == (ssize_t)size);
    return cf_load(fz_path, st);
}

static void fz_check_text(const char *s)
{
    FZ_CHECK(!s || (s[0] && !strchr(s, '\n')));
}

static void fz_check_state(const struct resume_state *st)
{
    FZ_CHECK(st->size > 0 && st->size <= CF_SIZE_MAX);
    fz_check_text(st->etag);
    fz_check_text(st->last_modified);
    FZ_CHECK(st->done.n <= st->done.cap);
    for (size_t i = 0; i < st->done.n; i++) {
        const struct range *r = &st->done.v[i];
        FZ_CHECK(r->a >= 0 && r->a < r->b && r->b <= st->size);
        FZ_CHECK(i == 0 || st->done.v[i - 1].b < r->a);
    }
    FZ_CHECK(ranges_total(&st->done) <= st->size);
}

static int fz_same_text(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void fz_round_trip(const struct resume_state *st)
{
    struct resume_state again;
    char *text = cf_render(st);
    FZ_CHECK(text);
    FZ_CHECK(fz_load(text, strlen(text), &again) == 1);
    FZ_CHECK(again.size == st->size);
    FZ_CHECK(fz_same_text(again.etag, st->etag));
    FZ_CHECK(fz_same_text(again.last_modified, st->last_modified));
    FZ_CHECK(again.done.n == st->done.n);
    for (size_t i = 0; i < st->done.n; i++)
        FZ_CHECK(again.done.v[i].a == st->done.v[i].a
                 && again.done.v[i].b == st->done.v[i].b);
    cf_state_clear(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct resume_state st;
    int rc = fz_load(data, size, &st);
    FZ_CHECK(rc == 1 || rc == -1);       /* the file is there */
    if (rc == 1) {
        fz_check_state(&st);
        fz_round_trip(&st);
    } else {
        FZ_CHECK(!st.etag && !st.last_modified && st.done.n == 0);
    }
    cf_state_clear(&st);
    return 0;
}
