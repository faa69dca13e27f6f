/*
 * segment.c - one resource over several connections (engine thread).
 *
 * A segmented download is a parent task that owns no connection of its
 * own: it plans, and child tasks (ordinary transfers of bounded ranges,
 * each with its own retries) fetch.  The plan follows aria2's rule:
 *
 *   - the first child asks for the whole resource (or the first gap of a
 *     resumed one); nothing else starts until its reply is checked, which
 *     gives the size, the validators and whether ranges are honoured;
 *   - a free connection takes the lowest gap no child covers; with no gap
 *     it takes the largest unfinished child range and splits it in half,
 *     while both halves stay at least min_piece long;
 *   - a request never covers more than max_request bytes (YouTube's 10 MiB);
 *   - a child that finds the range unusable (a 200, a wrong Content-Range,
 *     a changed ETag) makes the download fall back to one connection,
 *     restarting cleanly from the first byte: never a mixed file.
 *   - a child that fails (the server refused one more connection, a
 *     single-use URL) leaves its range as a gap and caps the download at
 *     the connections still working; one that ends before its first byte
 *     gives its range to the working connection it was cut from when that
 *     one's request reaches on (seg_give_back).  The download fails only
 *     when the last connection fails.
 *
 * Finished ranges are recorded in the parent and, as the bytes come in
 * (every tenth of a second of transfer, seg_checkpoints), in the control
 * file (controlfile.c).
 *
 * How many connections: o.connections when fixed; with o.adaptive the
 * controller of adaptive.c sets the target (one connection at first, more
 * while each step pays, fewer on pressure) from samples seg_adapt feeds it
 * four times a second.  A higher target is met by the plan above (gaps,
 * then halving); a lower one by giving back the newest connections: one
 * with no byte yet is cancelled, one with bytes finishes its range and is
 * not replaced (seg_shed).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"

/* The control file follows the bytes: a child's write that finds
   SEG_SAVE_LAG seconds gone since the last save and at least
   SEG_SAVE_FLOOR bytes written since (so a slow download is not saved on
   every write) has it saved as soon as curl's callbacks return; the speed
   tick saves what is left after SEG_SAVE_INTERVAL.  The bytes written
   since the last save are then at most SEG_SAVE_LAG seconds of transfer at
   the rate of the moment, or SEG_SAVE_FLOOR, whatever the connection
   count: that, plus what was in flight, is what a kill -9 costs.  The
   price: up to ten saves a second, each a render of a few lines, a write
   and a rename. */
#define SEG_SAVE_INTERVAL 1.0
#define SEG_SAVE_LAG 0.1
#define SEG_SAVE_FLOOR (64 * 1024)

static int64_t child_end(const struct seg *s, const struct task *c)
{
    return c->o.range_end >= 0 ? c->o.range_end : s->size;
}

static int64_t child_pos(const struct task *c)
{
    return c->o.range_start + task_written(c);
}

/* Forget every finished byte (the resource changed, or ranges failed). */
static void seg_done_clear(struct eng *e, struct seg *s)
{
    ranges_clear(&s->done);
    eng_lock(e);
    s->done_bytes = 0;
    eng_unlock(e);
}

/* ---- set-up (Python thread, before the task is posted) -------------- */

