/* winaio._io._fastio, the io_uring ring's part: the wait chain of a thread that leads the ring
 * (``_backends.uring.lead``), the primitives it runs once or twice per pended request. This
 * file: the ring's primitives on BackendRing and ``configure_ring``; the other parts are in
 * ``_fastdefer.c``, ``_fastreap.c``, ``_fastlead.c`` and ``_fastport.c`` (``_fastring.h``).
 *
 * What it replaces (each installed through ``winaio._io._accel``; the Python functions stay the
 * reference and the fallback):
 * - on ``BackendRing`` (``_backends.uring.ring``): ``cq_ready``, ``cq_has_overflow``,
 *   ``sq_ready``, ``reap`` (the CQEs of the mmapped CQ ring as ``(user_data, res, flags)``
 *   tuples, the new head published once), ``publish`` (the SQ tail's release store),
 *   ``enter`` and ``enter_timeout`` (io_uring_enter with the GIL released);
 * - on ``Deferral`` (``_backends.uring.deferral``): ``take_burst`` (publish, record the burst
 *   as the taker's, clear it, update the ports' hint, in one hold of the backend's lock) and
 *   ``hint_locked``;
 * - on ``Reaper`` (``_backends.uring.reaper``): ``reap``'s test of an empty CQ ring (the
 *   leader's first look, every wait), which returns 0 without a Python frame; a ring with
 *   something to reap goes to the Python method.
 *
 * Invariants:
 * - The ring's fields are read and written through their slots (``kind_t``: only for types
 *   whose attribute lookup was checked to give ``Ring``'s member descriptors), the mmapped
 *   words through the memoryviews the ring holds (checked not released, indices checked
 *   against their length). Any other shape (a released view, a non-int field, a dirty SQE
 *   list for ``publish``, an overflow to flush for ``reap``, a non-finite timeout) is handed
 *   to the Python method before anything is touched.
 * - Memory ordering as ``abi`` states it (x86-64 TSO): the CQ tail and SQ head are loaded with
 *   acquire semantics, the CQ head and SQ tail stored with release semantics (GCC atomics:
 *   also compiler barriers).
 * - ``reap`` builds every tuple before it moves the head: a failed allocation consumes nothing.
 * - io_uring_enter runs with the GIL released (like the ctypes call it replaces); EINTR runs
 *   the signal handlers (``PyErr_CheckSignals``, as CPython's own syscalls do), so that a
 *   KeyboardInterrupt raised by one surfaces from the call; otherwise EINTR (and ETIME for a
 *   timeout) returns 0, as in Python. Other errors raise what ``abi.enter_error`` makes.
 * - on ``RingParker`` (``_backends.uring.lead``): ``acquire`` for the ring's owner: the token
 *   test, ``Leadership.enter_or_follow``'s leading case and ``_wait_as_leader``'s loop,
 *   statement for statement (the Python methods stay the reference; see the section below).
 * - ``take_burst`` does its whole work under the backend's lock without calling Python code
 *   (but ``publish`` on a dirty SQ list and the rare pruning of ``Migration.owned``), so no
 *   signal handler can cut it; an allocation failure raises with the lock released, like the
 *   Python method would.
 */
#include "_fastring.h"

/* ------------------------------------------------------------------ configuration state */

static const char *const CQ_NAMES[] = {"_cq_u32",    "_cq_head", "_cq_head_i",  "_cq_tail_i",
                                       "_cq_mask",   "_sq_u32",  "_sq_flags_i", NULL};
static const char *const CQE_NAMES[] = {"_cqes", NULL};
static const char *const SQ_NAMES[] = {"_sq_u32", "_sq_head_i", "_sq_tail_i", "_sq_tail",
                                       "_sq_dirty", "fd", NULL};

kind_t k_cq, k_cqe, k_sq;
int g_ring_ok, g_deferral_ok, g_reaper_ok, g_lead_ok;
PyObject *fr_one, *fr_idle_work;
long c_nr_enter, c_getevents, c_ext_arg, c_needs_flush, c_cq_overflow;
PyObject *g_enter_descr, *g_enter_timeout_descr, *g_sq_ready_descr, *g_publish_descr;

/* The Python references (called for every shape not handled here). */
static PyObject *py_cq_ready, *py_cq_has_overflow, *py_sq_ready, *py_reap, *py_publish,
    *py_enter, *py_enter_timeout;
static PyObject *g_enter_error; /* abi.enter_error(errno) -> the exception */

/* ------------------------------------------------------------------ BackendRing */

/* BackendRing.cq_ready() */
static PyObject *
ring_cq_ready(PyObject *self, PyObject *unused)
{
    cq_t c;
    if (!cq_words(self, &c)) {
        return call1(py_cq_ready, self);
    }
    return PyLong_FromUnsignedLong(cq_count(&c));
}

