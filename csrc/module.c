/*
 * module.c - the Python binding of the engine: yt_dlp_async._engine.
 *
 * The PEP 489 module, its state (the Engine and Task heap types and
 * EngineError) and the module functions; the Engine type is in
 * engineobj.c, the Task type in taskobj.c, the argument converters in
 * convert.c (binding.h says what they share).
 */
#include "binding.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifndef YTDLP_ASYNC_PORTABLE
#include <sys/eventfd.h>
#endif

static PyModuleDef engine_module;

static module_state *get_state(PyObject *module)
{
    void *s = PyModule_GetState(module);
    assert(s != NULL);
    return (module_state *)s;
}

/* Neither type allows subclasses (no Py_TPFLAGS_BASETYPE), so the type of
   an object is the type made from our spec and PyType_GetModule (limited
   API) finds the module as PyType_GetModuleByDef (3.13 there) would. */
module_state *state_of_type(PyTypeObject *tp)
{
    PyObject *m = PyType_GetModule(tp);
    return m ? get_state(m) : NULL;
}

/* ---- module ------------------------------------------------------------------ */

static PyObject *mod_curl_version(PyObject *m, PyObject *Py_UNUSED(ig))
{
    (void)m;
    return PyUnicode_FromString(curl_version());
}

static PyObject *mod_curl_features(PyObject *m, PyObject *Py_UNUSED(ig))
{
    curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    (void)m;
    return Py_BuildValue(
        "{s:s,s:O,s:O,s:O,s:O,s:s}", "version", v->version,
        "http2", (v->features & CURL_VERSION_HTTP2) ? Py_True : Py_False,
        "ssl", (v->features & CURL_VERSION_SSL) ? Py_True : Py_False,
        "async_dns", (v->features & CURL_VERSION_ASYNCHDNS) ? Py_True
                                                            : Py_False,
        "threadsafe",
#ifdef CURL_VERSION_THREADSAFE
        (v->features & CURL_VERSION_THREADSAFE) ? Py_True : Py_False,
#else
        Py_False,
#endif
        "ssl_version", v->ssl_version ? v->ssl_version : "");
}

static PyObject *mod_aes128_cbc_decrypt(PyObject *m, PyObject *args,
                                        PyObject *kw)
{
    static char *kwlist[] = {"data", "key", "iv", "unpad", NULL};
    Py_buffer data, key, iv;
    int unpad = 1, rc;
    size_t outlen = 0;
    unsigned char *buf;
    char err[128];
    PyObject *out = NULL;
    (void)m;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*y*y*|p:aes128_cbc_decrypt",
                                     kwlist, &data, &key, &iv, &unpad))
        return NULL;
    if (key.len != 16 || iv.len != 16) {
        PyErr_Format(PyExc_ValueError, "AES-128 needs a 16-byte key and a "
                     "16-byte IV (got %zd and %zd bytes)", key.len, iv.len);
        goto done;
    }
    buf = malloc(data.len ? (size_t)data.len : 1);
    if (!buf) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = aes128_cbc_decrypt(data.buf, (size_t)data.len, key.buf, iv.buf,
                            unpad, buf, &outlen, err, sizeof(err));
    Py_END_ALLOW_THREADS
    if (rc < 0)
        PyErr_SetString(PyExc_ValueError, err);
    else
        out = PyBytes_FromStringAndSize((const char *)buf,
                                        (Py_ssize_t)outlen);
    free(buf);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&key);
    PyBuffer_Release(&iv);
    return out;
}

static PyObject *mod_body_bytes_to_python(PyObject *m,
                                          PyObject *Py_UNUSED(ig))
{
    return PyLong_FromUnsignedLongLong(get_state(m)->body_bytes_to_python);
}

/* The fd pair a waiter watches (read end) and subscribes (write end):
   one eventfd on Linux, a non-blocking pipe in the portable build. */
static PyObject *mod_wakeup_fds(PyObject *m, PyObject *Py_UNUSED(ig))
{
    (void)m;
#ifndef YTDLP_ASYNC_PORTABLE
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return Py_BuildValue("(ii)", fd, fd);
#else
    int p[2];
    if (pipe(p) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(p[i], F_GETFL);
        if (fl < 0 || fcntl(p[i], F_SETFL, fl | O_NONBLOCK) < 0
            || fcntl(p[i], F_SETFD, FD_CLOEXEC) < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            close(p[0]);
            close(p[1]);
            return NULL;
        }
    }
    return Py_BuildValue("(ii)", p[0], p[1]);
#endif
}

static PyMethodDef module_methods[] = {
    {"body_bytes_to_python", mod_body_bytes_to_python, METH_NOARGS,
     "Body bytes Task.take_body() has turned into bytes objects so far."},
    {"wakeup_fds", mod_wakeup_fds, METH_NOARGS,
     "wakeup_fds() -> (read_fd, write_fd): an eventfd (the same fd twice) "
     "or, in the portable build, a non-blocking pipe."},
    {"aes128_cbc_decrypt", (PyCFunction)(void (*)(void))mod_aes128_cbc_decrypt,
     METH_VARARGS | METH_KEYWORDS,
     "aes128_cbc_decrypt(data, key, iv, unpad=True) -> bytes\n\n"
     "Decrypt an HLS AES-128 segment (padding dropped as yt-dlp does)."},
    {"curl_version", mod_curl_version, METH_NOARGS,
     "libcurl's version string."},
    {"curl_features", mod_curl_features, METH_NOARGS,
     "A dict of the libcurl features the engine relies on."},
    {NULL, NULL, 0, NULL}
};

static int module_exec(PyObject *m)
{
    module_state *st = get_state(m);
    PyObject *features;
    if (eng_global_init() < 0) {
        PyErr_SetString(PyExc_ImportError, "curl_global_init failed");
        return -1;
    }
    st->engine_error = PyErr_NewExceptionWithDoc(
        "yt_dlp_async._engine.EngineError",
        "The engine cannot be used: closed, failed, or inherited by fork().",
        PyExc_RuntimeError, NULL);
    if (!st->engine_error || PyModule_AddObjectRef(m, "EngineError",
                                                   st->engine_error) < 0)
        return -1;
    st->engine_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        m, &Engine_spec, NULL);
    if (!st->engine_type || PyModule_AddType(m, st->engine_type) < 0)
        return -1;
    st->task_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        m, &Task_spec, NULL);
    if (!st->task_type || PyModule_AddType(m, st->task_type) < 0)
        return -1;
    features = Py_BuildValue("(ss)",
#ifdef YTDLP_ASYNC_PORTABLE
                             "portable", "wakeup:pipe"
#else
                             "linux", "wakeup:eventfd"
#endif
                             );
    if (!features)
        return -1;
    if (PyModule_AddObjectRef(m, "BUILD_FEATURES", features) < 0) {
        Py_DECREF(features);
        return -1;
    }
    Py_DECREF(features);
    return 0;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    module_state *st = get_state(m);
    Py_VISIT(st->engine_type);
    Py_VISIT(st->task_type);
    Py_VISIT(st->engine_error);
    return 0;
}

static int module_clear(PyObject *m)
{
    module_state *st = get_state(m);
    Py_CLEAR(st->engine_type);
    Py_CLEAR(st->task_type);
    Py_CLEAR(st->engine_error);
    return 0;
}

static void module_free(void *m)
{
    module_clear((PyObject *)m);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL}
};

static PyModuleDef engine_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "yt_dlp_async._engine",
    .m_doc = "A libcurl multi download engine running on its own thread.",
    .m_size = sizeof(module_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__engine(void)
{
    return PyModuleDef_Init(&engine_module);
}