int seg_init(struct task *t, char *err, size_t errlen)
{
    struct seg *s = calloc(1, sizeof(*s));
    struct resume_state st;
    struct stat sb;
    int rc;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->start = t->o.range_start;
    s->size = -1;
    ranges_init(&s->done);
    adaptive_init(&s->ctl, t->o.connections, eng_now());
    if (!t->o.adaptive) {
        /* fixed: the history is that one number */
        s->ctl.target = s->ctl.hist[0] = t->o.connections;
    }
    t->seg = s;
    if (!t->o.state_path)
        return 0;
    rc = cf_load(t->o.state_path, &st);
    if (rc != 1)
        return 0;                 /* none, or unusable: start clean */
    /* the data file must hold every byte the control file claims */
    if (st.done.n > 0 && !t->o.truncate
        && (t->fd >= 0 ? fstat(t->fd, &sb) : stat(t->o.path, &sb)) == 0
        && sb.st_size >= t->o.file_offset
               + (st.done.v[st.done.n - 1].b - s->start)) {
        for (size_t i = 0; i < st.done.n; i++) {
            int64_t a = st.done.v[i].a < s->start ? s->start : st.done.v[i].a;
            if (a < st.done.v[i].b)
                ranges_add(&s->done, a, st.done.v[i].b);
        }
        s->size = st.size;
        s->resumed = ranges_total(&s->done);
        free(t->o.if_range);
        t->o.if_range = NULL;
        if (st.etag && strncmp(st.etag, "W/", 2) != 0)
            t->o.if_range = strdup(st.etag);
        else if (st.last_modified)
            t->o.if_range = strdup(st.last_modified);
        if (!t->o.if_range) {
            /* nothing to prove the bytes are still current */
            ranges_clear(&s->done);
            s->resumed = 0;
        }
        t->written = s->resumed;
        s->done_bytes = s->resumed;
    }
    cf_state_clear(&st);
    return 0;
}

void seg_free(struct task *t)
{
    if (!t->seg)
        return;
    ranges_free(&t->seg->done);
    free(t->seg->saved);
    free(t->seg);
    t->seg = NULL;
}

/* ---- children ---------------------------------------------------------- */

static struct task *child_new(struct eng *e, struct task *p, int64_t a,
                              int64_t b)
{
    struct seg *s = p->seg;
    struct task_opts o;
    struct task *c;
    int fd;

    if (s->nchildren >= SEG_MAX_CONNECTIONS)
        return NULL;
    if (task_opts_copy(&o, &p->o) < 0)
        return NULL;
    o.range_start = a;
    o.range_end = b;
    o.file_offset = p->o.file_offset + (a - p->o.range_start);
    o.expected_size = -1;
    o.connections = 1;
    if (s->confirmed) {
        /* children must get the bytes of the version we started with */
        const char *v = p->etag && strncmp(p->etag, "W/", 2) != 0 ? p->etag
                                                                  : p->last_modified;
        free(o.if_range);
        o.if_range = v ? strdup(v) : NULL;
    }
    /* a path is opened by each child when it starts; a caller's fd is
       shared */
    fd = p->fd >= 0 ? fcntl(p->fd, F_DUPFD_CLOEXEC, 3) : -1;
    if (p->fd >= 0 && fd < 0) {
        task_opts_clear(&o);
        return NULL;
    }
    c = task_new(&o, fd);
    if (!c) {
        if (fd >= 0)
            close(fd);
        task_opts_clear(&o);
        return NULL;
    }
    c->eng = e;
    c->id = p->id;
    c->seq = p->seq;
    c->parent = p;
    task_incref(p);
    c->next = e->tasks;
    e->tasks = c;
    eng_lock(e);
    s->children[s->nchildren++] = c;
    eng_unlock(e);
    if (eng_enqueue(e, c) < 0) {
        eng_finish(e, c, TS_FAILED);
        return NULL;
    }
    return c;
}

/* Take a child off the plan and count its bytes as done, in one step so
   that the live progress neither dips nor double counts. */
static void seg_remove_child(struct eng *e, struct seg *s, struct task *c,
                             int keep_bytes)
{
    int64_t a = c->o.range_start, b = a + task_written(c);
    if (keep_bytes && b > a)
        ranges_add(&s->done, a, b);
    eng_lock(e);
    s->done_bytes = ranges_total(&s->done);
    for (int i = 0; i < s->nchildren; i++) {
        if (s->children[i] == c) {
            s->children[i] = s->children[--s->nchildren];
            s->children[s->nchildren] = NULL;
            break;
        }
    }
    eng_unlock(e);
}

void seg_cancel_children(struct eng *e, struct task *t)
{
    struct seg *s = t->seg;
    while (s->nchildren > 0)
        eng_finish(e, s->children[0], TS_CANCELLED);
}

