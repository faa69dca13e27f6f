/*
 * engine.h - the private header of the yt-dlp-async download engine.
 *
 * Plain C11 + POSIX + libcurl.  Nothing here includes Python.h: only
 * the binding files (binding.h) do.  The engine thread runs the code of
 * every other file and never touches a Python object.
 *
 * Ownership:
 *   struct eng   - created and freed by engineobj.c (the Engine object).
 *                  Its thread owns the CURLM, every easy handle, every host
 *                  entry and the file descriptors of live tasks.
 *   struct task  - reference counted.  One reference is held by the Python
 *                  Task object, one by the engine until the task finishes.
 *
 * Locking: eng->mu protects the command queue and every task field that
 * Python reads (marked "mu" below).  Fields marked "thr" are touched only by
 * the engine thread.  Byte counters are atomics so that the write callback
 * never takes the lock.  Python threads never block on eng->mu while holding
 * the GIL (the binding releases it first when the lock is contended).
 */
#ifndef YTDLP_ASYNC_ENGINE_H
#define YTDLP_ASYNC_ENGINE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <curl/curl.h>

#include "adaptive.h"

/* ---- task states and error kinds ---------------------------------- */

enum task_state {
    TS_QUEUED = 0,   /* waiting for a connection slot */
    TS_ACTIVE,       /* an attempt is running in the multi handle */
    TS_RETRY_WAIT,   /* backing off before the next attempt */
    TS_DONE,         /* finished: every byte written */
    TS_FAILED,       /* finished: see err */
    TS_CANCELLED     /* finished: cancel() or engine shutdown */
};

enum err_kind {
    EK_NONE = 0,
    EK_HTTP,        /* HTTP status: 4xx at once, 5xx/408/429 after retries */
    EK_TRANSPORT,   /* reset, timeout, stall, DNS, TLS ... */
    EK_TOO_SHORT,   /* body shorter than announced, after retries */
    EK_RANGE,       /* a bounded range was ignored or the resource changed */
    EK_FILESIZE,    /* max_filesize exceeded */
    EK_IO,          /* local write error: os_errno */
    EK_CANCELLED
};

/* why the write callback stopped a transfer (t->abort) */
enum abort_reason {
    AB_NONE = 0,
    AB_IO,          /* pwrite failed: t->os_errno */
    AB_RANGE,       /* reply unusable for the asked range: t->errmsg */
    AB_RESTART,     /* resource changed under an open-ended request */
    AB_COMPLETE,    /* every byte of a bounded request is written */
    AB_FILESIZE,    /* more than o.max_filesize bytes: t->errmsg */
    AB_CODING       /* a content-coded reply to a range: restart whole */
};

const char *task_state_name(enum task_state s);
const char *err_kind_name(enum err_kind k);

/* ---- priority queue (pqueue.c) ------------------------------------ */

struct task;

struct pqueue {
    struct task **v;
    size_t len, cap;
};

void pq_init(struct pqueue *q);
void pq_free(struct pqueue *q);
int pq_push(struct pqueue *q, struct task *t);          /* 0 or -1 (ENOMEM) */
struct task *pq_peek(const struct pqueue *q);
struct task *pq_pop(struct pqueue *q);
void pq_remove(struct pqueue *q, struct task *t);
void pq_update(struct pqueue *q, struct task *t);       /* after priority change */

/* ---- token bucket (ratelimit.c): pure, the clock is an argument ---- */

struct ratelimit {
    double rate;        /* bytes per second; <= 0 means unlimited */
    double burst;       /* bucket size in bytes */
    double tokens;      /* may go negative: debt from a chunk already taken */
    double last;        /* time of the last refill */
};

void rl_set(struct ratelimit *rl, double rate, double now);
void rl_refill(struct ratelimit *rl, double now);
int rl_allows(const struct ratelimit *rl);              /* 1 when tokens > 0 */
void rl_take(struct ratelimit *rl, size_t n);
long rl_wait_ms(const struct ratelimit *rl);             /* until tokens > 0 */

/* ---- byte ranges (ranges.c): sorted, merged, pure ------------------ */

struct range {
    int64_t a, b;               /* [a, b) */
};

