/*
 * engineobj.c - the Engine type of yt_dlp_async._engine: a libcurl multi
 * engine on its own thread.  Engine(**limits), submit() (which makes Task
 * objects, taskobj.c, from arguments convert.c turns into task_opts),
 * close, subscribe, stats and the rate limit.
 */
#include "binding.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers --------------------------------------------------------- */

/* take the engine lock without ever blocking while holding the GIL */
void lock_engine(struct eng *e)
{
    if (pthread_mutex_trylock(&e->mu) != 0) {
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&e->mu);
        Py_END_ALLOW_THREADS
    }
}

int engine_usable(EngineObject *self, int need_open)
{
    module_state *st = state_of_type(Py_TYPE((PyObject *)self));
    if (!st)
        return 0;
    if (self->eng == NULL) {
        PyErr_SetString(st->engine_error, "the engine failed to start");
        return 0;
    }
    if (self->eng->pid != getpid()) {
        PyErr_Format(st->engine_error,
                     "this Engine was created in process %d and cannot be "
                     "used after fork(); create a new Engine in the child",
                     (int)self->eng->pid);
        return 0;
    }
    if (need_open) {
        int closed;
        lock_engine(self->eng);
        closed = self->eng->closed;
        pthread_mutex_unlock(&self->eng->mu);
        if (closed) {
            PyErr_SetString(st->engine_error, "the engine is closed");
            return 0;
        }
    }
    return 1;
}

int post(EngineObject *self, enum cmd_type type, struct task *t,
                double arg)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = eng_post(self->eng, type, t, arg);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        module_state *st = state_of_type(Py_TYPE((PyObject *)self));
        if (st)
            PyErr_SetString(st->engine_error, errno == ESHUTDOWN
                            ? "the engine is closed" : "out of memory");
        return -1;
    }
    return 0;
}

/* ---- Engine ---------------------------------------------------------------- */

static PyObject *Engine_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {
        "max_connections", "max_host_connections", "connect_timeout",
        "stall_timeout", "max_retries", "retry_base_delay",
        "retry_max_delay", "rate_limit", "buffer_size", NULL
    };
    struct eng_config cfg = {64, 16, 20000, 20, 10, 1.0, 30.0, 0, 262144};
    double connect_timeout = 20.0, stall_timeout = 20.0;
    long long rate = 0;
    char err[256];
    EngineObject *self;
    allocfunc alloc;
    module_state *st = state_of_type(type);

    if (!st)
        return NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|iiddiddLl:Engine", kwlist,
                                     &cfg.max_connections,
                                     &cfg.max_host_connections,
                                     &connect_timeout, &stall_timeout,
                                     &cfg.max_retries, &cfg.retry_base,
                                     &cfg.retry_max, &rate,
                                     &cfg.buffer_size))
        return NULL;
    if (cfg.max_connections < 1 || cfg.max_connections > 10000)
        return PyErr_Format(PyExc_ValueError, "max_connections must be "
                            "between 1 and 10000, not %d",
                            cfg.max_connections);
    if (cfg.max_host_connections < 1 || cfg.max_host_connections > 10000)
        return PyErr_Format(PyExc_ValueError, "max_host_connections must "
                            "be between 1 and 10000, not %d",
                            cfg.max_host_connections);
    if (!(connect_timeout > 0 && connect_timeout <= 3600))
        return PyErr_Format(PyExc_ValueError, "connect_timeout must be "
                            "more than 0 and at most 3600 seconds");
    if (!(stall_timeout >= 1 && stall_timeout <= 86400))
        return PyErr_Format(PyExc_ValueError, "stall_timeout must be "
                            "between 1 and 86400 seconds");
    if (cfg.max_retries < 0 || cfg.max_retries > 1000000)
        return PyErr_Format(PyExc_ValueError, "max_retries must be between "
                            "0 and 1000000, not %d", cfg.max_retries);
    if (!(cfg.retry_base >= 0 && cfg.retry_base <= 3600)
        || !(cfg.retry_max >= 0 && cfg.retry_max <= 86400))
        return PyErr_Format(PyExc_ValueError, "retry delays must be "
                            "between 0 and 3600 (base) / 86400 (max) "
                            "seconds");
    if (rate < 0)
        return PyErr_Format(PyExc_ValueError, "rate_limit must be >= 0 "
                            "(0 means unlimited), not %lld", rate);
    if (cfg.buffer_size < 1024 || cfg.buffer_size > 10485760)
        return PyErr_Format(PyExc_ValueError, "buffer_size must be between "
                            "1024 and 10485760 bytes, not %ld",
                            cfg.buffer_size);
    cfg.connect_timeout_ms = (long)(connect_timeout * 1000.0);
    cfg.stall_timeout_s = (long)stall_timeout;
    cfg.rate_limit = (double)rate;

    alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    self = (EngineObject *)alloc(type, 0);
    if (!self)
        return NULL;
    self->eng = eng_new(&cfg, err, sizeof(err));
    if (!self->eng) {
        Py_DECREF(self);
        return PyErr_Format(st->engine_error, "%s", err);
    }
    if (eng_start(self->eng) != 0) {
        eng_free(self->eng);
        self->eng = NULL;
        Py_DECREF(self);
        return PyErr_Format(st->engine_error, "cannot start the engine "
                            "thread");
    }
    return (PyObject *)self;
}

