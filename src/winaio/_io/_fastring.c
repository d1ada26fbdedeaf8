/* winaio._io._fastio, the io_uring ring's part: the wait chain of a thread that leads the ring
 * (``_backends.uring.lead``), the primitives it runs once or twice per pended request.
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
#include "_fastio.h"
#include <math.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define U32 0xFFFFFFFFu

/* ------------------------------------------------------------------ configuration state */

static const char *const CQ_NAMES[] = {"_cq_u32",    "_cq_head", "_cq_head_i",  "_cq_tail_i",
                                       "_cq_mask",   "_sq_u32",  "_sq_flags_i", NULL};
enum { C_U32, C_HEAD, C_HEAD_I, C_TAIL_I, C_MASK, C_SQ_U32, C_SQ_FLAGS_I };
static const char *const CQE_NAMES[] = {"_cqes", NULL};
static const char *const SQ_NAMES[] = {"_sq_u32", "_sq_head_i", "_sq_tail_i", "_sq_tail",
                                       "_sq_dirty", "fd", NULL};
enum { S_U32, S_HEAD_I, S_TAIL_I, S_TAIL, S_DIRTY, S_FD };

static const char *const DEFERRAL_NAMES[] = {"_backlog", "_lock", "_migration", "_ring",
                                             "_table",   "enters", "hinted", "unsubmitted",
                                             NULL};
enum { D_BACKLOG, D_LOCK, D_MIGRATION, D_RING, D_TABLE, D_ENTERS, D_HINTED, D_UNSUBMITTED };
static const char *const BACKLOG_NAMES[] = {"stuck", NULL};
static const char *const MIGRATION_NAMES[] = {"owned", NULL};
static const char *const REAPER_NAMES[] = {"_ring", NULL};

static kind_t k_cq, k_cqe, k_sq, k_deferral, k_backlog, k_migration, k_reaper;
static int g_ring_ok, g_deferral_ok, g_reaper_ok;

/* The Python references (called for every shape not handled here). */
static PyObject *py_cq_ready, *py_cq_has_overflow, *py_sq_ready, *py_reap, *py_publish,
    *py_enter, *py_enter_timeout, *py_take_burst, *py_hint_locked, *py_reaper_reap;
static PyObject *g_enter_error; /* abi.enter_error(errno) -> the exception */
static PyObject *g_deferring;   /* deferral._deferring (dict) */
static PyObject *g_idle_work;   /* _io._backend.IdleWork */
static PyObject *s_deferred, *s_intersection_update, *g_one;
static long c_nr_enter, c_getevents, c_ext_arg, c_needs_flush, c_cq_overflow;

/* ------------------------------------------------------------------ helpers */

/* The buffer of a memoryview held in a slot (borrowed ``mv``): its address and its length in
 * u32 words, or NULL when it is not a live memoryview (the caller goes to Python). */
static inline char *
mv_buf(PyObject *mv, Py_ssize_t *len)
{
    if (mv == NULL || !PyMemoryView_Check(mv)) {
        return NULL;
    }
    /* (every CPython: a released view's buffer may be unmapped already, a closed ring's;
     * 3.13 has the flag too - without this test a closed ring's cq_ready() crashed there) */
    if (((PyMemoryViewObject *)mv)->flags & _Py_MEMORYVIEW_RELEASED) {
        return NULL;
    }
    Py_buffer *view = PyMemoryView_GET_BUFFER(mv);
    if (view->buf == NULL) {
        return NULL;
    }
    *len = view->len;
    return (char *)view->buf;
}

/* A slot holding a small non-negative int (an index, a counter), borrowed; -1 when it is not
 * one (the caller goes to Python). */
static inline long long
slot_index(kind_t *k, PyObject *obj, int i)
{
    PyObject *v = *(PyObject **)((char *)obj + k->offsets[i]);
    if (v == NULL || !PyLong_CheckExact(v)) {
        return -1;
    }
    int overflow;
    long long r = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || r < 0) {
        if (r == -1 && PyErr_Occurred()) {
            PyErr_Clear();
        }
        return -1;
    }
    return r;
}

static inline PyObject *
slot_borrow(kind_t *k, PyObject *obj, int i)
{
    return *(PyObject **)((char *)obj + k->offsets[i]);
}

/* Truth of a borrowed object: 1, 0, -1. */
static inline int
is_true(PyObject *v)
{
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "an unset slot");
        return -1;
    }
    if (v == Py_True) {
        return 1;
    }
    if (v == Py_False || v == Py_None) {
        return 0;
    }
    if (PyList_CheckExact(v)) {
        return PyList_GET_SIZE(v) != 0;
    }
    return PyObject_IsTrue(v);
}

/* u32 word ``i`` of the view ``u32`` (``len`` bytes): its address, or NULL out of range. */
static inline uint32_t *
word(char *u32, Py_ssize_t len, long long i)
{
    if (i < 0 || (i + 1) * 4 > len) {
        return NULL;
    }
    return (uint32_t *)(u32 + i * 4);
}

static PyObject *
call1(PyObject *func, PyObject *self)
{
    return PyObject_Vectorcall(func, &self, 1, NULL);
}

static PyObject *
delegate_n(PyObject *func, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames)
{
    PyObject *small[8];
    Py_ssize_t total = nargs + (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames));
    if (total + 1 > 8) {
        PyErr_SetString(PyExc_TypeError, "too many arguments");
        return NULL;
    }
    small[0] = self;
    for (Py_ssize_t i = 0; i < total; i++) {
        small[i + 1] = args[i];
    }
    return PyObject_Vectorcall(func, small, nargs + 1, kwnames);
}

/* The CQ side's words of a ring: tail and head pointers, our head, the mask. 1 when found,
 * 0 when the ring must go to Python. */
typedef struct {
    uint32_t *tail, *khead, *sq_flags;
    uint32_t head, mask;
} cq_t;

static int
cq_words(PyObject *ring, cq_t *c)
{
    if (!g_ring_ok || !kind_fast(&k_cq, Py_TYPE(ring))) {
        return 0;
    }
    Py_ssize_t len, slen;
    char *u32 = mv_buf(slot_borrow(&k_cq, ring, C_U32), &len);
    char *sq = mv_buf(slot_borrow(&k_cq, ring, C_SQ_U32), &slen);
    if (u32 == NULL || sq == NULL) {
        return 0;
    }
    long long head = slot_index(&k_cq, ring, C_HEAD), mask = slot_index(&k_cq, ring, C_MASK);
    c->tail = word(u32, len, slot_index(&k_cq, ring, C_TAIL_I));
    c->khead = word(u32, len, slot_index(&k_cq, ring, C_HEAD_I));
    c->sq_flags = word(sq, slen, slot_index(&k_cq, ring, C_SQ_FLAGS_I));
    if (c->tail == NULL || c->khead == NULL || c->sq_flags == NULL || head < 0 || head > U32 ||
        mask < 0 || mask > U32) {
        return 0;
    }
    c->head = (uint32_t)head;
    c->mask = (uint32_t)mask;
    return 1;
}

static inline uint32_t
cq_count(cq_t *c)
{
    return (__atomic_load_n(c->tail, __ATOMIC_ACQUIRE) - c->head) & U32;
}

typedef struct {
    uint32_t *khead, *ktail;
    uint32_t tail;
    int fd;
} sq_t;

/* The SQ side's words; 1 when found, 0 -> Python. ``clean`` requires an empty dirty list. */
static int
sq_words(PyObject *ring, sq_t *s, int clean)
{
    if (!g_ring_ok || !kind_fast(&k_sq, Py_TYPE(ring))) {
        return 0;
    }
    Py_ssize_t len;
    char *u32 = mv_buf(slot_borrow(&k_sq, ring, S_U32), &len);
    if (u32 == NULL) {
        return 0;
    }
    if (clean) {
        PyObject *dirty = slot_borrow(&k_sq, ring, S_DIRTY);
        if (dirty == NULL || !PyList_CheckExact(dirty) || PyList_GET_SIZE(dirty)) {
            return 0;
        }
    }
    /* _sq_tail may run past 2**32 in Python (masked where it is used) */
    PyObject *tail_obj = slot_borrow(&k_sq, ring, S_TAIL);
    if (tail_obj == NULL || !PyLong_CheckExact(tail_obj)) {
        return 0;
    }
    unsigned long long tail = PyLong_AsUnsignedLongLongMask(tail_obj);
    if (tail == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    long long fd = slot_index(&k_sq, ring, S_FD);
    s->khead = word(u32, len, slot_index(&k_sq, ring, S_HEAD_I));
    s->ktail = word(u32, len, slot_index(&k_sq, ring, S_TAIL_I));
    if (s->khead == NULL || s->ktail == NULL || fd < 0 || fd > INT_MAX) {
        return 0;
    }
    s->tail = (uint32_t)(tail & U32);
    s->fd = (int)fd;
    return 1;
}

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
static PyObject *
ring_sq_ready(PyObject *self, PyObject *unused)
{
    sq_t s;
    if (!sq_words(self, &s, 0)) {
        return call1(py_sq_ready, self);
    }
    return PyLong_FromUnsignedLong((s.tail - __atomic_load_n(s.khead, __ATOMIC_ACQUIRE)) & U32);
}

/* BackendRing.reap(max_n=0x7FFFFFFF) */
static PyObject *
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
static PyObject *
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
static PyObject *
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
static PyObject *
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

/* ------------------------------------------------------------------ Deferral */

/* Deferral.hint_locked's body for a fast Deferral: 0, or -1 with an error (nothing changed). */
static int
hint(PyObject *self)
{
    PyObject *uns = slot_borrow(&k_deferral, self, D_UNSUBMITTED);
    PyObject *hinted = slot_borrow(&k_deferral, self, D_HINTED);
    if (uns == NULL || hinted == NULL) {
        return 1;
    }
    int deferred = PyObject_IsTrue(uns);
    if (deferred < 0) {
        return -1;
    }
    if ((deferred ? Py_True : Py_False) == hinted) {
        return 0;
    }
    if (deferred) {
        if (PyDict_SetItem(g_deferring, self, Py_None) < 0) {
            return -1;
        }
    }
    else if (PyDict_DelItem(g_deferring, self) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
            return -1;
        }
        PyErr_Clear();
    }
    set(&k_deferral, 1, self, D_HINTED, Py_NewRef(deferred ? Py_True : Py_False));
    PyObject *count = PyLong_FromSsize_t(PyDict_GET_SIZE(g_deferring));
    if (count == NULL) {
        return -1;
    }
    int r = PyObject_SetAttr(g_idle_work, s_deferred, count);
    Py_DECREF(count);
    return r;
}

