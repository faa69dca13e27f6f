/*
 * engine.c - the engine thread: one CURLM, the command queue, admission
 * under the connection limits, retries with backoff, and shutdown.
 *
 * The loop has curl's canonical shape: drain commands, admit queued tasks,
 * curl_multi_perform, drain curl_multi_info_read, then curl_multi_poll with
 * a timeout that covers the next retry and the rate limit.  Python threads
 * only append to the command queue and call curl_multi_wakeup.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

#define SPEED_INTERVAL 0.25      /* seconds between speed samples */
#define POLL_MAX_MS 1000

double eng_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- process-wide libcurl init: the one legitimate global ---------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_once_rc = CURLE_FAILED_INIT;

static void eng_curl_init_once(void)
{
    curl_once_rc = curl_global_init(CURL_GLOBAL_ALL);
}

int eng_global_init(void)
{
    pthread_once(&curl_once, eng_curl_init_once);
    return curl_once_rc == CURLE_OK ? 0 : -1;
}

/* ---- locking helpers --------------------------------------------------- */

void eng_lock(struct eng *e)
{
    pthread_mutex_lock(&e->mu);
}

void eng_unlock(struct eng *e)
{
    pthread_mutex_unlock(&e->mu);
}

/* ---- hosts ---------------------------------------------------------------- */

static struct host *eng_host(struct eng *e, const char *key)
{
    struct host *h;
    for (h = e->hosts; h; h = h->next)
        if (strcmp(h->key, key) == 0)
            return h;
    h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->key = strdup(key);
    if (!h->key) {
        free(h);
        return NULL;
    }
    pq_init(&h->queue);
    h->window = e->cfg.max_host_connections;
    h->next = e->hosts;
    e->hosts = h;
    return h;
}

/* ---- finish notifications ------------------------------------------ */

/* Every subscriber (one per asyncio loop, say) gets its own wake-up, so
   no waiter can consume another's.  A subscriber fd is an eventfd or a
   non-blocking pipe; a full pipe already holds a wake-up.  Called with
   e->mu held: unsubscribe takes it too, so after eng_unsubscribe returns
   the fd is never written again and its owner may close it. */
static void eng_notify_locked(struct eng *e)
{
    uint64_t one = 1;
    for (size_t i = 0; i < e->nsubs; i++) {
        if (write(e->subs[i], &one, sizeof(one)) < 0) {
            /* EAGAIN: a wake-up is pending already */
        }
    }
}

int eng_subscribe(struct eng *e, int fd)
{
    int rc = 0;
    eng_lock(e);
    if (e->closed) {
        errno = ESHUTDOWN;
        rc = -1;
    } else if (e->nsubs == e->subs_cap) {
        size_t cap = e->subs_cap ? e->subs_cap * 2 : 4;
        int *v = realloc(e->subs, cap * sizeof(*v));
        if (!v) {
            errno = ENOMEM;
            rc = -1;
        } else {
            e->subs = v;
            e->subs_cap = cap;
        }
    }
    if (rc == 0)
        e->subs[e->nsubs++] = fd;
    eng_unlock(e);
    return rc;
}

void eng_unsubscribe(struct eng *e, int fd)
{
    eng_lock(e);
    for (size_t i = 0; i < e->nsubs; i++) {
        if (e->subs[i] == fd) {
            e->subs[i] = e->subs[--e->nsubs];
            break;
        }
    }
    eng_unlock(e);
}

/* ---- the target file, opened when its transfer starts ---------------- */

/* Open (and create) t->o.path now.  O_NONBLOCK so that a FIFO without a
   reader fails with ENXIO instead of blocking the engine thread; it is
   cleared again for the writes.  0, or -1 with t->err set. */