static void Engine_close_impl(EngineObject *self)
{
    if (!self->eng || self->eng->pid != getpid())
        return;
    Py_BEGIN_ALLOW_THREADS
    eng_shutdown_and_join(self->eng);
    Py_END_ALLOW_THREADS
}

static int Engine_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static void Engine_dealloc(PyObject *op)
{
    EngineObject *self = (EngineObject *)op;
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    if (self->eng) {
        Engine_close_impl(self);
        eng_free(self->eng);
        self->eng = NULL;
    }
    ((freefunc)PyType_GetSlot(tp, Py_tp_free))(op);
    Py_DECREF(tp);
}

static PyObject *Engine_close(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    EngineObject *self = (EngineObject *)op;
    if (self->eng && self->eng->pid != getpid()) {
        engine_usable(self, 0);
        return NULL;
    }
    Engine_close_impl(self);
    Py_RETURN_NONE;
}

/* (held, peak): bytes of memory=True bodies the engine holds now and the
   most it held at once; readable after close() */
static PyObject *Engine_body_memory(PyObject *op, PyObject *Py_UNUSED(ig))
{
    EngineObject *self = (EngineObject *)op;
    long long held = 0, peak = 0;
    if (self->eng) {
        held = __atomic_load_n(&self->eng->body_mem, __ATOMIC_RELAXED);
        peak = __atomic_load_n(&self->eng->body_mem_peak, __ATOMIC_RELAXED);
    }
    return Py_BuildValue("(LL)", held, peak);
}

/* fd: an eventfd or a non-blocking pipe that the engine writes to each
   time a task finishes (one per waiter, e.g. per asyncio loop). */
static PyObject *Engine_subscribe(PyObject *op, PyObject *arg)
{
    EngineObject *self = (EngineObject *)op;
    long lfd = PyLong_AsLong(arg);
    int fd, rc, err = 0;
    if (lfd == -1 && PyErr_Occurred())
        return NULL;
    if (lfd < 0 || lfd > INT_MAX)
        return PyErr_Format(PyExc_ValueError, "invalid fd %ld", lfd);
    fd = (int)lfd;
    if (!engine_usable(self, 0))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = eng_subscribe(self->eng, fd);
    if (rc < 0)
        err = errno;
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        module_state *st = state_of_type(Py_TYPE((PyObject *)self));
        if (err == ENOMEM)
            return PyErr_NoMemory();
        if (st)
            PyErr_SetString(st->engine_error, "the engine is closed");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* A copy of the engine's counters (struct eng_stats), taken under its
   lock; they survive close(). */
static PyObject *Engine_stats(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    EngineObject *self = (EngineObject *)op;
    struct eng_stats s;
    if (!engine_usable(self, 0))
        return NULL;
    lock_engine(self->eng);
    s = self->eng->stats;
    pthread_mutex_unlock(&self->eng->mu);
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:d}",
        "files", (unsigned long long)s.files,
        "failures", (unsigned long long)s.failures,
        "bytes", (unsigned long long)s.bytes,
        "retries", (unsigned long long)s.retries,
        "connections", (unsigned long long)s.connections,
        "seconds", s.last_end > s.first_start && s.first_start > 0
            ? s.last_end - s.first_start : 0.0);
}