/* BackendRing.cq_has_overflow() */
static PyObject *
ring_cq_has_overflow(PyObject *self, PyObject *unused)
{
    cq_t c;
    if (!cq_words(self, &c)) {
        return call1(py_cq_has_overflow, self);
    }
    return PyBool_FromLong(__atomic_load_n(c.sq_flags, __ATOMIC_ACQUIRE) & c_cq_overflow);
}

/* BackendRing.sq_ready() */
PyObject *
ring_sq_ready(PyObject *self, PyObject *unused)
{
    sq_t s;
    if (!sq_words(self, &s, 0)) {
        return call1(py_sq_ready, self);
    }
    return PyLong_FromUnsignedLong((s.tail - __atomic_load_n(s.khead, __ATOMIC_ACQUIRE)) & U32);
}

/* BackendRing.reap(max_n=0x7FFFFFFF) */
PyObject *
ring_reap(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long max_n = 0x7FFFFFFF;
    cq_t c;
    Py_ssize_t clen;
    char *cqes;
    if (nargs > 1 || !cq_words(self, &c) ||
        (cqes = mv_buf(slot_borrow(&k_cqe, self, 0), &clen)) == NULL) {
        goto python;
    }
    if (nargs == 1) {
        if (!PyLong_CheckExact(args[0])) {
            goto python;
        }
        int overflow;
        max_n = PyLong_AsLongLongAndOverflow(args[0], &overflow);
        if (overflow || max_n < 0 || (max_n == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            goto python;
        }
    }
    uint32_t n = cq_count(&c);
    if (n == 0) {
        if (__atomic_load_n(c.sq_flags, __ATOMIC_ACQUIRE) & c_needs_flush) {
            goto python; /* the kernel's overflow backlog (or task work) to flush: _flush */
        }
        return PyList_New(0);
    }
    if ((long long)n > max_n) {
        n = (uint32_t)max_n;
    }
    if ((Py_ssize_t)(((Py_ssize_t)c.mask + 1) * 16) > clen) {
        goto python;
    }
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *cqe = cqes + (size_t)((c.head + i) & c.mask) * 16;
        uint64_t ud;
        int32_t res;
        uint32_t flags;
        memcpy(&ud, cqe, 8);
        memcpy(&res, cqe + 8, 4);
        memcpy(&flags, cqe + 12, 4);
        PyObject *t = PyTuple_New(3);
        if (t == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, t);
        PyObject *a = PyLong_FromUnsignedLongLong(ud), *b = PyLong_FromLong(res),
                 *f = PyLong_FromUnsignedLong(flags);
        if (a == NULL || b == NULL || f == NULL) {
            Py_XDECREF(a);
            Py_XDECREF(b);
            Py_XDECREF(f);
            Py_DECREF(list);
            return NULL;
        }
        PyTuple_SET_ITEM(t, 0, a);
        PyTuple_SET_ITEM(t, 1, b);
        PyTuple_SET_ITEM(t, 2, f);
    }
    uint32_t head = (c.head + n) & U32;
    PyObject *head_obj = PyLong_FromUnsignedLong(head);
    if (head_obj == NULL) {
        Py_DECREF(list);
        return NULL;
    }
    set(&k_cq, 1, self, C_HEAD, head_obj);
    __atomic_store_n(c.khead, head, __ATOMIC_RELEASE); /* the slots may be reused from here */
    return list;

python:
    return delegate_n(py_reap, self, args, nargs, NULL);
}

/* BackendRing.publish() */
PyObject *
ring_publish(PyObject *self, PyObject *unused)
{
    sq_t s;
    if (!sq_words(self, &s, 1)) {
        return call1(py_publish, self); /* (dirty SQE tails to clean first: _sq_clean) */
    }
    __atomic_store_n(s.ktail, s.tail, __ATOMIC_RELEASE);
    return PyLong_FromUnsignedLong((s.tail - __atomic_load_n(s.khead, __ATOMIC_ACQUIRE)) & U32);
}

/* struct io_uring_getevents_arg and __kernel_timespec (linux/io_uring.h, linux/time_types.h) */
struct getevents_arg {
    uint64_t sigmask;
    uint32_t sigmask_sz;
    uint32_t pad;
    uint64_t ts;
};
struct kernel_timespec {
    int64_t tv_sec;
    long long tv_nsec;
};

/* io_uring_enter without the GIL: the result, or -1 with an error set; EINTR runs the signal
 * handlers and returns 0 (ETIME too, when ``timed``). */