int eng_open_file(struct eng *e, struct task *t)
{
    struct stat sb;
    int fd, fl, flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK
        | (t->o.truncate ? O_TRUNC : 0);
    (void)e;
    if (t->fd >= 0 || t->o.to_memory || !t->o.path)
        return 0;
    do
        fd = open(t->o.path, flags, 0666);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        goto fail;
    if (fstat(fd, &sb) < 0)
        goto fail_close;
    if (S_ISDIR(sb.st_mode)) {
        errno = EISDIR;
        goto fail_close;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        goto fail_close;
    t->o.sequential = !S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode);
    t->fd = fd;
    return 0;
fail_close:
    fl = errno;
    close(fd);
    errno = fl;
fail:
    t->os_errno = errno;
    t->err = EK_IO;
    snprintf(t->errmsg, sizeof(t->errmsg), "cannot open %s for writing: %s%s",
             t->o.path, strerror(errno), errno == ENXIO
             ? " (a FIFO that no process has open for reading)" : "");
    return -1;
}

/* ---- task bookkeeping (engine thread) --------------------------------- */

static void eng_list_remove(struct eng *e, struct task *t)
{
    struct task **pp = &e->tasks;
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp)
        *pp = t->next;
    t->next = NULL;
}

static void eng_collect_outcome(struct task *t)
{
    struct curl_slist *cookies = NULL;
    char *url = NULL;
    if (!t->easy)
        return;
    if (curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK
        && url) {
        free(t->effective_url);
        t->effective_url = strdup(url);
    }
    if (curl_easy_getinfo(t->easy, CURLINFO_COOKIELIST, &cookies) == CURLE_OK
        && cookies) {
        size_t n = 0;
        for (struct curl_slist *c = cookies; c; c = c->next)
            n++;
        t->out_cookies = calloc(n ? n : 1, sizeof(char *));
        if (t->out_cookies) {
            for (struct curl_slist *c = cookies; c; c = c->next) {
                char *s = strdup(c->data);
                if (s)
                    t->out_cookies[t->nout_cookies++] = s;
            }
        }
        curl_slist_free_all(cookies);
    }
}

/* ---- statistics ------------------------------------------------------- */

/* An attempt ended (or its task finishes while one runs): its bytes and the
   connections libcurl opened for it go into e->stats, once. */
static void eng_stats_attempt(struct eng *e, struct task *t)
{
    long conns = 0;
    int64_t got;
    if (!t->stats_open)
        return;
    t->stats_open = 0;
    if (t->easy)
        curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &conns);
    got = task_written(t) - t->stats_mark;
    eng_lock(e);
    if (got > 0)
        e->stats.bytes += (uint64_t)got;
    if (conns > 0)
        e->stats.connections += (uint64_t)conns;
    eng_unlock(e);
}

static void eng_stats_started(struct eng *e, struct task *t)
{
    t->stats_mark = task_written(t);
    t->stats_open = 1;
    (void)e;
}

/* with mu held: a top-level task reached its final state */
static void eng_stats_finished_locked(struct eng *e, struct task *t,
                                      enum task_state st)
{
    if (t->parent)
        return;
    if (st == TS_DONE)
        e->stats.files++;
    else if (st == TS_FAILED)
        e->stats.failures++;
    else
        return;
    if (e->stats.first_start == 0 || t->submit_time < e->stats.first_start)
        e->stats.first_start = t->submit_time;
    if (t->finish_time > e->stats.last_end)
        e->stats.last_end = t->finish_time;
}

/* the only way a task becomes finished (engine.h) */
void eng_finish(struct eng *e, struct task *t, enum task_state st)
{
    if (t->seg) {
        /* a segmented download: its children go first */
        t->seg->finishing = 1;
        seg_cancel_children(e, t);
        seg_refresh(e, t, eng_now(), 1);
    } else if (t->state == TS_ACTIVE) {
        eng_stats_attempt(e, t);
        curl_multi_remove_handle(e->multi, t->easy);
        e->active--;
        if (t->host)
            t->host->active--;
    } else if (t->state == TS_QUEUED && t->host) {
        pq_remove(&t->host->queue, t);
    }
    eng_collect_outcome(t);
    xfer_release(t);
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    eng_list_remove(e, t);

    eng_lock(e);
    if (st == TS_CANCELLED) {
        t->err = EK_CANCELLED;
        snprintf(t->errmsg, sizeof(t->errmsg), "the download was cancelled");
    }
    eng_set_state_locked(t, st);
    t->finish_time = eng_now();
    t->speed = 0;
    eng_stats_finished_locked(e, t, st);
    if (!t->parent) {
        pthread_cond_broadcast(&e->done_cv);
        eng_notify_locked(e);
    }
    eng_unlock(e);
    if (t->parent)
        seg_child_finished(e, t);
    task_decref(t);
}

