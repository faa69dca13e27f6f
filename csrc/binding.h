/*
 * binding.h - what the files of the Python binding share.
 *
 * The binding is cut by role, as pycurl cuts its easy object:
 *   module.c     the PEP 489 module: its state, init, module functions
 *   engineobj.c  the Engine type (Engine.submit and the engine's methods)
 *   taskobj.c    the Task type (wait, info, bodies)
 *   convert.c    Python arguments -> struct task_opts: URL, headers,
 *                cookies, paths, ranges (Engine.submit's parse, validate
 *                and build steps)
 * Only these files include Python.h (tests/test_c_lint.py checks it); the
 * engine files never see a Python object.  Every wait happens with the GIL
 * released, in slices, with PyErr_CheckSignals() between them so that
 * Ctrl-C is seen promptly.
 */
#ifndef YTDLP_ASYNC_BINDING_H
#define YTDLP_ASYNC_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "engine.h"

#define WAIT_SLICE_MS 100

typedef struct {
    PyTypeObject *engine_type;
    PyTypeObject *task_type;
    PyObject *engine_error;
    /* body bytes Task.take_body() turned into Python bytes (a debug count:
       fragment bodies go through Task.append_body() and never count) */
    unsigned long long body_bytes_to_python;
} module_state;

typedef struct {
    PyObject_HEAD
    struct eng *eng;
} EngineObject;

typedef struct {
    PyObject_HEAD
    PyObject *engine;          /* EngineObject: keeps struct eng alive */
    struct task *task;
    PyObject *url;
    PyObject *path;
} TaskObject;

/* module.c: the module state of an object's type (NULL with an exception
   when the module is gone) */
module_state *state_of_type(PyTypeObject *tp);

/* engineobj.c */
extern PyType_Spec Engine_spec;
/* take the engine lock without ever blocking while holding the GIL */
void lock_engine(struct eng *e);
/* 1, or 0 with EngineError set: the engine failed, was forked, or (with
   need_open) is closed */
int engine_usable(EngineObject *self, int need_open);
/* eng_post with the GIL released; -1 with EngineError set */
int post(EngineObject *self, enum cmd_type type, struct task *t,
         double arg);

/* taskobj.c */
extern PyType_Spec Task_spec;
/* the Task object for t, a new reference; on success it owns the
   caller's reference to t, on failure the caller still does */
PyObject *task_create(EngineObject *engine, struct task *t,
                      PyObject *url, PyObject *path);

/* convert.c */
/* a malloc'd copy of str o (NULL for None or absent); *err = 1 with an
   exception set when o is not a str or holds a NUL */
char *dup_optional(PyObject *o, const char *what, int *err);
/* s holds CR or LF */
int has_ctl(const char *s);
/* headers: a sequence of (name, value) str pairs -> curl_slist */
int build_headers(PyObject *seq, struct curl_slist **out);
/* cookies: a sequence of str -> o->cookies, o->ncookies */
int build_cookies(PyObject *seq, struct task_opts *o);
/* scheme must be http or https; *host_key is "host:port" (malloc'd) */
int check_url(const char *url, char **host_key);
/* path (or, when None, fileno) -> o->path and o->truncate, or an open *fd
   (a FIFO, device or dup'd fileno), and o->sequential */
int open_target(PyObject *path, int fileno, int truncate,
                struct task_opts *o, int *fd);

/* Engine.submit's arguments: parsed (the objects are borrowed from the
   call), then validated, then built into a task_opts */
struct submit_args {
    PyObject *url, *path, *headers, *cookies, *if_range, *proxy, *source;
    PyObject *ca, *capath, *cert, *key, *keypw, *state_path;
    int fileno, truncate, priority, verify, connections, memory, hold;
    int adaptive, auth_to_other_hosts, max_retries;
    long long range_start, range_end, offset, expected, max_filesize;
    long long min_piece, max_request, max_memory;
};
/* each 0, or -1 with an exception set */
int submit_parse(PyObject *args, PyObject *kw, struct submit_args *a);
int submit_validate(struct submit_args *a);
/* o (zeroed by the caller) from a, and *fd when the target is open now;
   on failure the caller clears o */
int submit_build(const struct submit_args *a, struct task_opts *o, int *fd);

#endif
