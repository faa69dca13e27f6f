/*
 * transfer.c - one attempt of one task: easy-handle setup, the write and
 * header callbacks, and the classification of how an attempt ended.
 *
 * Engine thread only.  The data path is here: curl's write callback hands
 * a buffer straight to pwrite() at the task's file position.  The reply is
 * checked before the first body byte is written (status, Content-Range,
 * validators), so a reply that does not fit the request never reaches the
 * file.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

/* ---- headers of the last response ---------------------------------- */

static char *hdr_dup(const struct task *t, const char *name)
{
    size_t vlen;
    const char *v = hdr_find(t->hdr, t->hdr_len, name, &vlen);
    return v ? strndup(v, vlen) : NULL;
}

static void xfer_check_response(struct task *t);
static int xfer_is_coded(const struct task *t);

/* The end of a response's headers.  A content-coded 2xx reply is checked
   here, before curl's decoder sees its body: decoding a range of an
   encoded stream fails, and must not hide that the range is unusable.
   -1 stops the transfer. */
static int xfer_headers_done(struct task *t)
{
    long code = 0;
    if (t->response_checked || !xfer_is_coded(t))
        return 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code >= 300)
        return 0;
    xfer_check_response(t);
    return t->abort ? -1 : 0;
}

static size_t xfer_on_header(char *buf, size_t size, size_t nitems,
                             void *userdata)
{
    struct task *t = userdata;
    size_t len = size * nitems;
    t->last_rx = eng_now();
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0)
        t->hdr_len = 0;                  /* a new response begins */
    if (t->hdr_len + len > TASK_HDR_MAX)
        return len;                      /* keep the first 64 KiB */
    if (t->hdr_len + len > t->hdr_cap) {
        size_t cap = t->hdr_cap ? t->hdr_cap : 1024;
        while (cap < t->hdr_len + len)
            cap *= 2;
        char *p = realloc(t->hdr, cap);
        if (!p)
            return 0;                    /* curl fails the transfer */
        t->hdr = p;
        t->hdr_cap = cap;
    }
    memcpy(t->hdr + t->hdr_len, buf, len);
    t->hdr_len += len;
    if ((len == 2 && buf[0] == '\r') || (len == 1 && buf[0] == '\n'))
        return xfer_headers_done(t) < 0 ? 0 : len;
    return len;
}

static double parse_retry_after(const struct task *t)
{
    size_t vlen;
    const char *v = hdr_find(t->hdr, t->hdr_len, "retry-after", &vlen);
    return http_retry_after(v, vlen, time(NULL));
}

/* ---- checking a response before its body is written ----------------- */

static void xfer_fail_range(struct task *t, const char *fmt, long long a,
                            long long b)
{
    snprintf(t->errmsg, sizeof(t->errmsg), fmt, a, b);
    t->abort = AB_RANGE;
}

/* Can this task rewrite the resource from byte 0 when a server ignores
   its Range?  Only an open-ended request into a seekable file can. */
static int xfer_can_restart(const struct task *t)
{
    return t->o.range_end < 0 && !t->o.sequential
        && t->o.file_offset - t->o.range_start >= 0;
}

static void xfer_restart_from_zero(struct task *t)
{
    struct eng *e = t->eng;
    eng_lock(e);
    t->o.file_offset -= t->o.range_start;
    t->o.range_start = 0;
    t->attempt_start = 0;
    __atomic_store_n(&t->written, 0, __ATOMIC_RELAXED);
    t->restarted = 1;
    eng_unlock(e);
}

static void xfer_fail_filesize(struct task *t, int64_t size)
{
    if (size >= 0)
        snprintf(t->errmsg, sizeof(t->errmsg), "the file is larger than "
                 "max_filesize (%lld bytes > %lld bytes)", (long long)size,
                 (long long)t->o.max_filesize);
    else
        snprintf(t->errmsg, sizeof(t->errmsg), "the file is larger than "
                 "max_filesize (more than %lld bytes arrived)",
                 (long long)t->o.max_filesize);
    t->abort = AB_FILESIZE;
}

