/*
 * taskobj.c - the Task type of yt_dlp_async._engine: one download queued in
 * an Engine (made by Engine.submit).  Waiting, cancelling, the info()
 * snapshot and handing a memory=True body to Python or to a file.
 */
#include "binding.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- Task ------------------------------------------------------------------ */

PyObject *task_create(EngineObject *engine, struct task *t,
                             PyObject *url, PyObject *path)
{
    module_state *st = state_of_type(Py_TYPE((PyObject *)engine));
    TaskObject *self;
    if (!st)
        return NULL;
    self = PyObject_GC_New(TaskObject, st->task_type);
    if (!self)
        return NULL;
    self->engine = Py_NewRef((PyObject *)engine);
    self->task = t;
    self->url = Py_NewRef(url);
    self->path = Py_NewRef(path);
    PyObject_GC_Track((PyObject *)self);
    return (PyObject *)self;
}

static struct eng *task_eng(TaskObject *self)
{
    return ((EngineObject *)self->engine)->eng;
}

static int Task_traverse(PyObject *op, visitproc visit, void *arg)
{
    TaskObject *self = (TaskObject *)op;
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(self->engine);
    Py_VISIT(self->url);
    Py_VISIT(self->path);
    return 0;
}

static int Task_clear(PyObject *op)
{
    TaskObject *self = (TaskObject *)op;
    Py_CLEAR(self->url);
    Py_CLEAR(self->path);
    /* the engine reference is dropped in dealloc, after the task */
    return 0;
}

static void Task_dealloc(PyObject *op)
{
    TaskObject *self = (TaskObject *)op;
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    Task_clear(op);
    if (self->task) {
        task_decref(self->task);
        self->task = NULL;
    }
    Py_CLEAR(self->engine);
    PyObject_GC_Del(op);
    Py_DECREF(tp);
}

static PyObject *Task_done(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    TaskObject *self = (TaskObject *)op;
    int done;
    lock_engine(task_eng(self));
    done = task_finished_state(self->task->state);
    pthread_mutex_unlock(&task_eng(self)->mu);
    return PyBool_FromLong(done);
}

static PyObject *Task_wait(PyObject *op, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"timeout", NULL};
    TaskObject *self = (TaskObject *)op;
    PyObject *timeout_obj = Py_None;
    double timeout = -1, deadline = 0;
    int done = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:wait", kwlist,
                                     &timeout_obj))
        return NULL;
    if (timeout_obj != Py_None) {
        timeout = PyFloat_AsDouble(timeout_obj);
        if (timeout == -1 && PyErr_Occurred())
            return NULL;
        if (timeout < 0)
            timeout = 0;
        deadline = eng_now() + timeout;
    }
    if (task_eng(self)->pid != getpid())
        return PyErr_Format(PyExc_RuntimeError, "this task belongs to "
                            "another process (fork)");
    for (;;) {
        long slice = WAIT_SLICE_MS;
        if (timeout >= 0) {
            double left = deadline - eng_now();
            if (left <= 0)
                left = 0;
            if (left * 1000 < slice)
                slice = (long)(left * 1000);
        }
        Py_BEGIN_ALLOW_THREADS
        done = eng_wait_task(task_eng(self), self->task, slice);
        Py_END_ALLOW_THREADS
        if (done)
            break;
        if (PyErr_CheckSignals() < 0)
            return NULL;
        if (timeout >= 0 && eng_now() >= deadline)
            break;
    }
    return PyBool_FromLong(done);
}

static PyObject *Task_cancel(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    TaskObject *self = (TaskObject *)op;
    EngineObject *engine = (EngineObject *)self->engine;
    if (!engine_usable(engine, 0))
        return NULL;
    if (post(engine, CMD_CANCEL, self->task, 0) < 0) {
        /* a closed engine has cancelled every live task already */
        PyErr_Clear();
    }
    Py_RETURN_NONE;
}

/* Task.release(n): the body of held reply number n may be written (its
   validator is stored).  A stale n (the attempt ended, another reply is
   held now) releases nothing. */
