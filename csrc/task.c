/*
 * task.c - allocation, reference counting and names of a download task.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

static const char *const state_names[] = {
    "queued", "active", "retry_wait", "done", "failed", "cancelled"
};

static const char *const kind_names[] = {
    "", "http", "transport", "too_short", "range", "filesize", "io",
    "cancelled"
};

const char *task_state_name(enum task_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(*state_names)
        ? state_names[s] : "?";
}

const char *err_kind_name(enum err_kind k)
{
    return (unsigned)k < sizeof(kind_names) / sizeof(*kind_names)
        ? kind_names[k] : "?";
}

int task_finished_state(enum task_state s)
{
    return s == TS_DONE || s == TS_FAILED || s == TS_CANCELLED;
}

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void task_opts_clear(struct task_opts *o)
{
    if (o->key_password)
        memset(o->key_password, 0, strlen(o->key_password));
#define FREE_STRING(f, copied) free(o->f);
    TASK_OPTS_STRINGS(FREE_STRING)
#undef FREE_STRING
    curl_slist_free_all(o->headers);
    free_strv(o->cookies, o->ncookies);
    memset(o, 0, sizeof(*o));
}

static int dup_field(char **dst, const char *src)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -1;
}

/* The scalars by a struct copy, then every pointer replaced: the list in
   engine.h (TASK_OPTS_STRINGS) names each owned string, so one the copy
   would share with src cannot be left out. */
int task_opts_copy(struct task_opts *dst, const struct task_opts *src)
{
    *dst = *src;
#define NO_STRING(f, copied) dst->f = NULL;
    TASK_OPTS_STRINGS(NO_STRING)
#undef NO_STRING
    dst->headers = NULL;
    dst->cookies = NULL;
    dst->ncookies = 0;
    dst->truncate = 0;
    dst->hold_new_validator = 0;   /* nobody would release a child */
#define DUP_STRING(f, copied) \
    if (dup_field(&dst->f, (copied) ? src->f : NULL) < 0) \
        goto fail;
    TASK_OPTS_STRINGS(DUP_STRING)
#undef DUP_STRING
    for (struct curl_slist *h = src->headers; h; h = h->next) {
        struct curl_slist *n = curl_slist_append(dst->headers, h->data);
        if (!n)
            goto fail;
        dst->headers = n;
    }
    if (src->ncookies) {
        dst->cookies = calloc(src->ncookies, sizeof(char *));
        if (!dst->cookies)
            goto fail;
        for (size_t i = 0; i < src->ncookies; i++) {
            if (dup_field(&dst->cookies[i], src->cookies[i]) < 0)
                goto fail;
            dst->ncookies++;
        }
    }
    return 0;
fail:
    task_opts_clear(dst);
    return -1;
}

struct task *task_new(struct task_opts *opts, int fd)
{
    struct task *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->refs = 1;
    t->o = *opts;
    memset(opts, 0, sizeof(*opts));
    t->fd = fd;
    t->total = -1;
    t->resource_size = -1;
    t->heap_pos = (size_t)-1;
    t->state = TS_QUEUED;
    t->submit_time = eng_now();
    if (t->o.expected_size >= 0)
        t->total = t->o.expected_size;
    else if (t->o.range_end >= 0)
        t->total = t->o.range_end - t->o.range_start;
    return t;
}

void task_incref(struct task *t)
{
    __atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
}

void task_decref(struct task *t)
{
    if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    /* the last reference: the engine has finished with it (or never
       started it), so nothing else can see these fields */
    xfer_release(t);
    seg_free(t);
    if (t->parent)
        task_decref(t->parent);
    if (t->fd >= 0)
        close(t->fd);
    task_opts_clear(&t->o);
    free(t->hdr);
    if (t->mem)
        frag_mem_account(t->eng, -(int64_t)t->mem_cap);
    free(t->mem);
    free(t->etag);
    free(t->last_modified);
    free(t->live_etag);
    free(t->live_last_modified);
    free(t->effective_url);
    free_strv(t->out_cookies, t->nout_cookies);
    free(t);
}

int64_t task_written(const struct task *t)
{
    return __atomic_load_n(&t->written, __ATOMIC_RELAXED);
}