/* A Content-Encoding other than identity: curl decodes it for us. */
static int xfer_is_coded(const struct task *t)
{
    size_t vlen;
    const char *v = hdr_find(t->hdr, t->hdr_len, "content-encoding", &vlen);
    return v && vlen > 0
        && !(vlen == 8 && strncasecmp(v, "identity", 8) == 0);
}

static int validator_differs(const char *old, const char *now)
{
    return old && now && strcmp(old, now) != 0;
}

/* The validator an If-Range would carry for this reply (as xfer_start
   chooses it): a strong ETag, else Last-Modified. */
static const char *reply_validator(const struct task *t)
{
    if (t->etag && strncmp(t->etag, "W/", 2) != 0)
        return t->etag;
    return t->last_modified;
}

static int same_string(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Whether the body of the accepted reply waits for Task.release(): it
   writes the file from its start, or the validator stored beside the file
   (o.if_range) is not this reply's. */
static int xfer_must_hold(const struct task *t)
{
    if (!t->o.hold_new_validator)
        return 0;
    return t->o.file_offset + t->written == 0
        || !same_string(t->o.if_range, reply_validator(t));
}

/* The accepted reply becomes visible to Python (size, validators) before
   its first body byte is written; the copies are made outside the lock. */
static void xfer_publish_reply(struct task *t, int64_t size, int64_t total)
{
    struct eng *e = t->eng;
    char *etag = t->etag ? strdup(t->etag) : NULL;
    char *lastmod = t->last_modified ? strdup(t->last_modified) : NULL;
    char *old_etag, *old_lastmod;
    int hold = xfer_must_hold(t);

    eng_lock(e);
    t->resource_size = size;
    t->total = total;
    old_etag = t->live_etag;
    old_lastmod = t->live_last_modified;
    t->live_etag = etag;
    t->live_last_modified = lastmod;
    if (hold) {
        t->held = 1;
        t->released = 0;
        t->hold_seq++;
        t->held_at = t->o.file_offset + t->written;
    }
    eng_unlock(e);
    free(old_etag);
    free(old_lastmod);
}

/* The write callback's gate: 1 while the reply's body must wait (the
   transfer is paused; eng_unpause tries again once released). */
int xfer_held(struct task *t)
{
    struct eng *e = t->eng;
    int wait;
    if (!t->o.hold_new_validator)
        return 0;
    eng_lock(e);
    if (t->held && t->released)
        t->held = 0;
    wait = t->held;
    eng_unlock(e);
    return wait;
}

/* The bytes this request delivers, from the resource's size (-1:
   unknown) and the range asked. */
static int64_t reply_total(const struct task *t, int64_t size)
{
    if (t->o.range_end >= 0)
        return (size >= 0 && size < t->o.range_end ? size
                : t->o.range_end) - t->o.range_start;
    return size >= 0 ? size - t->o.range_start : -1;
}

/* A content-coded reply to a range: Content-Range and Content-Length
   count bytes of the encoded stream, so no decoded byte of it has a known
   position.  1 when the attempt is aborted (restart whole, or fail). */
static int xfer_coded_range(struct task *t, int asked_range)
{
    if (!t->coded || !asked_range)
        return 0;
    if (xfer_can_restart(t)) {
        t->abort = AB_CODING;
        return 1;
    }
    snprintf(t->errmsg, sizeof(t->errmsg), "server sent a "
             "content-coded reply to a range request (bytes %lld-); its "
             "offsets are of the encoded stream",
             (long long)t->attempt_start);
    t->abort = AB_RANGE;
    return 1;
}

/* A range continuing older bytes: 1 when the resource changed since
   (ETag or Last-Modified differ; o.if_range when this task holds neither
   yet), with the attempt aborted (restart from 0, or fail). */
static int xfer_resource_changed(struct task *t, const char *etag,
                                 const char *lastmod)
{
    const char *old = t->etag ? t->etag : NULL;
    int changed = validator_differs(old, etag)
        || (!old && validator_differs(t->last_modified, lastmod));
    if (!t->etag && !t->last_modified && t->o.if_range) {
        const char *now = t->o.if_range[0] == '"'
            || strncmp(t->o.if_range, "W/", 2) == 0 ? etag : lastmod;
        changed = validator_differs(t->o.if_range, now);
    }
    if (!changed)
        return 0;
    if (xfer_can_restart(t)) {
        t->abort = AB_RESTART;
    } else {
        snprintf(t->errmsg, sizeof(t->errmsg),
                 "the resource changed on the server (ETag or "
                 "Last-Modified differs) while a range of it was "
                 "being fetched");
        t->abort = AB_RANGE;
    }
    return 1;
}

/* A reply with a Content-Range (or a 206 to a ranged request): it must
   start where asked and be of the same resource.  0 with *size set, or
   -1 with the attempt aborted. */
static int xfer_ranged_reply(struct task *t, long code, const char *cr,
                             size_t vlen, const char *etag,
                             const char *lastmod, int64_t *size)
{
    int has_older_bytes = t->attempt_start > t->o.range_start
        || (t->attempt_start > 0 && t->o.if_range);
    int64_t s, en, tot;
    if (!cr || http_content_range(cr, vlen, &s, &en, &tot) < 0) {
        xfer_fail_range(t, "server answered %lld without a usable "
                        "Content-Range (asked from byte %lld)",
                        (long long)code, (long long)t->attempt_start);
        return -1;
    }
    if (s != t->attempt_start) {
        xfer_fail_range(t, "server sent bytes from %lld for a request "
                        "starting at byte %lld", (long long)s,
                        (long long)t->attempt_start);
        return -1;
    }
    if (has_older_bytes && xfer_resource_changed(t, etag, lastmod))
        return -1;
    *size = tot >= 0 ? tot : -1;
    return 0;
}

/* A 200: the body is the resource from byte 0; a request from a later
   byte starts over from 0 where it can.  0 with *size set, or -1 with
   the attempt aborted. */
static int xfer_whole_reply(struct task *t, long code, int asked_range,
                            int64_t *size)
{
    curl_off_t clen = -1;
    if (asked_range && t->attempt_start > 0) {
        if (!xfer_can_restart(t)) {
            xfer_fail_range(t, "server ignored the Range request "
                            "(answered %lld to a request from byte "
                            "%lld)", (long long)code,
                            (long long)t->attempt_start);
            return -1;
        }
        xfer_restart_from_zero(t);
    }
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
    /* a coded body's length is that of the encoded bytes */
    *size = clen >= 0 && !t->coded ? (int64_t)clen : -1;
    return 0;
}

/* The reply's headers, once, before its first body byte: is its body the
   bytes asked for?  Sets t->abort (and the message) when it is not;
   otherwise the reply's size, length and validators become the task's. */
static void xfer_check_response(struct task *t)
{
    struct eng *e = t->eng;
    long code = 0;
    int64_t size = -1, total;
    int asked_range = t->attempt_start > 0 || t->o.range_end >= 0;
    char *etag, *lastmod;
    size_t vlen;
    const char *cr;
    int rc;

    t->response_checked = 1;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    eng_lock(e);
    t->http_status = code;
    eng_unlock(e);
    if (code < 200 || code >= 300) {
        t->discard = 1;
        return;
    }

    etag = hdr_dup(t, "etag");
    lastmod = hdr_dup(t, "last-modified");
    t->coded = xfer_is_coded(t);
    if (xfer_coded_range(t, asked_range))
        goto out;
    cr = hdr_find(t->hdr, t->hdr_len, "content-range", &vlen);

    /* A 206 without Content-Range to a request that asked no Range has
       no range to be of: its body is the resource from byte 0, as a
       200's is (HttpFD takes any 2xx to a plain GET whole).  To a ranged
       request it stays unusable: its bytes have no known position. */
    if (cr || (code == 206 && asked_range))
        rc = xfer_ranged_reply(t, code, cr, vlen, etag, lastmod, &size);
    else
        rc = xfer_whole_reply(t, code, asked_range, &size);
    if (rc < 0)
        goto out;
    total = reply_total(t, size);

    if (t->o.max_filesize >= 0 && size > t->o.max_filesize) {
        xfer_fail_filesize(t, size);
        goto out;
    }
    if (t->o.expected_size >= 0 && total >= 0
        && total != t->o.expected_size) {
        xfer_fail_range(t, "server offers %lld bytes where %lld were "
                        "expected", (long long)total,
                        (long long)t->o.expected_size);
        goto out;
    }
    if (total < 0 && !t->coded)
        total = t->o.expected_size;

    free(t->etag);
    t->etag = etag;
    etag = NULL;
    free(t->last_modified);
    t->last_modified = lastmod;
    lastmod = NULL;
    xfer_publish_reply(t, size, total);
    if (t->parent)
        seg_child_confirmed(t);
out:
    free(etag);
    free(lastmod);
}

/* ---- the data path ---------------------------------------------------- */

/* pwrite() for a task kept in memory: bounded by o.max_memory */
static ssize_t mem_pwrite(struct task *t, const char *buf, size_t n,
                          int64_t pos)
{
    size_t need = (size_t)pos + n;
    if ((int64_t)need > t->o.max_memory) {
        errno = EFBIG;
        return -1;
    }
    if (need > t->mem_cap) {
        size_t cap = t->mem_cap ? t->mem_cap : 65536;
        unsigned char *p;
        while (cap < need)
            cap *= 2;
        if ((int64_t)cap > t->o.max_memory)
            cap = (size_t)t->o.max_memory;
        p = realloc(t->mem, cap);
        if (!p) {
            errno = ENOMEM;
            return -1;
        }
        frag_mem_account(t->eng, (int64_t)cap - (int64_t)t->mem_cap);
        t->mem = p;
        t->mem_cap = cap;
    }
    memcpy(t->mem + pos, buf, n);
    return (ssize_t)n;
}

static size_t xfer_on_write(char *ptr, size_t size, size_t nmemb,
                            void *userdata)
{
    struct task *t = userdata;
    struct eng *e = t->eng;
    size_t n = size * nmemb, take = n, want;
    int64_t w, w0;

    t->last_rx = eng_now();
    if (!t->response_checked)
        xfer_check_response(t);
    if (t->abort)
        return 0;
    if (t->discard)
        return n;
    if (xfer_held(t)) {
        t->paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (e->rl.rate > 0) {
        if (!rl_allows(&e->rl)) {
            t->paused = 1;
            return CURL_WRITEFUNC_PAUSE;
        }
        rl_take(&e->rl, n);
    }

    w = t->written;            /* only this thread writes it */
    if (t->total >= 0 && w + (int64_t)n > t->total)
        take = t->total > w ? (size_t)(t->total - w) : 0;
    if (t->o.max_filesize >= 0
        && t->o.range_start + w + (int64_t)take > t->o.max_filesize) {
        /* no byte past the limit reaches the file */
        xfer_fail_filesize(t, -1);
        return 0;
    }

    want = take;
    w0 = w;
    while (take > 0) {
        off_t pos = (off_t)(t->o.file_offset + w);
        ssize_t r = t->o.to_memory ? mem_pwrite(t, ptr, take, pos)
            : t->o.sequential ? write(t->fd, ptr, take)
                              : pwrite(t->fd, ptr, take, pos);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            t->os_errno = errno;
            t->abort = AB_IO;
            return 0;
        }
        ptr += r;
        take -= (size_t)r;
        w += r;
        __atomic_store_n(&t->written, w, __ATOMIC_RELAXED);
    }
    if (t->parent && w > w0)
        seg_child_wrote(e, t, w - w0, t->last_rx);   /* the control file follows */
    if (want < n) {
        /* the server sends past the end we asked for: we have it all */
        t->abort = AB_COMPLETE;
        return 0;
    }
    return n;
}

/* ---- attempt setup and classification ------------------------------- */

static int xfer_setup_handle(struct eng *e, struct task *t)
{
    CURL *c = curl_easy_init();
    if (!c)
        return CURLE_OUT_OF_MEMORY;
    t->easy = c;
    curl_easy_setopt(c, CURLOPT_PRIVATE, (void *)t);
    curl_easy_setopt(c, CURLOPT_URL, t->o.url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, xfer_on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, xfer_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, (void *)t);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->curl_errbuf);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH,
                     t->o.auth_to_other_hosts ? 1L : 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, e->cfg.connect_timeout_ms);
    /* the stall rule (no byte for stall_timeout) is the loop's: curl's
       low-speed check would abandon a 1 byte/s trickle */
    /* enable curl's decoders: a server may send Content-Encoding although
       we ask for identity (the header below wins over curl's own list) */
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, t->o.verify ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, t->o.verify ? 2L : 0L);
    if (t->o.ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, t->o.ca_file);
    if (t->o.ca_path)
        curl_easy_setopt(c, CURLOPT_CAPATH, t->o.ca_path);
    if (t->o.client_cert)
        curl_easy_setopt(c, CURLOPT_SSLCERT, t->o.client_cert);
    if (t->o.client_key)
        curl_easy_setopt(c, CURLOPT_SSLKEY, t->o.client_key);
    if (t->o.key_password)
        curl_easy_setopt(c, CURLOPT_KEYPASSWD, t->o.key_password);
    if (t->o.proxy)
        curl_easy_setopt(c, CURLOPT_PROXY, t->o.proxy);
    if (t->o.source_address)
        curl_easy_setopt(c, CURLOPT_INTERFACE, t->o.source_address);
    /* curl's cookie engine: scoped by domain and path, so a redirect to
       another host carries none of these */
    curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");
    for (size_t i = 0; i < t->o.ncookies; i++)
        curl_easy_setopt(c, CURLOPT_COOKIELIST, t->o.cookies[i]);
    return CURLE_OK;
}