static PyObject *Task_release(PyObject *op, PyObject *arg)
{
    TaskObject *self = (TaskObject *)op;
    EngineObject *engine = (EngineObject *)self->engine;
    struct eng *e = task_eng(self);
    struct task *t = self->task;
    unsigned long long n = PyLong_AsUnsignedLongLong(arg);
    if (n == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (!engine_usable(engine, 0))
        return NULL;
    lock_engine(e);
    if (t->held && t->hold_seq == n) {
        t->released = 1;
        /* under the lock: close() frees the multi handle after the join */
        if (e->multi && !e->closed)
            curl_multi_wakeup(e->multi);
    }
    pthread_mutex_unlock(&e->mu);
    Py_RETURN_NONE;
}

static PyObject *Task_set_priority(PyObject *op, PyObject *arg)
{
    TaskObject *self = (TaskObject *)op;
    EngineObject *engine = (EngineObject *)self->engine;
    long p = PyLong_AsLong(arg);
    if (p == -1 && PyErr_Occurred())
        return NULL;
    if (p < INT_MIN || p > INT_MAX)
        return PyErr_Format(PyExc_OverflowError, "priority out of range");
    if (!engine_usable(engine, 1) || post(engine, CMD_PRIORITY, self->task,
                                          (double)p) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int dict_set(PyObject *d, const char *k, PyObject *v)
{
    int rc;
    if (!v)
        return -1;
    rc = PyDict_SetItemString(d, k, v);
    Py_DECREF(v);
    return rc;
}

static PyObject *str_or_none(const char *s)
{
    return s ? PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace")
             : Py_NewRef(Py_None);
}

static PyObject *int_or_none(int64_t v)
{
    return v >= 0 ? PyLong_FromLongLong(v) : Py_NewRef(Py_None);
}

/* How many connections a split download used: the most at once, the
   targets in order, the current target and why (segment.c seg_note). */
static int Task_info_connections(PyObject *d, struct task *t, struct eng *e)
{
    int hist[ADAPTIVE_HIST], nhist, peak, target;
    char note[32];
    PyObject *list;

    lock_engine(e);
    nhist = t->seg->ctl.nhist;
    memcpy(hist, t->seg->ctl.hist, sizeof(hist));
    peak = t->seg->peak;
    target = t->seg->ctl.target;
    snprintf(note, sizeof(note), "%s", seg_note(t));
    pthread_mutex_unlock(&e->mu);

    list = PyList_New(nhist);
    if (!list)
        return -1;
    for (int i = 0; i < nhist; i++) {
        PyObject *n = PyLong_FromLong(hist[i]);
        if (!n) {
            Py_DECREF(list);
            return -1;
        }
        if (PyList_SetItem(list, i, n) < 0) {   /* steals n */
            Py_DECREF(list);
            return -1;
        }
    }
    if (dict_set(d, "connections_history", list)
        || dict_set(d, "connections_peak", PyLong_FromLong(peak))
        || dict_set(d, "connections_target", PyLong_FromLong(target))
        || dict_set(d, "connections_note", PyUnicode_FromString(note))
        || dict_set(d, "connections_adaptive",
                    PyBool_FromLong(t->o.adaptive)))
        return -1;
    return 0;
}

/* what Task.info() copies under the engine lock */
struct info_snap {
    enum task_state shown;      /* TS_RETRY_WAIT when every connection is */
    int64_t total, size, written;
    double speed, elapsed;
    int retries, restarted, held, live;
    long status;
    uint64_t hold_seq;
    int64_t held_at;
    char *etag, *lastmod;       /* malloc'd copies while live */
};

static void info_snapshot(struct task *t, struct eng *e, struct info_snap *s)
{
    double now = eng_now();
    lock_engine(e);
    s->shown = t->state;
    s->total = t->total;
    s->size = t->resource_size;
    s->speed = t->speed;
    s->retries = t->retries;
    s->status = t->http_status;
    s->restarted = t->restarted;
    s->held = t->held && !t->released && !task_finished_state(s->shown);
    s->hold_seq = t->hold_seq;
    s->held_at = t->held_at;
    s->elapsed = (task_finished_state(s->shown) ? t->finish_time : now)
        - t->submit_time;
    s->live = !task_finished_state(s->shown);
    s->etag = s->lastmod = NULL;
    if (s->live) {
        /* the reply being written: the engine thread replaces these
           strings under the lock only, so they are copied under it */
        s->etag = t->live_etag ? strdup(t->live_etag) : NULL;
        s->lastmod = t->live_last_modified ? strdup(t->live_last_modified)
                                           : NULL;
    }
    s->written = task_written(t);
    if (t->seg && !task_finished_state(s->shown)) {
        /* live: finished ranges plus what each connection has written,
           every connection's retries so far, and waiting for a retry
           when every connection is */
        int waiting = t->seg->nchildren > 0;
        s->written = t->seg->done_bytes;
        for (int i = 0; i < t->seg->nchildren; i++) {
            const struct task *c = t->seg->children[i];
            s->written += task_written(c);
            s->retries += c->retries;
            waiting = waiting && c->state == TS_RETRY_WAIT;
        }
        if (waiting)
            s->shown = TS_RETRY_WAIT;
    }
    pthread_mutex_unlock(&e->mu);
}

/* the fields every snapshot has; nonzero with an exception set */
static int info_common(PyObject *d, struct task *t,
                       const struct info_snap *s)
{
    return dict_set(d, "id", PyLong_FromUnsignedLongLong(t->id)) < 0
        || dict_set(d, "state", PyUnicode_FromString(
                        task_state_name(s->shown)))
        || dict_set(d, "downloaded_bytes", PyLong_FromLongLong(s->written))
        || dict_set(d, "total_bytes", int_or_none(s->total))
        || dict_set(d, "resource_size", int_or_none(s->size))
        || dict_set(d, "speed", PyFloat_FromDouble(s->speed))
        || dict_set(d, "elapsed", PyFloat_FromDouble(s->elapsed))
        || dict_set(d, "retries", PyLong_FromLong(s->retries))
        || dict_set(d, "http_status", s->status ? PyLong_FromLong(s->status)
                                                : Py_NewRef(Py_None))
        || dict_set(d, "restarted", PyBool_FromLong(s->restarted))
        || dict_set(d, "hold", s->held ? Py_BuildValue(
                        "(KL)", (unsigned long long)s->hold_seq,
                        (long long)s->held_at) : Py_NewRef(Py_None));
}

/* a split download: its segments (one dict per connection's range), the
   bytes resumed from the control file and the connection counts */
static int info_segments(PyObject *d, struct task *t, struct eng *e)
{
    PyObject *segs = PyList_New(0);
    if (!segs || dict_set(d, "segments", segs) < 0)
        return -1;
    if (dict_set(d, "resumed_bytes", PyLong_FromLongLong(
                     t->seg->resumed)) < 0)
        return -1;
    if (Task_info_connections(d, t, e) < 0)
        return -1;
    lock_engine(e);
    for (int i = 0; i < t->seg->nchildren; i++) {
        struct task *c = t->seg->children[i];
        PyObject *item = Py_BuildValue(
            "{s:L,s:L,s:L,s:s,s:d,s:i}", "start",
            (long long)c->o.range_start, "end",
            (long long)c->o.range_end, "downloaded",
            (long long)task_written(c), "state",
            task_state_name(c->state), "speed", c->speed, "retries",
            c->retries);
        if (!item || PyList_Append(segs, item) < 0) {
            Py_XDECREF(item);
            pthread_mutex_unlock(&e->mu);
            return -1;
        }
        Py_DECREF(item);
    }
    pthread_mutex_unlock(&e->mu);
    return 0;
}

/* the outcome of a finished task: the engine thread no longer writes any
   of these */
static int info_outcome(PyObject *d, struct task *t)
{
    PyObject *cookies = PyList_New(0);
    if (!cookies)
        return -1;
    for (size_t i = 0; i < t->nout_cookies; i++) {
        PyObject *c = str_or_none(t->out_cookies[i]);
        if (!c || PyList_Append(cookies, c) < 0) {
            Py_XDECREF(c);
            Py_DECREF(cookies);
            return -1;
        }
        Py_DECREF(c);
    }
    if (dict_set(d, "cookies", cookies)
        || dict_set(d, "error_kind", PyUnicode_FromString(
                        err_kind_name(t->err)))
        || dict_set(d, "error", str_or_none(t->err ? t->errmsg : NULL))
        || dict_set(d, "curl_code", PyLong_FromLong(t->curl_code))
        || dict_set(d, "os_errno", PyLong_FromLong(t->os_errno))
        || dict_set(d, "retry_after", PyFloat_FromDouble(t->retry_after))
        || dict_set(d, "effective_url", str_or_none(t->effective_url))
        || dict_set(d, "etag", str_or_none(t->etag))
        || dict_set(d, "last_modified", str_or_none(t->last_modified))
        || dict_set(d, "raw_headers", PyBytes_FromStringAndSize(
                        t->hdr ? t->hdr : "", (Py_ssize_t)t->hdr_len)))
        return -1;
    return 0;
}

/* A snapshot of the task; the outcome fields once it has finished. */
static PyObject *Task_info(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    TaskObject *self = (TaskObject *)op;
    struct task *t = self->task;
    struct eng *e = task_eng(self);
    struct info_snap s;
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;

    info_snapshot(t, e, &s);
    if (info_common(d, t, &s))
        goto fail;
    if (s.live) {
        int rc = dict_set(d, "etag", str_or_none(s.etag))
            || dict_set(d, "last_modified", str_or_none(s.lastmod));
        free(s.etag);
        free(s.lastmod);
        s.etag = s.lastmod = NULL;
        if (rc)
            goto fail;
    }
    if (t->seg && info_segments(d, t, e) < 0)
        goto fail;
    if (task_finished_state(s.shown) && info_outcome(d, t) < 0)
        goto fail;
    return d;
fail:
    free(s.etag);
    free(s.lastmod);
    Py_DECREF(d);
    return NULL;
}

/* The body of a memory=True task that ended in state `want` moves to
   Python, once: the buffer is freed.  A FAILED task's bytes are those it
   received from its range start, so that its caller can ask for the rest;
   none when a content-coded reply was decoded (those cannot be resumed by
   offset) or the bytes do not start at the range start. */
static PyObject *take_memory_body(PyObject *op, enum task_state want)
{
    TaskObject *self = (TaskObject *)op;
    struct task *t = self->task;
    struct eng *e = task_eng(self);
    enum task_state state;
    int64_t got;
    PyObject *body;
    lock_engine(e);
    state = t->state;
    pthread_mutex_unlock(&e->mu);
    if (!t->o.to_memory)
        return PyErr_Format(PyExc_ValueError, "this task writes to a file, "
                            "not to memory");
    if (state != want)
        return PyErr_Format(PyExc_ValueError, "the task is %s, not %s",
                            task_state_name(state), task_state_name(want));
    got = t->mem ? task_written(t) : 0;
    if (want == TS_FAILED && (t->coded || got < 0 || (size_t)got > t->mem_cap
                              || t->o.file_offset != 0))
        got = 0;
    body = PyBytes_FromStringAndSize(got ? (const char *)t->mem : "",
                                     (Py_ssize_t)got);
    if (body && t->mem) {
        module_state *st = state_of_type(Py_TYPE(op));
        if (st)
            st->body_bytes_to_python += (unsigned long long)got;
        frag_mem_account(t->eng, -(int64_t)t->mem_cap);
        free(t->mem);           /* ended: the engine no longer uses it */
        t->mem = NULL;
        t->mem_cap = 0;
    }
    return body;
}

/* Task.take_body(): the body of a finished memory=True task. */
static PyObject *Task_take_body(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    return take_memory_body(op, TS_DONE);
}

/* Task.take_partial_body(): what a failed memory=True task received. */
static PyObject *Task_take_partial_body(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    return take_memory_body(op, TS_FAILED);
}

static int append_body_buffers(Py_buffer *key, Py_buffer *iv)
{
    if (!key->buf && !iv->buf)
        return 0;
    if (!key->buf || !iv->buf || key->len != 16 || iv->len != 16) {
        PyErr_Format(PyExc_ValueError, "AES-128 needs a 16-byte key and a "
                     "16-byte IV (got %zd and %zd bytes)",
                     key->buf ? key->len : (Py_ssize_t)0,
                     iv->buf ? iv->len : (Py_ssize_t)0);
        return -1;
    }
    return 0;
}

/* Task.append_body(fileno, key=None, iv=None, keep=None): the body of a
   finished memory=True task goes to fileno (after keep, the raw copy, and
   AES-128 decryption when key and iv are given) without becoming a Python
   object; the buffer is freed whatever happens.  Returns the bytes
   appended. */
static PyObject *Task_append_body(PyObject *op, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"fileno", "key", "iv", "keep", NULL};
    TaskObject *self = (TaskObject *)op;
    struct task *t = self->task;
    struct eng *e = task_eng(self);
    Py_buffer key = {0}, iv = {0};
    PyObject *keep = Py_None, *keep_bytes = NULL, *out = NULL;
    const char *keep_path = NULL;
    enum task_state state;
    unsigned char *mem;
    size_t n, appended = 0;
    char err[128] = "";
    int fileno, rc, saved = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|z*z*O:append_body", kwlist,
                                     &fileno, &key, &iv, &keep))
        return NULL;
    if (append_body_buffers(&key, &iv) < 0)
        goto done;
    if (keep != Py_None) {
        if (!PyUnicode_FSConverter(keep, &keep_bytes))
            goto done;
        keep_path = PyBytes_AsString(keep_bytes);
        if (keep_path == NULL)
            goto done;
    }
    lock_engine(e);
    state = t->state;
    pthread_mutex_unlock(&e->mu);
    if (!t->o.to_memory) {
        PyErr_SetString(PyExc_ValueError, "this task writes to a file, "
                        "not to memory");
        goto done;
    }
    if (state != TS_DONE) {
        PyErr_Format(PyExc_ValueError, "the task is %s, not done",
                     task_state_name(state));
        goto done;
    }
    n = (size_t)task_written(t);
    if (!t->mem && n > 0) {
        PyErr_SetString(PyExc_ValueError, "the body was already taken");
        goto done;
    }
    mem = t->mem;               /* finished: the engine no longer uses it */
    if (mem)
        frag_mem_account(t->eng, -(int64_t)t->mem_cap);
    t->mem = NULL;
    t->mem_cap = 0;
    Py_BEGIN_ALLOW_THREADS
    rc = frag_append(mem, mem ? n : 0, fileno, key.buf, iv.buf, keep_path,
                     &appended, err, sizeof(err));
    saved = errno;
    free(mem);
    Py_END_ALLOW_THREADS
    if (rc == FRAG_OK) {
        out = PyLong_FromSize_t(appended);
    } else if (rc == FRAG_EAES) {
        PyErr_SetString(PyExc_ValueError, err);
    } else {
        errno = saved;
        if (rc == FRAG_EKEEP)
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, keep);
        else
            PyErr_SetFromErrno(PyExc_OSError);
    }