/* Deferral.hint_locked() */
static PyObject *
deferral_hint_locked(PyObject *self, PyObject *unused)
{
    if (!g_deferral_ok || !kind_fast(&k_deferral, Py_TYPE(self))) {
        return call1(py_hint_locked, self);
    }
    int r = hint(self);
    if (r > 0) {
        return call1(py_hint_locked, self); /* (an unset slot: Python raises) */
    }
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Migration.own_locked(ts, uds, table) for a fast Migration and a list of uds: 0 or -1. */
static int
own(PyObject *migration, PyObject *ts, PyObject *uds, PyObject *table)
{
    PyObject *owned = slot_borrow(&k_migration, migration, 0);
    if (owned == NULL || !PyDict_CheckExact(owned)) {
        PyErr_SetString(PyExc_TypeError, "Migration.owned is not a dict");
        return -1;
    }
    PyObject *mine = PyDict_GetItemWithError(owned, ts); /* borrowed */
    if (mine == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        PyObject *fresh = PySet_New(NULL);
        if (fresh == NULL) {
            return -1;
        }
        if (PyDict_SetItem(owned, ts, fresh) < 0) {
            Py_DECREF(fresh);
            return -1;
        }
        mine = fresh;
        Py_DECREF(fresh); /* (the dict holds it) */
    }
    Py_INCREF(mine);
    int r = -1;
    if (PyAnySet_Check(mine)) {
        Py_ssize_t n = PyList_GET_SIZE(uds);
        r = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (PySet_Add(mine, PyList_GET_ITEM(uds, i)) < 0) {
                r = -1;
                break;
            }
        }
    }
    else {
        PyObject *res = PyObject_CallMethod(mine, "update", "O", uds);
        r = res == NULL ? -1 : 0;
        Py_XDECREF(res);
    }
    if (r == 0) {
        Py_ssize_t size = PyObject_Size(mine), tsize = PyObject_Size(table);
        if (size < 0 || tsize < 0) {
            r = -1;
        }
        else if (size > 64 + 4 * tsize) {
            PyObject *res = PyObject_CallMethodOneArg(mine, s_intersection_update, table);
            r = res == NULL ? -1 : 0;
            Py_XDECREF(res);
        }
    }
    Py_DECREF(mine);
    return r;
}

/* Deferral.take_burst(ts) */
static PyObject *
deferral_take_burst(PyObject *self, PyObject *ts)
{
    if (!g_deferral_ok || !kind_fast(&k_deferral, Py_TYPE(self))) {
        return PyObject_CallFunctionObjArgs(py_take_burst, self, ts, NULL);
    }
    PyObject *uns = slot_borrow(&k_deferral, self, D_UNSUBMITTED);
    PyObject *lock = slot_borrow(&k_deferral, self, D_LOCK);
    PyObject *backlog = slot_borrow(&k_deferral, self, D_BACKLOG);
    PyObject *migration = slot_borrow(&k_deferral, self, D_MIGRATION);
    PyObject *ring = slot_borrow(&k_deferral, self, D_RING);
    PyObject *table = slot_borrow(&k_deferral, self, D_TABLE);
    PyObject *enters = slot_borrow(&k_deferral, self, D_ENTERS);
    if (uns == NULL || !PyList_CheckExact(uns) || lock == NULL || backlog == NULL ||
        migration == NULL || ring == NULL || table == NULL || enters == NULL ||
        !PyLong_CheckExact(enters) || !kind_fast(&k_backlog, Py_TYPE(backlog)) ||
        !kind_fast(&k_migration, Py_TYPE(migration))) {
        return PyObject_CallFunctionObjArgs(py_take_burst, self, ts, NULL);
    }
    if (PyList_GET_SIZE(uns) == 0) {
        return PyLong_FromLong(0);
    }
    Py_INCREF(uns);
    Py_INCREF(lock);
    Py_INCREF(ring);
    Py_INCREF(migration);
    Py_INCREF(table);
    PyObject *result = NULL;
    if (fio_acquire(lock) < 0) {
        goto done;
    }
    /* (the slot may have been rebound meanwhile: read again under the lock) */
    PyObject *cur = slot_borrow(&k_deferral, self, D_UNSUBMITTED);
    int stuck;
    if (cur != uns || PyList_GET_SIZE(uns) == 0) {
        result = PyLong_FromLong(0);
        goto unlock;
    }
    PyObject *backlog_now = slot_borrow(&k_deferral, self, D_BACKLOG);
    PyObject *st = backlog_now == NULL ? NULL : slot_borrow(&k_backlog, backlog_now, 0);
    if (st == NULL) {
        PyErr_SetString(PyExc_AttributeError, "stuck");
        goto unlock;
    }
    stuck = PyObject_IsTrue(st);
    if (stuck != 0) {
        if (stuck > 0) {
            result = PyLong_FromLong(0);
        }
        goto unlock;
    }
    PyObject *pending = ring_publish(ring, NULL);
    if (pending == NULL) {
        goto unlock;
    }
    if (own(migration, ts, uns, table) < 0) {
        Py_DECREF(pending);
        goto unlock;
    }
    if (PyList_SetSlice(uns, 0, PyList_GET_SIZE(uns), NULL) < 0 || hint(self) < 0) {
        Py_DECREF(pending);
        goto unlock;
    }
    PyObject *more = PyNumber_Add(slot_borrow(&k_deferral, self, D_ENTERS), g_one);
    if (more == NULL) {
        Py_DECREF(pending);
        goto unlock;
    }
    set(&k_deferral, 1, self, D_ENTERS, more);
    result = pending;
unlock:
    fio_release(lock);
done:
    Py_DECREF(uns);
    Py_DECREF(lock);
    Py_DECREF(ring);
    Py_DECREF(migration);
    Py_DECREF(table);
    return result;
}

/* ------------------------------------------------------------------ Reaper */

static const char *const REAPER2_NAMES[] = {"_ring", "cq_lock", "_migration", "closing",
                                            "_table", "_streams", "done", "cancelled", NULL};
enum { P_RING, P_CQ_LOCK, P_MIGRATION, P_CLOSING, P_TABLE, P_STREAMS, P_DONE, P_CANCELLED };
static const char *const MIGRATION2_NAMES[] = {"migrating", NULL};
static kind_t k_reaper2, k_migration2;
static int g_qd1_ok; /* the QD1 path's configuration is there (configure "reaper") */
static PyTypeObject *g_inflight_type, *g_line_type;
static PyObject *g_plain_complete, *g_reaper_globals, *g_success, *g_reap_batch;
static PyObject *s_complete, *s_service, *s_deliver_fn, *s_deliver_m, *s_deliver_rest,
    *s_service_cut, *s_batch_locked, *s_report;

/* ``op.__class__.complete is Operation.complete`` */
static inline int
plain_complete(PyObject *op)
{
    return _PyType_Lookup(Py_TYPE(op), s_complete) == g_plain_complete;
}

/* ``self.<counter> += n`` */
static int
add_count(PyObject *self, int i, Py_ssize_t n)
{
    if (n == 0) {
        return 0;
    }
    PyObject *v = slot_borrow(&k_reaper2, self, i);
    PyObject *d = PyLong_FromSsize_t(n);
    if (v == NULL || d == NULL) {
        Py_XDECREF(d);
        if (v == NULL) {
            PyErr_SetString(PyExc_AttributeError, "a Reaper counter");
        }
        return -1;
    }
    PyObject *sum = PyNumber_Add(v, d);
    Py_DECREF(d);
    if (sum == NULL) {
        return -1;
    }
    return set(&k_reaper2, 1, self, i, sum);
}

/* ``self.method(arg)`` keeping the current exception (``except BaseException: ...; raise``);
 * an exception of the handler replaces it (as in Python). */
static void
on_error_call(PyObject *self, PyObject *name, PyObject *const *args, Py_ssize_t n)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *all[5] = {self, NULL, NULL, NULL, NULL};
    for (Py_ssize_t i = 0; i < n && i < 4; i++) {
        all[i + 1] = args[i];
    }
    PyObject *r = PyObject_VectorcallMethod(name, all, n + 1, NULL);
    if (r == NULL) {
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return;
    }
    Py_DECREF(r);
    PyErr_Restore(et, ev, etb);
}