/* "Name: v" or "Name;" (sent empty) among the caller's headers */
static int xfer_has_header(const struct curl_slist *h, const char *name)
{
    size_t n = strlen(name);
    for (; h; h = h->next)
        if (strncasecmp(h->data, name, n) == 0
            && (h->data[n] == ':' || h->data[n] == ';'))
            return 1;
    return 0;
}

int xfer_start(struct eng *e, struct task *t)
{
    char range[64];
    const char *validator;
    int64_t start;
    int rc;

    if (!t->easy && (rc = xfer_setup_handle(e, t)) != CURLE_OK)
        return rc;

    start = t->o.range_start + t->written;
    t->attempt_start = start;
    t->attempt_end = t->o.range_end;
    t->response_checked = 0;
    t->discard = 0;
    t->paused = 0;
    if (t->o.hold_new_validator) {
        eng_lock(e);
        t->held = 0;               /* a hold belongs to one reply */
        eng_unlock(e);
    }
    t->abort = AB_NONE;
    t->coded = 0;
    t->last_rx = eng_now();
    t->hdr_len = 0;
    t->curl_errbuf[0] = 0;

    curl_slist_free_all(t->attempt_headers);
    t->attempt_headers = NULL;
    for (struct curl_slist *h = t->o.headers; h; h = h->next) {
        struct curl_slist *n = curl_slist_append(t->attempt_headers, h->data);
        if (!n)
            return CURLE_OUT_OF_MEMORY;
        t->attempt_headers = n;
    }
    if (!xfer_has_header(t->o.headers, "accept-encoding")) {
        /* the plain bytes, as yt-dlp's HttpFD asks; curl would otherwise
           offer every decoder it has */
        struct curl_slist *n = curl_slist_append(t->attempt_headers,
                                                 "Accept-Encoding: identity");
        if (!n)
            return CURLE_OUT_OF_MEMORY;
        t->attempt_headers = n;
    }

    if (start > 0 || t->o.range_end >= 0) {
        if (t->o.range_end >= 0)
            snprintf(range, sizeof(range), "%" PRId64 "-%" PRId64, start,
                     t->o.range_end - 1);
        else
            snprintf(range, sizeof(range), "%" PRId64 "-", start);
        curl_easy_setopt(t->easy, CURLOPT_RANGE, range);
        /* a strong validator for the bytes we already hold */
        validator = t->etag && strncmp(t->etag, "W/", 2) != 0 ? t->etag
            : t->last_modified ? t->last_modified : t->o.if_range;
        if (validator && strncmp(validator, "W/", 2) != 0) {
            char *line = malloc(strlen(validator) + 11);
            struct curl_slist *n;
            if (!line)
                return CURLE_OUT_OF_MEMORY;
            sprintf(line, "If-Range: %s", validator);
            n = curl_slist_append(t->attempt_headers, line);
            free(line);
            if (!n)
                return CURLE_OUT_OF_MEMORY;
            t->attempt_headers = n;
        }
    } else {
        curl_easy_setopt(t->easy, CURLOPT_RANGE, (char *)NULL);
    }
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->attempt_headers);
    /* per attempt: the rate limit can be switched on between attempts, and
       a small buffer keeps the limited sum smooth */
    curl_easy_setopt(t->easy, CURLOPT_BUFFERSIZE,
                     e->rl.rate > 0 ? 16384L : e->cfg.buffer_size);
    return curl_multi_add_handle(e->multi, t->easy) == CURLM_OK
        ? CURLE_OK : CURLE_FAILED_INIT;
}

