/*
 * fuzz_http.c - libFuzzer harness for csrc/httpparse.c.
 *
 * The input is a raw response header block as curl hands it over.  Each
 * parser runs on it (and on the whole input as a bare value) and its
 * answer is checked against what the engine relies on, not just for a
 * crash: a found header lies inside the block on a line that names it,
 * a Content-Range has 0 <= start <= end < total and renders back to
 * itself, a Retry-After is a finite wait in [0, HTTP_RETRY_AFTER_MAX].
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "fuzz.h"

#define FZ_NOW ((time_t)1764633600)     /* a fixed clock: reproducible */

static const char *const fz_names[] = {
    "content-range", "retry-after", "etag", "last-modified",
    "content-length", "content-encoding", "location",
};

static void fz_check_found(const char *hdr, size_t len, const char *name,
                           const char *v, size_t vlen)
{
    size_t nlen = strlen(name);
    const char *colon = v, *line;
    FZ_CHECK(v >= hdr && v <= hdr + len && vlen <= (size_t)(hdr + len - v));
    FZ_CHECK(!memchr(v, '\n', vlen));
    if (vlen) {
        FZ_CHECK(v[0] != ' ' && v[0] != '\t');
        FZ_CHECK(v[vlen - 1] != ' ' && v[vlen - 1] != '\t'
                 && v[vlen - 1] != '\r');
    }
    while (colon > hdr && (colon[-1] == ' ' || colon[-1] == '\t'))
        colon--;
    FZ_CHECK(colon > hdr && colon[-1] == ':');
    colon--;
    FZ_CHECK((size_t)(colon - hdr) >= nlen);
    line = colon - nlen;
    for (size_t i = 0; i < nlen; i++)
        FZ_CHECK(tolower((unsigned char)line[i]) == name[i]);
    FZ_CHECK(line == hdr || line[-1] == '\n');
}

static void fz_content_range(const char *v, size_t vlen)
{
    int64_t s = -2, e = -2, total = -2, s2, e2, t2;
    char again[96];
    int n;
    if (http_content_range(v, vlen, &s, &e, &total) < 0)
        return;
    FZ_CHECK(s >= 0 && s <= e);
    FZ_CHECK(total == -1 || total > e);
    /* what was accepted reads back the same once rendered */
    if (total < 0)
        n = snprintf(again, sizeof(again), "bytes %lld-%lld/*",
                     (long long)s, (long long)e);
    else
        n = snprintf(again, sizeof(again), "bytes %lld-%lld/%lld",
                     (long long)s, (long long)e, (long long)total);
    FZ_CHECK(n > 0 && (size_t)n < sizeof(again));
    FZ_CHECK(http_content_range(again, (size_t)n, &s2, &e2, &t2) == 0);
    FZ_CHECK(s2 == s && e2 == e && t2 == total);
}

static void fz_retry_after(const char *v, size_t vlen)
{
    double d = http_retry_after(v, vlen, FZ_NOW);
    FZ_CHECK(isfinite(d));
    FZ_CHECK(d >= 0 && d <= HTTP_RETRY_AFTER_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy, so ASan sees any read past the end */
    char *hdr = malloc(size ? size : 1);
    size_t vlen, rlen;
    const char *v;
    if (!hdr)
        return 0;
    memcpy(hdr, data, size);

    for (size_t i = 0; i < sizeof(fz_names) / sizeof(fz_names[0]); i++) {
        v = hdr_find(hdr, size, fz_names[i], &vlen);
        if (v)
            fz_check_found(hdr, size, fz_names[i], v, vlen);
    }
    v = http_reason_phrase(hdr, size, &rlen);
    if (v) {
        const char *eol = memchr(hdr, '\n', size);
        FZ_CHECK(eol && v > hdr && v <= eol && rlen <= (size_t)(eol - v));
        FZ_CHECK(rlen == 0 || (v[rlen - 1] != '\r' && v[rlen - 1] != ' '));
    }
    v = hdr_find(hdr, size, "content-range", &vlen);
    if (v)
        fz_content_range(v, vlen);
    v = hdr_find(hdr, size, "retry-after", &vlen);
    fz_retry_after(v, v ? vlen : 0);

    /* the whole input as a bare value */
    fz_content_range(hdr, size);
    fz_retry_after(hdr, size);
    free(hdr);
    return 0;
}