struct ranges {
    struct range *v;
    size_t n, cap;
};

void ranges_init(struct ranges *r);
void ranges_free(struct ranges *r);
void ranges_clear(struct ranges *r);
int ranges_add(struct ranges *r, int64_t a, int64_t b);   /* 0 or -1 */
int ranges_copy(struct ranges *dst, const struct ranges *src);
int64_t ranges_total(const struct ranges *r);
int ranges_covers(const struct ranges *r, int64_t a, int64_t b);
int ranges_first_gap(const struct ranges *r, int64_t from, int64_t to,
                     int64_t *ga, int64_t *gb);

/* ---- resume state of a segmented download (controlfile.c) ---------- */

struct resume_state {
    int64_t size;
    char *etag;
    char *last_modified;
    struct ranges done;
};

/* the largest size a control file may claim: offsets stay far from
   INT64_MAX, so file position + range end cannot overflow */
#define CF_SIZE_MAX (INT64_C(1) << 62)

void cf_state_clear(struct resume_state *st);
char *cf_render(const struct resume_state *st);
int cf_write(const char *path, const char *text);
int cf_load(const char *path, struct resume_state *st);

/* ---- options of one task: immutable after submit ------------------- */

struct task_opts {
    char *url;
    char *path;                /* opened when the transfer starts, or NULL */
    int truncate;              /* O_TRUNC when opening path */
    char *host_key;            /* "host:port", for per-host limits */
    struct curl_slist *headers;
    char **cookies;            /* Netscape lines for CURLOPT_COOKIELIST */
    size_t ncookies;
    char *proxy;
    char *source_address;
    char *ca_file;
    char *ca_path;             /* hashed CA directory, or NULL: curl's */
    char *client_cert;
    char *client_key;
    char *key_password;
    char *if_range;            /* validator of bytes already on disk */
    int verify;
    int auth_to_other_hosts;   /* a redirect to another host keeps the
                                  Authorization header (yt-dlp's urllib
                                  handler does; curl's default drops it) */
    int sequential;            /* fd is a pipe or tty: write(), in order */
    int64_t range_start;       /* first resource byte wanted */
    int64_t range_end;         /* one past the last, -1 = to EOF */
    int64_t file_offset;       /* file position of range_start */
    int64_t expected_size;     /* bytes this request delivers, -1 unknown */
    int64_t max_filesize;      /* -1 none */
    int max_retries;           /* -1: the engine's */
    int priority;
    /* segmented downloads: more than one connection for one resource */
    int connections;           /* 1: a plain transfer; adaptive: the most */
    int adaptive;              /* the count follows adaptive.c, from 1 */
    int64_t min_piece;         /* never split below this */
    int64_t max_request;       /* cap on one request's range, 0: none */
    char *state_path;          /* resume control file, or NULL */
    /* a small resource (a fragment, a key) kept in memory, not a file */
    int to_memory;
    int64_t max_memory;
    /* hold the body of a reply that starts the file, or whose validator is
       not if_range, until Task.release(): the caller stores the reply's
       validator beside the file before any byte of it is written */
    int hold_new_validator;
};

/* Every string a task_opts owns, in one list, as X(field, copied):
   task_opts_clear frees each, task_opts_copy gives the copy its own
   duplicate of each that is copied (state_path is not: a segment has no
   control file of its own) and NULL for the rest.  headers and cookies
   are the only other pointers; both functions handle them by name.  A new
   pointer field must be one of the three, or two tasks free one pointer:
   tests/test_c_lint.py checks the struct against this list and
   tests/c/test_task_opts.c copies and frees every field under ASan. */
#define TASK_OPTS_STRINGS(X) \
    X(url, 1) X(path, 1) X(host_key, 1) X(proxy, 1) X(source_address, 1) \
    X(ca_file, 1) X(ca_path, 1) X(client_cert, 1) X(client_key, 1) \
    X(key_password, 1) X(if_range, 1) X(state_path, 0)

/* A deep copy, for the segments of a download; 0 or -1 (ENOMEM, dst
   cleared).  Not copied: truncate, hold_new_validator (see task.c). */
int task_opts_copy(struct task_opts *dst, const struct task_opts *src);

