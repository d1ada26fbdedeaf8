/* Shared by the completion side's C sources (cdone, 2026-12-05): ``_fastdone.c`` (the lines,
 * the reaper, the configuration and every datum below), ``_fastdeliver.c`` (the delivery
 * funnel: ``deliver``, ``deliver_batch``, ``FileObject._forget_locked``) and ``_fastpost.c``
 * (posting to a completion port: ``_post_locked``, ``_posted_locked``, ``release_held_locked``,
 * ``_release_locked``). Not a public interface; see ``_fastdone.c`` for what they replace and
 * their invariants. */
#ifndef WINAIO_FASTDONE_H
#define WINAIO_FASTDONE_H

#include "_fastio.h"
#include "_fastslot.h"

enum { OP_DONE, OP_FILE, OP_OV, OP_EVENT, OP_ROUTINE, OP_SKIP_PORT, OP_REGISTERED, OP_SYNC };
enum { OP2_ISSUER };
enum { FI_PORT, FI_KEY, FI_SKIP_SET, FI_SIGNALED, FI_WAITERS, FI_PENDING, FI_CLOSING, FI_IN };
enum { FI2_OUT, FI2_SKIP_SUCCESS };
enum { OV_INFORMATION, OV_STATUS };
enum { EV_SIGNALED, EV_WAITERS };
enum { PO_CLOSED, PO_PACKETS, PO_GETTERS, PO_WAITERS, PO_HOLDING, PO_RUNNING, PO_CONCURRENCY };
enum { WB_DETACH, WB_DATA, WB_RESULT, WB_THREAD };
enum { TS_AWAKE, TS_WAIT, TS_WAKE_PENDING, TS_PARKER, TS_EXTENSIONS };
enum { LI_OPS, LI_DIRECT, LI_BUSY, LI_POLL_UD, LI_KEEP, LI_KEY };
enum { SL_LOCK, SL_LINES, SL_SPARE };
enum { RE_TABLE, RE_STREAMS, RE_MIGRATION, RE_DONE, RE_CANCELLED, RE_CLOSING, RE_SLOTS };
enum { MI_MIGRATING };


/* ------------------------------------------------------------------ the configured data */

extern int d_configured;
extern PyObject *d_lock;
extern PyTypeObject *d_port_type;
extern PyTypeObject *d_packet_type;
extern PyTypeObject *d_deque_type;
extern PyObject *d_deque_append, *d_deque_popleft, *d_deque_clear;
extern PyCFunction d_deque_append_fn;
extern PyObject *d_wake_waiters;
extern PyObject *d_queue_routine;
extern PyObject *d_py_forget;
extern PyObject *d_py_post, *d_py_release_held, *d_py_release, *d_py_posted;
extern PyObject *d_stream_kind;
extern long d_pollin;
extern PyObject *d_io_key;
extern PyObject *d_handoff;
extern PyObject *d_one;
extern PyObject *d_read_from_cqe;
extern PyObject *d_py_service_direct;
extern PyObject *d_c_service_direct;
extern PyObject *d_py_deliver_batch;
extern PyObject *d_py_process;
extern PyObject *d_py_deliver, *d_py_service;
extern PyObject *d_py_reaper_deliver;
extern PyObject *d_reaper_globals;
extern PyObject *d_plain_complete;
extern PyObject *d_report;
extern PyObject *d_batch_fn;
extern PyTypeObject *d_line_type, *d_inflight_type;
extern long d_ud_poke;
extern PyObject *d_success;
extern Py_ssize_t d_spare_max;
/* interned names */
extern PyObject *ds_forget, *ds_post, *ds_release_held, *ds_release, *ds_kind, *ds_poll_events,
    *ds_release_fd, *ds_append, *ds_popleft, *ds_clear, *ds_service, *ds_from_cqe, *ds_pop,
    *ds_get, *ds_release_parker, *ds_service_direct, *ds_process, *ds_process_cut,
    *ds_heads_cut, *ds_posted, *ds_complete, *ds_deliver, *ds_deliver_rest, *ds_deliver_batch,
    *ds_cuts;
/* the classes whose slots are read directly */
extern kind_t d_op, d_op2, d_file, d_file2, d_ov, d_event, d_port, d_wb, d_ts, d_line, d_lines,
    d_reaper, d_migration;

/* ------------------------------------------------------------------ small helpers */