/* the one place t->state changes (engine.h); eng->mu is held, so that a
   Python thread sees the state with the fields of the same locked block */
void eng_set_state_locked(struct task *t, enum task_state st)
{
    t->state = st;
}

static void eng_set_state(struct eng *e, struct task *t, enum task_state st)
{
    eng_lock(e);
    eng_set_state_locked(t, st);
    eng_unlock(e);
}

int eng_enqueue(struct eng *e, struct task *t)
{
    if (!t->host)
        t->host = eng_host(e, t->o.host_key);
    if (!t->host || pq_push(&t->host->queue, t) < 0) {
        t->err = EK_TRANSPORT;
        snprintf(t->errmsg, sizeof(t->errmsg), "out of memory");
        return -1;
    }
    eng_set_state(e, t, TS_QUEUED);
    return 0;
}

/* Politeness: a host that answers 429/403/503 or resets connections gets
   fewer of them at once (down to one below what it had); the window grows
   back by one every HOST_GROW_INTERVAL seconds of calm while it is full. */
#define HOST_GROW_INTERVAL 2.0
#define HOST_CALM 5.0

void eng_host_trouble(struct eng *e, struct host *h)
{
    double now = eng_now();
    int w = h->active - 1;
    (void)e;
    if (w < 1)
        w = 1;
    if (w < h->window)
        h->window = w;
    h->last_trouble = h->last_change = now;
}

static void eng_host_grow(struct eng *e, double now)
{
    for (struct host *h = e->hosts; h; h = h->next) {
        if (h->window < e->cfg.max_host_connections
            && h->active >= h->window && h->queue.len > 0
            && now - h->last_trouble > HOST_CALM
            && now - h->last_change > HOST_GROW_INTERVAL) {
            h->window++;
            h->last_change = now;
        }
    }
}

static int eng_is_trouble(const struct task *t, CURLcode res)
{
    if (res == CURLE_RECV_ERROR || res == CURLE_SEND_ERROR
        || res == CURLE_GOT_NOTHING)
        return 1;
    return t->err == EK_HTTP && (t->http_status == 429
                                 || t->http_status == 503
                                 || t->http_status == 403);
}