/* ---- the parent's progress and its control file ------------------------ */

/* The finished ranges plus each child's range: what it has written so
   far (to_end = 0: the bytes on disk) or all it is assigned (to_end = 1:
   the bytes no other connection should take). */
static int seg_ranges(const struct task *t, struct ranges *out, int to_end)
{
    const struct seg *s = t->seg;
    if (ranges_copy(out, &s->done) < 0)
        return -1;
    for (int i = 0; i < s->nchildren; i++) {
        const struct task *c = s->children[i];
        int64_t end = to_end ? child_end(s, c) : child_pos(c);
        if (ranges_add(out, c->o.range_start, end) < 0)
            return -1;
    }
    return 0;
}

void seg_refresh(struct eng *e, struct task *t, double now, int force)
{
    struct seg *s = t->seg;
    struct resume_state st;
    char *text;
    (void)e;

    ranges_init(&st.done);
    if (seg_ranges(t, &st.done, 0) < 0) {
        ranges_free(&st.done);
        return;
    }
    __atomic_store_n(&t->written, ranges_total(&st.done), __ATOMIC_RELAXED);
    if (!t->o.state_path || !s->confirmed || s->size <= 0
        || (!force && now - s->last_save < SEG_SAVE_INTERVAL)) {
        ranges_free(&st.done);
        return;
    }
    s->last_save = now;
    s->unsaved = 0;
    s->save_me = 0;
    st.size = s->size;
    st.etag = t->etag;
    st.last_modified = t->last_modified;
    text = cf_render(&st);
    ranges_free(&st.done);
    if (!text)
        return;
    if (s->saved && strcmp(s->saved, text) == 0) {
        free(text);
        return;
    }
    if (cf_write(t->o.state_path, text) == 0) {
        free(s->saved);
        s->saved = text;
    } else {
        free(text);
    }
}

/* A child wrote n bytes at now (curl's write callback, engine thread). */
void seg_child_wrote(struct eng *e, struct task *c, int64_t n, double now)
{
    struct seg *s = c->parent->seg;
    if (!c->parent->o.state_path)
        return;
    s->unsaved += n;
    if (!s->save_me && s->unsaved >= SEG_SAVE_FLOOR
        && now - s->last_save >= SEG_SAVE_LAG) {
        s->save_me = 1;
        e->save_pending = 1;
    }
}

/* Save the control files that are due (the loop, after curl's callbacks). */
void seg_checkpoints(struct eng *e, double now)
{
    if (!e->save_pending)
        return;
    e->save_pending = 0;
    for (struct task *t = e->tasks; t; t = t->next) {
        struct seg *s = t->seg;
        if (!s || !s->save_me)
            continue;
        if (!task_finished_state(t->state) && !s->finishing)
            seg_refresh(e, t, now, 1);
        s->save_me = 0;         /* also when nothing could be saved yet */
        s->unsaved = 0;
    }
}

/* ---- start, confirmation, planning -------------------------------------- */

/* eng_finish() cancels the children and saves the control file */
static void seg_finish_parent(struct eng *e, struct task *t,
                              enum task_state st)
{
    eng_finish(e, t, st);
}

int seg_start(struct eng *e, struct task *t)
{
    struct seg *s = t->seg;
    int64_t a = s->start, b = -1, ga, gb;
    if (t->fd < 0 && t->o.path && t->o.truncate) {
        /* truncate once, here; the children open the file without */
        if (eng_open_file(e, t) < 0) {
            seg_finish_parent(e, t, TS_FAILED);
            return -1;
        }
        close(t->fd);
        t->fd = -1;
    }
    eng_lock(e);
    eng_set_state_locked(t, TS_ACTIVE);
    if (s->size > 0) {
        t->resource_size = s->size;
        t->total = s->size - s->start;
    }
    eng_unlock(e);
    if (s->done.n > 0) {
        if (!ranges_first_gap(&s->done, s->start, s->size, &ga, &gb)) {
            /* the control file says every byte is here already */
            eng_lock(e);
            s->confirmed = 1;
            eng_unlock(e);
            seg_finish_parent(e, t, TS_DONE);
            return 0;
        }
        a = ga;
        b = gb;
    }
    if (t->o.max_request > 0 && (b < 0 || b - a > t->o.max_request))
        b = a + t->o.max_request;
    if (!child_new(e, t, a, b)) {
        snprintf(t->errmsg, sizeof(t->errmsg),
                 "cannot start a connection: %s", strerror(errno));
        t->err = EK_TRANSPORT;
        seg_finish_parent(e, t, TS_FAILED);
        return -1;
    }
    return 0;
}