/* ``obj.name(*args)`` through the attribute protocol. */
static inline PyObject *
call_method(PyObject *obj, PyObject *name, PyObject *const *args, Py_ssize_t n)
{
    PyObject *full[6];
    full[0] = obj;
    for (Py_ssize_t i = 0; i < n; i++) {
        full[i + 1] = args[i];
    }
    return PyObject_VectorcallMethod(name, full, (size_t)(n + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                     NULL);
}

static inline int
deque_append(PyObject *dq, PyObject *item)
{
    PyObject *r;
    if (Py_IS_TYPE(dq, d_deque_type) && d_deque_append_fn != NULL) {
        /* (the method descriptor's own function, called as its METH_O vectorcall calls it:
         * the descriptor's dispatch was ~110 instructions a packet; deliver, 2026-12-06) */
        r = d_deque_append_fn(dq, item);
    }
    else if (Py_IS_TYPE(dq, d_deque_type)) {
        PyObject *args[2] = {dq, item};
        r = PyObject_Vectorcall(d_deque_append, args, 2, NULL);
    }
    else {
        r = call_method(dq, ds_append, &item, 1);
    }
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

static inline PyObject *
deque_call0(PyObject *dq, PyObject *descr, PyObject *name)
{
    if (Py_IS_TYPE(dq, d_deque_type)) {
        return PyObject_Vectorcall(descr, &dq, 1, NULL);
    }
    return call_method(dq, name, NULL, 0);
}

/* Truth of a borrowed object: 1, 0 or -1. */
static inline int
is_true(PyObject *v)
{
    return v == Py_True ? 1 : v == Py_False ? 0 : v == Py_None ? 0 : PyObject_IsTrue(v);
}

/* ``obj.attr - 1`` stored back (the file's STREAM counters). */
static inline int
decrement(kind_t *k, int fast, PyObject *obj, int i)
{
    PyObject *v = get(k, fast, obj, i);
    if (v == NULL) {
        return -1;
    }
    PyObject *n;
    int overflow = 0;
    long x = PyLong_CheckExact(v) ? PyLong_AsLongAndOverflow(v, &overflow) : 0;
    if (PyLong_CheckExact(v) && !overflow && x > LONG_MIN) {
        /* (an exact int: its value less one, without the number protocol's dispatch - ~70
         * instructions a delivery; what ``v - 1`` gives) */
        n = PyLong_FromLong(x - 1);
    }
    else {
        n = PyNumber_Subtract(v, d_one); /* (overflow sets no error) */
    }
    Py_DECREF(v);
    if (n == NULL) {
        return -1;
    }
    return set(k, fast, obj, i, n);
}

/* A class attribute of ``op`` (``kind``, ``poll_events``): a new reference. */
static inline PyObject *
class_attr(PyObject *op, PyObject *name)
{
    PyTypeObject *tp = Py_TYPE(op);
    if (tp->tp_dictoffset == 0) {
        PyObject *v = _PyType_Lookup(tp, name);
        if (v != NULL && Py_TYPE(v)->tp_descr_get == NULL) {
            return Py_NewRef(v);
        }
    }
    return PyObject_GetAttr(op, name);
}

/* The type's attribute ``name`` is ``ref`` (a method not replaced). */
static inline int
has_method(PyTypeObject *tp, PyObject *name, PyObject *ref)
{
    return _PyType_Lookup(tp, name) == ref;
}

/* A Python call made by one request's delivery. An Exception stops that request's delivery
 * (-1, the error set: what the Python loop's ``except Exception`` does); any other
 * BaseException (an interrupt at the call's entry) is kept in *et.. and the delivery goes on
 * (0), so that the request's state is written whole before it propagates. */
static inline int
call_step(PyObject *res, PyObject **et, PyObject **ev, PyObject **etb)
{
    if (res != NULL) {
        Py_DECREF(res);
        return 0;
    }
    if (*et == NULL && !PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Fetch(et, ev, etb);
        return 0;
    }
    if (*et != NULL) {
        PyErr_Clear(); /* the interrupt kept is the one raised */
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------------------ across the sources */

/* The ports a batch holds (``deliver_batch``'s ``held``). */
#define MAX_HELD 16
typedef struct {
    PyObject *ports[MAX_HELD];
    int n;
    PyObject *more; /* a list, past MAX_HELD */
} held_t;

/* ``_fastpost.c`` */
int dn_post_locked(PyObject *port, PyObject *key, PyObject *ov, PyObject *status,
                   PyObject *information);
int dn_post(PyObject *port, PyObject *file, int ffast, PyObject *ov, PyObject *status,
            PyObject *information, held_t *h);
int dn_held_release(held_t *h);

/* ``_fastdeliver.c`` */
PyObject *dn_deliver_batch(PyObject *module, PyObject *batch);
PyObject *dn_deliver(PyObject *module, PyObject *const *args, size_t nargsf, PyObject *kwnames);

/* ``_fastdone.c``: ``service_direct`` over C arrays (``Reaper.process`` without a heads list) */
int dn_heads_direct(PyObject *streams, PyObject **lock, PyObject **lines, PyObject **spare);
PyObject *dn_service_heads(PyObject *streams, PyObject *lock, PyObject *lines, PyObject *spare,
                           PyObject *const *hl, PyObject *const *hr, Py_ssize_t n,
                           PyObject *finished);

/* ``_fastslot_done.c``: a receive slot's item of ``deliver_batch`` under LOCK (1 delivered, 0
 * nothing to deliver here - ``*op_out``/``*info_out`` set (new references) when its demoted
 * request is to be delivered instead - or -1 with an error). */
int dn_deliver_slot(PyObject *item, held_t *h, slot_drops_t *drops, PyObject **op_out,
                    PyObject **info_out);

/* ``_fastprocess.c`` */
PyObject *dn_process(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
/* ``reaper.cuts.<name>(*args)`` (at most 8: the continuations after an interrupt, the object
 * the reaper owns, ``reaper_cuts``): a new reference, or NULL with an error. */
PyObject *dn_cut_call(PyObject *reaper, PyObject *name, PyObject *const *args, Py_ssize_t n);
PyObject *dn_reaper_deliver(PyObject *self, PyObject *finished);

#endif