static uint64_t eng_random(struct eng *e)
{
    /* xorshift64*: jitter only, never security */
    uint64_t x = e->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    e->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Full jitter: uniform in [0, min(max, base * 2^n)), at least what the
   server asked for with Retry-After. */
static double eng_backoff(struct eng *e, int attempt, double retry_after)
{
    double cap = e->cfg.retry_base * pow(2.0, attempt);
    double u = (double)(eng_random(e) >> 11) / 9007199254740992.0;
    if (cap > e->cfg.retry_max)
        cap = e->cfg.retry_max;
    double d = cap * u;
    if (retry_after > d)
        d = retry_after;
    return d;
}

static void eng_attempt_ended(struct eng *e, struct task *t, CURLcode res)
{
    int retryable, max;
    eng_stats_attempt(e, t);
    xfer_classify(e, t, res, &retryable);
    if (t->host && eng_is_trouble(t, res)) {
        eng_host_trouble(e, t->host);
        if (t->parent)
            seg_child_trouble(e, t);
    }
    if (t->err == EK_NONE) {
        eng_finish(e, t, TS_DONE);
        return;
    }
    max = t->o.max_retries >= 0 ? t->o.max_retries : e->cfg.max_retries;
    if (retryable && t->retries < max && !e->shutting_down)
        retryable = xfer_prepare_retry(t);
    if (!retryable || t->retries >= max || e->shutting_down) {
        eng_finish(e, t, TS_FAILED);
        return;
    }
    curl_multi_remove_handle(e->multi, t->easy);
    e->active--;
    t->host->active--;
    t->next_attempt_at = eng_now() + eng_backoff(e, t->retries,
                                                 t->retry_after);
    eng_lock(e);
    t->retries++;
    e->stats.retries++;
    eng_set_state_locked(t, TS_RETRY_WAIT);
    t->speed = 0;
    eng_unlock(e);
}

/* ---- commands ------------------------------------------------------------ */

int eng_post(struct eng *e, enum cmd_type type, struct task *t, double arg)
{
    struct cmd *c = malloc(sizeof(*c));
    if (!c)
        return -1;
    c->type = type;
    c->task = t;
    c->arg = arg;
    c->next = NULL;
    if (t)
        task_incref(t);
    eng_lock(e);
    if (e->closed && type != CMD_SHUTDOWN) {
        eng_unlock(e);
        if (t)
            task_decref(t);
        free(c);
        errno = ESHUTDOWN;
        return -1;
    }
    if (type == CMD_SHUTDOWN)
        e->closed = 1;
    if (type == CMD_CANCEL && t)
        t->cancel_requested = 1;
    if (e->cmd_tail)
        e->cmd_tail->next = c;
    else
        e->cmd_head = c;
    e->cmd_tail = c;
    /* under the lock: close() frees the multi handle after the join */
    if (e->multi)
        curl_multi_wakeup(e->multi);
    eng_unlock(e);
    return 0;
}

static void eng_run_command(struct eng *e, struct cmd *c)
{
    struct task *t = c->task;
    switch (c->type) {
    case CMD_SUBMIT:
        task_incref(t);                  /* the engine's reference */
        t->next = e->tasks;
        e->tasks = t;
        if (t->cancel_requested) {
            eng_finish(e, t, TS_CANCELLED);
        } else if (t->seg) {
            seg_start(e, t);
        } else if (eng_enqueue(e, t) < 0) {
            eng_finish(e, t, TS_FAILED);
        }
        break;
    case CMD_CANCEL:
        if (!task_finished_state(t->state))
            eng_finish(e, t, TS_CANCELLED);
        break;
    case CMD_PRIORITY:
        t->o.priority = (int)c->arg;
        if (t->state == TS_QUEUED && t->host)
            pq_update(&t->host->queue, t);
        if (t->seg && !task_finished_state(t->state)) {
            for (int i = 0; i < t->seg->nchildren; i++) {
                struct task *ch = t->seg->children[i];
                ch->o.priority = t->o.priority;
                if (ch->state == TS_QUEUED && ch->host)
                    pq_update(&ch->host->queue, ch);
            }
        }
        break;
    case CMD_RATE:
        rl_set(&e->rl, c->arg, eng_now());
        break;
    case CMD_SHUTDOWN:
        e->shutting_down = 1;
        break;
    }
}

static void eng_drain_commands(struct eng *e)
{
    struct cmd *c, *next;
    eng_lock(e);
    c = e->cmd_head;
    e->cmd_head = e->cmd_tail = NULL;
    eng_unlock(e);
    for (; c; c = next) {
        next = c->next;
        eng_run_command(e, c);
        if (c->task)
            task_decref(c->task);
        free(c);
    }
}

/* ---- admission under the limits ----------------------------------------- */

static void eng_admit(struct eng *e)
{
    while (e->active < e->cfg.max_connections) {
        struct host *best = NULL;
        struct task *bt = NULL;
        for (struct host *h = e->hosts; h; h = h->next) {
            struct task *t = pq_peek(&h->queue);
            if (!t || h->active >= h->window)
                continue;
            if (!bt || t->o.priority < bt->o.priority
                || (t->o.priority == bt->o.priority && t->seq < bt->seq)) {
                best = h;
                bt = t;
            }
        }
        if (!bt)
            return;
        pq_pop(&best->queue);
        if (eng_open_file(e, bt) < 0) {
            eng_finish(e, bt, TS_FAILED);   /* not in the multi handle */
            continue;
        }
        int rc = xfer_start(e, bt);
        if (rc != CURLE_OK) {
            bt->err = EK_TRANSPORT;
            snprintf(bt->errmsg, sizeof(bt->errmsg),
                     "cannot start the transfer: %s",
                     curl_easy_strerror((CURLcode)rc));
            eng_finish(e, bt, TS_FAILED);   /* still TS_QUEUED: not in
                                                the multi handle */
            continue;
        }
        e->active++;
        best->active++;
        eng_stats_started(e, bt);
        eng_set_state(e, bt, TS_ACTIVE);
        if (bt->parent)
            seg_child_active(e, bt);
    }
}

/* Retry waits that are over go back to their host's queue. */
static long eng_wake_retries(struct eng *e, double now)
{
    long wait_ms = POLL_MAX_MS;
    struct task *t, *next;
    for (t = e->tasks; t; t = next) {
        next = t->next;
        if (t->state != TS_RETRY_WAIT)
            continue;
        if (t->next_attempt_at <= now) {
            if (eng_enqueue(e, t) < 0) {
                /* finishing may free other tasks (a segmented parent's
                   children): stop walking, come straight back */
                eng_finish(e, t, TS_FAILED);
                return 0;
            }
        } else {
            long ms = (long)ceil((t->next_attempt_at - now) * 1000.0);
            if (ms < wait_ms)
                wait_ms = ms;
        }
    }
    return wait_ms;
}

/* Resume transfers held back by the rate limit once it allows them (and
   a held reply once Python released it: xfer_held). */
static long eng_unpause(struct eng *e, double now)
{
    int any = 0;
    if (e->rl.rate <= 0) {
        for (struct task *t = e->tasks; t; t = t->next)
            if (t->paused && t->state == TS_ACTIVE && !xfer_held(t)) {
                t->paused = 0;
                t->last_rx = eng_now();
                curl_easy_pause(t->easy, CURLPAUSE_CONT);
            }
        return POLL_MAX_MS;
    }
    rl_refill(&e->rl, now);
    for (struct task *t = e->tasks; t; t = t->next) {
        if (!t->paused || t->state != TS_ACTIVE || xfer_held(t))
            continue;
        if (!rl_allows(&e->rl)) {
            any = 1;
            break;
        }
        t->paused = 0;
        t->last_rx = now;
        curl_easy_pause(t->easy, CURLPAUSE_CONT);
        if (t->paused)
            any = 1;
    }
    return any ? rl_wait_ms(&e->rl) : POLL_MAX_MS;
}

static void eng_update_speeds(struct eng *e, double now)
{
    if (now - e->last_speed_update < SPEED_INTERVAL)
        return;
    e->last_speed_update = now;
    for (struct task *t = e->tasks; t; t = t->next)
        if (t->seg) {
            seg_refresh(e, t, now, 0);
            seg_adapt(e, t, now);
        }
    eng_host_grow(e, now);
    eng_lock(e);
    for (struct task *t = e->tasks; t; t = t->next) {
        int64_t w = t->written;
        if (t->state != TS_ACTIVE) {
            t->speed_mark_time = 0;
            continue;
        }
        if (t->speed_mark_time > 0 && now > t->speed_mark_time) {
            double inst = (double)(w - t->speed_mark_bytes)
                / (now - t->speed_mark_time);
            if (inst < 0)
                inst = 0;
            t->speed = t->speed > 0 ? 0.6 * t->speed + 0.4 * inst : inst;
        }
        t->speed_mark_time = now;
        t->speed_mark_bytes = w;
    }
    eng_unlock(e);
}

/* The stall rule: an attempt that has received no byte (header or body)
   for stall_timeout seconds is abandoned and retried.  A slow trickle is
   not a stall.  One at a time: ending an attempt may free other tasks. */
static void eng_check_stalls(struct eng *e, double now)
{
    for (;;) {
        struct task *t;
        for (t = e->tasks; t; t = t->next)
            if (t->state == TS_ACTIVE && t->easy && !t->seg && !t->paused
                && now - t->last_rx >= (double)e->cfg.stall_timeout_s)
                break;
        if (!t)
            return;
        snprintf(t->curl_errbuf, sizeof(t->curl_errbuf), "no data received "
                 "for %ld seconds (stall_timeout)", e->cfg.stall_timeout_s);
        eng_attempt_ended(e, t, CURLE_OPERATION_TIMEDOUT);
    }
}

static void eng_read_messages(struct eng *e)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(e->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct task *t = NULL;
        CURLcode res = m->data.result;   /* read before removing */
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (t)
            eng_attempt_ended(e, t, res);
    }
}

