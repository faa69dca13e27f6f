/*
 * convert.c - Python arguments to struct task_opts, for Engine.submit:
 * the URL (http or https, its host key), request headers and cookie lines
 * (no CR, LF or NUL), optional strings, and the target (a path checked now
 * and opened when the transfer starts, or a FIFO, device or fd opened now).
 */
#include "binding.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* seq as a new tuple, or TypeError(msg) when it is not iterable: what
   PySequence_Fast does, whose GET_ macros are outside the limited API */
static PyObject *as_tuple(PyObject *seq, const char *msg)
{
    PyObject *it = PyObject_GetIter(seq), *t;
    if (!it) {
        if (PyErr_ExceptionMatches(PyExc_TypeError))
            PyErr_SetString(PyExc_TypeError, msg);
        return NULL;
    }
    t = PySequence_Tuple(it);
    Py_DECREF(it);
    return t;
}

char *dup_optional(PyObject *o, const char *what, int *err)
{
    const char *s;
    Py_ssize_t n;
    char *r;
    if (o == NULL || o == Py_None)
        return NULL;
    s = PyUnicode_AsUTF8AndSize(o, &n);
    if (!s) {
        PyErr_Format(PyExc_TypeError, "%s must be a str", what);
        *err = 1;
        return NULL;
    }
    if ((Py_ssize_t)strlen(s) != n) {
        PyErr_Format(PyExc_ValueError, "%s contains a NUL character", what);
        *err = 1;
        return NULL;
    }
    r = strdup(s);
    if (!r) {
        PyErr_NoMemory();
        *err = 1;
    }
    return r;
}

int has_ctl(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 1;
    return 0;
}

/* A header value's bytes: ISO-8859-1 when every character fits, as
   http.client (yt-dlp's handlers) encodes them; else UTF-8.  A new
   reference to a bytes object, or NULL with an exception set. */
static PyObject *header_value_bytes(PyObject *value)
{
    PyObject *b;
    if (!PyUnicode_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "header values must be str");
        return NULL;
    }
    b = PyUnicode_AsLatin1String(value);
    if (b || !PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
        return b;
    PyErr_Clear();
    return PyUnicode_AsUTF8String(value);
}

/* headers: a sequence of (name, value) str pairs -> curl_slist */
int build_headers(PyObject *seq, struct curl_slist **out)
{
    PyObject *fast, *vbytes = NULL;
    Py_ssize_t i, n;
    *out = NULL;
    if (seq == NULL || seq == Py_None)
        return 0;
    fast = as_tuple(seq, "headers must be a sequence of (name, value) pairs");
    if (!fast)
        return -1;
    n = PyTuple_Size(fast);
    for (i = 0; i < n; i++) {
        PyObject *item = PyTuple_GetItem(fast, i);
        const char *name, *value;
        char *vbuf;
        Py_ssize_t nl, vl;
        char *line;
        struct curl_slist *l;
        if (!PyTuple_Check(item) || PyTuple_Size(item) != 2) {
            PyErr_SetString(PyExc_TypeError,
                            "headers must be (name, value) pairs");
            goto fail;
        }
        name = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(item, 0), &nl);
        if (!name)
            goto fail;
        Py_XDECREF(vbytes);
        vbytes = header_value_bytes(PyTuple_GetItem(item, 1));
        if (!vbytes)
            goto fail;
        if (PyBytes_AsStringAndSize(vbytes, &vbuf, &vl) < 0)
            goto fail;
        value = vbuf;
        if (nl == 0 || has_ctl(name) || has_ctl(value)
            || strchr(name, ':') || strchr(name, ' ')
            || (Py_ssize_t)strlen(name) != nl
            || (Py_ssize_t)strlen(value) != vl) {
            PyErr_Format(PyExc_ValueError,
                         "invalid HTTP header %R: names must be non-empty "
                         "tokens and neither names nor values may contain "
                         "CR, LF or NUL", item);
            goto fail;
        }
        line = malloc((size_t)nl + (size_t)vl + 3);
        if (!line) {
            PyErr_NoMemory();
            goto fail;
        }
        /* "Name:" alone tells curl to send no such header; an empty
           value is sent with "Name;" */
        if (vl == 0)
            sprintf(line, "%s;", name);
        else
            sprintf(line, "%s: %s", name, value);
        l = curl_slist_append(*out, line);
        free(line);
        if (!l) {
            PyErr_NoMemory();
            goto fail;
        }
        *out = l;
    }
    Py_XDECREF(vbytes);
    Py_DECREF(fast);
    return 0;