void task_opts_clear(struct task_opts *o);

/* ---- one download task --------------------------------------------- */

#define TASK_ERRMSG_SIZE 512
#define TASK_HDR_MAX (64 * 1024)

struct eng;
struct seg;

struct task {
    int refs;                   /* atomic */
    struct eng *eng;
    uint64_t id;
    uint64_t seq;               /* submit order, ties in the queue */
    size_t heap_pos;            /* thr: index in its host's queue */
    struct host *host;          /* thr */
    struct task *next;          /* thr: engine's list of unfinished tasks */
    struct task *parent;        /* thr: the segmented download it serves */
    int draining;               /* thr: shed after its first byte: it ends
                                   with its range, and no other replaces it */
    struct seg *seg;            /* a segmented download's plan, else NULL */

    struct task_opts o;
    int fd;                     /* thr: owned, closed when finished */
    CURL *easy;                 /* thr */
    struct curl_slist *attempt_headers;  /* thr: o.headers + If-Range */

    /* attempt state (thr) */
    int64_t attempt_start;      /* resource byte this attempt starts at */
    int64_t attempt_end;        /* the end its request asked for, -1: open */
    int response_checked;
    int discard;                /* non-2xx: body is not ours */
    int paused;                 /* held back by the rate limit */
    int coded;                  /* the reply has a Content-Encoding: the
                                   body is decoded, never split or resumed
                                   by offset */
    double last_rx;             /* when a byte last arrived (stall rule) */
    enum abort_reason abort;
    char curl_errbuf[CURL_ERROR_SIZE];
    char *hdr;                  /* raw header block of the last response */
    size_t hdr_len, hdr_cap;
    double next_attempt_at;
    int64_t stats_mark;         /* thr: written when the attempt started */
    int stats_open;             /* thr: an attempt not yet in eng->stats */
    double speed_mark_time;
    int64_t speed_mark_bytes;

    /* progress, read by Python */
    int64_t written;            /* atomic: bytes of the range on disk, contiguous */
    int64_t total;              /* mu: bytes this task writes when complete, -1 */
    int64_t resource_size;      /* mu: -1 unknown */
    double speed;               /* mu */
    double submit_time;         /* const */
    double finish_time;         /* mu */
    int retries;                /* mu */
    long http_status;           /* mu */
    int restarted;              /* mu */
    enum task_state state;      /* mu: written by eng_set_state_locked()
                                   only (task_new sets TS_QUEUED) */
    int cancel_requested;       /* mu */

    /* the reply being written, set once its headers are accepted (before
       its first body byte), readable while the task runs */
    char *live_etag;            /* mu: engine thread replaces, Python reads */
    char *live_last_modified;   /* mu */
    /* o.hold_new_validator: the reply's body waits until Python releases
       hold number hold_seq; the write callback pauses the transfer */
    int held;                   /* mu */
    int released;               /* mu: set by Task.release(hold_seq) */
    uint64_t hold_seq;          /* mu: holds so far */
    int64_t held_at;            /* mu: file position of its first byte */

    /* the body when o.to_memory: thr until finished, then Python's */
    unsigned char *mem;
    size_t mem_cap;

    /* outcome, readable once finished */
    enum err_kind err;
    int curl_code;
    int os_errno;
    double retry_after;         /* seconds the server asked for, last reply */
    char errmsg[TASK_ERRMSG_SIZE];
    char *etag;
    char *last_modified;
    char *effective_url;
    char **out_cookies;
    size_t nout_cookies;
};

struct task *task_new(struct task_opts *opts, int fd);   /* takes opts */
void task_incref(struct task *t);
void task_decref(struct task *t);
int task_finished_state(enum task_state s);
int64_t task_written(const struct task *t);

/* transfer.c: the life of one attempt (engine thread only) */
int xfer_start(struct eng *e, struct task *t);          /* 0 or CURLcode */
void xfer_classify(struct eng *e, struct task *t, CURLcode res,
                   int *retryable);
void xfer_release(struct task *t);
int xfer_held(struct task *t);               /* body waits for release */
int xfer_prepare_retry(struct task *t);    /* 0: cannot retry */

