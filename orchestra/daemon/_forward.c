/* The relay's inner loop in C: wait, read, forward (orchestra/daemon/forward.py).
 *
 * Why C: a keystroke's round trip through `attach` crosses the relay twice, and each
 * crossing ran 15-30 µs of Python (cold, after the pause between two keys) before the
 * bytes moved on. Here the wait, the read and the forward run without the GIL; Python
 * gets the bytes afterwards for its bookkeeping (terminal model, ring, clocks).
 *
 * Semantics (forward.py's `PyForwarder` does the same in Python, and the tests hold
 * both to them): `wait()` waits on an epoll fd. A ready fd without a route is reported
 * as (fd, None, None, None), for its handler to read. A routed fd is read once (`chunk`
 * bytes at most) and reported as (fd, data, tag, sent): data b"" at EOF or on a read
 * error; sent None when the chunk holds one of the route's stop bytes or the route has
 * no destination, else what each destination's single non-blocking write took (bytes
 * written; 0 when full; -1 on an error). A spurious wakeup (EAGAIN) reports nothing.
 *
 * Only the thread that calls `wait()` may change the routes (the relay's thread): the
 * table is read without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_DSTS 16
#define MAX_STOP 16

typedef struct {
    int used;
    int ndst;
    int dst[MAX_DSTS];
    int nstop;
    unsigned char stop[MAX_STOP];
    PyObject *tag;
} Route;

typedef struct {
    int kind; /* READY, DATA, SKIP */
    int fd;
    Py_ssize_t len;
    int ndst; /* -1: not forwarded */
    Py_ssize_t sent[MAX_DSTS];
    PyObject *tag; /* borrowed from the route */
} Event;

enum { READY, DATA, SKIP };

typedef struct {
    PyObject_HEAD
    int epfd;
    Py_ssize_t chunk;
    int maxevents;
    Route *routes; /* indexed by fd */
    Py_ssize_t nroutes; /* fds below it have a slot in `routes` */
    char *buffers; /* maxevents * chunk */
    Event *events;
    struct epoll_event *ready;
} Forwarder;

static int
Forwarder_init(Forwarder *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"epfd", "chunk", "maxevents", NULL};
    int epfd, maxevents = 64;
    Py_ssize_t chunk = 4096;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i|ni", kwlist, &epfd, &chunk, &maxevents))
        return -1;
    if (epfd < 0 || chunk < 1 || maxevents < 1 || maxevents > 1024) {
        PyErr_SetString(PyExc_ValueError, "bad epfd, chunk or maxevents");
        return -1;
    }
    if (self->buffers != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "already initialised");
        return -1;
    }
    self->epfd = epfd;
    self->chunk = chunk;
    self->maxevents = maxevents;
    self->buffers = PyMem_Malloc((size_t)maxevents * (size_t)chunk);
    self->events = PyMem_Calloc((size_t)maxevents, sizeof(Event));
    self->ready = PyMem_Calloc((size_t)maxevents, sizeof(struct epoll_event));
    if (self->buffers == NULL || self->events == NULL || self->ready == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int
Forwarder_traverse(Forwarder *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < self->nroutes; i++)
        Py_VISIT(self->routes[i].tag);
    return 0;
}

static int
Forwarder_clear(Forwarder *self)
{
    for (Py_ssize_t i = 0; i < self->nroutes; i++) {
        self->routes[i].used = 0;
        Py_CLEAR(self->routes[i].tag);
    }
    return 0;
}

static void
Forwarder_dealloc(Forwarder *self)
{
    PyObject_GC_UnTrack(self);
    Forwarder_clear(self);
    PyMem_Free(self->routes);
    PyMem_Free(self->buffers);
    PyMem_Free(self->events);
    PyMem_Free(self->ready);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* An fd number: an int from 0 to INT_MAX, else -1 with ValueError (or TypeError). */
static int
as_fd(PyObject *obj)
{
    int overflow;
    long v = PyLong_AsLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 0 || v > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "an fd is an int from 0 to 2**31 - 1");
        return -1;
    }
    return (int)v;
}

static PyObject *
Forwarder_route(Forwarder *self, PyObject *args)
{
    PyObject *fd_obj, *dsts, *tag;
    Py_buffer stop;
    if (!PyArg_ParseTuple(args, "OO!y*O", &fd_obj, &PyTuple_Type, &dsts, &stop, &tag))
        return NULL;
    Py_ssize_t ndst = PyTuple_GET_SIZE(dsts);
    if (ndst > MAX_DSTS || stop.len > MAX_STOP) {
        PyBuffer_Release(&stop);
        PyErr_Format(PyExc_ValueError, "a route takes at most %d destinations"
                     " and %d stop bytes", MAX_DSTS, MAX_STOP);
        return NULL;
    }
    int fd = as_fd(fd_obj);
    int dst[MAX_DSTS];
    for (Py_ssize_t i = 0; fd >= 0 && i < ndst; i++) {
        dst[i] = as_fd(PyTuple_GET_ITEM(dsts, i));
        if (dst[i] < 0)
            fd = -1;
    }
    if (fd < 0) {
        PyBuffer_Release(&stop);
        return NULL;
    }
    if (fd >= self->nroutes) {
        Py_ssize_t n = (Py_ssize_t)fd + 16; /* fd numbers are dense and small: a table */
        Route *grown = PyMem_Realloc(self->routes, (size_t)n * sizeof(Route));
        if (grown == NULL) {
            PyBuffer_Release(&stop);
            return PyErr_NoMemory();
        }
        memset(grown + self->nroutes, 0, (size_t)(n - self->nroutes) * sizeof(Route));
        self->routes = grown;
        self->nroutes = n;
    }
    Route *r = &self->routes[fd];
    r->used = 1;
    r->ndst = (int)ndst;
    memcpy(r->dst, dst, sizeof(int) * (size_t)ndst);
    r->nstop = (int)stop.len;
    memcpy(r->stop, stop.buf, (size_t)stop.len);
    PyBuffer_Release(&stop);
    Py_INCREF(tag);
    Py_XSETREF(r->tag, tag);
    Py_RETURN_NONE;
}