/* ``self.deliver(finished)`` (the batch), with ``_deliver_rest`` on an exception: 0 or -1. */
static int
deliver_batch_m(PyObject *self, PyObject *finished)
{
    PyObject *args[2] = {self, finished};
    PyObject *r = PyObject_VectorcallMethod(s_deliver_m, args, 2, NULL);
    if (r == NULL) {
        on_error_call(self, s_deliver_rest, &finished, 1);
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* ``deliver(op, status, res)`` (the module's ``deliver``, looked up at each call): an Exception
 * is reported (``report``), a BaseException goes through ``_deliver_rest`` and propagates. */
static int
deliver_one(PyObject *self, PyObject *op, PyObject *status, PyObject *res)
{
    PyObject *fn = PyDict_GetItemWithError(g_reaper_globals, s_deliver_fn);
    if (fn == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_NameError, "deliver");
        }
        return -1;
    }
    PyObject *args[3] = {op, status, res};
    PyObject *r = PyObject_Vectorcall(fn, args, 3, NULL);
    if (r != NULL) {
        Py_DECREF(r);
        return 0;
    }
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        if (etb != NULL && ev != NULL) {
            PyException_SetTraceback(ev, etb);
        }
        PyObject *report = PyDict_GetItemWithError(g_reaper_globals, s_report);
        PyObject *what = PyUnicode_FromFormat("completing %R", op);
        int ok = -1;
        if (report != NULL && what != NULL && ev != NULL) {
            PyObject *rargs[2] = {what, ev};
            PyObject *rr = PyObject_Vectorcall(report, rargs, 2, NULL);
            if (rr != NULL) {
                Py_DECREF(rr);
                ok = 0;
            }
        }
        else if (report == NULL && !PyErr_Occurred()) {
            PyErr_SetString(PyExc_NameError, "report");
        }
        Py_XDECREF(what);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return ok;
    }
    /* Ctrl-C: _deliver_rest([(op, status, res)]) then raise */
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *t = PyTuple_Pack(3, op, status, res);
    PyObject *one = t == NULL ? NULL : PyList_New(1);
    if (one != NULL) {
        PyList_SET_ITEM(one, 0, t);
        PyErr_Restore(et, ev, etb);
        on_error_call(self, s_deliver_rest, &one, 1);
        Py_DECREF(one);
    }
    else {
        Py_XDECREF(t);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
    }
    return -1;
}

/* The QD1 path of Reaper.reap under the CQ lock (``cqes`` reaped already): 1 when it
 * handled the CQE (delivered, or an error set: *err), 0 when the general path must run. */
static int
reap_one(PyObject *self, PyObject *cqes, int *err)
{
    *err = 0;
    if (PyList_GET_SIZE(cqes) != 1) {
        return 0;
    }
    PyObject *migration = slot_borrow(&k_reaper2, self, P_MIGRATION);
    PyObject *closing = slot_borrow(&k_reaper2, self, P_CLOSING);
    PyObject *table = slot_borrow(&k_reaper2, self, P_TABLE);
    PyObject *streams = slot_borrow(&k_reaper2, self, P_STREAMS);
    if (migration == NULL || closing == NULL || table == NULL || streams == NULL ||
        !Py_IS_TYPE(table, g_inflight_type) || !kind_fast(&k_migration2, Py_TYPE(migration))) {
        return 0;
    }
    PyObject *migrating = slot_borrow(&k_migration2, migration, 0);
    int m = migrating == NULL ? -1 : is_true(migrating);
    int c = is_true(closing);
    if (m != 0 || c != 0) {
        PyErr_Clear();
        return 0;
    }
    PyObject *cqe = PyList_GET_ITEM(cqes, 0);
    if (!PyTuple_CheckExact(cqe) || PyTuple_GET_SIZE(cqe) != 3) {
        return 0;
    }
    PyObject *ud = PyTuple_GET_ITEM(cqe, 0), *res = PyTuple_GET_ITEM(cqe, 1);
    if (!PyLong_CheckExact(res) || _PyLong_Sign(res) <= 0) {
        return 0;
    }
    PyObject *entry = PyDict_GetItemWithError(table, ud); /* borrowed */
    if (entry == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2) {
        return 0;
    }
    PyObject *op = PyTuple_GET_ITEM(entry, 0), *extra = PyTuple_GET_ITEM(entry, 1);
    if (!plain_complete(op)) {
        return 0;
    }
    Py_INCREF(entry); /* (holds op and extra) */
    Py_INCREF(ud);
    Py_INCREF(res);
    if (PyDict_DelItem(table, ud) < 0) {
        goto fail;
    }
    if (Py_IS_TYPE(extra, g_line_type)) {
        /* A STREAM head: its line (StreamLines.service), as the Python path. */
        PyObject *finished = PyList_New(0);
        if (finished == NULL) {
            goto fail;
        }
        PyObject *sargs[4] = {streams, extra, res, finished};
        PyObject *cancelled = PyObject_VectorcallMethod(s_service, sargs, 4, NULL);
        if (cancelled == NULL) {
            PyObject *cut[4] = {extra, res, ud, finished};
            on_error_call(self, s_service_cut, cut, 4);
            Py_DECREF(finished);
            goto fail;
        }
        Py_ssize_t nf = PyList_GET_SIZE(finished);
        if (add_count(self, P_DONE, nf) < 0) {
            Py_DECREF(cancelled);
            Py_DECREF(finished);
            goto fail;
        }
        PyObject *more = PyNumber_Add(slot_borrow(&k_reaper2, self, P_CANCELLED), cancelled);
        Py_DECREF(cancelled);
        if (more == NULL) {
            Py_DECREF(finished);
            goto fail;
        }
        set(&k_reaper2, 1, self, P_CANCELLED, more);
        int r = 0;
        PyObject *f0 = nf == 1 ? PyList_GET_ITEM(finished, 0) : NULL;
        if (nf != 1 || !PyTuple_CheckExact(f0) || PyTuple_GET_SIZE(f0) != 3 ||
            !plain_complete(PyTuple_GET_ITEM(f0, 0))) {
            if (nf) {
                r = deliver_batch_m(self, finished);
            }
        }
        else {
            r = deliver_one(self, PyTuple_GET_ITEM(f0, 0), PyTuple_GET_ITEM(f0, 1),
                            PyTuple_GET_ITEM(f0, 2));
        }
        Py_DECREF(finished);
        if (r < 0) {
            goto fail;
        }
    }
    else {
        if (add_count(self, P_DONE, 1) < 0 || deliver_one(self, op, g_success, res) < 0) {
            goto fail;
        }
    }
    Py_DECREF(entry);
    Py_DECREF(ud);
    Py_DECREF(res);
    return 1;
fail:
    Py_DECREF(entry);
    Py_DECREF(ud);
    Py_DECREF(res);
    *err = 1;
    return 1;
}

/* Reaper.reap(): 0 at once when the CQ ring is empty and the kernel holds no overflow; the
 * QD1 path (one CQE, a plain request that succeeded) in C; the rest in Python
 * (``_batch_locked``, under the CQ lock, or the Python method for another shape). */
