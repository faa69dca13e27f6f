/*
 * controlfile.c - the resume state of a segmented download, beside it.
 *
 * A small text file (magic and version first, so a foreign or newer file is
 * refused rather than misread):
 *
 *   yt-dlp-async resume 1
 *   size 1073741824
 *   etag "abc"            (or "-" when the server sent none)
 *   last-modified Tue, 01 Jan 2020 00:00:00 GMT   (or "-")
 *   range 0 1048576
 *   range 4194304 5242880
 *
 * It is written to NAME.tmp and renamed over NAME, so a reader sees the old
 * or the new state, never half of one; and it is only ever written from
 * byte counts that the engine has already pwrite()n, so it never claims
 * bytes that are not in the file.  (Bytes in the page cache survive a
 * SIGKILL; they do not survive a power cut, which is not fsync()ed for.)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

#define CF_MAGIC "yt-dlp-async resume 1"

void cf_state_clear(struct resume_state *st)
{
    free(st->etag);
    free(st->last_modified);
    ranges_free(&st->done);
    st->etag = st->last_modified = NULL;
    st->size = -1;
}

/* Render the state; the caller frees the string. */
char *cf_render(const struct resume_state *st)
{
    size_t cap = 256 + (st->etag ? strlen(st->etag) : 0)
        + (st->last_modified ? strlen(st->last_modified) : 0)
        + st->done.n * 48;
    char *buf = malloc(cap);
    size_t len;
    if (!buf)
        return NULL;
    len = (size_t)snprintf(buf, cap, "%s\nsize %" PRId64 "\netag %s\n"
                           "last-modified %s\n", CF_MAGIC, st->size,
                           st->etag ? st->etag : "-",
                           st->last_modified ? st->last_modified : "-");
    for (size_t i = 0; i < st->done.n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len,
                                "range %" PRId64 " %" PRId64 "\n",
                                st->done.v[i].a, st->done.v[i].b);
    return buf;
}

int cf_write(const char *path, const char *text)
{
    size_t plen = strlen(path), len = strlen(text);
    char *tmp = malloc(plen + 5);
    FILE *f;
    int ok;
    if (!tmp)
        return -1;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    f = fopen(tmp, "we");
    if (!f) {
        free(tmp);
        return -1;
    }
    ok = fwrite(text, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (ok)
        ok = rename(tmp, path) == 0;
    if (!ok)
        unlink(tmp);
    free(tmp);
    return ok ? 0 : -1;
}

static char *cf_value(const char *line, const char *key)
{
    size_t k = strlen(key);
    const char *v;
    if (strncmp(line, key, k) != 0 || line[k] != ' ')
        return NULL;
    v = line + k + 1;
    if (strcmp(v, "-") == 0)
        return strdup("");
    return strdup(v);
}

/* 1: loaded, 0: no file, -1: unusable (the caller starts clean) */
int cf_load(const char *path, struct resume_state *st)
{
    FILE *f = fopen(path, "re");
    char line[8192];
    int n = 0, rc = -1;
    st->size = -1;
    st->etag = st->last_modified = NULL;
    ranges_init(&st->done);
    if (!f)
        return errno == ENOENT ? 0 : -1;
    while (fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        long long a, b;
        if (len == 0 || line[len - 1] != '\n')
            goto out;                    /* truncated or too long */
        line[len - 1] = 0;
        if (n++ == 0) {
            if (strcmp(line, CF_MAGIC) != 0)
                goto out;
        } else if (sscanf(line, "size %lld", &a) == 1
                   && strncmp(line, "size ", 5) == 0) {
            st->size = a;
        } else if (strncmp(line, "etag ", 5) == 0) {
            free(st->etag);
            st->etag = cf_value(line, "etag");
        } else if (strncmp(line, "last-modified ", 14) == 0) {
            free(st->last_modified);
            st->last_modified = cf_value(line, "last-modified");
        } else if (sscanf(line, "range %lld %lld", &a, &b) == 2) {
            if (a < 0 || b <= a || (st->size >= 0 && b > st->size)
                || ranges_add(&st->done, a, b) < 0)
                goto out;
        } else {
            goto out;
        }
    }
    if (n == 0 || st->size <= 0 || st->size > CF_SIZE_MAX)
        goto out;
    /* a size line after the ranges must still hold every one of them */
    if (st->done.n > 0 && st->done.v[st->done.n - 1].b > st->size)
        goto out;
    if (st->etag && !st->etag[0]) {
        free(st->etag);
        st->etag = NULL;
    }
    if (st->last_modified && !st->last_modified[0]) {
        free(st->last_modified);
        st->last_modified = NULL;
    }
    rc = 1;
out:
    fclose(f);
    if (rc != 1)
        cf_state_clear(st);
    return rc;
}