static PyObject *
Forwarder_unroute(Forwarder *self, PyObject *arg)
{
    int fd = as_fd(arg);
    if (fd < 0)
        return NULL;
    if (fd < self->nroutes) {
        self->routes[fd].used = 0;
        Py_CLEAR(self->routes[fd].tag);
    }
    Py_RETURN_NONE;
}

/* Without the GIL: read a routed fd's chunk into `buf`, forward it if it is clean. */
static void
forward_one(Forwarder *self, const Route *r, Event *ev, char *buf)
{
    ssize_t k = read(ev->fd, buf, (size_t)self->chunk);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        ev->kind = SKIP;
        return;
    }
    ev->kind = DATA;
    ev->len = k < 0 ? 0 : k; /* a read error (EIO: the other side is gone) ends it */
    ev->ndst = -1;
    ev->tag = r->tag;
    if (ev->len == 0 || r->ndst == 0)
        return;
    for (int s = 0; s < r->nstop; s++)
        if (memchr(buf, r->stop[s], (size_t)ev->len) != NULL)
            return;
    ev->ndst = r->ndst;
    for (int d = 0; d < r->ndst; d++) {
        ssize_t w = write(r->dst[d], buf, (size_t)ev->len);
        ev->sent[d] = w >= 0 ? w : (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    }
}

static PyObject *
Forwarder_wait(Forwarder *self, PyObject *args)
{
    int timeout_ms = -1;
    if (!PyArg_ParseTuple(args, "|i", &timeout_ms))
        return NULL;
    if (self->buffers == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "not initialised");
        return NULL;
    }
    int n, err = 0;
    Py_BEGIN_ALLOW_THREADS
    n = epoll_wait(self->epfd, self->ready, self->maxevents, timeout_ms);
    if (n < 0)
        err = errno;
    for (int i = 0; i < n; i++) {
        Event *ev = &self->events[i];
        ev->fd = self->ready[i].data.fd;
        ev->kind = READY;
        if (ev->fd >= 0 && ev->fd < self->nroutes && self->routes[ev->fd].used)
            forward_one(self, &self->routes[ev->fd], ev, self->buffers + (size_t)i * (size_t)self->chunk);
    }
    Py_END_ALLOW_THREADS
    if (n < 0) {
        if (err == EINTR)
            return PyList_New(0);
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        Event *ev = &self->events[i];
        PyObject *item;
        if (ev->kind == SKIP)
            continue;
        if (ev->kind == READY) {
            item = Py_BuildValue("(iOOO)", ev->fd, Py_None, Py_None, Py_None);
        }
        else {
            PyObject *sent;
            if (ev->ndst < 0) {
                sent = Py_NewRef(Py_None);
            }
            else {
                sent = PyTuple_New(ev->ndst);
                for (int d = 0; sent != NULL && d < ev->ndst; d++) {
                    PyObject *v = PyLong_FromSsize_t(ev->sent[d]);
                    if (v == NULL)
                        Py_CLEAR(sent);
                    else
                        PyTuple_SET_ITEM(sent, d, v);
                }
            }
            item = sent == NULL ? NULL
                : Py_BuildValue("(iy#ON)", ev->fd, self->buffers + (size_t)i * (size_t)self->chunk,
                                ev->len, ev->tag, sent);
        }
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(item);
    }
    return out;
}

static PyMethodDef Forwarder_methods[] = {
    {"route", (PyCFunction)Forwarder_route, METH_VARARGS,
     "route(fd, dsts, stop, tag): wait() reads fd itself and forwards clean chunks to dsts."},
    {"unroute", (PyCFunction)Forwarder_unroute, METH_O,
     "unroute(fd): wait() reports fd as ready again, unread."},
    {"wait", (PyCFunction)Forwarder_wait, METH_VARARGS,
     "wait(timeout_ms=-1) -> [(fd, data, tag, sent)]: see the module's docstring."},
    {NULL},
};

static PyTypeObject ForwarderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "orchestra.daemon._forward.Forwarder",
    .tp_doc = "epoll wait, read and forward without the GIL (see forward.py)",
    .tp_basicsize = sizeof(Forwarder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Forwarder_init,
    .tp_dealloc = (destructor)Forwarder_dealloc,
    .tp_traverse = (traverseproc)Forwarder_traverse,
    .tp_clear = (inquiry)Forwarder_clear,
    .tp_methods = Forwarder_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "orchestra.daemon._forward",
    .m_doc = "The relay's inner loop in C (see orchestra/daemon/forward.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__forward(void)
{
    if (PyType_Ready(&ForwarderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Forwarder", (PyObject *)&ForwarderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