/* The parent answers with a child's reply headers (the first reply, or
   the one that failed it). */
static void seg_copy_headers(struct task *t, const struct task *c)
{
    char *h;
    if (!c->hdr_len)
        return;
    h = malloc(c->hdr_len);
    if (!h)
        return;
    memcpy(h, c->hdr, c->hdr_len);
    free(t->hdr);
    t->hdr = h;
    t->hdr_len = t->hdr_cap = c->hdr_len;
}

/* The first child's reply passed the checks: learn the size, the
   validators and whether ranges work.  Runs inside curl's write callback,
   so it only records; planning happens in the loop. */
void seg_child_confirmed(struct task *c)
{
    struct task *p = c->parent;
    struct seg *s = p->seg;
    size_t vlen;
    const char *ar;
    int64_t size = c->resource_size;
    int ranges_ok;

    if (s->confirmed || s->finishing)
        return;
    if (c->restarted || (s->size > 0 && size > 0 && size != s->size)) {
        /* the resource is not the one the control file described */
        seg_done_clear(p->eng, s);
        s->resumed = 0;
    }
    if (size > 0)
        s->size = size;
    ar = hdr_find(c->hdr, c->hdr_len, "accept-ranges", &vlen);
    ranges_ok = s->size > 0 && (c->http_status == 206
                                || (ar && vlen == 5
                                    && strncmp(ar, "bytes", 5) == 0));
    free(p->etag);
    free(p->last_modified);
    p->etag = c->etag ? strdup(c->etag) : NULL;
    p->last_modified = c->last_modified ? strdup(c->last_modified) : NULL;
    seg_copy_headers(p, c);
    eng_lock(p->eng);
    /* under mu: seg_note reads these from a Python thread */
    s->confirmed = 1;
    s->ranges_ok = ranges_ok;
    s->coded = c->coded;
    s->no_length = s->size <= 0;
    if (p->o.adaptive)   /* the first settle period starts with the reply */
        adaptive_init(&s->ctl, p->o.connections, eng_now());
    free(p->live_etag);
    free(p->live_last_modified);
    p->live_etag = c->etag ? strdup(c->etag) : NULL;
    p->live_last_modified = c->last_modified ? strdup(c->last_modified)
                                             : NULL;
    p->http_status = c->http_status == 206 ? 200 : c->http_status;
    p->resource_size = s->size;
    p->total = s->size > 0 ? s->size - s->start : -1;
    eng_unlock(p->eng);
    s->plan_me = 1;
    p->eng->plan_pending = 1;
}

static void seg_fall_back(struct eng *e, struct task *t);

static int seg_target(const struct task *t)
{
    const struct seg *s = t->seg;
    int n = t->o.adaptive ? s->ctl.target : t->o.connections;
    return s->cap > 0 && n > s->cap ? s->cap : n;
}

/* The connections not draining. */
static int seg_live(const struct seg *s)
{
    int n = 0;
    for (int i = 0; i < s->nchildren; i++)
        n += !s->children[i]->draining;
    return n;
}

/* Over target: give connections back, those still queued first, then the
   one that has written least (the newest).  One that has no byte yet is
   cancelled: its range goes back to the connection it was cut from
   (seg_give_back) or becomes a gap.  One that has written bytes drains:
   it finishes its range and is not replaced, since cancelling it would
   leave the rest of its range to a new request, which a server that
   admits so many requests per URL refuses (issue 18); draining costs no
   request and no byte twice. */