done:
    if (key.obj || key.buf)
        PyBuffer_Release(&key);
    if (iv.obj || iv.buf)
        PyBuffer_Release(&iv);
    Py_XDECREF(keep_bytes);
    return out;
}

static PyObject *Task_get_id(PyObject *op, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(((TaskObject *)op)->task->id);
}

static PyObject *Task_get_url(PyObject *op, void *Py_UNUSED(c))
{
    return Py_NewRef(((TaskObject *)op)->url);
}

static PyObject *Task_get_path(PyObject *op, void *Py_UNUSED(c))
{
    return Py_NewRef(((TaskObject *)op)->path);
}

static PyMethodDef Task_methods[] = {
    {"done", Task_done, METH_NOARGS, "True once the task has finished."},
    {"wait", (PyCFunction)(void (*)(void))Task_wait,
     METH_VARARGS | METH_KEYWORDS,
     "wait(timeout=None) -> bool: block (GIL released) until finished."},
    {"cancel", Task_cancel, METH_NOARGS, "Cancel the task."},
    {"set_priority", Task_set_priority, METH_O,
     "Change the priority of a queued task (lower runs first)."},
    {"info", Task_info, METH_NOARGS, "A snapshot of the task as a dict."},
    {"release", Task_release, METH_O,
     "release(n): let the body of held reply n (info()['hold']) be written."},
    {"take_body", Task_take_body, METH_NOARGS,
     "The body of a finished memory=True task, as bytes (once)."},
    {"take_partial_body", Task_take_partial_body, METH_NOARGS,
     "The bytes a failed memory=True task received, from its range start "
     "(empty for a decoded reply), as bytes (once)."},
    {"append_body", (PyCFunction)(void (*)(void))Task_append_body,
     METH_VARARGS | METH_KEYWORDS,
     "append_body(fileno, key=None, iv=None, keep=None) -> int: write the "
     "body of a finished memory=True task to fileno, in C (once)."},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef Task_getset[] = {
    {"id", Task_get_id, NULL, NULL, NULL},
    {"url", Task_get_url, NULL, NULL, NULL},
    {"path", Task_get_path, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyType_Slot Task_slots[] = {
    {Py_tp_dealloc, Task_dealloc},
    {Py_tp_traverse, Task_traverse},
    {Py_tp_clear, Task_clear},
    {Py_tp_methods, Task_methods},
    {Py_tp_getset, Task_getset},
    {Py_tp_doc, "A download queued in an Engine (made by Engine.submit)."},
    {0, NULL}
};

PyType_Spec Task_spec = {
    .name = "yt_dlp_async._engine.Task",
    .basicsize = sizeof(TaskObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
        | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Task_slots,
};