static void *eng_main(void *arg)
{
    struct eng *e = arg;
    int running = 0;
    for (;;) {
        double now;
        long timeout, t2;

        eng_drain_commands(e);
        if (e->shutting_down)
            break;
        eng_admit(e);
        curl_multi_perform(e->multi, &running);
        eng_read_messages(e);
        while (e->plan_pending) {
            /* planning may finish tasks: find one, plan it, look again */
            struct task *t = e->tasks;
            while (t && !(t->seg && t->seg->plan_me))
                t = t->next;
            if (!t) {
                e->plan_pending = 0;
                break;
            }
            t->seg->plan_me = 0;
            seg_plan(e, t);
        }
        now = eng_now();
        timeout = eng_wake_retries(e, now);
        eng_admit(e);
        t2 = eng_unpause(e, now);
        if (t2 < timeout)
            timeout = t2;
        seg_checkpoints(e, now);
        eng_update_speeds(e, now);
        eng_check_stalls(e, now);
        if (e->active > 0 && timeout > (long)(SPEED_INTERVAL * 1000))
            timeout = (long)(SPEED_INTERVAL * 1000);
        curl_multi_poll(e->multi, NULL, 0, (int)timeout, NULL);
    }
    /* shutdown: every unfinished task is cancelled, files closed */
    while (e->tasks)
        eng_finish(e, e->tasks, TS_CANCELLED);
    return NULL;
}