static void xfer_set_error(struct task *t, enum err_kind k, const char *msg)
{
    t->err = k;
    if (msg && !t->errmsg[0])
        snprintf(t->errmsg, sizeof(t->errmsg), "%s", msg);
}

static const char *reason_phrase(const struct task *t, size_t *len)
{
    return http_reason_phrase(t->hdr, t->hdr_len, len);
}

/* The attempt was stopped on purpose (t->abort): 1 when that decides
   the outcome (the message is set), 0 when it ended normally. */
static int xfer_classify_abort(struct task *t, int *retryable)
{
    switch (t->abort) {
    case AB_IO:
        if (t->o.to_memory)
            snprintf(t->errmsg, sizeof(t->errmsg), "cannot keep the body in "
                     "memory (max_memory %lld bytes): %s",
                     (long long)t->o.max_memory, strerror(t->os_errno));
        else
            snprintf(t->errmsg, sizeof(t->errmsg), "cannot write the file: "
                     "%s", strerror(t->os_errno));
        t->err = EK_IO;
        return 1;
    case AB_RANGE:
        t->err = EK_RANGE;
        return 1;
    case AB_FILESIZE:
        t->err = EK_FILESIZE;
        return 1;
    case AB_CODING:
        /* a content-coded reply to a range: fetch it whole from byte 0 */
        xfer_restart_from_zero(t);
        xfer_set_error(t, EK_RANGE, "the server sent a content-coded reply "
                       "to a range request; fetching it whole");
        *retryable = 1;
        return 1;
    case AB_RESTART:
        /* the resource changed: start again from byte 0 */
        xfer_restart_from_zero(t);
        free(t->etag);
        free(t->last_modified);
        t->etag = t->last_modified = NULL;
        free(t->o.if_range);
        t->o.if_range = NULL;
        xfer_set_error(t, EK_RANGE, "the resource changed on the server; "
                       "restarting from byte 0");
        *retryable = 1;
        return 1;
    case AB_COMPLETE:
    case AB_NONE:
        break;
    }
    return 0;
}