static PyObject *
reaper_reap(PyObject *self, PyObject *unused)
{
    if (!g_reaper_ok || !kind_fast(&k_reaper, Py_TYPE(self))) {
        return call1(py_reaper_reap, self);
    }
    PyObject *ring = slot_borrow(&k_reaper, self, 0);
    cq_t c;
    if (ring == NULL || !cq_words(ring, &c)) {
        return call1(py_reaper_reap, self);
    }
    if (!cq_count(&c) && !(__atomic_load_n(c.sq_flags, __ATOMIC_ACQUIRE) & c_cq_overflow)) {
        return PyLong_FromLong(0);
    }
    if (!g_qd1_ok || !kind_fast(&k_reaper2, Py_TYPE(self))) {
        return call1(py_reaper_reap, self);
    }
    PyObject *cq_lock = slot_borrow(&k_reaper2, self, P_CQ_LOCK);
    if (cq_lock == NULL) {
        return call1(py_reaper_reap, self);
    }
    Py_INCREF(cq_lock);
    Py_INCREF(ring);
    PyObject *result = NULL;
    if (fio_acquire(cq_lock) < 0) {
        goto out;
    }
    PyObject *args[1] = {g_reap_batch};
    PyObject *cqes = ring_reap(ring, args, 1);
    if (cqes == NULL) {
        goto unlock;
    }
    if (!PyList_CheckExact(cqes)) {
        PyErr_SetString(PyExc_TypeError, "reap() did not return a list");
        Py_DECREF(cqes);
        goto unlock;
    }
    int err;
    if (reap_one(self, cqes, &err)) {
        if (!err) {
            result = PyLong_FromLong(1);
        }
    }
    else {
        PyObject *bargs[2] = {self, cqes};
        result = PyObject_VectorcallMethod(s_batch_locked, bargs, 2, NULL);
    }
    Py_DECREF(cqes);
unlock:
    fio_release(cq_lock);
out:
    Py_DECREF(cq_lock);
    Py_DECREF(ring);
    return result;
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

static PyMethodDef deferral_defs[] = {
    {"take_burst", deferral_take_burst, METH_O,
     "take_burst(ts)\n--\n\nA leader takes the deferred burst over (C accelerator)."},
    {"hint_locked", deferral_hint_locked, METH_NOARGS,
     "hint_locked()\n--\n\nKeep IdleWork.deferred in step (C accelerator)."},
    {NULL, NULL, 0, NULL}};

static PyMethodDef reaper_defs[] = {
    {"reap", reaper_reap, METH_NOARGS,
     "reap()\n--\n\nReap and deliver; 0 at once on an empty CQ ring (C accelerator)."},
    {NULL, NULL, 0, NULL}};

/* {name: method descriptor} for ``defs`` on ``tp`` */
static PyObject *
descriptors(PyTypeObject *tp, PyMethodDef *defs)
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

static int
ref(PyObject **slot, PyObject *value)
{
    Py_XSETREF(*slot, Py_NewRef(value));
    return 0;
}

static PyObject *configure_lead(PyObject *args);
static PyObject *configure_port(PyObject *args);
static PyObject *g_enter_descr, *g_enter_timeout_descr, *g_sq_ready_descr; /* ring's C methods */

/* (every part also configures through this one entry: see configure_lead, configure_port)
 * configure_ring("ring", BackendRing, py_functions_dict, enter_error, consts_tuple)
 * configure_ring("deferral", Deferral, Backlog, Migration, py_functions_dict, _deferring,
 *                IdleWork)
 * configure_ring("reaper", Reaper, py_reap)
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
    if (s_deferred == NULL) {
        s_deferred = PyUnicode_InternFromString("deferred");
        s_intersection_update = PyUnicode_InternFromString("intersection_update");
        g_one = PyLong_FromLong(1);
        if (s_deferred == NULL || s_intersection_update == NULL || g_one == NULL) {
            return NULL;
        }
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
        PyObject *d = descriptors(tp, ring_defs);
        if (d == NULL) {
            return NULL;
        }
        ref(&g_enter_descr, PyDict_GetItemString(d, "enter"));
        ref(&g_enter_timeout_descr, PyDict_GetItemString(d, "enter_timeout"));
        ref(&g_sq_ready_descr, PyDict_GetItemString(d, "sq_ready"));
        g_ring_ok = 1;
        return d;
    }
    if (strcmp(what, "deferral") == 0) {
        PyTypeObject *tp, *backlog, *migration;
        PyObject *py, *deferring, *idle;
        if (!PyArg_ParseTuple(args, "sO!O!O!O!O!O:configure_ring", &what, &PyType_Type, &tp,
                              &PyType_Type, &backlog, &PyType_Type, &migration, &PyDict_Type,
                              &py, &PyDict_Type, &deferring, &idle)) {
            return NULL;
        }
        if (g_deferral_ok) {
            PyErr_SetString(PyExc_RuntimeError, "configured once");
            return NULL;
        }
        PyObject *tb = PyDict_GetItemString(py, "take_burst");
        PyObject *hl = PyDict_GetItemString(py, "hint_locked");
        if (tb == NULL || hl == NULL) {
            PyErr_SetString(PyExc_KeyError, "take_burst, hint_locked");
            return NULL;
        }
        ref(&py_take_burst, tb);
        ref(&py_hint_locked, hl);
        ref(&g_deferring, deferring);
        ref(&g_idle_work, idle);
        if (kind_init(&k_deferral, tp, DEFERRAL_NAMES) < 0 ||
            kind_init(&k_backlog, backlog, BACKLOG_NAMES) < 0 ||
            kind_init(&k_migration, migration, MIGRATION_NAMES) < 0) {
            return NULL;
        }
        g_deferral_ok = 1;
        return descriptors(tp, deferral_defs);
    }
    if (strcmp(what, "reaper") == 0) {
        /* configure_ring("reaper", Reaper, py_reap, Migration, InFlight, Line,
         *                Operation.complete, reaper module globals, STATUS_SUCCESS, REAP_BATCH) */
        PyTypeObject *tp, *migt, *inft, *linet;
        PyObject *py, *plain, *globals, *success, *batch;
        if (PyTuple_GET_SIZE(args) == 3) {
            /* (the first form: the empty-CQ test only, no QD1 path) */
            if (!PyArg_ParseTuple(args, "sO!O:configure_ring", &what, &PyType_Type, &tp, &py)) {
                return NULL;
            }
            if (g_reaper_ok) {
                PyErr_SetString(PyExc_RuntimeError, "configured once");
                return NULL;
            }
            ref(&py_reaper_reap, py);
            if (kind_init(&k_reaper, tp, REAPER_NAMES) < 0) {
                return NULL;
            }
            g_reaper_ok = 1;
            return descriptors(tp, reaper_defs);
        }
        if (!PyArg_ParseTuple(args, "sO!OO!O!O!OO!OO:configure_ring", &what, &PyType_Type, &tp,
                              &py, &PyType_Type, &migt, &PyType_Type, &inft, &PyType_Type,
                              &linet, &plain, &PyDict_Type, &globals, &success, &batch)) {
            return NULL;
        }
        if (g_reaper_ok) {
            PyErr_SetString(PyExc_RuntimeError, "configured once");
            return NULL;
        }
        ref(&py_reaper_reap, py);
        if (kind_init(&k_reaper, tp, REAPER_NAMES) < 0 ||
            kind_init(&k_reaper2, tp, REAPER2_NAMES) < 0 ||
            kind_init(&k_migration2, migt, MIGRATION2_NAMES) < 0) {
            return NULL;
        }
        s_complete = PyUnicode_InternFromString("complete");
        s_service = PyUnicode_InternFromString("service");
        s_deliver_fn = PyUnicode_InternFromString("deliver");
        s_deliver_m = s_deliver_fn;
        s_deliver_rest = PyUnicode_InternFromString("_deliver_rest");
        s_service_cut = PyUnicode_InternFromString("_service_cut");
        s_batch_locked = PyUnicode_InternFromString("_batch_locked");
        s_report = PyUnicode_InternFromString("report");
        if (s_complete == NULL || s_service == NULL || s_deliver_fn == NULL ||
            s_deliver_rest == NULL || s_service_cut == NULL || s_batch_locked == NULL ||
            s_report == NULL) {
            return NULL;
        }
        g_inflight_type = (PyTypeObject *)Py_NewRef(inft);
        g_line_type = (PyTypeObject *)Py_NewRef(linet);
        ref(&g_plain_complete, plain);
        ref(&g_reaper_globals, globals);
        ref(&g_success, success);
        ref(&g_reap_batch, batch);
        g_reaper_ok = g_qd1_ok = 1;
        return descriptors(tp, reaper_defs);
    }
    if (strcmp(what, "lead") == 0) {
        return configure_lead(args);
    }
    if (strcmp(what, "port") == 0) {
        return configure_port(args);
    }
    PyErr_Format(PyExc_ValueError, "configure_ring: unknown part %s", what);
    return NULL;
}

/* ------------------------------------------------------------------ the leader (lead.py) */

/* RingParker.acquire in C: the token test, the owner's entry as the ring's waiter
 * (``Leadership.enter_or_follow``'s leading case) and the waiter's loop
 * (``RingParker._wait_as_leader``), statement for statement; every other shape (not the
 * ring's owner, a waiter already there, a closed leadership, keywords, subclasses) goes to the
 * Python method before anything is touched. Python code runs only where the Python method
 * calls a function (the reap, flush, take_burst, burst_left, flush_taken, leave, idle_for,
 * _in_flight callables, a parker lock that is not a ``_thread.lock``): an exception there (a
 * signal handler's) takes the same ``except``/``finally`` paths as in Python. */

typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock_lock;
    PyObject *in_weakreflist;
    char locked;
} ring_lockobject; /* CPython 3.11/3.12's _thread.lock (as _fastio.c's lockobject) */

static const char *const PARKER_NAMES[] = {"in_kernel", "lead", "lock", "ts", NULL};
enum { R_IN_KERNEL, R_LEAD, R_LOCK, R_TS };
static const char *const LEAD_A_NAMES[] = {"owner", "waiter", "closed", "followers", "leads",
                                           "waits", "own_wakes", "deferred", NULL};
enum { L_OWNER, L_WAITER, L_CLOSED, L_FOLLOWERS, L_LEADS, L_WAITS, L_OWN_WAKES, L_DEFERRED };
static const char *const LEAD_B_NAMES[] = {"reap",  "take_burst", "flush", "burst_left",
                                           "ring",  "_lock",      "_in_flight", NULL};
enum { L_REAP, L_TAKE_BURST, L_FLUSH, L_BURST_LEFT, L_RING, L_LOCK, L_IN_FLIGHT };
static const char *const TS_NAMES[] = {"awake_in_wait", "wait", "wake_pending", NULL};
enum { T_AWAKE, T_WAIT, T_WAKE_PENDING };
static const char *const WB_NAMES[] = {"result", NULL};

static kind_t k_parker, k_lead_a, k_lead_b, k_ts, k_wb;
static int g_lead_ok;
static PyTypeObject *g_plain_lock_type; /* _thread.lock, when its layout is ring_lockobject */
static PyObject *py_acquire, *g_busy;   /* RingParker.acquire; abi.RingBusyError */
static PyObject *g_acquire_descr;       /* the C RingParker.acquire */
/* Leadership.enter_or_follow and RingParker._wait_as_leader, as configured: one replaced on
 * its class (a test's stand-in) sends every wait to the Python method, which calls it. */
static PyObject *py_enter_or_follow, *py_wait_as_leader, *s_enter_or_follow, *s_wait_as_leader;
static PyObject *s_acquire_r, *s_leave, *s_idle_for, *s_flush_taken, *s_enter, *s_enter_timeout,
    *s_sq_ready;
/* lock.acquire(False): 1 taken, 0 not, -1 error. */
static int
try_lock(PyObject *lock)
{
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
    if (Py_IS_TYPE(lock, g_plain_lock_type)) {
        ring_lockobject *l = (ring_lockobject *)lock;
        if (PyThread_acquire_lock_timed(l->lock_lock, 0, 0) == PY_LOCK_ACQUIRED) {
            l->locked = 1;
            return 1;
        }
        return 0;
    }
#endif
    PyObject *r = PyObject_CallMethodOneArg(lock, s_acquire_r, Py_False);
    if (r == NULL) {
        return -1;
    }
    int t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

static double
monotonic_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* slot += 1 on an int slot (a counter): 0 or -1. */
static int
count(kind_t *k, PyObject *obj, int i)
{
    PyObject *v = slot_borrow(k, obj, i);
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, k->names[i] ? PyUnicode_AsUTF8(k->names[i]) : "?");
        return -1;
    }
    PyObject *more = PyNumber_Add(v, g_one);
    if (more == NULL) {
        return -1;
    }
    return set(k, 1, obj, i, more);
}