static void seg_shed(struct eng *e, struct task *t)
{
    struct seg *s = t->seg;
    s->shedding = 1;
    while (seg_live(s) > seg_target(t) && seg_live(s) > 1) {
        struct task *victim = NULL;
        for (int i = 0; i < s->nchildren; i++) {
            struct task *c = s->children[i];
            if (c->draining)
                continue;
            if (!victim || (c->state != TS_ACTIVE && victim->state == TS_ACTIVE)
                || ((c->state == TS_ACTIVE) == (victim->state == TS_ACTIVE)
                    && task_written(c) < task_written(victim)))
                victim = c;
        }
        if (victim->state == TS_ACTIVE && task_written(victim) > 0)
            victim->draining = 1;
        else
            eng_finish(e, victim, TS_CANCELLED);
    }
    s->shedding = 0;
}

void seg_plan(struct eng *e, struct task *t)
{
    struct seg *s = t->seg;
    struct ranges cov;

    if (s->finishing || s->shedding || e->shutting_down || !s->confirmed)
        return;
    if (t->o.adaptive && s->ranges_ok && !s->single
        && seg_live(s) > seg_target(t)) {
        seg_shed(e, t);
        if (task_finished_state(t->state) || s->finishing)
            return;
    }
    if (s->nchildren == 0 && s->size >= 0
        && ranges_covers(&s->done, s->start, s->size)) {   /* 0: empty */
        seg_finish_parent(e, t, TS_DONE);
        return;
    }
    if (!s->ranges_ok || s->single) {
        if (s->nchildren > 0)
            return;
        if (!s->single) {
            /* a capped first request, and the server does not do ranges:
               the rest can only come from one request for everything */
            seg_fall_back(e, t);
            return;
        }
        t->err = EK_TOO_SHORT;
        snprintf(t->errmsg, sizeof(t->errmsg), "the server sent %lld of "
                 "%lld bytes", (long long)ranges_total(&s->done),
                 (long long)(s->size - s->start));
        seg_finish_parent(e, t, TS_FAILED);
        return;
    }
    ranges_init(&cov);
    while (s->nchildren < seg_target(t)) {
        int64_t a, b;
        struct task *victim = NULL;
        int64_t best = 0;

        if (seg_ranges(t, &cov, 1) < 0)
            break;
        if (ranges_first_gap(&cov, s->start, s->size, &a, &b)) {
            if (t->o.max_request > 0 && b - a > t->o.max_request)
                b = a + t->o.max_request;
            if (!child_new(e, t, a, b))
                break;
            continue;
        }
        /* no gap: halve the largest unfinished range */
        for (int i = 0; i < s->nchildren; i++) {
            struct task *c = s->children[i];
            int64_t rem = child_end(s, c) - child_pos(c);
            if (rem > best) {
                best = rem;
                victim = c;
            }
        }
        if (!victim || best / 2 < t->o.min_piece)
            break;
        a = child_pos(victim) + best / 2;
        b = child_end(s, victim);
        eng_lock(e);
        victim->o.range_end = a;
        victim->total = a - victim->o.range_start;
        eng_unlock(e);
        if (t->o.max_request > 0 && b - a > t->o.max_request)
            b = a + t->o.max_request;
        if (!child_new(e, t, a, b))
            break;
    }
    ranges_free(&cov);
}

/* ---- a child ended --------------------------------------------------- */

static void seg_fail_parent(struct eng *e, struct task *t,
                            const struct task *c)
{
    t->err = c->err;
    t->curl_code = c->curl_code;
    t->os_errno = c->os_errno;
    t->retry_after = c->retry_after;
    memcpy(t->errmsg, c->errmsg, sizeof(t->errmsg));
    seg_copy_headers(t, c);
    eng_lock(e);
    t->http_status = c->http_status;
    eng_unlock(e);
    seg_finish_parent(e, t, TS_FAILED);
}