/* The transfer ended well at the protocol level: an HTTP error reply,
   a body shorter than announced, or success (t->total known from now). */
static void xfer_classify_complete(struct task *t, int *retryable)
{
    long code = t->http_status;
    if (t->discard) {
        size_t rlen = 0;
        const char *reason = reason_phrase(t, &rlen);
        snprintf(t->errmsg, sizeof(t->errmsg), "HTTP Error %ld: %.*s",
                 code, (int)rlen, reason ? reason : "");
        t->err = EK_HTTP;
        t->retry_after = parse_retry_after(t);
        *retryable = code == 408 || code == 429 || code >= 500;
        return;
    }
    if (t->total >= 0 && t->written < t->total) {
        if (t->resource_size < 0 && t->o.expected_size < 0
            && t->o.range_end >= 0) {
            /* the resource ended before the end we asked for */
            eng_lock(t->eng);
            t->total = t->written;
            eng_unlock(t->eng);
            return;
        }
        snprintf(t->errmsg, sizeof(t->errmsg),
                 "the server sent %lld of %lld bytes",
                 (long long)t->written, (long long)t->total);
        t->err = EK_TOO_SHORT;
        *retryable = 1;
        return;
    }
    if (t->total < 0) {
        eng_lock(t->eng);
        t->total = t->written;
        eng_unlock(t->eng);
    }
}