/* ``func()`` / ``func(a)`` / ``func(a, b)`` */
static PyObject *
call_n(PyObject *func, PyObject *a, PyObject *b)
{
    PyObject *args[2] = {a, b};
    Py_ssize_t n = a == NULL ? 0 : b == NULL ? 1 : 2;
    if (func == NULL) {
        PyErr_SetString(PyExc_AttributeError, "an unset slot");
        return NULL;
    }
    return PyObject_Vectorcall(func, args, n, NULL);
}

/* A call whose result is dropped: 0 or -1. */
static int
call_void(PyObject *func, PyObject *a, PyObject *b)
{
    PyObject *r = call_n(func, a, b);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

static int
method_void(PyObject *obj, PyObject *name, PyObject *a, PyObject *b)
{
    PyObject *args[3] = {obj, a, b};
    Py_ssize_t n = a == NULL ? 1 : b == NULL ? 2 : 3;
    PyObject *r = PyObject_VectorcallMethod(name, args, n, NULL);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* ring.sq_ready() as a truth value: 1, 0, -1. */
static int
ring_sq_pending(PyObject *ring)
{
    PyObject *r;
    if (_PyType_Lookup(Py_TYPE(ring), s_sq_ready) == g_sq_ready_descr) {
        r = ring_sq_ready(ring, NULL);
    }
    else {
        r = PyObject_CallMethodNoArgs(ring, s_sq_ready);
    }
    if (r == NULL) {
        return -1;
    }
    int t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

/* lead.flush_taken(ts, burst) when burst: 0 or -1. */
static int
flush_taken(PyObject *lead, PyObject *ts, long burst)
{
    if (!burst) {
        return 0;
    }
    PyObject *b = PyLong_FromLong(burst);
    if (b == NULL) {
        return -1;
    }
    int r = method_void(lead, s_flush_taken, ts, b);
    Py_DECREF(b);
    return r;
}

/* The waiter's loop (``RingParker._wait_as_leader``): 1 (True: the token), 0 (False: the wait
 * ended in place, or the timeout), 2 (None: the backend is closing), -1 (an error). */
static int
wait_as_leader(PyObject *self, PyObject *lead, PyObject *lock, PyObject *ts, double timeout)
{
    PyObject *ring = slot_borrow(&k_lead_b, lead, L_RING);
    PyObject *reap = slot_borrow(&k_lead_b, lead, L_REAP);
    PyObject *deferred = slot_borrow(&k_lead_a, lead, L_DEFERRED);
    if (ring == NULL || reap == NULL || deferred == NULL) {
        PyErr_SetString(PyExc_AttributeError, "Leadership is not set up");
        return -1;
    }
    /* (held for the wait: a concurrent rebinding of the slots cannot free them under us) */
    Py_INCREF(ring);
    Py_INCREF(reap);
    Py_INCREF(deferred);
    int result = -1;
    double deadline = timeout < 0 ? -1.0 : monotonic_now() + timeout;
    PyObject *wait = slot_borrow(&k_ts, ts, T_WAIT);
    if (wait == NULL) {
        PyErr_SetString(PyExc_AttributeError, "wait");
        goto out;
    }
    Py_INCREF(wait);
    int wfast = wait == Py_None ? 0 : kind_fast(&k_wb, Py_TYPE(wait));
    PyObject *awake = wait != Py_None ? Py_True : Py_False;
    set(&k_ts, 1, ts, T_AWAKE, Py_NewRef(awake));
    for (;;) {
        /* ``if reap():`` */
        PyObject *n;
        if (PyCFunction_Check(reap) && PyCFunction_GET_FUNCTION(reap) == (PyCFunction)reaper_reap) {
            n = reaper_reap(PyCFunction_GET_SELF(reap), NULL);
        }
        else {
            n = PyObject_CallNoArgs(reap);
        }
        if (n == NULL) {
            goto out_wait;
        }
        int took = PyObject_IsTrue(n);
        Py_DECREF(n);
        if (took < 0) {
            goto out_wait;
        }
        int ended;
        if (took) {
            ended = 0;
            if (wait != Py_None) {
                PyObject *res = get(&k_wb, wfast, wait, 0);
                if (res == NULL) {
                    goto out_wait;
                }
                ended = res != Py_None;
                Py_DECREF(res);
            }
            if (ended) {
                int d = is_true(deferred);
                if (d < 0 || (d && call_void(slot_borrow(&k_lead_b, lead, L_FLUSH), ts, NULL) < 0)) {
                    goto out_wait;
                }
                int wp = is_true(slot_borrow(&k_ts, ts, T_WAKE_PENDING));
                if (wp < 0) {
                    goto out_wait;
                }
                if (wp) {
                    result = try_lock(lock);
                    goto out_wait;
                }
                if (count(&k_lead_a, lead, L_OWN_WAKES) < 0) {
                    goto out_wait;
                }
                result = 0;
                goto out_wait;
            }
            int t = try_lock(lock);
            if (t < 0) {
                goto out_wait;
            }
            if (t) {
                int d = is_true(deferred);
                if (d < 0 || (d && call_void(slot_borrow(&k_lead_b, lead, L_FLUSH), ts, NULL) < 0)) {
                    goto out_wait;
                }
                result = 1;
                goto out_wait;
            }
            continue;
        }
        /* ``try:`` the burst taken over and the sleep */
        long burst = 0;
        {
            int d = is_true(deferred);
            if (d < 0) {
                goto except;
            }
            if (d) {
                PyObject *tb = slot_borrow(&k_lead_b, lead, L_TAKE_BURST);
                PyObject *b;
                if (tb != NULL && PyCFunction_Check(tb) &&
                    PyCFunction_GET_FUNCTION(tb) == (PyCFunction)deferral_take_burst) {
                    b = deferral_take_burst(PyCFunction_GET_SELF(tb), ts);
                }
                else if (tb != NULL) {
                    b = call_n(tb, ts, NULL);
                }
                else {
                    PyErr_SetString(PyExc_AttributeError, "take_burst");
                    b = NULL;
                }
                if (b == NULL) {
                    goto except;
                }
                burst = PyLong_AsLong(b);
                Py_DECREF(b);
                if (burst == -1 && PyErr_Occurred()) {
                    goto except;
                }
            }
            set(&k_parker, 1, self, R_IN_KERNEL, Py_NewRef(Py_True));
            set(&k_ts, 1, ts, T_AWAKE, Py_NewRef(Py_False));
            ended = 0;
            if (wait != Py_None) {
                PyObject *res = get(&k_wb, wfast, wait, 0);
                if (res == NULL) {
                    goto except;
                }
                ended = res != Py_None;
                Py_DECREF(res);
            }
            if (ended) {
                if (flush_taken(lead, ts, burst) < 0) {
                    goto except;
                }
                int wp = is_true(slot_borrow(&k_ts, ts, T_WAKE_PENDING));
                if (wp < 0) {
                    goto except;
                }
                if (wp) {
                    result = try_lock(lock);
                    if (result < 0) {
                        goto except;
                    }
                    goto out_wait;
                }
                if (count(&k_lead_a, lead, L_OWN_WAKES) < 0) {
                    goto except;
                }
                result = 0;
                goto out_wait;
            }
            int t = try_lock(lock);
            if (t < 0) {
                goto except;
            }
            if (t) {
                if (flush_taken(lead, ts, burst) < 0) {
                    goto except;
                }
                result = 1;
                goto out_wait;
            }
            int closed = is_true(slot_borrow(&k_lead_a, lead, L_CLOSED));
            if (closed < 0) {
                goto except;
            }
            if (closed) {
                if (flush_taken(lead, ts, burst) < 0) {
                    goto except;
                }
                result = 2;
                goto out_wait;
            }
            if (count(&k_lead_a, lead, L_WAITS) < 0) {
                goto except;
            }
            double remaining = -1.0;
            if (deadline >= 0) {
                remaining = deadline - monotonic_now();
                if (remaining <= 0) {
                    if (flush_taken(lead, ts, burst) < 0) {
                        goto except;
                    }
                    result = try_lock(lock);
                    if (result < 0) {
                        goto except;
                    }
                    goto out_wait;
                }
            }
            /* ring.enter(burst, 1) / ring.enter_timeout(burst, 1, remaining) */
            PyObject *submitted;
            if (remaining < 0) {
                if (_PyType_Lookup(Py_TYPE(ring), s_enter) == g_enter_descr) {
                    PyObject *args[2] = {NULL, NULL};
                    args[0] = PyLong_FromLong(burst);
                    args[1] = g_one;
                    submitted = args[0] == NULL ? NULL : ring_enter(ring, args, 2);
                    Py_XDECREF(args[0]);
                }
                else {
                    PyObject *b = PyLong_FromLong(burst);
                    submitted = b == NULL ? NULL
                                          : PyObject_CallMethodObjArgs(ring, s_enter, b, g_one, NULL);
                    Py_XDECREF(b);
                }
            }
            else {
                PyObject *b = PyLong_FromLong(burst), *r = PyFloat_FromDouble(remaining);
                if (b == NULL || r == NULL) {
                    submitted = NULL;
                }
                else if (_PyType_Lookup(Py_TYPE(ring), s_enter_timeout) == g_enter_timeout_descr) {
                    PyObject *args[3] = {b, g_one, r};
                    submitted = ring_enter_timeout(ring, args, 3);
                }
                else {
                    submitted = PyObject_CallMethodObjArgs(ring, s_enter_timeout, b, g_one, r, NULL);
                }
                Py_XDECREF(b);
                Py_XDECREF(r);
            }
            if (submitted == NULL) {
                if (!PyErr_ExceptionMatches(g_busy)) {
                    goto except;
                }
                PyErr_Clear(); /* the ring thread submits it (lead.py) */
                if (call_void(slot_borrow(&k_lead_b, lead, L_BURST_LEFT), ts, Py_True) < 0) {
                    goto except;
                }
            }
            else {
                long done = PyLong_AsLong(submitted);
                Py_DECREF(submitted);
                if (done == -1 && PyErr_Occurred()) {
                    goto except;
                }
                if (done < burst) {
                    int p = ring_sq_pending(ring);
                    if (p < 0) {
                        goto except;
                    }
                    if (p && call_void(slot_borrow(&k_lead_b, lead, L_BURST_LEFT), ts,
                                       Py_False) < 0) {
                        goto except;
                    }
                }
            }
        }
        set(&k_parker, 1, self, R_IN_KERNEL, Py_NewRef(Py_False));
        set(&k_ts, 1, ts, T_AWAKE, Py_NewRef(awake));
        continue;
    except: {
        /* ``except BaseException: if ring.sq_ready(): lead.burst_left(ts, False); raise`` */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        int p = ring_sq_pending(ring);
        if (p > 0) {
            PyObject *bl = slot_borrow(&k_lead_b, lead, L_BURST_LEFT);
            p = bl == NULL ? -1 : call_void(bl, ts, Py_False);
        }
        if (p < 0) { /* (an exception in the handler replaces the first, as in Python) */
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(etb);
        }
        else {
            PyErr_Restore(et, ev, etb);
        }
        result = -1;
        goto out_wait;
    }
    }
out_wait:
    Py_DECREF(wait);
out:
    Py_DECREF(ring);
    Py_DECREF(reap);
    Py_DECREF(deferred);
    return result;
}

/* RingParker.acquire(blocking=True, timeout=-1) */
static PyObject *
parker_acquire(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    int blocking = 1;
    double timeout = -1.0;
    if (!g_lead_ok || nargs > 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames)) ||
        !kind_fast(&k_parker, Py_TYPE(self))) {
        goto python;
    }
    if (nargs >= 1) {
        if ((blocking = PyObject_IsTrue(args[0])) < 0) {
            return NULL;
        }
    }
    if (nargs == 2) {
        if (PyFloat_CheckExact(args[1])) {
            timeout = PyFloat_AS_DOUBLE(args[1]);
        }
        else if (PyLong_CheckExact(args[1])) {
            timeout = PyLong_AsDouble(args[1]);
            if (timeout == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                goto python;
            }
        }
        else {
            goto python;
        }
        if (isnan(timeout)) {
            goto python;
        }
    }
    PyObject *lock = slot_borrow(&k_parker, self, R_LOCK);
    PyObject *lead = slot_borrow(&k_parker, self, R_LEAD);
    PyObject *ts = slot_borrow(&k_parker, self, R_TS);
    if (lock == NULL || lead == NULL || ts == NULL || !kind_fast(&k_lead_a, Py_TYPE(lead)) ||
        !kind_fast(&k_lead_b, Py_TYPE(lead)) || !kind_fast(&k_ts, Py_TYPE(ts)) ||
        _PyType_Lookup(Py_TYPE(lead), s_enter_or_follow) != py_enter_or_follow ||
        _PyType_Lookup(Py_TYPE(self), s_wait_as_leader) != py_wait_as_leader) {
        goto python;
    }
    int t = try_lock(lock);
    if (t != 0) {
        return t < 0 ? NULL : Py_NewRef(Py_True);
    }
    if (!blocking) {
        Py_RETURN_FALSE;
    }
    if (slot_borrow(&k_lead_a, lead, L_OWNER) != self) {
        goto python; /* (a wait that parks plainly, or a first entry: Python) */
    }
    /* enter_or_follow's leading case, under the backend's lock */
    PyObject *llock = slot_borrow(&k_lead_b, lead, L_LOCK);
    if (llock == NULL) {
        goto python;
    }
    Py_INCREF(llock);
    Py_INCREF(lock);
    Py_INCREF(lead);
    Py_INCREF(ts);
    PyObject *result = NULL;
    if (fio_acquire(llock) < 0) {
        goto done; /* (nothing done: the Python method's except path has nothing to undo) */
    }
    PyObject *closed = slot_borrow(&k_lead_a, lead, L_CLOSED);
    PyObject *waiter = slot_borrow(&k_lead_a, lead, L_WAITER);
    int c = closed == NULL ? -1 : is_true(closed);
    if (c != 0 || waiter != Py_None || slot_borrow(&k_lead_a, lead, L_OWNER) != self) {
        fio_release(llock);
        if (c < 0) {
            goto done;
        }
        result = delegate_n(py_acquire, self, args, nargs, NULL); /* a follower: Python */
        goto done;
    }
    set(&k_lead_a, 1, lead, L_WAITER, Py_NewRef(self));
    int r = count(&k_lead_a, lead, L_LEADS);
    fio_release(llock);
    int got = r < 0 ? -1 : wait_as_leader(self, lead, lock, ts, timeout);
    /* ``finally:`` (Leadership.leave's lock-free half inlined, as in Python) */
    {
        PyObject *et = NULL, *ev = NULL, *etb = NULL;
        if (got < 0) {
            PyErr_Fetch(&et, &ev, &etb);
        }
        set(&k_parker, 1, self, R_IN_KERNEL, Py_NewRef(Py_False));
        set(&k_ts, 1, ts, T_AWAKE, Py_NewRef(Py_False));
        set(&k_lead_a, 1, lead, L_WAITER, Py_NewRef(Py_None));
        PyObject *followers = slot_borrow(&k_lead_a, lead, L_FOLLOWERS);
        int f = followers == NULL ? 0 : is_true(followers);
        if (f > 0) {
            f = method_void(lead, s_leave, NULL, NULL);
        }
        if (f < 0) {
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(etb);
            goto done;
        }
        if (got < 0) {
            PyErr_Restore(et, ev, etb);
            goto done;
        }
    }
    if (got == 1) {
        /* Woken by another thread's token: with nothing left on the ring, the owner gives it
         * back (lead.py). */
        if (slot_borrow(&k_lead_a, lead, L_OWNER) == self) {
            PyObject *fl = call_n(slot_borrow(&k_lead_b, lead, L_IN_FLIGHT), NULL, NULL);
            if (fl == NULL) {
                goto done;
            }
            int busy = PyObject_IsTrue(fl);
            Py_DECREF(fl);
            if (busy < 0) {
                goto done;
            }
            if (!busy) {
                int d = is_true(slot_borrow(&k_lead_a, lead, L_DEFERRED));
                if (d < 0 || (!d && method_void(lead, s_idle_for, self, NULL) < 0)) {
                    goto done;
                }
            }
        }
        result = Py_NewRef(Py_True);
    }
    else if (got == 0) {
        result = Py_NewRef(Py_False);
    }
    else {
        /* The backend closed under us: park plainly (block() recomputes its deadline). */
        int t2 = try_lock(lock);
        if (t2 >= 0) {
            result = Py_NewRef(t2 ? Py_True : Py_False);
        }
    }
done:
    Py_DECREF(llock);
    Py_DECREF(lock);
    Py_DECREF(lead);
    Py_DECREF(ts);
    return result;

python:
    return delegate_n(py_acquire, self, args, nargs, kwnames);
}

static PyMethodDef lead_defs[] = {
    {"acquire", (PyCFunction)(void (*)(void))parker_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1)\n--\n\nTake the token; lead the ring meanwhile (C "
     "accelerator of RingParker.acquire)."},
    {NULL, NULL, 0, NULL}};

/* configure_ring("lead", RingParker, Leadership, ThreadState, WaitBlock, py_acquire,
 *                RingBusyError, threading.Lock()) */
static PyObject *
configure_lead(PyObject *args)
{
    const char *what;
    PyTypeObject *tp, *leadt, *tst, *wbt;
    PyObject *acquire, *busy, *sample;
    if (!PyArg_ParseTuple(args, "sO!O!O!O!OOO:configure_ring", &what, &PyType_Type, &tp,
                          &PyType_Type, &leadt, &PyType_Type, &tst, &PyType_Type, &wbt, &acquire,
                          &busy, &sample)) {
        return NULL;
    }
    s_enter_or_follow = PyUnicode_InternFromString("enter_or_follow");
    s_wait_as_leader = PyUnicode_InternFromString("_wait_as_leader");
    if (s_enter_or_follow == NULL || s_wait_as_leader == NULL) {
        return NULL;
    }
    py_enter_or_follow = _PyType_Lookup(leadt, s_enter_or_follow);
    py_wait_as_leader = _PyType_Lookup(tp, s_wait_as_leader);
    if (py_enter_or_follow == NULL || py_wait_as_leader == NULL) {
        PyErr_SetString(PyExc_TypeError, "enter_or_follow, _wait_as_leader");
        return NULL;
    }
    Py_INCREF(py_enter_or_follow);
    Py_INCREF(py_wait_as_leader);
    if (g_lead_ok || !g_ring_ok || !g_deferral_ok || !g_reaper_ok) {
        PyErr_SetString(PyExc_RuntimeError, "configured once, after ring, deferral and reaper");
        return NULL;
    }
    if (s_acquire_r == NULL) {
        s_acquire_r = PyUnicode_InternFromString("acquire");
    }
    s_leave = PyUnicode_InternFromString("leave");
    s_idle_for = PyUnicode_InternFromString("idle_for");
    s_flush_taken = PyUnicode_InternFromString("flush_taken");
    s_enter = PyUnicode_InternFromString("enter");
    s_enter_timeout = PyUnicode_InternFromString("enter_timeout");
    s_sq_ready = PyUnicode_InternFromString("sq_ready");
    if (s_acquire_r == NULL || s_leave == NULL || s_idle_for == NULL || s_flush_taken == NULL ||
        s_enter == NULL || s_enter_timeout == NULL || s_sq_ready == NULL) {
        return NULL;
    }
    if (kind_init(&k_parker, tp, PARKER_NAMES) < 0 ||
        kind_init(&k_lead_a, leadt, LEAD_A_NAMES) < 0 ||
        kind_init(&k_lead_b, leadt, LEAD_B_NAMES) < 0 || kind_init(&k_ts, tst, TS_NAMES) < 0 ||
        kind_init(&k_wb, wbt, WB_NAMES) < 0) {
        return NULL;
    }
    ref(&py_acquire, acquire);
    ref(&g_busy, busy);
    if (strcmp(Py_TYPE(sample)->tp_name, "_thread.lock") == 0 &&
        Py_TYPE(sample)->tp_basicsize == (Py_ssize_t)sizeof(ring_lockobject)) {
        g_plain_lock_type = (PyTypeObject *)Py_NewRef(Py_TYPE(sample));
    }
    PyObject *d = descriptors(tp, lead_defs);
    if (d == NULL) {
        return NULL;
    }
    ref(&g_acquire_descr, PyDict_GetItemString(d, "acquire"));
    g_lead_ok = 1;
    return d;
}

/* ------------------------------------------------------------------ the port wait (_port.py) */

/* CompletionPort.get_many(max_count) / get_many(max_count, None) in C: the hot shapes of a
 * thread that stays on its port, not alertable, no timeout: take what is queued, or register
 * its wait block (LIFO) and block in it (``_wait.block``, its parker being the ring leader's C
 * acquire when it leads the ring). Statement for statement with the Python method; every other
 * shape (first call on this port, APCs or termination pending, idle work queued, a closed
 * port, keywords, subclasses) goes to the Python method before anything is touched; a wait
 * that ends without a hand-off ends in the Python continuation ``_after_wait``; an exception
 * once anything was touched goes through ``_interrupted``, as in Python. */

static const char *const PORT2_NAMES[] = {"closed", "_running", "_packets", "_getters",
                                          "concurrency", NULL};
enum { Q_CLOSED, Q_RUNNING, Q_PACKETS, Q_GETTERS, Q_CONCURRENCY };
static const char *const TS2_NAMES[] = {"special_apcs", "terminating", "block_listener", "wait",
                                        "parker", "on_block", "wake_pending", NULL};
enum { U_SPECIAL, U_TERMINATING, U_LISTENER, U_WAIT, U_PARKER, U_ON_BLOCK, U_WAKE_PENDING };
static const char *const WB2_NAMES[] = {"thread", "objects", "wait_all", "alertable", "detach",
                                        "result", "data", NULL};
enum { W_THREAD, W_OBJECTS, W_WAIT_ALL, W_ALERTABLE, W_DETACH, W_RESULT, W_DATA };

static kind_t k_port2, k_ts2, k_wb2;
static int g_port_ok;
static PyTypeObject *g_wb_type;
static PyObject *py_get_many, *g_tls, *g_dispatch_lock, *g_py_block, *g_unlink_wait,
    *g_check_terminating, *g_flush_deferred, *g_take, *g_terminated, *g_handoff;
static PyObject *s_ts, *s_queued, *s_detach, *s_clear, *s_interrupted, *s_after_wait,
    *s_deferred2, *g_empty_tuple;

static int
flag(PyObject *obj, kind_t *k, int i)
{
    return is_true(slot_borrow(k, obj, i));
}

/* ``_wait.block(ts, wb, None, None)`` for a wait that is not alertable: the result (a new
 * reference), or NULL with an error. */
static PyObject *
port_block(PyObject *ts, PyObject *wb)
{
    PyObject *on_block = slot_borrow(&k_ts2, ts, U_ON_BLOCK);
    if (on_block != Py_None) {
        PyObject *args[4] = {ts, wb, Py_None, Py_None};
        return PyObject_Vectorcall(g_py_block, args, 4, NULL);
    }
    PyObject *parker = slot_borrow(&k_ts2, ts, U_PARKER);
    if (parker == NULL) {
        PyErr_SetString(PyExc_AttributeError, "parker");
        return NULL;
    }
    Py_INCREF(parker);
    PyObject *result = NULL;
    for (;;) {
        PyObject *got_obj;
        if (g_acquire_descr != NULL &&
            _PyType_Lookup(Py_TYPE(parker), s_acquire_r) == g_acquire_descr) {
            got_obj = parker_acquire(parker, NULL, 0, NULL);
        }
        else {
            got_obj = PyObject_CallMethodNoArgs(parker, s_acquire_r);
        }
        if (got_obj == NULL) {
            goto out;
        }
        int got = PyObject_IsTrue(got_obj);
        Py_DECREF(got_obj);
        if (got < 0) {
            goto out;
        }
        if (!got && slot_borrow(&k_ts2, ts, U_WAIT) == Py_None) {
            /* Ended by this thread itself, awake in its wait (``_wait.block``). */
            PyObject *r = slot_borrow(&k_wb2, wb, W_RESULT);
            if (r != NULL && r != Py_None) {
                Py_INCREF(r);
                if (PyObject_RichCompareBool(r, g_terminated, Py_EQ) == 1) {
                    PyObject *c = call_n(g_check_terminating, ts, NULL);
                    if (c == NULL) {
                        Py_DECREF(r);
                        goto out;
                    }
                    Py_DECREF(c);
                }
                result = r;
                goto out;
            }
        }
        if (fio_acquire(g_dispatch_lock) < 0) {
            goto out;
        }
        int ok = 0;
        PyObject *r = NULL;
        if (got) {
            set(&k_ts2, 1, ts, U_WAKE_PENDING, Py_NewRef(Py_False));
        }
        else {
            int wp = flag(ts, &k_ts2, U_WAKE_PENDING);
            if (wp < 0) {
                goto locked_out;
            }
            if (wp) {
                /* the token came after our acquire gave up: taken, the parker locked again */
                if (try_lock(parker) < 0) {
                    goto locked_out;
                }
                set(&k_ts2, 1, ts, U_WAKE_PENDING, Py_NewRef(Py_False));
            }
        }
        r = slot_borrow(&k_wb2, wb, W_RESULT);
        if (r == NULL) {
            PyErr_SetString(PyExc_AttributeError, "result");
            goto locked_out;
        }
        Py_INCREF(r);
        if (r == Py_None) {
            int term = flag(ts, &k_ts2, U_TERMINATING);
            if (term < 0) {
                goto locked_out;
            }
            if (!term) {
                Py_CLEAR(r);
                fio_release(g_dispatch_lock);
                continue; /* spurious (a follower promoted, a stale token): block again */
            }
            if (call_void(g_unlink_wait, wb, NULL) < 0) {
                goto locked_out;
            }
            Py_SETREF(r, Py_NewRef(g_terminated));
        }
        set(&k_ts2, 1, ts, U_WAIT, Py_NewRef(Py_None));
        ok = 1;
    locked_out:
        fio_release(g_dispatch_lock);
        if (!ok) {
            Py_XDECREF(r);
            goto out;
        }
        if (PyObject_RichCompareBool(r, g_terminated, Py_EQ) == 1) {
            PyObject *c = call_n(g_check_terminating, ts, NULL);
            if (c == NULL) {
                Py_DECREF(r);
                goto out;
            }
            Py_DECREF(c);
        }
        result = r;
        goto out;
    }
out:
    Py_DECREF(parker);
    return result;
}

/* ``self._interrupted(ts, wb, taken)`` with the current exception kept (or replaced by the
 * handler's own): always returns NULL. */
static PyObject *
port_interrupted(PyObject *self, PyObject *ts, PyObject *wb, PyObject *taken)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *args[4] = {self, ts, wb == NULL ? Py_None : wb, taken == NULL ? Py_None : taken};
    PyObject *r = PyObject_VectorcallMethod(s_interrupted, args, 4, NULL);
    if (r == NULL) {
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return NULL;
    }
    Py_DECREF(r);
    PyErr_Restore(et, ev, etb);
    return NULL;
}