static PyObject *Engine_unsubscribe(PyObject *op, PyObject *arg)
{
    EngineObject *self = (EngineObject *)op;
    long lfd = PyLong_AsLong(arg);
    if (lfd == -1 && PyErr_Occurred())
        return NULL;
    if (lfd < 0 || lfd > INT_MAX)
        return PyErr_Format(PyExc_ValueError, "invalid fd %ld", lfd);
    if (!self->eng || self->eng->pid != getpid())
        Py_RETURN_NONE;
    Py_BEGIN_ALLOW_THREADS
    eng_unsubscribe(self->eng, (int)lfd);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *Engine_set_rate_limit(PyObject *op, PyObject *arg)
{
    EngineObject *self = (EngineObject *)op;
    long long rate = PyLong_AsLongLong(arg);
    if (rate == -1 && PyErr_Occurred())
        return NULL;
    if (rate < 0)
        return PyErr_Format(PyExc_ValueError, "rate_limit must be >= 0 "
                            "(0 means unlimited), not %lld", rate);
    if (!engine_usable(self, 1) || post(self, CMD_RATE, NULL,
                                        (double)rate) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Engine_get_closed(PyObject *op, void *Py_UNUSED(c))
{
    EngineObject *self = (EngineObject *)op;
    int closed = 1;
    if (self->eng) {
        lock_engine(self->eng);
        closed = self->eng->closed;
        pthread_mutex_unlock(&self->eng->mu);
    }
    return PyBool_FromLong(closed);
}

/* t (made from the submit arguments) gets its id and, for several
   connections, its control file read; then its Task object, and the
   engine is told.  Takes over the reference to t. */
static PyObject *submit_task(EngineObject *self, struct task *t,
                             PyObject *url, PyObject *path)
{
    char err_text[256];
    PyObject *result;
    t->eng = self->eng;
    /* a pipe is written in order: one connection.  seg_init reads the
       control file: file I/O, so without the GIL */
    if (t->o.connections > 1 && !t->o.sequential) {
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = seg_init(t, err_text, sizeof(err_text));
        Py_END_ALLOW_THREADS
        if (rc < 0) {
            task_decref(t);
            return PyErr_Format(PyExc_MemoryError, "%s", err_text);
        }
    }
    lock_engine(self->eng);
    t->id = ++self->eng->next_id;
    t->seq = ++self->eng->next_seq;
    pthread_mutex_unlock(&self->eng->mu);

    result = task_create(self, t, url, path);
    if (!result) {
        task_decref(t);
        return NULL;
    }
    if (post(self, CMD_SUBMIT, t, 0) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

/* submit(url, path=None, *, ...): parse, validate, build (convert.c),
   then the task */
static PyObject *Engine_submit(PyObject *op, PyObject *args, PyObject *kw)
{
    EngineObject *self = (EngineObject *)op;
    struct submit_args a;
    struct task_opts o;
    struct task *t;
    int fd = -1;

    memset(&o, 0, sizeof(o));
    if (!engine_usable(self, 1))
        return NULL;
    if (submit_parse(args, kw, &a) < 0 || submit_validate(&a) < 0)
        return NULL;
    if (submit_build(&a, &o, &fd) < 0)
        goto fail;
    t = task_new(&o, fd);
    if (!t) {
        if (fd >= 0)
            close(fd);
        PyErr_NoMemory();
        goto fail;
    }
    return submit_task(self, t, a.url, a.path);
fail:
    task_opts_clear(&o);
    return NULL;
}

static PyObject *Engine_enter(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(op);
}

static PyObject *Engine_exit(PyObject *op, PyObject *Py_UNUSED(args))
{
    PyObject *r = Engine_close(op, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyMethodDef Engine_methods[] = {
    {"submit", (PyCFunction)(void (*)(void))Engine_submit,
     METH_VARARGS | METH_KEYWORDS,
     "submit(url, path=None, *, ...) -> Task\n\nQueue a download."},
    {"body_memory", Engine_body_memory, METH_NOARGS,
     "(held, peak) bytes of memory=True bodies, now and at most."},
    {"close", Engine_close, METH_NOARGS,
     "Cancel live transfers and join the engine thread."},
    {"subscribe", Engine_subscribe, METH_O,
     "subscribe(fd): write 8 bytes to fd (an eventfd or a non-blocking "
     "pipe) whenever a task finishes."},
    {"unsubscribe", Engine_unsubscribe, METH_O,
     "unsubscribe(fd): stop writing to fd; it may be closed afterwards."},
    {"stats", Engine_stats, METH_NOARGS,
     "A dict of the engine's counters: files, failures, bytes, retries, "
     "connections, seconds."},
    {"set_rate_limit", Engine_set_rate_limit, METH_O,
     "Cap the sum of all transfers at this many bytes/s (0: no cap)."},
    {"__enter__", Engine_enter, METH_NOARGS, NULL},
    {"__exit__", Engine_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}
};

static PyGetSetDef Engine_getset[] = {
    {"closed", Engine_get_closed, NULL, "True once close() was called.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}
};

static PyType_Slot Engine_slots[] = {
    {Py_tp_new, Engine_new},
    {Py_tp_dealloc, Engine_dealloc},
    {Py_tp_traverse, Engine_traverse},
    {Py_tp_methods, Engine_methods},
    {Py_tp_getset, Engine_getset},
    {Py_tp_doc, "Engine(**limits): a libcurl multi engine on its own "
                "thread."},
    {0, NULL}
};

PyType_Spec Engine_spec = {
    .name = "yt_dlp_async._engine.Engine",
    .basicsize = sizeof(EngineObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC
        | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Engine_slots,
};