static long
do_enter(int fd, unsigned to_submit, unsigned wait_nr, unsigned flags, void *arg, size_t argsz,
         int timed)
{
    long ret;
    int err;
    Py_BEGIN_ALLOW_THREADS
    ret = syscall(c_nr_enter, fd, to_submit, wait_nr, flags, arg, argsz);
    err = errno;
    Py_END_ALLOW_THREADS
    if (ret >= 0) {
        return ret;
    }
    if (err == EINTR) {
        return PyErr_CheckSignals() < 0 ? -1 : 0;
    }
    if (timed && err == ETIME) {
        return 0;
    }
    PyObject *e = PyLong_FromLong(err);
    if (e == NULL) {
        return -1;
    }
    PyObject *exc = PyObject_CallOneArg(g_enter_error, e);
    Py_DECREF(e);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return -1;
}

static int
uint_arg(PyObject *o, unsigned *out)
{
    if (!PyLong_CheckExact(o)) {
        return 0;
    }
    int overflow;
    long v = PyLong_AsLongAndOverflow(o, &overflow);
    if (overflow || v < 0 || v > INT_MAX) {
        PyErr_Clear();
        return 0;
    }
    *out = (unsigned)v;
    return 1;
}

/* BackendRing.enter(to_submit, wait_nr) */
PyObject *
ring_enter(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned to_submit, wait_nr;
    long long fd;
    if (nargs != 2 || !g_ring_ok || !kind_fast(&k_sq, Py_TYPE(self)) ||
        !uint_arg(args[0], &to_submit) || !uint_arg(args[1], &wait_nr) ||
        (fd = slot_index(&k_sq, self, S_FD)) < 0 || fd > INT_MAX) {
        return delegate_n(py_enter, self, args, nargs, NULL);
    }
    long ret = do_enter((int)fd, to_submit, wait_nr, wait_nr ? (unsigned)c_getevents : 0, NULL, 0,
                        0);
    return ret < 0 ? NULL : PyLong_FromLong(ret);
}

/* BackendRing.enter_timeout(to_submit, wait_nr, timeout) */
PyObject *
ring_enter_timeout(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned to_submit, wait_nr;
    long long fd;
    double timeout;
    if (nargs != 3 || !g_ring_ok || !kind_fast(&k_sq, Py_TYPE(self)) ||
        !uint_arg(args[0], &to_submit) || !uint_arg(args[1], &wait_nr) ||
        !PyFloat_CheckExact(args[2]) || (fd = slot_index(&k_sq, self, S_FD)) < 0 ||
        fd > INT_MAX) {
        goto python;
    }
    timeout = PyFloat_AS_DOUBLE(args[2]);
    if (!isfinite(timeout) || timeout > 1e9) {
        goto python; /* (NaN: round() raises there; huge: Python's arithmetic) */
    }
    double ns = nearbyint(timeout * 1e9); /* round(): half to even */
    if (ns < 0) {
        ns = 0;
    }
    long long total = (long long)ns;
    struct kernel_timespec ts = {total / 1000000000LL, total % 1000000000LL};
    struct getevents_arg arg = {0, 0, 0, (uint64_t)(uintptr_t)&ts};
    long ret = do_enter((int)fd, to_submit, wait_nr, (unsigned)(c_getevents | c_ext_arg), &arg,
                        sizeof(arg), 1);
    return ret < 0 ? NULL : PyLong_FromLong(ret);

python:
    return delegate_n(py_enter_timeout, self, args, nargs, NULL);
}

/* ------------------------------------------------------------------ configuration */

static PyMethodDef ring_defs[] = {
    {"cq_ready", ring_cq_ready, METH_NOARGS,
     "cq_ready()\n--\n\nCQEs not yet reaped (C accelerator of RingQueue.cq_ready)."},
    {"cq_has_overflow", ring_cq_has_overflow, METH_NOARGS,
     "cq_has_overflow()\n--\n\nCompletions on the kernel's overflow list (C accelerator)."},
    {"sq_ready", ring_sq_ready, METH_NOARGS,
     "sq_ready()\n--\n\nSQEs not consumed by the kernel yet (C accelerator)."},
    {"reap", (PyCFunction)(void (*)(void))ring_reap, METH_FASTCALL,
     "reap(max_n=0x7FFFFFFF)\n--\n\nTake CQEs as (user_data, res, flags) (C accelerator)."},
    {"publish", ring_publish, METH_NOARGS,
     "publish()\n--\n\nPublish the SQ tail; SQEs not consumed (C accelerator)."},
    {"enter", (PyCFunction)(void (*)(void))ring_enter, METH_FASTCALL,
     "enter(to_submit, wait_nr)\n--\n\nio_uring_enter without the GIL (C accelerator)."},
    {"enter_timeout", (PyCFunction)(void (*)(void))ring_enter_timeout, METH_FASTCALL,
     "enter_timeout(to_submit, wait_nr, timeout)\n--\n\nenter with a timeout (C accelerator)."},
    {NULL, NULL, 0, NULL}};