static PyObject *
handoff(PyObject *taken)
{
    return PyTuple_Pack(2, g_handoff, taken);
}

/* CompletionPort.get_many(max_count, timeout=None, *, alertable=False) */
static PyObject *
port_get_many(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames)) {
        /* ``alertable=False`` only (``get()`` passes it) */
        if (PyTuple_GET_SIZE(kwnames) != 1 ||
            PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "alertable") != 0 ||
            args[nargs] != Py_False) {
            goto python;
        }
    }
    if (!g_port_ok || nargs < 1 || nargs > 2 || (nargs == 2 && args[1] != Py_None) ||
        !PyLong_CheckExact(args[0]) || !kind_fast(&k_port2, Py_TYPE(self))) {
        goto python;
    }
    int overflow;
    long long max_count = PyLong_AsLongLongAndOverflow(args[0], &overflow);
    if (overflow || max_count < 1) {
        PyErr_Clear();
        goto python; /* (ERROR_INVALID_PARAMETER from Python) */
    }
    PyObject *ts = PyObject_GetAttr(g_tls, s_ts);
    if (ts == NULL) {
        PyErr_Clear();
        goto python; /* a thread's first wait: current_thread_state adopts it */
    }
    if (!kind_fast(&k_ts2, Py_TYPE(ts))) {
        Py_DECREF(ts);
        goto python;
    }
    int r1 = flag(ts, &k_ts2, U_SPECIAL), r2 = r1 ? r1 : flag(ts, &k_ts2, U_TERMINATING);
    if (r1 || r2) {
        Py_DECREF(ts);
        if (r1 < 0 || r2 < 0) {
            PyErr_Clear();
        }
        goto python; /* APCs to run, termination: the Python method */
    }
    PyObject *wb = NULL, *taken = NULL, *result = NULL;
    if (fio_acquire(g_dispatch_lock) < 0) {
        result = port_interrupted(self, ts, NULL, NULL);
        Py_DECREF(ts);
        return result;
    }
    /* under LOCK; the hint of idle work read here, as the Python method reads it */
    int c = flag(self, &k_port2, Q_CLOSED);
    PyObject *queued = c ? NULL : PyObject_GetAttr(g_idle_work, s_queued);
    int q = queued == NULL ? -1 : PyObject_IsTrue(queued);
    Py_XDECREF(queued);
    if (c != 0 || q != 0 || slot_borrow(&k_ts2, ts, U_LISTENER) != self) {
        fio_release(g_dispatch_lock);
        Py_DECREF(ts);
        if (c < 0 || q < 0) {
            PyErr_Clear();
        }
        /* closed (Python raises), idle work this thread may run, or another port's thread
         * (_enter_locked): the Python method, nothing touched */
        goto python;
    }
    PyObject *running = slot_borrow(&k_port2, self, Q_RUNNING);
    PyObject *packets = slot_borrow(&k_port2, self, Q_PACKETS);
    PyObject *getters = slot_borrow(&k_port2, self, Q_GETTERS);
    PyObject *conc = slot_borrow(&k_port2, self, Q_CONCURRENCY);
    if (running == NULL || !PySet_CheckExact(running) || packets == NULL || getters == NULL ||
        !PyList_CheckExact(getters) || conc == NULL || !PyLong_CheckExact(conc)) {
        fio_release(g_dispatch_lock);
        Py_DECREF(ts);
        goto python;
    }
    Py_INCREF(running);
    Py_INCREF(packets);
    Py_INCREF(getters);
    long long concurrency = PyLong_AsLongLong(conc);
    int ok = 0;
    if (concurrency == -1 && PyErr_Occurred()) {
        goto locked_out;
    }
    if (PySet_Discard(running, ts) < 0) {
        goto locked_out;
    }
    Py_ssize_t n = PyObject_Length(packets);
    if (n < 0) {
        goto locked_out;
    }
    if (n && PySet_GET_SIZE(running) < concurrency) {
        if (n <= max_count) {
            taken = PySequence_List(packets);
            if (taken == NULL) {
                goto locked_out;
            }
            PyObject *cr = PyObject_CallMethodNoArgs(packets, s_clear);
            if (cr == NULL) {
                goto locked_out;
            }
            Py_DECREF(cr);
        }
        else {
            taken = call_n(g_take, packets, args[0]);
            if (taken == NULL) {
                goto locked_out;
            }
        }
        if (PySet_Add(running, ts) < 0) {
            goto locked_out;
        }
    }
    else {
        PyObject *detach = PyObject_GetAttr(self, s_detach);
        if (detach == NULL) {
            goto locked_out;
        }
        wb = g_wb_type->tp_alloc(g_wb_type, 0);
        if (wb == NULL) {
            Py_DECREF(detach);
            goto locked_out;
        }
        set(&k_wb2, 1, wb, W_THREAD, Py_NewRef(ts));
        set(&k_wb2, 1, wb, W_OBJECTS, Py_NewRef(g_empty_tuple));
        set(&k_wb2, 1, wb, W_WAIT_ALL, Py_NewRef(Py_False));
        set(&k_wb2, 1, wb, W_ALERTABLE, Py_NewRef(Py_False));
        set(&k_wb2, 1, wb, W_DETACH, detach);
        set(&k_wb2, 1, wb, W_RESULT, Py_NewRef(Py_None));
        set(&k_wb2, 1, wb, W_DATA, Py_NewRef(args[0]));
        if (PyList_Append(getters, wb) < 0) {
            Py_CLEAR(wb); /* (not registered: nothing to undo) */
            goto locked_out;
        }
        set(&k_ts2, 1, ts, U_WAIT, Py_NewRef(wb));
    }
    ok = 1;