fail:
    Py_XDECREF(vbytes);
    Py_DECREF(fast);
    curl_slist_free_all(*out);
    *out = NULL;
    return -1;
}

int build_cookies(PyObject *seq, struct task_opts *o)
{
    PyObject *fast;
    Py_ssize_t i, n;
    if (seq == NULL || seq == Py_None)
        return 0;
    fast = as_tuple(seq, "cookies must be a sequence of str");
    if (!fast)
        return -1;
    n = PyTuple_Size(fast);
    o->cookies = calloc(n ? (size_t)n : 1, sizeof(char *));
    if (!o->cookies) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < n; i++) {
        int err = 0;
        char *s = dup_optional(PyTuple_GetItem(fast, i), "a cookie",
                               &err);
        if (err) {
            Py_DECREF(fast);
            return -1;
        }
        if (s && has_ctl(s)) {
            free(s);
            Py_DECREF(fast);
            PyErr_SetString(PyExc_ValueError,
                            "a cookie line contains CR or LF");
            return -1;
        }
        if (s)
            o->cookies[o->ncookies++] = s;
    }
    Py_DECREF(fast);
    return 0;
}

/* scheme must be http or https; host_key is "host:port" */
int check_url(const char *url, char **host_key)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (!u) {
        PyErr_NoMemory();
        return -1;
    }
    if (has_ctl(url) || strchr(url, ' ')) {
        PyErr_Format(PyExc_ValueError, "invalid URL %s: it contains "
                     "whitespace or control characters", url);
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        PyErr_Format(PyExc_ValueError, "invalid URL %s: expected "
                     "http://host/... or https://host/...", url);
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        PyErr_Format(PyExc_ValueError, "unsupported URL scheme '%s' in %s: "
                     "only http and https are downloaded", scheme, url);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        PyErr_Format(PyExc_ValueError, "invalid URL %s: it has no host",
                     url);
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    *host_key = malloc(strlen(host) + (port ? strlen(port) : 0) + 2);
    if (!*host_key) {
        PyErr_NoMemory();
        goto out;
    }
    sprintf(*host_key, "%s:%s", host, port ? port : "");
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* OSError(errno, message, filename) */
static void set_os_error(int err, const char *msg, PyObject *path)
{
    PyObject *exc = PyObject_CallFunction(PyExc_OSError, "isO", err, msg,
                                          path);
    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
}

/* A FIFO or a device is opened now, without blocking: a FIFO that no
   process reads fails with ENXIO at once.  The descriptor is made
   blocking again for the writes. */
static int open_special(const char *p, PyObject *path, int truncate,
                        int *fd)
{
    int flags = O_WRONLY | O_CLOEXEC | O_NONBLOCK | (truncate ? O_TRUNC : 0);
    int fl, err = 0;
    Py_BEGIN_ALLOW_THREADS
    *fd = open(p, flags);
    if (*fd < 0) {
        err = errno;
    } else if ((fl = fcntl(*fd, F_GETFL)) < 0
               || fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        err = errno;
        close(*fd);
        *fd = -1;
    }
    Py_END_ALLOW_THREADS
    if (*fd >= 0)
        return 0;
    if (err == ENXIO)
        set_os_error(ENXIO, "cannot write to a FIFO that no process has "
                     "open for reading (no process has it open for reading)",
                     path);
    else {
        errno = err;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
    }
    return -1;
}

/* A file path is checked now (directory, permission) but opened only when
   its transfer starts, so queued tasks hold no descriptor. */
static int check_path(PyObject *path, int truncate, struct task_opts *o,
                      int *fd)
{
    PyObject *bytes = NULL;
    struct stat sb;
    const char *p;
    char *dir = NULL;
    int rc, err = 0;

    if (!PyUnicode_FSConverter(path, &bytes))
        return -1;
    p = PyBytes_AsString(bytes);
    Py_BEGIN_ALLOW_THREADS
    rc = stat(p, &sb);
    if (rc < 0)
        err = errno;
    Py_END_ALLOW_THREADS
    if (rc == 0 && S_ISDIR(sb.st_mode)) {
        errno = EISDIR;
        goto os_error;
    }
    if (rc == 0 && !S_ISREG(sb.st_mode)) {
        rc = open_special(p, path, truncate, fd);
        Py_DECREF(bytes);
        return rc;
    }
    if (rc < 0 && err != ENOENT) {
        errno = err;
        goto os_error;
    }
    if (rc < 0) {
        /* a new file: the directory must let us create it */
        const char *slash = strrchr(p, '/');
        dir = slash == p ? strdup("/")
            : slash ? strndup(p, (size_t)(slash - p)) : strdup(".");
        if (!dir) {
            PyErr_NoMemory();
            goto fail;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    rc = access(dir ? dir : p, dir ? W_OK | X_OK : W_OK);
    err = errno;
    Py_END_ALLOW_THREADS
    free(dir);
    if (rc < 0) {
        errno = err;
        goto os_error;
    }
    o->path = strdup(p);
    if (!o->path) {
        PyErr_NoMemory();
        goto fail;
    }
    o->truncate = truncate;
    *fd = -1;
    Py_DECREF(bytes);
    return 0;
os_error:
    PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
fail:
    Py_DECREF(bytes);
    return -1;
}

int open_target(PyObject *path, int fileno, int truncate,
                       struct task_opts *o, int *fd)
{
    struct stat sb;
    if (path != Py_None) {
        if (check_path(path, truncate, o, fd) < 0)
            return -1;
        if (*fd < 0)
            return 0;             /* opened when the transfer starts */
    } else {
        if (fileno < 0) {
            PyErr_SetString(PyExc_ValueError,
                            "give a path or a fileno to write to");
            return -1;
        }
        *fd = fcntl(fileno, F_DUPFD_CLOEXEC, 3);
        if (*fd < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    if (fstat(*fd, &sb) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        close(*fd);
        *fd = -1;
        return -1;
    }
    if (S_ISDIR(sb.st_mode)) {
        close(*fd);
        *fd = -1;
        errno = EISDIR;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        return -1;
    }
    o->sequential = !S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode);
    return 0;
}

/* ---- Engine.submit: parse, validate, build ------------------------------- */

int submit_parse(PyObject *args, PyObject *kw, struct submit_args *a)
{
    static char *kwlist[] = {
        "url", "path", "fileno", "headers", "range_start", "range_end",
        "offset", "expected_size", "truncate", "if_range", "priority",
        "cookies", "proxy", "source_address", "verify", "ca_file",
        "ca_path", "client_cert", "client_key", "client_key_password",
        "max_filesize", "max_retries", "connections", "min_piece",
        "max_request", "state_path", "memory", "max_memory",
        "hold_new_validator", "auth_to_other_hosts", NULL
    };
    *a = (struct submit_args){
        .path = Py_None, .headers = Py_None, .cookies = Py_None,
        .if_range = Py_None, .proxy = Py_None, .source = Py_None,
        .ca = Py_None, .capath = Py_None, .cert = Py_None, .key = Py_None,
        .keypw = Py_None, .state_path = Py_None,
        .fileno = -1, .verify = 1, .connections = 1, .max_retries = -1,
        .min_piece = 1048576, .max_memory = 64LL << 20,
        .range_end = -1, .offset = -1, .expected = -1, .max_filesize = -1,
    };
    if (!PyArg_ParseTupleAndKeywords(
            args, kw, "U|O$iOLLLLpOiOOOpOOOOOLiiLLOpLpp:submit", kwlist,
            &a->url, &a->path, &a->fileno, &a->headers, &a->range_start,
            &a->range_end, &a->offset, &a->expected, &a->truncate,
            &a->if_range, &a->priority, &a->cookies, &a->proxy, &a->source,
            &a->verify, &a->ca, &a->capath, &a->cert, &a->key, &a->keypw,
            &a->max_filesize, &a->max_retries, &a->connections,
            &a->min_piece, &a->max_request, &a->state_path, &a->memory,
            &a->max_memory, &a->hold, &a->auth_to_other_hosts))
        return -1;
    return 0;
}

/* ValueError(fmt % ...); -1 */
static int bad_value(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PyErr_FormatV(PyExc_ValueError, fmt, ap);
    va_end(ap);
    return -1;
}

/* The ranges and numbers, and which combinations make sense; fills in the
   defaults that depend on others (offset, connections=0, memory). */
int submit_validate(struct submit_args *a)
{
    if (a->range_start < 0)
        return bad_value("range start must be >= 0, not %lld",
                         a->range_start);
    if (a->range_end != -1 && a->range_end <= a->range_start)
        return bad_value("range end (%lld) must be greater than range "
                         "start (%lld)", a->range_end, a->range_start);
    if (a->offset == -1)
        a->offset = a->range_start;
    if (a->offset < 0)
        return bad_value("offset must be >= 0, not %lld", a->offset);
    if (a->expected < -1 || a->max_filesize < -1 || a->max_retries < -1)
        return bad_value("expected_size, max_filesize and max_retries "
                         "must be >= 0");
    if (a->max_retries > 1000000)
        return bad_value("max_retries must be at most 1000000, not %d",
                         a->max_retries);
    if (a->connections < 0 || a->connections > SEG_MAX_CONNECTIONS)
        return bad_value("connections must be between 1 and %d, or 0 "
                         "(auto), not %d", SEG_MAX_CONNECTIONS,
                         a->connections);
    if (a->connections == 0) {
        /* auto: up to ADAPTIVE_MAX for a whole file (or its tail) written
           to a path or fd; anything else is one connection */
        a->adaptive = !a->memory && !a->hold && a->range_end == -1;
        a->connections = a->adaptive ? ADAPTIVE_MAX : 1;
    }
    if (a->min_piece < 16384 || a->max_request < 0)
        return bad_value("min_piece must be at least 16384 bytes and "
                         "max_request 0 (no cap) or more");
    if (a->memory && (a->path != Py_None || a->fileno != -1
                      || a->connections != 1 || a->max_memory < 1))
        return bad_value("memory=True keeps the body in memory: give no "
                         "path, no fileno, one connection and max_memory "
                         ">= 1");
    if (a->memory)
        a->offset = 0;
    if (a->hold && (a->memory || a->connections != 1 || a->fileno != -1))
        return bad_value("hold_new_validator is for one connection "
                         "writing a path");
    if (a->connections > 1 && a->range_end != -1)
        return bad_value("several connections are for a whole resource "
                         "or its tail: give range=(start, None) or "
                         "connections=1");
    return 0;
}

/* the str options: each copied, none with a NUL; if_range and proxy
   without CR or LF either */
static int build_strings(const struct submit_args *a, struct task_opts *o)
{
    int err = 0;
    o->if_range = dup_optional(a->if_range, "if_range", &err);
    o->proxy = err ? NULL : dup_optional(a->proxy, "proxy", &err);
    o->source_address = err ? NULL : dup_optional(a->source,
                                                  "source_address", &err);
    o->ca_file = err ? NULL : dup_optional(a->ca, "ca_file", &err);
    o->ca_path = err ? NULL : dup_optional(a->capath, "ca_path", &err);
    o->client_cert = err ? NULL : dup_optional(a->cert, "client_cert",
                                               &err);
    o->client_key = err ? NULL : dup_optional(a->key, "client_key", &err);
    o->key_password = err ? NULL : dup_optional(a->keypw,
                                                "client_key_password", &err);
    if (err)
        return -1;
    if ((o->if_range && has_ctl(o->if_range))
        || (o->proxy && has_ctl(o->proxy))) {
        PyErr_SetString(PyExc_ValueError, "if_range and proxy may not "
                        "contain CR or LF");
        return -1;
    }
    return 0;
}

static int build_state_path(PyObject *state_path, struct task_opts *o)
{
    PyObject *b = NULL;
    if (state_path == Py_None)
        return 0;
    if (!PyUnicode_FSConverter(state_path, &b))
        return -1;
    o->state_path = strdup(PyBytes_AsString(b));
    Py_DECREF(b);
    if (!o->state_path) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

int submit_build(const struct submit_args *a, struct task_opts *o, int *fd)
{
    int err = 0;
    o->url = dup_optional(a->url, "url", &err);
    if (err)
        return -1;
    if (check_url(o->url, &o->host_key) < 0)
        return -1;
    if (build_headers(a->headers, &o->headers) < 0
        || build_cookies(a->cookies, o) < 0)
        return -1;
    if (build_strings(a, o) < 0)
        return -1;
    o->verify = a->verify;
    o->auth_to_other_hosts = a->auth_to_other_hosts;
    o->range_start = a->range_start;
    o->range_end = a->range_end;
    o->file_offset = a->offset;
    o->expected_size = a->expected;
    o->max_filesize = a->max_filesize;
    o->max_retries = a->max_retries;
    o->priority = a->priority;
    o->connections = a->connections;
    o->adaptive = a->adaptive;
    o->min_piece = a->min_piece;
    o->max_request = a->max_request;
    if (build_state_path(a->state_path, o) < 0)
        return -1;
    o->to_memory = a->memory;
    o->max_memory = a->max_memory;
    o->hold_new_validator = a->hold;
    if (!a->memory && open_target(a->path, a->fileno, a->truncate, o, fd) < 0)
        return -1;
    return 0;
}