/* Give up on ranges: forget every byte and fetch the resource again from
   its first byte over a single connection. */
static void seg_fall_back(struct eng *e, struct task *t)
{
    struct seg *s = t->seg;
    eng_lock(e);
    s->single = 1;                /* under mu, as the flags seg_note reads */
    eng_unlock(e);
    s->finishing = 1;             /* children ending now are not replanned */
    seg_cancel_children(e, t);
    s->finishing = 0;
    seg_done_clear(e, s);
    free(t->o.if_range);
    t->o.if_range = NULL;
    free(t->etag);
    free(t->last_modified);
    t->etag = t->last_modified = NULL;
    eng_lock(e);
    s->confirmed = 0;             /* the new reply is checked afresh */
    t->restarted = 1;
    eng_unlock(e);
    if (!child_new(e, t, s->start, -1)) {
        t->err = EK_TRANSPORT;
        snprintf(t->errmsg, sizeof(t->errmsg), "cannot restart the "
                 "download over one connection");
        seg_finish_parent(e, t, TS_FAILED);
    }
}

/* A connection failed or was shed before its first byte, leaving the gap
   from a: a transferring connection that ends at a and whose request
   reaches past it (the open-ended first one, or any other cut there by a
   split) reads on over the gap instead of a new request, which a server
   that refuses extra connections, or a single-use URL, would refuse. */
static void seg_give_back(struct eng *e, struct task *t, int64_t a)
{
    struct seg *s = t->seg;
    struct ranges cov;
    int64_t ga, gb;

    ranges_init(&cov);
    if (seg_ranges(t, &cov, 1) < 0
        || !ranges_first_gap(&cov, a, s->size, &ga, &gb) || ga != a) {
        ranges_free(&cov);
        return;
    }
    ranges_free(&cov);
    for (int i = 0; i < s->nchildren; i++) {
        struct task *c = s->children[i];
        int64_t reach = c->attempt_end >= 0 ? c->attempt_end : s->size;
        int64_t end = gb < reach ? gb : reach;
        if (c->state != TS_ACTIVE || c->abort || child_end(s, c) != a
            || end <= a)
            continue;
        eng_lock(e);
        c->o.range_end = end;
        c->total = end - c->o.range_start;
        eng_unlock(e);
        return;
    }
}

void seg_child_finished(struct eng *e, struct task *c)
{
    struct task *t = c->parent;
    struct seg *s = t->seg;
    int64_t a = c->o.range_start, w = task_written(c);
    int range_failure = c->state == TS_FAILED && c->err == EK_RANGE;

    /* a range reply that did not fit leaves bytes we cannot trust */
    seg_remove_child(e, s, c, !range_failure);
    eng_lock(e);
    t->retries += c->retries;        /* every connection's retries count */
    if (c->retry_after > t->retry_after)
        t->retry_after = c->retry_after;
    if (c->restarted)
        t->restarted = 1;            /* the resource changed under it */
    eng_unlock(e);
    if (c->restarted && c->state == TS_DONE) {
        /* an open-ended connection (the only one) restarted from the
           first byte on a new version: the download is of that version */
        free(t->etag);
        free(t->last_modified);
        t->etag = c->etag ? strdup(c->etag) : NULL;
        t->last_modified = c->last_modified ? strdup(c->last_modified)
                                            : NULL;
    }
    if (c->nout_cookies > t->nout_cookies) {
        /* the jar of the connection that saw the most Set-Cookie lines */
        char **tmp = t->out_cookies;
        size_t n = t->nout_cookies;
        t->out_cookies = c->out_cookies;
        t->nout_cookies = c->nout_cookies;
        c->out_cookies = tmp;
        c->nout_cookies = n;
    }
    if (!t->effective_url && c->effective_url) {
        t->effective_url = c->effective_url;
        c->effective_url = NULL;
    }
    if (task_finished_state(t->state) || s->finishing || e->shutting_down)
        return;
    if (c->state == TS_DONE && s->size < 0 && c->o.range_end < 0) {
        /* no size known: a single connection read to the end */
        s->size = a + w;
        eng_lock(e);
        t->resource_size = s->size;
        t->total = w;
        eng_unlock(e);
    }
    if (c->state == TS_FAILED) {
        if (range_failure && !s->single) {
            seg_fall_back(e, t);
            return;
        }
        if (range_failure || c->err == EK_IO || c->err == EK_FILESIZE
            || s->nchildren == 0) {
            seg_fail_parent(e, t, c);
            return;
        }
        /* its bytes so far are good; the rest becomes a gap that a
           connection still working takes when its own range is done.
           The server refused one more, or could not keep it: open no
           more than are working now.  Each failure lowers the cap, so
           the last connection's failure ends the download. */
        if (s->cap == 0 || s->nchildren < s->cap)
            s->cap = s->nchildren;
    }
    if (c->state != TS_DONE && w == 0)
        seg_give_back(e, t, a);    /* refused, or shed before its reply */
    if (!s->confirmed && s->nchildren == 0 && c->state == TS_DONE) {
        eng_lock(e);
        s->confirmed = 1;        /* an empty reply: nothing to plan */
        eng_unlock(e);
    }
    seg_refresh(e, t, eng_now(), 0);
    seg_plan(e, t);
}