locked_out:
    fio_release(g_dispatch_lock);
    Py_DECREF(running);
    Py_DECREF(packets);
    Py_DECREF(getters);
    if (!ok) {
        port_interrupted(self, ts, wb, taken);
        goto done;
    }
    if (wb == NULL) {
        /* Returning without blocking: what a backend deferred to this wait goes out now. */
        PyObject *d = PyObject_GetAttr(g_idle_work, s_deferred2);
        int dt = d == NULL ? -1 : PyObject_IsTrue(d);
        Py_XDECREF(d);
        if (dt < 0 || (dt && call_void(g_flush_deferred, NULL, NULL) < 0)) {
            port_interrupted(self, ts, NULL, taken);
            goto done;
        }
        result = handoff(taken);
        goto done;
    }
    PyObject *code = port_block(ts, wb);
    if (code == NULL) {
        port_interrupted(self, ts, wb, NULL);
        goto done;
    }
    int is_handoff = PyObject_RichCompareBool(code, g_handoff, Py_EQ);
    if (is_handoff == 1) {
        PyObject *data = slot_borrow(&k_wb2, wb, W_DATA);
        result = data == NULL ? NULL : handoff(data);
        if (result == NULL) {
            port_interrupted(self, ts, wb, NULL);
        }
    }
    else if (is_handoff == 0) {
        PyObject *a[4] = {self, ts, wb, code};
        result = PyObject_VectorcallMethod(s_after_wait, a, 4, NULL);
    }
    else {
        port_interrupted(self, ts, wb, NULL);
    }
    Py_DECREF(code);