/* ---- lifetime -------------------------------------------------------------- */

struct eng *eng_new(const struct eng_config *cfg, char *err, size_t errlen)
{
    struct eng *e;
    if (eng_global_init() < 0) {
        snprintf(err, errlen, "curl_global_init failed");
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    e->pid = getpid();
    e->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid()
        ^ (uint64_t)(uintptr_t)e;
    if (!e->rng)
        e->rng = 88172645463325252ULL;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->done_cv, NULL);
    rl_set(&e->rl, cfg->rate_limit, eng_now());
    e->multi = curl_multi_init();
    if (!e->multi) {
        snprintf(err, errlen, "cannot create the engine: curl_multi_init");
        eng_free(e);
        return NULL;
    }
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS,
                      (long)cfg->max_connections);
    return e;
}

int eng_start(struct eng *e)
{
    int rc = pthread_create(&e->thread, NULL, eng_main, e);
    if (rc == 0)
        e->thread_started = 1;
    return rc;
}

void eng_shutdown_and_join(struct eng *e)
{
    if (!e->thread_started)
        return;
    eng_post(e, CMD_SHUTDOWN, NULL, 0);
    pthread_join(e->thread, NULL);
    e->thread_started = 0;
    /* every task is finished: release the cached connections and forget
       the subscribers (their owners close them) */
    eng_lock(e);
    if (e->multi) {
        curl_multi_cleanup(e->multi);
        e->multi = NULL;
    }
    free(e->subs);
    e->subs = NULL;
    e->nsubs = e->subs_cap = 0;
    eng_unlock(e);
}

void eng_free(struct eng *e)
{
    struct cmd *c, *next;
    struct host *h, *hn;
    if (!e)
        return;
    if (e->pid != getpid())
        return;          /* a forked child's copy: its thread is not here */
    eng_shutdown_and_join(e);
    for (c = e->cmd_head; c; c = next) {
        next = c->next;
        if (c->task)
            task_decref(c->task);
        free(c);
    }
    for (h = e->hosts; h; h = hn) {
        hn = h->next;
        pq_free(&h->queue);
        free(h->key);
        free(h);
    }
    if (e->multi)
        curl_multi_cleanup(e->multi);
    free(e->subs);
    pthread_cond_destroy(&e->done_cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

int eng_wait_task(struct eng *e, struct task *t, long ms)
{
    struct timespec ts;
    int done;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    eng_lock(e);
    while (!(done = task_finished_state(t->state))) {
        if (pthread_cond_timedwait(&e->done_cv, &e->mu, &ts) == ETIMEDOUT) {
            done = task_finished_state(t->state);
            break;
        }
    }
    eng_unlock(e);
    return done;
}