/* ---- the connection count (adaptive.c) -------------------------------- */

static int seg_active_children(const struct seg *s)
{
    int n = 0;
    for (int i = 0; i < s->nchildren; i++)
        n += s->children[i]->state == TS_ACTIVE;
    return n;
}

static int seg_adaptive_now(const struct task *t)
{
    const struct seg *s = t->seg;
    return t->o.adaptive && s->confirmed && s->ranges_ok && !s->single
        && !s->finishing && !task_finished_state(t->state);
}

/* A progress sample for the controller (after seg_refresh set written). */
void seg_adapt(struct eng *e, struct task *t, double now)
{
    struct seg *s = t->seg;
    int64_t bytes = task_written(t);
    int64_t left = s->size > 0 ? s->size - s->start - bytes : -1;
    int target;

    if (!seg_adaptive_now(t))
        return;
    eng_lock(e);
    adaptive_sample(&s->ctl, now, bytes, seg_active_children(s));
    adaptive_decide(&s->ctl, now, left < 0 ? -1 : left);
    eng_unlock(e);
    target = seg_target(t);
    if (target != seg_live(s)) {
        s->plan_me = 1;
        e->plan_pending = 1;
    }
}

/* A connection of t started transferring: the peak for the report. */
void seg_child_active(struct eng *e, struct task *c)
{
    struct seg *s = c->parent->seg;
    int n = seg_active_children(s);
    if (n > s->peak) {
        eng_lock(e);
        s->peak = n;
        eng_unlock(e);
    }
}

/* A connection met pressure (429/503/403, a reset): fewer connections. */
void seg_child_trouble(struct eng *e, struct task *c)
{
    struct task *t = c->parent;
    struct seg *s = t->seg;
    if (!seg_adaptive_now(t))
        return;
    eng_lock(e);
    adaptive_on_backoff(&s->ctl, eng_now());
    eng_unlock(e);
    s->plan_me = 1;
    e->plan_pending = 1;
}

/* Why the download used the connections it did, in a word Python turns
   into the -v line.  Called under mu from a Python thread: the engine
   thread writes every flag it reads (confirmed, ranges_ok, coded,
   no_length, single, ctl) under mu too. */
const char *seg_note(const struct task *t)
{
    const struct seg *s = t->seg;
    if (s->single)
        return "fell-back";
    if (s->confirmed && s->coded)
        return "coded";
    if (s->confirmed && s->no_length)
        return "no-length";
    if (s->confirmed && !s->ranges_ok)
        return "no-ranges";
    if (!t->o.adaptive)
        return "fixed";
    return adaptive_stop_name(s->ctl.stop);
}