/* httpparse.c: pure parsers of what a server sends (fuzzed) */
#define HTTP_RETRY_AFTER_MAX 86400.0   /* s; as retry_max_delay's limit */
const char *hdr_find(const char *hdr, size_t len, const char *name,
                     size_t *vlen);
const char *http_reason_phrase(const char *hdr, size_t hlen, size_t *len);
int http_content_range(const char *v, size_t vlen, int64_t *s, int64_t *e,
                       int64_t *total);              /* 0 or -1 */
double http_retry_after(const char *v, size_t vlen, time_t now);

/* ---- per-host accounting ------------------------------------------- */

struct host {
    char *key;
    int active;
    int window;                 /* adaptive cap, <= max_host_connections */
    double last_change;         /* when the window last moved */
    double last_trouble;        /* last 429/403/503 or reset */
    struct pqueue queue;
    struct host *next;
};

/* ---- the engine ----------------------------------------------------- */

/* What the engine did since it was created (Engine.stats()).  Written by
   the engine thread, read by Python, both under eng->mu. */
struct eng_stats {
    uint64_t files;             /* top-level tasks finished done */
    uint64_t failures;          /* top-level tasks finished failed */
    uint64_t bytes;             /* bytes received and written, every attempt */
    uint64_t retries;           /* attempts retried by the engine */
    uint64_t connections;       /* CURLINFO_NUM_CONNECTS, summed */
    double first_start;         /* first top-level task submitted, 0: none */
    double last_end;            /* last top-level task finished */
};

struct eng_config {
    int max_connections;
    int max_host_connections;
    long connect_timeout_ms;
    long stall_timeout_s;
    int max_retries;
    double retry_base;
    double retry_max;
    double rate_limit;          /* bytes/s, 0 = none */
    long buffer_size;
};

enum cmd_type { CMD_SUBMIT, CMD_CANCEL, CMD_PRIORITY, CMD_RATE,
                CMD_SHUTDOWN };

struct cmd {
    enum cmd_type type;
    struct task *task;          /* holds a reference */
    double arg;
    struct cmd *next;
};

struct eng {
    pthread_mutex_t mu;
    pthread_cond_t done_cv;     /* broadcast when a task finishes */
    pthread_t thread;
    int thread_started;
    int closed;                 /* mu: no more commands accepted */
    pid_t pid;                  /* creator; a forked child refuses use */

    struct cmd *cmd_head, *cmd_tail;   /* mu */
    int *subs;                  /* mu: fds written when a task finishes */
    size_t nsubs, subs_cap;     /* mu */

    /* engine thread only */
    CURLM *multi;
    CURLSH *share;
    struct eng_config cfg;
    struct host *hosts;
    struct task *tasks;         /* unfinished tasks */
    int active;
    int shutting_down;
    struct ratelimit rl;
    uint64_t rng;
    double last_speed_update;

    int plan_pending;           /* a segmented download wants planning */
    int save_pending;           /* a segmented download wants its control
                                   file saved (seg_checkpoints) */

    /* atomics (fragstream.c): bytes of memory=True bodies allocated now,
       and the most at any time (a fragment window's bound, for tests) */
    int64_t body_mem;
    int64_t body_mem_peak;

    uint64_t next_id;           /* mu */
    uint64_t next_seq;          /* mu */
    struct eng_stats stats;     /* mu */
};

/* ---- segmented downloads (segment.c), engine thread ---------------- */

#define SEG_MAX_CONNECTIONS 64

struct seg {
    int64_t start;              /* first resource byte of the download */
    int64_t size;               /* resource size once known, else -1 */
    struct ranges done;         /* finished byte ranges (resource offsets) */
    int64_t done_bytes;         /* mu: total of done, for live progress */
    struct task *children[SEG_MAX_CONNECTIONS];  /* mu for changes */
    int nchildren;
    int confirmed;              /* the first reply was checked and used */
    int ranges_ok;              /* the server honours ranges: may split */
    int single;                 /* fell back to one connection */
    int cap;                    /* > 0: most connections from now on, the
                                   count still working when one failed */
    int64_t resumed;            /* bytes found done in the control file */
    double last_save;
    char *saved;                /* the control file's last contents */
    int64_t unsaved;            /* thr: bytes the children wrote since the
                                   last save */
    int save_me;                /* thr: a save is due (seg_child_wrote) */
    int finishing;
    int plan_me;                /* confirmed: plan in the loop */
    int coded;                  /* the first reply was content-coded */
    int no_length;              /* the first reply had no usable length */
    int shedding;               /* thr: cancelling connections over target */
    /* how many connections (adaptive.c when o.adaptive).  Its owner:
       the engine thread, the one writer, under mu (seg_init sets it up
       before the task is shared); Python reads it under mu */
    struct adaptive ctl;        /* mu */
    int peak;                   /* mu: most connections transferring at once */
};