/* curl's error: the message (curl's own words), a redirect that was not
   followed keeps its 3xx status, and whether another attempt may help. */
static void xfer_classify_curl(struct task *t, CURLcode res, int *retryable)
{
    if (t->curl_errbuf[0])
        snprintf(t->errmsg, sizeof(t->errmsg), "%s (curl error %d)",
                 t->curl_errbuf, (int)res);
    else
        snprintf(t->errmsg, sizeof(t->errmsg), "%s (curl error %d)",
                 curl_easy_strerror(res), (int)res);

    if (res == CURLE_TOO_MANY_REDIRECTS || res == CURLE_UNSUPPORTED_PROTOCOL) {
        /* a redirect that is not followed: keep its 3xx, which yt-dlp names
           in its error ("HTTP Error 302: Found") */
        long code = 0;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 300 && code < 400) {
            eng_lock(t->eng);
            t->http_status = code;
            eng_unlock(t->eng);
        }
    }

    switch (res) {
    case CURLE_PARTIAL_FILE:
        t->err = EK_TOO_SHORT;
        *retryable = 1;
        return;
    case CURLE_FILESIZE_EXCEEDED:
        t->err = EK_FILESIZE;
        return;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_LOGIN_DENIED:
    case CURLE_BAD_CONTENT_ENCODING:
        t->err = EK_TRANSPORT;
        return;
    default:
        t->err = EK_TRANSPORT;
        *retryable = 1;
        return;
    }
}

