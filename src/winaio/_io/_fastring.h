/* Shared by the io_uring ring's C sources (not a public interface): ``_fastring.c`` (the ring's
 * primitives on BackendRing, ``configure_ring``), ``_fastdefer.c`` (Deferral's take_burst and
 * hint_locked), ``_fastreap.c`` (Reaper.reap), ``_fastlead.c`` (RingParker.acquire: the
 * leader's wait), ``_fastport.c`` (CompletionPort.get_many) and ``_fastwatch.c`` (the ring
 * thread's watch without the GIL). Every part is configured
 * through ``configure_ring(part, ...)``, the one entry of ``_fastio.c``'s method table. */
#ifndef WINAIO_FASTRING_H
#define WINAIO_FASTRING_H

#include "_fastio.h"
#include <math.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define U32 0xFFFFFFFFu

/* The ring's slots (``_fastring.c``'s kinds) */
enum { C_U32, C_HEAD, C_HEAD_I, C_TAIL_I, C_MASK, C_SQ_U32, C_SQ_FLAGS_I };
enum { S_U32, S_HEAD_I, S_TAIL_I, S_TAIL, S_DIRTY, S_FD };
extern kind_t k_cq, k_cqe, k_sq;
/* Which parts are configured */
extern int g_ring_ok, g_deferral_ok, g_reaper_ok, g_lead_ok;
/* 1; IdleWork (the ports' hints) */
extern PyObject *fr_one, *fr_idle_work;
/* io_uring_enter's syscall number and flags, the SQ flags (from the Python constants) */
extern long c_nr_enter, c_getevents, c_ext_arg, c_needs_flush, c_cq_overflow;
/* The C methods, to call them directly where the class still has them */
extern PyObject *g_enter_descr, *g_enter_timeout_descr, *g_sq_ready_descr, *g_acquire_descr,
    *g_publish_descr;
/* "acquire"; _thread.lock when its layout is known (``_fastlead.c``) */
extern PyObject *s_acquire_r;
extern PyTypeObject *g_plain_lock_type;

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

static inline PyObject *
call1(PyObject *func, PyObject *self)
{
    return PyObject_Vectorcall(func, &self, 1, NULL);
}

static inline PyObject *
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

static inline int
cq_words(PyObject *ring, cq_t *c)
{
    if (!g_ring_ok || !kind_fast(&k_cq, Py_TYPE(ring))) {
        return 0;
    }
    Py_ssize_t len = 0, slen = 0; /* (set by mv_buf when it returns a buffer) */
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
static inline int
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

/* ``func()`` / ``func(a)`` / ``func(a, b)`` */
static inline PyObject *
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
static inline int
call_void(PyObject *func, PyObject *a, PyObject *b)
{
    PyObject *r = call_n(func, a, b);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

static inline int
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

static inline int
ref(PyObject **slot, PyObject *value)
{
    Py_XSETREF(*slot, Py_NewRef(value));
    return 0;
}

/* {name: method descriptor} for ``defs`` on ``tp`` */
PyObject *fr_descriptors(PyTypeObject *tp, PyMethodDef *defs);

/* The functions one part calls in another */
PyObject *ring_sq_ready(PyObject *self, PyObject *unused);
PyObject *ring_reap(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *ring_publish(PyObject *self, PyObject *unused);
PyObject *ring_enter(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *ring_enter_timeout(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *deferral_take_burst(PyObject *self, PyObject *ts);
PyObject *reaper_reap(PyObject *self, PyObject *unused);
PyObject *parker_acquire(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames);
/* lock.acquire(False): 1 taken, 0 not, -1 error (``_fastlead.c``) */
int try_lock(PyObject *lock);

/* configure_ring's parts */
PyObject *configure_deferral(PyObject *args);
PyObject *configure_reaper(PyObject *args);
PyObject *configure_lead(PyObject *args);
PyObject *configure_port(PyObject *args);
PyObject *configure_watch(PyObject *args);

/* ``_fastslot_done.c``: ``Reaper.reap``'s batch of plain receive slot CQEs, read in place from
 * the CQ ring under cq_lock (the count, NULL with an error, or NotImplemented: the general path,
 * nothing touched). */
PyObject *dn_slot_reap(PyObject *self, PyObject *ring, long long max_n);

#endif
