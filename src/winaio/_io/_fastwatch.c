/* winaio._io._fastio, the ring thread's watch without the GIL (``_backends.uring.ringthread``
 * ``watch_sleep``, the Python reference and fallback): configured by
 * ``configure_ring("watch", py_watch_sleep)`` (``_fastring.c``), which returns the C function.
 *
 * Why: while a busy thread owns the ring (``lead``), the ring thread wakes every watch tick
 * (16 ms) to see whether the owner went away leaving CQEs behind. In Python each tick took the
 * GIL from the busy owner three times (after the poll, the eventfd read, ...): a forced GIL
 * hand-off, a futex wake and a preemption of the owner each time (``sock_threads.py``: the port
 * thread's wake-ups were its GIL hand-offs to the ring thread). Here the ticks whose answer is
 * "the owner keeps the CQ ring moving" are looked at with the GIL released: the CQ ring's tail
 * and head are mmapped words, read without any Python object.
 *
 * watch_sleep(efd, ring, first, tick, ticks, seen) -> (woken, seen): poll ``efd`` for ``first``
 * seconds, then for up to ``ticks`` more ticks of ``tick`` seconds. Before each further tick
 * the CQ ring is looked at as ``Leadership.watch`` does for an owner that is away: empty
 * (``seen`` = -1), CQEs with a head not seen at the previous tick (``seen`` = head), or CQEs
 * with the head unmoved over a whole tick: returned at once, so that the Python watch takes
 * over now (its ``_stale_head`` is set to ``seen`` by the caller). Returns at the eventfd
 * (woken: True) or when the ticks are used up; ``seen`` is what the last look saw (one tick
 * before the return), ``seen`` as given when no tick was looked at.
 *
 * Invariants:
 * - The GIL is released once, for the whole sleep; nothing Python is touched without it: the
 *   CQ words' addresses are taken under the GIL (``cq_words``: the ring's live memoryviews),
 *   and the ring is not closed while its ring thread runs (``IoUringBackend.close`` joins the
 *   thread first; the caller holds ``ring``).
 * - Any shape the C function does not take (an argument that is not the exact type, a negative
 *   or non-finite time, a ring whose views are released) goes to the Python function, which
 *   raises the typed error or does the same work.
 * - poll's EINTR returns woken (a round in Python; the signal handlers run first, as CPython's
 *   own syscalls do, and an exception they raise is raised from here); POLLNVAL on a closed
 *   descriptor is woken too, never a hang.
 */
#include "_fastring.h"
#include <poll.h>

static PyObject *py_watch_sleep; /* the Python reference (every other shape) */

/* A finite non-negative float or int argument, in seconds; 0 when not one (-> Python). */
static int
seconds_arg(PyObject *o, double *out)
{
    double v;
    if (PyFloat_CheckExact(o)) {
        v = PyFloat_AS_DOUBLE(o);
    }
    else if (PyLong_CheckExact(o)) {
        v = PyLong_AsDouble(o);
        if (v == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
    }
    else {
        return 0;
    }
    if (!isfinite(v) || v < 0 || v > 86400.0) {
        return 0;
    }
    *out = v;
    return 1;
}

/* An exact int in [lo, hi]; 0 when not one (-> Python). */
static int
int_arg(PyObject *o, long long lo, long long hi, long long *out)
{
    if (!PyLong_CheckExact(o)) {
        return 0;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || v < lo || v > hi) {
        if (v == -1 && PyErr_Occurred()) {
            PyErr_Clear();
        }
        return 0;
    }
    *out = v;
    return 1;
}

/* poll's timeout: milliseconds rounded up (as CPython's select.poll), at least 0. */
static int
to_ms(double seconds)
{
    double ms = ceil(seconds * 1000.0);
    return ms > (double)INT_MAX ? INT_MAX : (int)ms;
}

static PyObject *
watch_sleep(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long long efd, ticks, seen;
    double first, tick;
    cq_t c;
    if (nargs != 6 || !int_arg(args[0], 0, INT_MAX, &efd) || !seconds_arg(args[2], &first) ||
        !seconds_arg(args[3], &tick) || !int_arg(args[4], 0, INT_MAX, &ticks) ||
        !int_arg(args[5], -1, U32, &seen) || !cq_words(args[1], &c)) {
        if (py_watch_sleep == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "watch_sleep: not configured");
            return NULL;
        }
        return PyObject_Vectorcall(py_watch_sleep, args, nargs, NULL);
    }
    int woken = 0, interrupted = 0;
    int ms = to_ms(first);
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        struct pollfd p = {(int)efd, POLLIN, 0};
        int r = poll(&p, 1, ms);
        if (r != 0) {
            woken = 1; /* readable, POLLNVAL/POLLERR, or a signal (r < 0, EINTR) */
            interrupted = r < 0 && errno == EINTR;
            break;
        }
        if (ticks-- <= 0) {
            break; /* the Python watch looks at this tick itself */
        }
        uint32_t tail = __atomic_load_n(c.tail, __ATOMIC_ACQUIRE);
        uint32_t head = __atomic_load_n(c.khead, __ATOMIC_ACQUIRE);
        if (tail == head) {
            seen = -1; /* nothing waits: the owner keeps up (or nothing came) */
        }
        else if (seen == (long long)head) {
            break; /* CQEs waited a whole tick, head unmoved: the Python watch takes over */
        }
        else {
            seen = head; /* first sight of waiting CQEs: give the owner a tick */
        }
        ms = to_ms(tick);
    }
    Py_END_ALLOW_THREADS
    if (interrupted && PyErr_CheckSignals() < 0) {
        return NULL;
    }
    return Py_BuildValue("(NL)", PyBool_FromLong(woken), seen);
}

static PyMethodDef watch_sleep_def = {
    "watch_sleep", (PyCFunction)(void (*)(void))watch_sleep, METH_FASTCALL,
    "watch_sleep(efd, ring, first, tick, ticks, seen) -> (woken, seen): the ring thread's\n"
    "watch ticks with the GIL released (_fastwatch.c; ringthread.watch_sleep)"};

/* configure_ring("watch", py_watch_sleep) -> {"watch_sleep": C function} */
PyObject *
configure_watch(PyObject *args)
{
    const char *what;
    PyObject *py;
    if (!PyArg_ParseTuple(args, "sO:configure_ring", &what, &py)) {
        return NULL;
    }
    if (!PyCallable_Check(py)) {
        PyErr_SetString(PyExc_TypeError, "configure_ring('watch', py_watch_sleep): a callable");
        return NULL;
    }
    Py_XSETREF(py_watch_sleep, Py_NewRef(py));
    PyObject *f = PyCFunction_New(&watch_sleep_def, NULL);
    if (f == NULL) {
        return NULL;
    }
    PyObject *d = Py_BuildValue("{sN}", "watch_sleep", f);
    return d;
}