done:
    Py_XDECREF(wb);
    Py_XDECREF(taken);
    Py_DECREF(ts);
    return result;

python:
    return delegate_n(py_get_many, self, args, nargs, kwnames);
}

static PyMethodDef port_defs[] = {
    {"get_many", (PyCFunction)(void (*)(void))port_get_many, METH_FASTCALL | METH_KEYWORDS,
     "get_many(max_count, timeout=None, *, alertable=False)\n--\n\n"
     "GetQueuedCompletionStatusEx (C accelerator of the Python method's hot shapes)."},
    {NULL, NULL, 0, NULL}};

/* configure_ring("port", CompletionPort, WaitBlock, ThreadState, get_many, tls, LOCK,
 *                IdleWork, block, unlink_wait, check_terminating, flush_deferred, _take,
 *                TERMINATED, WAIT_OBJECT_0)  (after "lead") */
static PyObject *
configure_port(PyObject *args)
{
    const char *what;
    PyTypeObject *tp, *wbt, *tst;
    PyObject *gm, *tls, *lock, *idle, *block, *unlink, *check, *flush, *take, *term, *ho;
    if (!PyArg_ParseTuple(args, "sO!O!O!OOOOOOOOOOO:configure_ring", &what, &PyType_Type, &tp,
                          &PyType_Type, &wbt, &PyType_Type, &tst, &gm, &tls, &lock, &idle, &block,
                          &unlink, &check, &flush, &take, &term, &ho)) {
        return NULL;
    }
    if (g_port_ok) {
        PyErr_SetString(PyExc_RuntimeError, "configured once");
        return NULL;
    }
    if (s_acquire_r == NULL && (s_acquire_r = PyUnicode_InternFromString("acquire")) == NULL) {
        return NULL;
    }
    s_ts = PyUnicode_InternFromString("ts");
    s_queued = PyUnicode_InternFromString("queued");
    s_detach = PyUnicode_InternFromString("_detach");
    s_clear = PyUnicode_InternFromString("clear");
    s_interrupted = PyUnicode_InternFromString("_interrupted");
    s_after_wait = PyUnicode_InternFromString("_after_wait");
    s_deferred2 = PyUnicode_InternFromString("deferred");
    g_empty_tuple = PyTuple_New(0);
    if (s_ts == NULL || s_queued == NULL || s_detach == NULL || s_clear == NULL ||
        s_interrupted == NULL || s_after_wait == NULL || s_deferred2 == NULL ||
        g_empty_tuple == NULL) {
        return NULL;
    }
    if (kind_init(&k_port2, tp, PORT2_NAMES) < 0 || kind_init(&k_ts2, tst, TS2_NAMES) < 0 ||
        kind_init(&k_wb2, wbt, WB2_NAMES) < 0) {
        return NULL;
    }
    g_wb_type = (PyTypeObject *)Py_NewRef(wbt);
    ref(&py_get_many, gm);
    ref(&g_tls, tls);
    ref(&g_dispatch_lock, lock);
    ref(&g_idle_work, idle);
    ref(&g_py_block, block);
    ref(&g_unlink_wait, unlink);
    ref(&g_check_terminating, check);
    ref(&g_flush_deferred, flush);
    ref(&g_take, take);
    ref(&g_terminated, term);
    ref(&g_handoff, ho);
    g_port_ok = 1;
    return descriptors(tp, port_defs);
}