/* {name: method descriptor} for ``defs`` on ``tp`` */
PyObject *
fr_descriptors(PyTypeObject *tp, PyMethodDef *defs)
{
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    for (PyMethodDef *m = defs; m->ml_name != NULL; m++) {
        PyObject *descr = PyDescr_NewMethod(tp, m);
        if (descr == NULL || PyDict_SetItemString(d, m->ml_name, descr) < 0) {
            Py_XDECREF(descr);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(descr);
    }
    return d;
}

/* (every part also configures through this one entry: see configure_lead, configure_port)
 * configure_ring("ring", BackendRing, py_functions_dict, enter_error, consts_tuple)
 * configure_ring("deferral", Deferral, Backlog, Migration, py_functions_dict, _deferring,
 *                IdleWork)
 * configure_ring("reaper", Reaper, py_reap)
 * configure_ring("watch", py_watch_sleep)  (the ring thread's watch: _fastwatch.c)
 * configure_ring("lead", RingParker, Leadership, ThreadState, WaitBlock, py_acquire,
 *                RingBusyError, threading.Lock())  (after the three others)
 * -> {name: method descriptor} */
PyObject *
configure_ring(PyObject *module, PyObject *args)
{
    const char *what;
    if (PyTuple_GET_SIZE(args) < 1 || !PyUnicode_Check(PyTuple_GET_ITEM(args, 0)) ||
        (what = PyUnicode_AsUTF8(PyTuple_GET_ITEM(args, 0))) == NULL) {
        PyErr_SetString(PyExc_TypeError, "configure_ring(what, ...)");
        return NULL;
    }
    if (fr_one == NULL && (fr_one = PyLong_FromLong(1)) == NULL) {
        return NULL;
    }
    if (strcmp(what, "ring") == 0) {
        PyTypeObject *tp;
        PyObject *py, *enter_error;
        if (!PyArg_ParseTuple(args, "sO!O!O(lllll):configure_ring", &what, &PyType_Type, &tp,
                              &PyDict_Type, &py, &enter_error, &c_nr_enter, &c_getevents,
                              &c_ext_arg, &c_needs_flush, &c_cq_overflow)) {
            return NULL;
        }
        if (g_ring_ok) {
            PyErr_SetString(PyExc_RuntimeError, "configured once");
            return NULL;
        }
        struct {
            PyObject **slot;
            const char *name;
        } fns[] = {{&py_cq_ready, "cq_ready"}, {&py_cq_has_overflow, "cq_has_overflow"},
                   {&py_sq_ready, "sq_ready"}, {&py_reap, "reap"}, {&py_publish, "publish"},
                   {&py_enter, "enter"},       {&py_enter_timeout, "enter_timeout"}};
        for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
            PyObject *f = PyDict_GetItemString(py, fns[i].name);
            if (f == NULL) {
                PyErr_Format(PyExc_KeyError, "%s", fns[i].name);
                return NULL;
            }
            ref(fns[i].slot, f);
        }
        ref(&g_enter_error, enter_error);
        if (kind_init(&k_cq, tp, CQ_NAMES) < 0 || kind_init(&k_cqe, tp, CQE_NAMES) < 0 ||
            kind_init(&k_sq, tp, SQ_NAMES) < 0) {
            return NULL;
        }
        PyObject *d = fr_descriptors(tp, ring_defs);
        if (d == NULL) {
            return NULL;
        }
        ref(&g_enter_descr, PyDict_GetItemString(d, "enter"));
        ref(&g_enter_timeout_descr, PyDict_GetItemString(d, "enter_timeout"));
        ref(&g_sq_ready_descr, PyDict_GetItemString(d, "sq_ready"));
        ref(&g_publish_descr, PyDict_GetItemString(d, "publish"));
        g_ring_ok = 1;
        return d;
    }
    if (strcmp(what, "deferral") == 0) {
        return configure_deferral(args);
    }
    if (strcmp(what, "reaper") == 0) {
        return configure_reaper(args);
    }
    if (strcmp(what, "lead") == 0) {
        return configure_lead(args);
    }
    if (strcmp(what, "watch") == 0) {
        return configure_watch(args); /* (_fastwatch.c) */
    }
    if (strcmp(what, "port") == 0) {
        return configure_port(args);
    }
    PyErr_Format(PyExc_ValueError, "configure_ring: unknown part %s", what);
    return NULL;
}