/* why a split download used the connections it did (Task.info) */
const char *seg_note(const struct task *t);   /* under mu */

int seg_init(struct task *t, char *err, size_t errlen);
void seg_free(struct task *t);
int seg_start(struct eng *e, struct task *t);
void seg_child_finished(struct eng *e, struct task *child);
void seg_child_confirmed(struct task *child);
void seg_plan(struct eng *e, struct task *t);
void seg_refresh(struct eng *e, struct task *t, double now, int force);
void seg_child_wrote(struct eng *e, struct task *child, int64_t n,
                     double now);
void seg_checkpoints(struct eng *e, double now);
void seg_cancel_children(struct eng *e, struct task *t);
void seg_adapt(struct eng *e, struct task *t, double now);
void seg_child_active(struct eng *e, struct task *child);
void seg_child_trouble(struct eng *e, struct task *child);

/* ---- aes.c --------------------------------------------------------------- */

int aes128_cbc_decrypt(const unsigned char *in, size_t n,
                       const unsigned char *key, const unsigned char *iv,
                       int unpad, unsigned char *out, size_t *outlen,
                       char *err, size_t errlen);

/* ---- fragstream.c: a fragment's body to the output, in C ----------- */

enum frag_rc {
    FRAG_OK = 0,
    FRAG_EKEEP = -1,    /* the --keep-fragments file: errno */
    FRAG_EOUT = -2,     /* the output descriptor: errno (bytes may be out) */
    FRAG_EAES = -3      /* decryption refused: err */
};

/* keep (raw) -> decrypt in place when key (16 bytes, iv 16) -> append to
   out_fd; *appended is what reached out_fd when FRAG_OK */
/* body_mem accounting: delta > 0 when a body grows, < 0 when freed */
void frag_mem_account(struct eng *e, int64_t delta);

int frag_append(unsigned char *body, size_t n, int out_fd,
                const unsigned char *key, const unsigned char *iv,
                const char *keep_path, size_t *appended,
                char *err, size_t errlen);

int eng_global_init(void);
struct eng *eng_new(const struct eng_config *cfg, char *err, size_t errlen);
int eng_start(struct eng *e);
int eng_post(struct eng *e, enum cmd_type type, struct task *t, double arg);
void eng_lock(struct eng *e);
void eng_unlock(struct eng *e);
void eng_shutdown_and_join(struct eng *e);
int eng_subscribe(struct eng *e, int fd);     /* 0, or -1 with errno */
void eng_unsubscribe(struct eng *e, int fd);
int eng_open_file(struct eng *e, struct task *t);   /* 0 or -1: failed */
void eng_free(struct eng *e);
/* wait up to ms for t to finish; returns 1 when finished */
int eng_wait_task(struct eng *e, struct task *t, long ms);
double eng_now(void);
/* engine.c helpers used by segment.c */
int eng_enqueue(struct eng *e, struct task *t);
/* The only way a task becomes finished (TS_DONE, TS_FAILED, TS_CANCELLED):
   records the outcome, releases the connection and the file, wakes the
   waiters and drops the engine's reference. */
void eng_finish(struct eng *e, struct task *t, enum task_state st);
/* Every change of t->state, with eng->mu held (engine.c wraps it in
   eng_set_state for the unlocked callers); tests/test_c_lint.py checks
   that no other line assigns ->state. */
void eng_set_state_locked(struct task *t, enum task_state st);
void eng_host_trouble(struct eng *e, struct host *h);

#endif