/* Decide what an ended attempt means.  On return t->err is EK_NONE for
   success; otherwise *retryable says whether another attempt may help. */
void xfer_classify(struct eng *e, struct task *t, CURLcode res,
                   int *retryable)
{
    (void)e;
    *retryable = 0;
    t->err = EK_NONE;
    if (t->abort != AB_RANGE && t->abort != AB_FILESIZE)
        /* these wrote their own message */
        t->errmsg[0] = 0;
    t->curl_code = res;
    t->retry_after = 0;

    if (res == CURLE_OK && !t->response_checked)
        xfer_check_response(t);      /* an empty body */
    if (xfer_classify_abort(t, retryable))
        return;
    if (res == CURLE_OK || (res == CURLE_WRITE_ERROR
                            && t->abort == AB_COMPLETE))
        xfer_classify_complete(t, retryable);
    else
        xfer_classify_curl(t, res, retryable);
}

/* Before another attempt: a decoded body cannot be resumed by offset,
   so it starts again from its first byte.  0 when that is impossible (a
   pipe, a bounded range): the task fails instead. */
int xfer_prepare_retry(struct task *t)
{
    if (!t->coded || task_written(t) == 0)
        return 1;
    if (t->o.range_start == 0 && t->o.range_end < 0 && !t->o.sequential) {
        eng_lock(t->eng);
        __atomic_store_n(&t->written, 0, __ATOMIC_RELAXED);
        eng_unlock(t->eng);
        return 1;
    }
    if (xfer_can_restart(t)) {
        xfer_restart_from_zero(t);
        return 1;
    }
    snprintf(t->errmsg + strlen(t->errmsg),
             sizeof(t->errmsg) - strlen(t->errmsg),
             "; a content-coded reply cannot be resumed here");
    return 0;
}

void xfer_release(struct task *t)
{
    if (t->easy) {
        curl_easy_cleanup(t->easy);
        t->easy = NULL;
    }
    curl_slist_free_all(t->attempt_headers);
    t->attempt_headers = NULL;
}
