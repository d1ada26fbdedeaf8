/* The completion side of the sockets' pended receives in C (cdone, 2026-12-05).
 *
 * What it replaces, with exactly their effects (the Python functions stay the reference and
 * the fallback; ``winaio._backends.uring.reaper`` installs these through ``_accel.register``):
 *
 * - ``_dispatch.deliver_batch(batch)``: the funnel of spec section 1.5 for a reaped batch, in one
 *   hold of the dispatcher LOCK: ``op.done``, the IOSB, the event E or the file object F,
 *   the APC or the packet queued on the file's port (``CompletionPort._post_locked`` with the
 *   port ``holding``: packets queue, waiters are released once at the end), the file's and the
 *   issuer's bookkeeping (``FileObject._forget_locked``), the synchronous handle's event; at
 *   the end every held port's ``release_held_locked`` (``_release_locked``: LIFO hand-off to
 *   the port's GQCS waiters under the concurrency limit, ``end_wait``).
 * - ``_dispatch.deliver(op, status, information, immediate=False)`` as the reaper's one-CQE
 *   path calls it: the same for one request, the port not held (``_post_locked`` in full: the
 *   packet handed straight to the most recent GQCS waiter when nothing is queued;
 *   ``_posted_locked``; SKIP_COMPLETION_PORT_ON_SUCCESS for an immediate success).
 * - ``StreamLines.service_direct(heads, finished)`` and the first case of
 *   ``StreamLines.service(line, res, finished)``: a direct head alone in its line whose RECV
 *   brought data, taken out in one hold of the backend's lock; every other line goes to the
 *   Python ``service``.
 * - ``Reaper.process(cqes, finished)`` for the common batch (every CQE a request's own, with a
 *   positive result) and ``Reaper.deliver(finished)`` (through the reaper module's
 *   ``deliver_batch``, whichever is in place); any other batch goes whole to the Python
 *   method before anything is touched.
 *
 * Invariants:
 * - Slots are read and written at their member descriptors' offsets only for types whose
 *   lookup gives those descriptors (``kind_fast``); other types go through the attribute
 *   protocol, so that every object is treated as the Python code treats it. A port of another
 *   class than CompletionPort, a CompletionPort whose ``_post_locked``/``_posted_locked``/
 *   ``release_held_locked``/``_release_locked`` were replaced, a file class whose
 *   ``_forget_locked`` is not FileObject's: their Python methods are called, at the point where
 *   the Python code calls them.
 * - Per request, the steps run in the Python order. An Exception from one stops that request
 *   (``deliver_batch`` collects it and goes on, as the Python loop's ``except Exception``;
 *   ``deliver`` raises it); any other BaseException (a KeyboardInterrupt at the entry of a
 *   Python call: ``wake_waiters``, ``_queue_routine``, ``_release_fd``, a parker's ``release``)
 *   is kept while the request's remaining state is written, then stops the batch. The held
 *   ports are released in every case (every one, even if one raises: the first error wins),
 *   then LOCK, then the error propagates.
 * - The hot shapes make no Python call: no interrupt can land between a CQE leaving the
 *   table (or a head its line) and its completion being queued. A result tuple is queued
 *   before its head is taken, so a failed allocation leaves the head in its line
 *   (``Reaper._heads_cut``); ``process`` hands the rest of a batch to ``_process_cut`` then.
 */
#include "_fastio.h"

#define MAX_HELD 16

static kind_t d_op, d_op2, d_file, d_file2, d_ov, d_event, d_port, d_wb, d_ts, d_line, d_lines,
    d_reaper, d_migration;

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
enum { RE_TABLE, RE_STREAMS, RE_MIGRATION, RE_DONE, RE_CANCELLED, RE_CLOSING };
enum { MI_MIGRATING };

static const char *const OP_NAMES[] = {"done", "file", "overlapped", "event", "routine",
                                       "skip_port", "registered", "sync_done", NULL};
static const char *const OP2_NAMES[] = {"issuer", NULL};
static const char *const FI_NAMES[] = {"port", "key", "skip_set_event", "_signaled", "_waiters",
                                       "_pending", "closing", "stream_in", NULL};
static const char *const FI2_NAMES[] = {"stream_out", "skip_port_on_success", NULL};
static const char *const OV_NAMES_D[] = {"information", "status", NULL};
static const char *const EV_NAMES[] = {"_signaled", "_waiters", NULL};
static const char *const PO_NAMES[] = {"closed", "_packets", "_getters", "_waiters",
                                       "holding", "_running", "concurrency", NULL};
static const char *const WB_NAMES[] = {"detach", "data", "result", "thread", NULL};
static const char *const TS_NAMES[] = {"awake_in_wait", "wait", "wake_pending", "parker",
                                       "extensions", NULL};
static const char *const LI_NAMES[] = {"ops", "direct", "busy", "poll_ud", "keep", "key", NULL};
static const char *const SL_NAMES[] = {"_lock", "lines", "_spare", NULL};
static const char *const RE_NAMES[] = {"_table", "_streams", "_migration", "done", "cancelled",
                                       "closing", NULL};
static const char *const MI_NAMES[] = {"migrating", NULL};

static int d_configured;
static PyObject *d_lock;             /* the dispatcher LOCK */
static PyTypeObject *d_port_type;    /* CompletionPort */
static PyTypeObject *d_packet_type;  /* CompletionPacket */
static PyTypeObject *d_deque_type;   /* collections.deque */
static PyObject *d_deque_append, *d_deque_popleft, *d_deque_clear; /* its method descriptors */
static PyObject *d_wake_waiters;     /* _dispatcher.wake_waiters */
static PyObject *d_queue_routine;    /* _dispatch._queue_routine */
static PyObject *d_py_forget;        /* FileObject._forget_locked (the reference) */
static PyObject *d_py_post, *d_py_release_held, *d_py_release, *d_py_posted; /* the port's */
static PyObject *d_stream_kind;      /* OpKind.STREAM */
static long d_pollin;
static PyObject *d_io_key;           /* the issuer's extensions key ("io") */
static PyObject *d_handoff;          /* WAIT_OBJECT_0 */
static PyObject *d_one;
static PyObject *d_read_from_cqe;    /* StreamReadOp.from_cqe */
static PyObject *d_py_service_direct;
static PyObject *d_py_deliver_batch;
static PyObject *d_py_process;       /* Reaper.process, the Python reference */
static PyObject *d_py_deliver, *d_py_service; /* _dispatch.deliver, StreamLines.service */
static PyObject *d_py_reaper_deliver; /* Reaper.deliver */
static PyObject *d_reaper_globals;    /* the reaper module's namespace (its ``deliver_batch``) */
static PyObject *d_plain_complete;    /* Operation.complete */
static PyObject *d_report;            /* common.report */
static PyObject *d_batch_fn;          /* this file's deliver_batch function object */
static PyTypeObject *d_line_type, *d_inflight_type;
static long d_ud_poke;  /* _dispatch.deliver_batch, the Python reference */
static PyObject *d_success;          /* STATUS_SUCCESS */
static Py_ssize_t d_spare_max;
static PyObject *ds_forget, *ds_post, *ds_release_held, *ds_release, *ds_kind, *ds_poll_events,
    *ds_release_fd, *ds_append, *ds_popleft, *ds_clear, *ds_service, *ds_from_cqe, *ds_pop, *ds_get, *ds_release_parker,
    *ds_service_direct, *ds_process, *ds_process_cut, *ds_heads_cut, *ds_posted, *ds_complete, *ds_deliver,
    *ds_deliver_rest, *ds_deliver_batch;


/* ------------------------------------------------------------------ small helpers */

/* ``obj.name(*args)`` through the attribute protocol. */
static PyObject *
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

static int
deque_append(PyObject *dq, PyObject *item)
{
    PyObject *r;
    if (Py_IS_TYPE(dq, d_deque_type)) {
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

static PyObject *
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
static int
decrement(kind_t *k, int fast, PyObject *obj, int i)
{
    PyObject *v = get(k, fast, obj, i);
    if (v == NULL) {
        return -1;
    }
    PyObject *n = PyNumber_Subtract(v, d_one);
    Py_DECREF(v);
    if (n == NULL) {
        return -1;
    }
    return set(k, fast, obj, i, n);
}

/* A class attribute of ``op`` (``kind``, ``poll_events``): a new reference. */
static PyObject *
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


/* ------------------------------------------------------------------ FileObject._forget_locked */

/* ``file._forget_locked(op)`` (the op is registered); ``*release`` is set (a new reference
 * to the file) when the descriptor must be released once the state is written. */
static int
forget_locked(PyObject *file, int ffast, PyObject *op, int ofast, PyObject **release)
{
    if (!has_method(Py_TYPE(file), ds_forget, d_py_forget)) {
        PyObject *r = call_method(file, ds_forget, &op, 1);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
        return 0;
    }
    int r = truth(&d_op, ofast, op, OP_REGISTERED);
    if (r <= 0) {
        return r;
    }
    if (set(&d_op, ofast, op, OP_REGISTERED, Py_NewRef(Py_False)) < 0) {
        return -1;
    }
    PyObject *pending = get(&d_file, ffast, file, FI_PENDING);
    if (pending == NULL) {
        return -1;
    }
    int ok;
    if (PyDict_CheckExact(pending)) {
        ok = PyDict_DelItem(pending, op);
        if (ok < 0 && PyErr_ExceptionMatches(PyExc_KeyError)) {
            PyErr_Clear();
            ok = 0;
        }
    }
    else {
        PyObject *args[2] = {op, Py_None};
        PyObject *res = call_method(pending, ds_pop, args, 2);
        ok = res == NULL ? -1 : 0;
        Py_XDECREF(res);
    }
    if (ok < 0) {
        Py_DECREF(pending);
        return -1;
    }
    PyObject *kind = class_attr(op, ds_kind);
    if (kind == NULL) {
        Py_DECREF(pending);
        return -1;
    }
    int stream = kind == d_stream_kind;
    Py_DECREF(kind);
    if (stream) {
        PyObject *ev = class_attr(op, ds_poll_events);
        if (ev == NULL) {
            Py_DECREF(pending);
            return -1;
        }
        long events = PyLong_AsLong(ev);
        Py_DECREF(ev);
        if (events == -1 && PyErr_Occurred()) {
            Py_DECREF(pending);
            return -1;
        }
        int rc = events & d_pollin ? decrement(&d_file, ffast, file, FI_IN)
                                   : decrement(&d_file2, kind_fast(&d_file2, Py_TYPE(file)), file,
                                               FI2_OUT);
        if (rc < 0) {
            Py_DECREF(pending);
            return -1;
        }
    }
    PyObject *issuer = get(&d_op2, kind_fast(&d_op2, Py_TYPE(op)), op, OP2_ISSUER);
    if (issuer == NULL) {
        Py_DECREF(pending);
        return -1;
    }
    PyObject *ext = get(&d_ts, kind_fast(&d_ts, Py_TYPE(issuer)), issuer, TS_EXTENSIONS);
    Py_DECREF(issuer);
    if (ext == NULL) {
        Py_DECREF(pending);
        return -1;
    }
    PyObject *ops;
    if (PyDict_CheckExact(ext)) {
        ops = PyDict_GetItemWithError(ext, d_io_key);
        Py_XINCREF(ops);
    }
    else {
        PyObject *args[1] = {d_io_key};
        ops = call_method(ext, ds_get, args, 1);
        if (ops == Py_None) {
            Py_CLEAR(ops);
        }
    }
    Py_DECREF(ext);
    if (ops == NULL && PyErr_Occurred()) {
        Py_DECREF(pending);
        return -1;
    }
    if (ops != NULL && ops != Py_None) {
        if (PyDict_CheckExact(ops)) {
            ok = PyDict_DelItem(ops, op);
            if (ok < 0 && PyErr_ExceptionMatches(PyExc_KeyError)) {
                PyErr_Clear();
                ok = 0;
            }
        }
        else {
            PyObject *args[2] = {op, Py_None};
            PyObject *res = call_method(ops, ds_pop, args, 2);
            ok = res == NULL ? -1 : 0;
            Py_XDECREF(res);
        }
        Py_DECREF(ops);
        if (ok < 0) {
            Py_DECREF(pending);
            return -1;
        }
    }
    else {
        Py_XDECREF(ops);
    }
    r = truth(&d_file, ffast, file, FI_CLOSING);
    if (r > 0) {
        Py_ssize_t left = PyObject_Length(pending);
        if (left < 0) {
            r = -1;
        }
        else if (left == 0) {
            *release = Py_NewRef(file);
        }
    }
    Py_DECREF(pending);
    return r < 0 ? -1 : 0;
}


/* ------------------------------------------------------------------ the completion port */

/* ``_take(packets, count)``: a new list. */
static PyObject *
take(PyObject *packets, PyObject *count_obj)
{
    Py_ssize_t n = PyObject_Length(packets);
    if (n < 0) {
        return NULL;
    }
    Py_ssize_t count = PyNumber_AsSsize_t(count_obj, PyExc_OverflowError);
    if (count == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n <= count) {
        PyObject *taken = PySequence_List(packets);
        if (taken == NULL) {
            return NULL;
        }
        PyObject *r = deque_call0(packets, d_deque_clear, ds_clear);
        if (r == NULL) {
            Py_DECREF(taken);
            return NULL;
        }
        Py_DECREF(r);
        return taken;
    }
    PyObject *taken = PyList_New(count);
    if (taken == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *p = deque_call0(packets, d_deque_popleft, ds_popleft);
        if (p == NULL) {
            /* (a deque of n > count packets: not reached) */
            Py_DECREF(taken);
            return NULL;
        }
        PyList_SET_ITEM(taken, i, p);
    }
    return taken;
}

/* ``CompletionPort._release_locked``: LIFO hand-off to the GQCS waiters under the concurrency
 * limit; each waiter's ``end_wait`` (its parker's release, a call) after its state. */
static int
release_locked(PyObject *port, int pfast)
{
    if (!Py_IS_TYPE(port, d_port_type) || !pfast || !has_method(Py_TYPE(port), ds_release, d_py_release)) {
        PyObject *r = call_method(port, ds_release, NULL, 0);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    int rc = -1;
    PyObject *packets = get(&d_port, 1, port, PO_PACKETS);
    PyObject *getters = get(&d_port, 1, port, PO_GETTERS);
    PyObject *running = get(&d_port, 1, port, PO_RUNNING);
    PyObject *concurrency = get(&d_port, 1, port, PO_CONCURRENCY);
    if (packets == NULL || getters == NULL || running == NULL || concurrency == NULL) {
        goto done;
    }
    for (;;) {
        Py_ssize_t np = PyObject_Length(packets);
        if (np < 0) {
            goto done;
        }
        Py_ssize_t ng = PyObject_Length(getters);
        if (ng < 0) {
            goto done;
        }
        if (np == 0 || ng == 0) {
            break;
        }
        PyObject *nr = PyLong_FromSsize_t(PyObject_Length(running));
        if (nr == NULL) {
            goto done;
        }
        int below = PyObject_RichCompareBool(nr, concurrency, Py_LT);
        Py_DECREF(nr);
        if (below <= 0) {
            if (below < 0) {
                goto done;
            }
            break;
        }
        PyObject *wb;
        if (PyList_CheckExact(getters)) {
            wb = Py_NewRef(PyList_GET_ITEM(getters, ng - 1));
            if (PyList_SetSlice(getters, ng - 1, ng, NULL) < 0) {
                Py_DECREF(wb);
                goto done;
            }
        }
        else {
            wb = PyObject_CallMethod(getters, "pop", NULL);
            if (wb == NULL) {
                goto done;
            }
        }
        int wfast = kind_fast(&d_wb, Py_TYPE(wb));
        PyObject *ts = NULL, *count = NULL, *taken = NULL;
        int ok = -1;
        if (set(&d_wb, wfast, wb, WB_DETACH, Py_NewRef(Py_None)) < 0) {
            goto wb_done;
        }
        if ((count = get(&d_wb, wfast, wb, WB_DATA)) == NULL) {
            goto wb_done;
        }
        if ((taken = take(packets, count)) == NULL) {
            goto wb_done;
        }
        if (set(&d_wb, wfast, wb, WB_DATA, taken) < 0) {
            goto wb_done;
        }
        if ((ts = get(&d_wb, wfast, wb, WB_THREAD)) == NULL) {
            goto wb_done;
        }
        if (PySet_CheckExact(running)) {
            if (PySet_Add(running, ts) < 0) {
                goto wb_done;
            }
        }
        else {
            PyObject *r = PyObject_CallMethod(running, "add", "O", ts);
            if (r == NULL) {
                goto wb_done;
            }
            Py_DECREF(r);
        }
        /* end_wait(wb, WAIT_OBJECT_0): the result first, then the flag (``Parker``) */
        if (set(&d_wb, wfast, wb, WB_RESULT, Py_NewRef(d_handoff)) < 0) {
            goto wb_done;
        }
        {
            int tfast = kind_fast(&d_ts, Py_TYPE(ts));
            int r = truth(&d_ts, tfast, ts, TS_AWAKE);
            if (r < 0) {
                goto wb_done;
            }
            if (r) {
                if (set(&d_ts, tfast, ts, TS_WAIT, Py_NewRef(Py_None)) < 0) {
                    goto wb_done;
                }
            }
            else {
                if ((r = truth(&d_ts, tfast, ts, TS_WAKE_PENDING)) < 0) {
                    goto wb_done;
                }
                if (!r) {
                    if (set(&d_ts, tfast, ts, TS_WAKE_PENDING, Py_NewRef(Py_True)) < 0) {
                        goto wb_done;
                    }
                    PyObject *parker = get(&d_ts, tfast, ts, TS_PARKER);
                    if (parker == NULL) {
                        goto wb_done;
                    }
                    PyObject *res = call_method(parker, ds_release_parker, NULL, 0);
                    Py_DECREF(parker);
                    if (res == NULL) {
                        goto wb_done;
                    }
                    Py_DECREF(res);
                }
            }
        }
        ok = 0;
    wb_done:
        Py_XDECREF(ts);
        Py_XDECREF(count);
        Py_DECREF(wb);
        if (ok < 0) {
            goto done;
        }
    }
    rc = 0;
done:
    Py_XDECREF(packets);
    Py_XDECREF(getters);
    Py_XDECREF(running);
    Py_XDECREF(concurrency);
    return rc;
}

/* ``port.release_held_locked()``. */
static int
release_held(PyObject *port)
{
    int pfast = kind_fast(&d_port, Py_TYPE(port));
    if (!Py_IS_TYPE(port, d_port_type) || !pfast ||
        !has_method(Py_TYPE(port), ds_release_held, d_py_release_held)) {
        PyObject *r = call_method(port, ds_release_held, NULL, 0);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    set(&d_port, 1, port, PO_HOLDING, Py_NewRef(Py_False));
    PyObject *packets = get(&d_port, 1, port, PO_PACKETS);
    if (packets == NULL) {
        return -1;
    }
    Py_ssize_t n = PyObject_Length(packets);
    if (n > 0) {
        int r = truth(&d_port, 1, port, PO_GETTERS);
        if (r > 0) {
            r = release_locked(port, 1);
        }
        if (r >= 0 && (n = PyObject_Length(packets)) > 0) {
            r = truth(&d_port, 1, port, PO_WAITERS);
            if (r > 0) {
                PyObject *res = PyObject_CallOneArg(d_wake_waiters, port);
                Py_XDECREF(res);
                r = res == NULL ? -1 : 0;
            }
        }
        if (r < 0) {
            n = -1;
        }
    }
    Py_DECREF(packets);
    return n < 0 ? -1 : 0;
}

typedef struct {
    PyObject *ports[MAX_HELD];
    int n;
    PyObject *more; /* a list, past MAX_HELD */
} held_t;

static int
held_add(held_t *h, PyObject *port)
{
    if (h->n < MAX_HELD) {
        h->ports[h->n++] = Py_NewRef(port);
        return 0;
    }
    if (h->more == NULL && (h->more = PyList_New(0)) == NULL) {
        return -1;
    }
    return PyList_Append(h->more, port);
}

/* Release every held port (each one, even if one raises: the first error is kept). */
static int
held_release(held_t *h)
{
    int rc = 0;
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    Py_ssize_t extra = h->more == NULL ? 0 : PyList_GET_SIZE(h->more);
    for (Py_ssize_t i = 0; i < h->n + extra; i++) {
        PyObject *port = i < h->n ? h->ports[i] : PyList_GET_ITEM(h->more, i - h->n);
        if (release_held(port) < 0) {
            if (rc == 0) {
                PyErr_Fetch(&et, &ev, &etb);
                rc = -1;
            }
            else {
                PyErr_Clear();
            }
        }
    }
    for (int i = 0; i < h->n; i++) {
        Py_DECREF(h->ports[i]);
    }
    Py_CLEAR(h->more);
    h->n = 0;
    if (rc < 0) {
        PyErr_Restore(et, ev, etb);
    }
    return rc;
}

/* ``port._posted_locked()`` (a packet was queued and someone waits). */
static int
posted_locked(PyObject *port)
{
    if (!has_method(Py_TYPE(port), ds_posted, d_py_posted)) {
        PyObject *r = call_method(port, ds_posted, NULL, 0);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    int r = truth(&d_port, 1, port, PO_HOLDING);
    if (r != 0) {
        return r < 0 ? -1 : 0;
    }
    if ((r = truth(&d_port, 1, port, PO_GETTERS)) < 0) {
        return -1;
    }
    if (r && release_locked(port, 1) < 0) {
        return -1;
    }
    PyObject *packets = get(&d_port, 1, port, PO_PACKETS);
    if (packets == NULL) {
        return -1;
    }
    Py_ssize_t n = PyObject_Length(packets);
    Py_DECREF(packets);
    if (n <= 0) {
        return n < 0 ? -1 : 0;
    }
    if ((r = truth(&d_port, 1, port, PO_WAITERS)) <= 0) {
        return r;
    }
    PyObject *res = PyObject_CallOneArg(d_wake_waiters, port);
    Py_XDECREF(res);
    return res == NULL ? -1 : 0;
}

/* ``port._post_locked(key, ov, status, information)`` (steals ``key``): the packet handed
 * straight to the most recent GQCS waiter when nothing is queued, the port not held and the
 * concurrency limit allows; else queued, and the waiters released (``_posted_locked``). The
 * waiter's parker is released last. */
static int
post_locked(PyObject *port, PyObject *key, PyObject *ov, PyObject *status,
            PyObject *information)
{
    int pfast = kind_fast(&d_port, Py_TYPE(port));
    if (!Py_IS_TYPE(port, d_port_type) || !pfast ||
        !has_method(Py_TYPE(port), ds_post, d_py_post)) {
        PyObject *args[4] = {key, ov, status, information};
        PyObject *res = call_method(port, ds_post, args, 4);
        Py_DECREF(key);
        Py_XDECREF(res);
        return res == NULL ? -1 : 0;
    }
    int r;
    if ((r = truth(&d_port, 1, port, PO_CLOSED)) != 0) {
        Py_DECREF(key);
        return r < 0 ? -1 : 0; /* completions on files of a closed port are dropped (6.8) */
    }
    /* tuple.__new__(CompletionPacket, (key, ov, status, information)) */
    PyObject *packet = d_packet_type->tp_alloc(d_packet_type, 4);
    if (packet == NULL) {
        Py_DECREF(key);
        return -1;
    }
    PyTuple_SET_ITEM(packet, 0, key);
    PyTuple_SET_ITEM(packet, 1, Py_NewRef(ov));
    PyTuple_SET_ITEM(packet, 2, Py_NewRef(status));
    PyTuple_SET_ITEM(packet, 3, Py_NewRef(information));
    int rc = -1;
    PyObject *getters = get(&d_port, 1, port, PO_GETTERS);
    PyObject *packets = get(&d_port, 1, port, PO_PACKETS);
    PyObject *running = NULL, *concurrency = NULL, *wb = NULL, *ts = NULL, *data = NULL;
    if (getters == NULL || packets == NULL) {
        goto done;
    }
    Py_ssize_t ng = PyObject_Length(getters);
    Py_ssize_t np = ng > 0 ? PyObject_Length(packets) : 0;
    if (ng < 0 || np < 0) {
        goto done;
    }
    if (ng > 0 && np == 0 && PyList_CheckExact(getters)) {
        if ((r = truth(&d_port, 1, port, PO_HOLDING)) < 0) {
            goto done;
        }
        if (!r) {
            running = get(&d_port, 1, port, PO_RUNNING);
            concurrency = get(&d_port, 1, port, PO_CONCURRENCY);
            if (running == NULL || concurrency == NULL) {
                goto done;
            }
            Py_ssize_t nr = PyObject_Length(running);
            if (nr < 0) {
                goto done;
            }
            PyObject *nro = PyLong_FromSsize_t(nr);
            int below = nro == NULL ? -1 : PyObject_RichCompareBool(nro, concurrency, Py_LT);
            Py_XDECREF(nro);
            if (below < 0) {
                goto done;
            }
            if (below) {
                /* Straight to the most recent waiter (what _release_locked would do with
                 * this one packet): the port never becomes signaled. */
                if ((data = PyList_New(1)) == NULL) {
                    goto done;
                }
                PyList_SET_ITEM(data, 0, Py_NewRef(packet));
                wb = Py_NewRef(PyList_GET_ITEM(getters, ng - 1));
                if (PyList_SetSlice(getters, ng - 1, ng, NULL) < 0) {
                    goto done;
                }
                int wfast = kind_fast(&d_wb, Py_TYPE(wb));
                if (set(&d_wb, wfast, wb, WB_DETACH, Py_NewRef(Py_None)) < 0) {
                    goto done;
                }
                r = set(&d_wb, wfast, wb, WB_DATA, data);
                data = NULL;
                if (r < 0 || (ts = get(&d_wb, wfast, wb, WB_THREAD)) == NULL) {
                    goto done;
                }
                if (PySet_CheckExact(running)) {
                    if (PySet_Add(running, ts) < 0) {
                        goto done;
                    }
                }
                else {
                    PyObject *added = PyObject_CallMethod(running, "add", "O", ts);
                    if (added == NULL) {
                        goto done;
                    }
                    Py_DECREF(added);
                }
                if (set(&d_wb, wfast, wb, WB_RESULT, Py_NewRef(d_handoff)) < 0) {
                    goto done;
                }
                int tfast = kind_fast(&d_ts, Py_TYPE(ts));
                if ((r = truth(&d_ts, tfast, ts, TS_AWAKE)) < 0) {
                    goto done;
                }
                if (r) {
                    rc = set(&d_ts, tfast, ts, TS_WAIT, Py_NewRef(Py_None));
                    goto done;
                }
                if ((r = truth(&d_ts, tfast, ts, TS_WAKE_PENDING)) != 0) {
                    rc = r < 0 ? -1 : 0;
                    goto done;
                }
                if (set(&d_ts, tfast, ts, TS_WAKE_PENDING, Py_NewRef(Py_True)) < 0) {
                    goto done;
                }
                PyObject *parker = get(&d_ts, tfast, ts, TS_PARKER);
                if (parker == NULL) {
                    goto done;
                }
                PyObject *res = call_method(parker, ds_release_parker, NULL, 0);
                Py_DECREF(parker);
                Py_XDECREF(res);
                rc = res == NULL ? -1 : 0;
                goto done;
            }
        }
    }
    if (deque_append(packets, packet) < 0) {
        goto done;
    }
    if (ng > 0) {
        rc = posted_locked(port);
        goto done;
    }
    if ((r = truth(&d_port, 1, port, PO_WAITERS)) < 0) {
        goto done;
    }
    rc = r ? posted_locked(port) : 0;
done:
    Py_XDECREF(data);
    Py_XDECREF(ts);
    Py_XDECREF(wb);
    Py_XDECREF(running);
    Py_XDECREF(concurrency);
    Py_XDECREF(getters);
    Py_XDECREF(packets);
    Py_DECREF(packet);
    return rc;
}

/* ``port._post_locked(file.key, ...)`` while the batch holds the port (``holding``: queued,
 * the waiters released at the end of the batch). */
static int
post(PyObject *port, PyObject *file, int ffast, PyObject *ov, PyObject *status,
     PyObject *information, held_t *h)
{
    int pfast = kind_fast(&d_port, Py_TYPE(port));
    int r = truth(&d_port, pfast, port, PO_HOLDING);
    if (r < 0) {
        return -1;
    }
    if (!r) {
        if (held_add(h, port) < 0 ||
            set(&d_port, pfast, port, PO_HOLDING, Py_NewRef(Py_True)) < 0) {
            return -1;
        }
    }
    PyObject *key = get(&d_file, ffast, file, FI_KEY);
    if (key == NULL) {
        return -1;
    }
    return post_locked(port, key, ov, status, information);
}


/* ------------------------------------------------------------------ deliver_batch */

/* A Python call made by one request's delivery. An Exception stops that request's delivery
 * (-1, the error set: what the Python loop's ``except Exception`` does); any other
 * BaseException (an interrupt at the call's entry) is kept in *et.. and the delivery goes on
 * (0), so that the request's state is written whole before it propagates. */
static int
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

/* One request (``deliver``, or ``deliver_batch``'s loop body when ``h`` holds the batch's
 * ports), in the Python order: 1 delivered, 0 delivered already, or -1 with an error. */
static int
deliver_one(PyObject *op, PyObject *status, PyObject *information, held_t *h, int immediate)
{
    int ofast = kind_fast(&d_op, Py_TYPE(op));
    int r = truth(&d_op, ofast, op, OP_DONE);
    if (r != 0) {
        return r < 0 ? -1 : 0;
    }
    if (set(&d_op, ofast, op, OP_DONE, Py_NewRef(Py_True)) < 0) {
        return -1;
    }
    PyObject *et = NULL, *ev = NULL, *etb = NULL; /* an interrupt, raised at the end */
    PyObject *file = NULL, *ov = NULL, *event = NULL, *routine = NULL, *sync = NULL,
             *release = NULL;
    int ffast = 0;
    if ((file = get(&d_op, ofast, op, OP_FILE)) == NULL ||
        (ov = get(&d_op, ofast, op, OP_OV)) == NULL) {
        goto out;
    }
    int vfast = kind_fast(&d_ov, Py_TYPE(ov));
    if (set(&d_ov, vfast, ov, OV_INFORMATION, Py_NewRef(information)) < 0 ||
        set(&d_ov, vfast, ov, OV_STATUS, Py_NewRef(status)) < 0) {
        goto out;
    }
    ffast = kind_fast(&d_file, Py_TYPE(file));
    if ((event = get(&d_op, ofast, op, OP_EVENT)) == NULL) {
        goto out;
    }
    PyObject *wake = NULL; /* borrowed */
    if (event != Py_None) {
        int efast = kind_fast(&d_event, Py_TYPE(event));
        if (set(&d_event, efast, event, EV_SIGNALED, Py_NewRef(Py_True)) < 0 ||
            (r = truth(&d_event, efast, event, EV_WAITERS)) < 0) {
            goto out;
        }
        if (r) {
            wake = event;
        }
    }
    else {
        if ((r = truth(&d_file, ffast, file, FI_SKIP_SET)) < 0) {
            goto out;
        }
        if (!r) {
            if (set(&d_file, ffast, file, FI_SIGNALED, Py_NewRef(Py_True)) < 0 ||
                (r = truth(&d_file, ffast, file, FI_WAITERS)) < 0) {
                goto out;
            }
            if (r) {
                wake = file;
            }
        }
    }
    if (wake != NULL &&
        call_step(PyObject_CallOneArg(d_wake_waiters, wake), &et, &ev, &etb) < 0) {
        goto out;
    }
    if ((routine = get(&d_op, ofast, op, OP_ROUTINE)) == NULL) {
        goto out;
    }
    if (routine != Py_None) {
        PyObject *issuer = get(&d_op2, kind_fast(&d_op2, Py_TYPE(op)), op, OP2_ISSUER);
        if (issuer == NULL) {
            goto out;
        }
        PyObject *args[5] = {issuer, routine, status, information, ov};
        r = call_step(PyObject_Vectorcall(d_queue_routine, args, 5, NULL), &et, &ev, &etb);
        Py_DECREF(issuer);
        if (r < 0) {
            goto out;
        }
    }
    else {
        if ((r = truth(&d_op, ofast, op, OP_SKIP_PORT)) < 0) {
            goto out;
        }
        if (!r) {
            PyObject *port = get(&d_file, ffast, file, FI_PORT);
            if (port == NULL) {
                goto out;
            }
            if (port == Py_None) {
                r = 0;
            }
            else if (h != NULL) {
                r = post(port, file, ffast, ov, status, information, h);
            }
            else {
                /* no packet for an immediate success with SKIP_COMPLETION_PORT_ON_SUCCESS */
                r = immediate ? PyObject_RichCompareBool(status, g_zero, Py_EQ) : 0;
                if (r > 0) {
                    r = truth(&d_file2, kind_fast(&d_file2, Py_TYPE(file)), file,
                              FI2_SKIP_SUCCESS);
                }
                if (r == 0) {
                    PyObject *key = get(&d_file, ffast, file, FI_KEY);
                    r = key == NULL ? -1 : post_locked(port, key, ov, status, information);
                }
                else if (r > 0) {
                    r = 0;
                }
            }
            Py_DECREF(port);
            if (r < 0 && call_step(NULL, &et, &ev, &etb) < 0) {
                goto out;
            }
        }
    }
    if ((r = truth(&d_op, ofast, op, OP_REGISTERED)) < 0) {
        goto out;
    }
    if (r) {
        if (forget_locked(file, ffast, op, ofast, &release) < 0 &&
            call_step(NULL, &et, &ev, &etb) < 0) {
            goto out;
        }
        if (release != NULL) {
            /* the closing file's descriptor (``_release_fd``: subclasses override it) */
            PyObject *args[1] = {release};
            PyObject *res = PyObject_VectorcallMethod(
                ds_release_fd, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
            if (call_step(res, &et, &ev, &etb) < 0) {
                goto out;
            }
        }
    }
    if ((sync = get(&d_op, ofast, op, OP_SYNC)) == NULL) {
        goto out;
    }
    if (sync != Py_None) {
        int efast = kind_fast(&d_event, Py_TYPE(sync));
        if (set(&d_event, efast, sync, EV_SIGNALED, Py_NewRef(Py_True)) < 0 ||
            (r = truth(&d_event, efast, sync, EV_WAITERS)) < 0) {
            goto out;
        }
        if (r && call_step(PyObject_CallOneArg(d_wake_waiters, sync), &et, &ev, &etb) < 0) {
            goto out;
        }
    }
out:
    Py_XDECREF(file);
    Py_XDECREF(ov);
    Py_XDECREF(event);
    Py_XDECREF(routine);
    Py_XDECREF(sync);
    Py_XDECREF(release);
    if (et != NULL) {
        /* an interrupt: it wins over an Exception that stopped the delivery after it */
        PyErr_Restore(et, ev, etb);
        return -1;
    }
    return PyErr_Occurred() ? -1 : 1;
}

/* deliver_batch(batch) -> list of the exceptions raised (``_dispatch.deliver_batch``). */
static PyObject *
deliver_batch(PyObject *module, PyObject *batch)
{
    if (!PyList_CheckExact(batch)) {
        return PyObject_CallOneArg(d_py_deliver_batch, batch);
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(batch); i++) {
        PyObject *item = PyList_GET_ITEM(batch, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3) {
            return PyObject_CallOneArg(d_py_deliver_batch, batch);
        }
    }
    PyObject *errors = PyList_New(0);
    if (errors == NULL) {
        return NULL;
    }
    held_t h;
    h.n = 0;
    h.more = NULL;
    if (fio_acquire(d_lock) < 0) {
        Py_DECREF(errors);
        return NULL;
    }
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    /* (a call made for one request may run code that changes the list: indexed each time) */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(batch); i++) {
        PyObject *item = Py_NewRef(PyList_GET_ITEM(batch, i));
        int r = -1;
        if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 3) {
            r = deliver_one(PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1),
                            PyTuple_GET_ITEM(item, 2), &h, 0);
        }
        else {
            PyErr_SetString(PyExc_TypeError, "a batch item is (op, status, information)");
        }
        Py_DECREF(item);
        if (r < 0) {
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                PyErr_Fetch(&et, &ev, &etb); /* a BaseException: the batch stops */
                break;
            }
            /* a bug: collected, and the rest of the batch is still delivered */
            PyObject *t, *v, *tb;
            PyErr_Fetch(&t, &v, &tb);
            PyErr_NormalizeException(&t, &v, &tb);
            if (tb != NULL) {
                PyException_SetTraceback(v, tb);
            }
            int a = PyList_Append(errors, v);
            Py_XDECREF(t);
            Py_XDECREF(v);
            Py_XDECREF(tb);
            if (a < 0) {
                PyErr_Fetch(&et, &ev, &etb);
                break;
            }
        }
    }
    if (held_release(&h) < 0) {
        if (et == NULL) {
            PyErr_Fetch(&et, &ev, &etb);
        }
        else {
            PyErr_Clear();
        }
    }
    fio_release(d_lock);
    if (et != NULL) {
        Py_DECREF(errors);
        PyErr_Restore(et, ev, etb);
        return NULL;
    }
    return errors;
}


/* deliver(op, status, information, immediate=False) -> bool (``_dispatch.deliver``). */
static PyObject *
deliver(PyObject *module, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 3 || nargs > 4 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        return PyObject_Vectorcall(d_py_deliver, args, nargsf, kwnames);
    }
    int immediate = nargs == 4 ? PyObject_IsTrue(args[3]) : 0;
    if (immediate < 0) {
        return NULL;
    }
    if (fio_acquire(d_lock) < 0) {
        return NULL;
    }
    int r = deliver_one(args[0], args[1], args[2], NULL, immediate);
    fio_release(d_lock);
    if (r < 0) {
        return NULL;
    }
    return Py_NewRef(r ? Py_True : Py_False);
}


/* ------------------------------------------------------------------ StreamLines.service_direct */

static PyObject *
py_service_direct(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *full[4];
    if (nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "service_direct(heads, finished)");
        return NULL;
    }
    full[0] = self;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        full[i + 1] = args[i];
    }
    return PyObject_Vectorcall(d_py_service_direct, full, (size_t)nargs + 1, NULL);
}

/* Under the lines' lock: the head of ``line`` (its own RECV brought ``res`` > 0 bytes) alone
 * in its line and a plain receive: taken out, ``(op, STATUS_SUCCESS, res)`` appended to
 * ``finished``, the line ended (and kept as a spare): 1; another shape: 0 (nothing touched);
 * -1 with an error (nothing touched). No Python code runs. */
static int
take_head(PyObject *lines, PyObject *spare, PyObject *line, PyObject *res, PyObject *finished)
{
    if (!kind_fast(&d_line, Py_TYPE(line))) {
        return 0;
    }
    PyObject *ops = *(PyObject **)((char *)line + d_line.offsets[LI_OPS]);
    PyObject *direct = *(PyObject **)((char *)line + d_line.offsets[LI_DIRECT]);
    PyObject *busy = *(PyObject **)((char *)line + d_line.offsets[LI_BUSY]);
    PyObject *key = *(PyObject **)((char *)line + d_line.offsets[LI_KEY]);
    int dt = direct == NULL ? 0 : is_true(direct);
    int bt = busy == NULL ? 1 : is_true(busy);
    if (dt < 0 || bt < 0) {
        return -1;
    }
    if (ops == NULL || !Py_IS_TYPE(ops, d_deque_type) || !dt || bt || key == NULL ||
        !PyLong_CheckExact(key) || PyObject_Length(ops) != 1) {
        return 0;
    }
    PyObject *op = PySequence_GetItem(ops, 0);
    if (op == NULL) {
        return -1;
    }
    if (_PyType_Lookup(Py_TYPE(op), ds_from_cqe) != d_read_from_cqe) {
        Py_DECREF(op);
        return 0;
    }
    /* (op, STATUS_SUCCESS, res): queued first, so that a failed allocation leaves the head in
     * its line (``Reaper._heads_cut`` takes it) */
    PyObject *t = PyTuple_New(3);
    if (t == NULL) {
        Py_DECREF(op);
        return -1;
    }
    PyTuple_SET_ITEM(t, 0, op);
    PyTuple_SET_ITEM(t, 1, Py_NewRef(d_success));
    PyTuple_SET_ITEM(t, 2, Py_NewRef(res));
    int a = PyList_Append(finished, t);
    Py_DECREF(t);
    if (a < 0) {
        return -1;
    }
    PyObject *gone = PyObject_Vectorcall(d_deque_popleft, &ops, 1, NULL);
    Py_XDECREF(gone); /* (one op in the deque: cannot fail) */
    set(&d_line, 1, line, LI_POLL_UD, Py_NewRef(g_zero));
    set(&d_line, 1, line, LI_DIRECT, Py_NewRef(Py_False));
    set(&d_line, 1, line, LI_KEEP, Py_NewRef(Py_None));
    PyObject *cur = PyDict_GetItemWithError(lines, key); /* (an int key) */
    if (cur == line) {
        Py_INCREF(line); /* (the dict's reference may be the last) */
        if (PyDict_DelItem(lines, key) == 0 && PyList_GET_SIZE(spare) < d_spare_max) {
            /* empty, idle, nothing in the kernel: as good as new */
            if (PyList_Append(spare, line) < 0) {
                PyErr_Clear(); /* a spare is only an economy */
            }
        }
        Py_DECREF(line);
    }
    PyErr_Clear();
    return 1;
}

/* The lines' lock, dict and spares, when they are what the C code knows (new references). */
static int
lines_parts(PyObject *self, PyObject **lock, PyObject **lines, PyObject **spare)
{
    if (!kind_fast(&d_lines, Py_TYPE(self))) {
        return 0;
    }
    *lock = *(PyObject **)((char *)self + d_lines.offsets[SL_LOCK]);
    *lines = *(PyObject **)((char *)self + d_lines.offsets[SL_LINES]);
    *spare = *(PyObject **)((char *)self + d_lines.offsets[SL_SPARE]);
    if (*lock == NULL || *lines == NULL || *spare == NULL || !PyDict_CheckExact(*lines) ||
        !PyList_CheckExact(*spare)) {
        return 0;
    }
    /* held across the lock's release: the calls after it may change what the slots hold */
    Py_INCREF(*lock);
    Py_INCREF(*lines);
    Py_INCREF(*spare);
    return 1;
}

/* StreamLines.service_direct(heads, finished) -> cancelled count */
static PyObject *
service_direct(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *lock, *lines, *spare;
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[1])) {
        return py_service_direct(self, args, nargs);
    }
    PyObject *heads = args[0], *finished = args[1];
    Py_ssize_t n = PyList_GET_SIZE(heads);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(heads, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3) {
            return py_service_direct(self, args, nargs);
        }
    }
    if (!lines_parts(self, &lock, &lines, &spare)) {
        return py_service_direct(self, args, nargs);
    }
    Py_INCREF(heads);
    PyObject *slow = NULL, *result = NULL;
    if (fio_acquire(lock) < 0) {
        goto out;
    }
    /* Under the lock, on the hot shape: no Python code runs (no interrupt can cut it). */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(heads, i);
        int taken = take_head(lines, spare, PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1),
                              finished);
        if (taken < 0) {
            goto unlock;
        }
        if (!taken) {
            if (slow == NULL && (slow = PyList_New(0)) == NULL) {
                goto unlock;
            }
            if (PyList_Append(slow, item) < 0) {
                goto unlock;
            }
        }
    }
    result = Py_NewRef(g_zero);
unlock:
    fio_release(lock);
    if (result != NULL && slow != NULL) {
        /* every other line: ``service`` (with its own holds) */
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(slow); i++) {
            PyObject *item = PyList_GET_ITEM(slow, i);
            PyObject *a[3] = {PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1), finished};
            PyObject *c = call_method(self, ds_service, a, 3);
            if (c == NULL) {
                Py_CLEAR(result);
                break;
            }
            PyObject *sum = PyNumber_Add(result, c);
            Py_DECREF(c);
            Py_SETREF(result, sum);
            if (result == NULL) {
                break;
            }
        }
    }
out:
    Py_XDECREF(slow);
    Py_DECREF(heads);
    Py_DECREF(lock);
    Py_DECREF(lines);
    Py_DECREF(spare);
    return result;
}

/* StreamLines.service(line, res, finished) -> cancelled count: its first case (the head's own
 * RECV brought data, the head alone and a plain receive: one hold) in C; every other case,
 * and this one when the check under the lock fails, the Python method. */
static PyObject *
service(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *lock, *lines, *spare;
    if (nargs != 3 || !PyLong_CheckExact(args[1]) || _PyLong_Sign(args[1]) <= 0 ||
        !PyList_CheckExact(args[2]) || !kind_fast(&d_line, Py_TYPE(args[0]))) {
        goto python;
    }
    PyObject *direct = *(PyObject **)((char *)args[0] + d_line.offsets[LI_DIRECT]);
    if (direct != Py_True) {
        goto python;
    }
    if (!lines_parts(self, &lock, &lines, &spare)) {
        goto python;
    }
    int taken = -1;
    if (fio_acquire(lock) == 0) {
        taken = take_head(lines, spare, args[0], args[1], args[2]);
        fio_release(lock);
    }
    Py_DECREF(lock);
    Py_DECREF(lines);
    Py_DECREF(spare);
    if (taken < 0) {
        return NULL;
    }
    if (taken) {
        return Py_NewRef(g_zero);
    }
python: {
    PyObject *full[4] = {self, NULL, NULL, NULL};
    if (nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "service(line, res, finished)");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        full[i + 1] = args[i];
    }
    return PyObject_Vectorcall(d_py_service, full, (size_t)nargs + 1, NULL);
}
}


/* ------------------------------------------------------------------ Reaper.deliver */

/* Reaper.deliver(finished): the common batch (not closing, every op's ``complete`` the plain
 * one) through the module's ``deliver_batch`` (this file's, called directly when it is the one
 * in place); every other batch goes to the Python method. */
static PyObject *
reaper_deliver(PyObject *self, PyObject *finished)
{
    if (!PyList_CheckExact(finished) || !kind_fast(&d_reaper, Py_TYPE(self))) {
        goto python;
    }
    PyObject *closing = *(PyObject **)((char *)self + d_reaper.offsets[RE_CLOSING]);
    if (closing != Py_False) {
        goto python; /* (it wakes the closing ring thread first) */
    }
    Py_ssize_t n = PyList_GET_SIZE(finished);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(finished, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3 ||
            _PyType_Lookup(Py_TYPE(PyTuple_GET_ITEM(item, 0)), ds_complete) != d_plain_complete) {
            goto python;
        }
    }
    PyObject *fn = PyDict_GetItemWithError(d_reaper_globals, ds_deliver_batch); /* borrowed */
    if (fn == NULL) {
        if (!PyErr_Occurred()) {
            goto python;
        }
        return NULL;
    }
    PyObject *errors = fn == d_batch_fn ? deliver_batch(NULL, finished)
                                        : PyObject_CallOneArg(fn, finished);
    if (errors != NULL && PyList_CheckExact(errors) && PyList_GET_SIZE(errors) == 0) {
        Py_DECREF(errors);
        Py_RETURN_NONE;
    }
    if (errors != NULL) {
        /* a bug in a delivery: reported (``report``), the batch delivered regardless */
        PyObject *what = PyUnicode_FromFormat("completing a batch of %zd", n);
        PyObject *it = what == NULL ? NULL : PyObject_GetIter(errors);
        PyObject *exc;
        while (it != NULL && (exc = PyIter_Next(it)) != NULL) {
            PyObject *r = PyObject_CallFunctionObjArgs(d_report, what, exc, NULL);
            Py_DECREF(exc);
            if (r == NULL) {
                break;
            }
            Py_DECREF(r);
        }
        Py_XDECREF(it);
        Py_XDECREF(what);
        Py_DECREF(errors);
        if (!PyErr_Occurred()) {
            Py_RETURN_NONE;
        }
    }
    /* the Python method's ``except BaseException``: the rest delivered, then it propagates */
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *a[2] = {self, finished};
    PyObject *r = PyObject_VectorcallMethod(ds_deliver_rest, a, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                            NULL);
    if (r == NULL) {
        PyErr_Clear(); /* the first error is the one raised */
    }
    Py_XDECREF(r);
    PyErr_Restore(et, ev, etb);
    return NULL;

python: {
    PyObject *a[2] = {self, finished};
    return PyObject_Vectorcall(d_py_reaper_deliver, a, 2, NULL);
}
}

static PyMethodDef reaper_deliver_def = {
    "deliver", (PyCFunction)reaper_deliver, METH_O,
    "deliver(finished)\n--\n\n"
    "Complete a batch of operations, in order (C accelerator of Reaper.deliver)."};


/* ------------------------------------------------------------------ method definitions */

static PyMethodDef deliver_batch_def = {
    "deliver_batch", (PyCFunction)deliver_batch, METH_O,
    "deliver_batch(batch)\n--\n\n"
    "Deliver reaped completions in one hold of the dispatcher lock (C accelerator of\n"
    "_dispatch.deliver_batch); returns the exceptions raised."};

static PyMethodDef deliver_def = {
    "deliver", (PyCFunction)(void (*)(void))deliver, METH_FASTCALL | METH_KEYWORDS,
    "deliver(op, status, information, immediate=False)\n--\n\n"
    "Deliver one completion (C accelerator of _dispatch.deliver); False if delivered already."};

static PyMethodDef service_direct_def = {
    "service_direct", (PyCFunction)(void (*)(void))service_direct, METH_FASTCALL,
    "service_direct(heads, finished)\n--\n\n"
    "The plain direct heads of a reaped batch in one hold of the lock (C accelerator of\n"
    "StreamLines.service_direct); returns the cancelled count."};

static PyMethodDef service_def = {
    "service", (PyCFunction)(void (*)(void))service, METH_FASTCALL,
    "service(line, res, finished)\n--\n\n"
    "A line whose head's request ended (C accelerator of StreamLines.service's first case)."};

/* ------------------------------------------------------------------ Reaper.process */

static PyObject *
py_process(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *full[4];
    if (nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "process(cqes, finished)");
        return NULL;
    }
    full[0] = self;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        full[i + 1] = args[i];
    }
    return PyObject_Vectorcall(d_py_process, full, (size_t)nargs + 1, NULL);
}

/* ``obj.attr += n`` on a Reaper counter. */
static int
add_to(PyObject *self, int i, Py_ssize_t n, PyObject *more)
{
    PyObject *v = get(&d_reaper, 1, self, i);
    if (v == NULL) {
        return -1;
    }
    PyObject *sum;
    if (more != NULL) {
        sum = PyNumber_Add(v, more);
    }
    else {
        PyObject *k = PyLong_FromSsize_t(n);
        sum = k == NULL ? NULL : PyNumber_Add(v, k);
        Py_XDECREF(k);
    }
    Py_DECREF(v);
    if (sum == NULL) {
        return -1;
    }
    return set(&d_reaper, 1, self, i, sum);
}

/* Reaper.process(cqes, finished): the common batch - every CQE a request's own, with a
 * positive result: a FILE request's (success) or a direct STREAM head's (its line, serviced
 * with the others by ``service_direct``) - mapped without a Python frame; any other batch
 * (a poke, a failed or cancelled request, a migration, EOF) goes whole to the Python method,
 * before anything is touched. */
static PyObject *
process(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[1]) ||
        !kind_fast(&d_reaper, Py_TYPE(self))) {
        return py_process(self, args, nargs);
    }
    PyObject *cqes = args[0], *finished = args[1];
    PyObject *table = *(PyObject **)((char *)self + d_reaper.offsets[RE_TABLE]);
    PyObject *migration = *(PyObject **)((char *)self + d_reaper.offsets[RE_MIGRATION]);
    if (table == NULL || !Py_IS_TYPE(table, d_inflight_type) || migration == NULL ||
        !kind_fast(&d_migration, Py_TYPE(migration))) {
        return py_process(self, args, nargs);
    }
    PyObject *migrating = *(PyObject **)((char *)migration + d_migration.offsets[MI_MIGRATING]);
    if (migrating == NULL || !PyAnySet_CheckExact(migrating) || PySet_GET_SIZE(migrating)) {
        return py_process(self, args, nargs);
    }
    /* The check, touching nothing (no Python code runs from here to service_direct). */
    Py_ssize_t n = PyList_GET_SIZE(cqes);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *cqe = PyList_GET_ITEM(cqes, i);
        if (!PyTuple_CheckExact(cqe) || PyTuple_GET_SIZE(cqe) != 3 ||
            !PyLong_CheckExact(PyTuple_GET_ITEM(cqe, 0)) ||
            !PyLong_CheckExact(PyTuple_GET_ITEM(cqe, 1))) {
            return py_process(self, args, nargs);
        }
        PyObject *entry = PyDict_GetItemWithError(table, PyTuple_GET_ITEM(cqe, 0));
        if (entry == NULL) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            int overflow;
            long ud = PyLong_AsLongAndOverflow(PyTuple_GET_ITEM(cqe, 0), &overflow);
            if (!overflow && ud == d_ud_poke) {
                return py_process(self, args, nargs); /* the leaders' poke */
            }
            continue; /* UD_CANCEL: -ENOENT/-EALREADY are normal races */
        }
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2 ||
            _PyLong_Sign(PyTuple_GET_ITEM(cqe, 1)) <= 0) {
            return py_process(self, args, nargs);
        }
        PyObject *extra = PyTuple_GET_ITEM(entry, 1);
        if (Py_IS_TYPE(extra, d_line_type)) {
            PyObject *direct = kind_fast(&d_line, d_line_type)
                                   ? *(PyObject **)((char *)extra + d_line.offsets[LI_DIRECT])
                                   : NULL;
            if (direct != Py_True) {
                return py_process(self, args, nargs);
            }
        }
    }
    Py_ssize_t start = PyList_GET_SIZE(finished);
    PyObject *heads = NULL, *prev = NULL, *prev_entry = NULL;
    Py_ssize_t i = 0;
    for (; i < n; i++) {
        PyObject *cqe = PyList_GET_ITEM(cqes, i);
        PyObject *ud = PyTuple_GET_ITEM(cqe, 0), *res = PyTuple_GET_ITEM(cqe, 1);
        PyObject *entry = PyDict_GetItemWithError(table, ud);
        if (entry == NULL) {
            continue;
        }
        Py_INCREF(entry);
        PyObject *extra = PyTuple_GET_ITEM(entry, 1);
        PyObject *t = PyTuple_New(3);
        int r = -1;
        if (t != NULL) {
            if (Py_IS_TYPE(extra, d_line_type)) {
                PyTuple_SET_ITEM(t, 0, Py_NewRef(extra));
                PyTuple_SET_ITEM(t, 1, Py_NewRef(res));
                PyTuple_SET_ITEM(t, 2, Py_NewRef(ud));
                if (heads != NULL || (heads = PyList_New(0)) != NULL) {
                    r = PyList_Append(heads, t);
                }
            }
            else {
                PyTuple_SET_ITEM(t, 0, Py_NewRef(PyTuple_GET_ITEM(entry, 0)));
                PyTuple_SET_ITEM(t, 1, Py_NewRef(d_success));
                PyTuple_SET_ITEM(t, 2, Py_NewRef(res));
                r = PyList_Append(finished, t);
            }
            Py_DECREF(t);
        }
        if (r < 0) {
            Py_DECREF(entry);
            goto cut; /* CQE i is still in the table */
        }
        if (PyDict_DelItem(table, ud) < 0) {
            PyErr_Clear(); /* (an int key that is there) */
        }
        Py_XSETREF(prev_entry, entry);
        prev = cqe;
    }
    PyObject *cancelled = NULL;
    if (heads != NULL) {
        PyObject *a[3] = {get(&d_reaper, 1, self, RE_STREAMS), heads, finished};
        if (a[0] == NULL) {
            goto heads_cut;
        }
        cancelled = PyObject_VectorcallMethod(ds_service_direct, a,
                                              3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(a[0]);
        if (cancelled == NULL) {
            goto heads_cut;
        }
    }
    /* Counted before delivery, so that a woken issuer already sees them in statistics(). */
    int ok = add_to(self, RE_DONE, PyList_GET_SIZE(finished) - start, NULL);
    if (ok == 0 && cancelled != NULL) {
        ok = add_to(self, RE_CANCELLED, 0, cancelled);
    }
    Py_XDECREF(cancelled);
    Py_XDECREF(heads);
    Py_XDECREF(prev_entry);
    if (ok < 0) {
        return NULL;
    }
    Py_RETURN_NONE;

heads_cut: {
    /* the Python method's ``except BaseException`` around service_direct (Ctrl-C) */
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (add_to(self, RE_DONE, PyList_GET_SIZE(finished) - start, NULL) < 0) {
        PyErr_Clear();
    }
    PyObject *a[3] = {self, heads, finished};
    PyObject *r = PyObject_VectorcallMethod(ds_heads_cut, a, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                            NULL);
    if (r == NULL) {
        PyErr_Clear(); /* the first error is the one raised */
    }
    Py_XDECREF(r);
    Py_XDECREF(heads);
    Py_XDECREF(prev_entry);
    PyErr_Restore(et, ev, etb);
    return NULL;
}
cut: {
    /* a failed allocation at CQE i: the Python method's ``_process_cut`` maps the rest */
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (add_to(self, RE_DONE, PyList_GET_SIZE(finished) - start, NULL) < 0) {
        PyErr_Clear();
    }
    PyObject *rest = PyList_GetSlice(cqes, i, n);
    PyObject *it = rest == NULL ? NULL : PyObject_GetIter(rest);
    PyObject *empty = heads == NULL ? PyList_New(0) : Py_NewRef(heads);
    if (it != NULL && empty != NULL) {
        PyObject *a[9] = {self,
                          cqes,
                          it,
                          prev == NULL ? g_zero : PyTuple_GET_ITEM(prev, 0),
                          prev == NULL ? g_zero : PyTuple_GET_ITEM(prev, 1),
                          prev == NULL ? g_zero : PyTuple_GET_ITEM(prev, 2),
                          prev_entry == NULL ? Py_None : prev_entry,
                          empty,
                          finished};
        PyObject *r = PyObject_VectorcallMethod(ds_process_cut, a,
                                                9 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_XDECREF(r);
    }
    PyErr_Clear();
    Py_XDECREF(rest);
    Py_XDECREF(it);
    Py_XDECREF(empty);
    Py_XDECREF(heads);
    Py_XDECREF(prev_entry);
    PyErr_Restore(et, ev, etb);
    return NULL;
}
}

static PyMethodDef process_def = {
    "process", (PyCFunction)(void (*)(void))process, METH_FASTCALL,
    "process(cqes, finished)\n--\n\n"
    "Map a batch of CQEs to completions (C accelerator of Reaper.process's common batch)."};


/* ------------------------------------------------------------------ configure_done */

static PyObject *
intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

PyObject *
configure_done(PyObject *module, PyObject *args)
{
    PyTypeObject *opt, *filet, *ovt, *eventt, *portt, *packett, *wbt, *tst, *linet, *linest,
        *dequet, *reapert, *migrationt, *inflightt;
    PyObject *lock, *wake, *queue_routine, *py_batch, *from_cqe, *stream_kind, *pollin, *io_key,
        *handoff, *success, *spare_max, *ud_poke, *py_deliver, *globals, *plain_complete, *report;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!O!O!O!O!O!O!O!O!OOOOOOOOOOOOOO!OO:configure_done",
                          &PyType_Type, &opt, &PyType_Type, &filet, &PyType_Type, &ovt,
                          &PyType_Type, &eventt, &PyType_Type, &portt, &PyType_Type, &packett,
                          &PyType_Type, &wbt, &PyType_Type, &tst, &PyType_Type, &linet,
                          &PyType_Type, &linest, &PyType_Type, &dequet, &PyType_Type, &reapert,
                          &PyType_Type, &migrationt, &PyType_Type, &inflightt, &lock, &wake,
                          &queue_routine, &py_batch, &from_cqe, &stream_kind, &pollin, &io_key,
                          &handoff, &success, &spare_max, &ud_poke, &py_deliver,
                          &PyDict_Type, &globals, &plain_complete, &report)) {
        return NULL;
    }
    if (d_configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure_done is called once");
        return NULL;
    }
    if (!PyType_IsSubtype(packett, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "the packet type must be a tuple subclass");
        return NULL;
    }
    if (kind_init(&d_op, opt, OP_NAMES) < 0 || kind_init(&d_op2, opt, OP2_NAMES) < 0 ||
        kind_init(&d_file, filet, FI_NAMES) < 0 || kind_init(&d_file2, filet, FI2_NAMES) < 0 ||
        kind_init(&d_ov, ovt, OV_NAMES_D) < 0 || kind_init(&d_event, eventt, EV_NAMES) < 0 ||
        kind_init(&d_port, portt, PO_NAMES) < 0 || kind_init(&d_wb, wbt, WB_NAMES) < 0 ||
        kind_init(&d_ts, tst, TS_NAMES) < 0 || kind_init(&d_line, linet, LI_NAMES) < 0 ||
        kind_init(&d_lines, linest, SL_NAMES) < 0 || kind_init(&d_reaper, reapert, RE_NAMES) < 0 ||
        kind_init(&d_migration, migrationt, MI_NAMES) < 0) {
        return NULL;
    }
    if ((ds_forget = intern("_forget_locked")) == NULL || (ds_post = intern("_post_locked")) == NULL ||
        (ds_release_held = intern("release_held_locked")) == NULL ||
        (ds_release = intern("_release_locked")) == NULL || (ds_kind = intern("kind")) == NULL ||
        (ds_poll_events = intern("poll_events")) == NULL ||
        (ds_release_fd = intern("_release_fd")) == NULL || (ds_append = intern("append")) == NULL ||
        (ds_popleft = intern("popleft")) == NULL || (ds_clear = intern("clear")) == NULL ||
        (ds_service = intern("service")) == NULL || (ds_from_cqe = intern("from_cqe")) == NULL ||
        (ds_pop = intern("pop")) == NULL || (ds_get = intern("get")) == NULL ||
        (ds_release_parker = intern("release")) == NULL ||
        (ds_service_direct = intern("service_direct")) == NULL ||
        (ds_process = intern("process")) == NULL ||
        (ds_process_cut = intern("_process_cut")) == NULL ||
        (ds_heads_cut = intern("_heads_cut")) == NULL ||
        (ds_posted = intern("_posted_locked")) == NULL ||
        (ds_complete = intern("complete")) == NULL || (ds_deliver = intern("deliver")) == NULL ||
        (ds_deliver_rest = intern("_deliver_rest")) == NULL ||
        (ds_deliver_batch = intern("deliver_batch")) == NULL) {
        return NULL;
    }
    d_py_forget = Py_XNewRef(_PyType_Lookup(filet, ds_forget));
    d_py_post = Py_XNewRef(_PyType_Lookup(portt, ds_post));
    d_py_release_held = Py_XNewRef(_PyType_Lookup(portt, ds_release_held));
    d_py_release = Py_XNewRef(_PyType_Lookup(portt, ds_release));
    d_py_posted = Py_XNewRef(_PyType_Lookup(portt, ds_posted));
    d_py_service_direct = Py_XNewRef(_PyType_Lookup(linest, ds_service_direct));
    d_py_process = Py_XNewRef(_PyType_Lookup(reapert, ds_process));
    d_py_service = Py_XNewRef(_PyType_Lookup(linest, ds_service));
    d_py_deliver = Py_NewRef(py_deliver);
    d_py_reaper_deliver = Py_XNewRef(_PyType_Lookup(reapert, ds_deliver));
    d_reaper_globals = Py_NewRef(globals);
    d_plain_complete = Py_NewRef(plain_complete);
    d_report = Py_NewRef(report);
    if (d_py_process == NULL || d_py_posted == NULL || d_py_service == NULL ||
        d_py_reaper_deliver == NULL || d_py_forget == NULL || d_py_post == NULL || d_py_release_held == NULL ||
        d_py_release == NULL || d_py_service_direct == NULL) {
        PyErr_SetString(PyExc_TypeError, "configure_done: a method is missing");
        return NULL;
    }
    d_deque_type = (PyTypeObject *)Py_NewRef(dequet);
    d_deque_append = PyObject_GetAttr((PyObject *)dequet, ds_append);
    d_deque_popleft = PyObject_GetAttr((PyObject *)dequet, ds_popleft);
    d_deque_clear = PyObject_GetAttr((PyObject *)dequet, ds_clear);
    if (d_deque_append == NULL || d_deque_popleft == NULL || d_deque_clear == NULL) {
        return NULL;
    }
    d_pollin = PyLong_AsLong(pollin);
    d_spare_max = PyLong_AsSsize_t(spare_max);
    d_ud_poke = PyLong_AsLong(ud_poke);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if ((d_one = PyLong_FromLong(1)) == NULL) {
        return NULL;
    }
    if (g_zero == NULL && (g_zero = PyLong_FromLong(0)) == NULL) {
        return NULL;
    }
    d_lock = Py_NewRef(lock);
    d_port_type = (PyTypeObject *)Py_NewRef(portt);
    d_packet_type = (PyTypeObject *)Py_NewRef(packett);
    d_wake_waiters = Py_NewRef(wake);
    d_queue_routine = Py_NewRef(queue_routine);
    d_py_deliver_batch = Py_NewRef(py_batch);
    d_read_from_cqe = Py_NewRef(from_cqe);
    d_stream_kind = Py_NewRef(stream_kind);
    d_io_key = Py_NewRef(io_key);
    d_handoff = Py_NewRef(handoff);
    d_success = Py_NewRef(success);
    d_line_type = (PyTypeObject *)Py_NewRef(linet);
    d_inflight_type = (PyTypeObject *)Py_NewRef(inflightt);
    PyObject *batch = PyCFunction_New(&deliver_batch_def, NULL);
    PyObject *sd = PyDescr_NewMethod(linest, &service_direct_def);
    PyObject *pr = PyDescr_NewMethod(reapert, &process_def);
    PyObject *dl = PyCFunction_New(&deliver_def, NULL);
    PyObject *sv = PyDescr_NewMethod(linest, &service_def);
    PyObject *rd = PyDescr_NewMethod(reapert, &reaper_deliver_def);
    d_batch_fn = Py_XNewRef(batch);
    if (batch == NULL || sd == NULL || pr == NULL || dl == NULL || sv == NULL || rd == NULL) {
        Py_XDECREF(rd);
        Py_XDECREF(batch);
        Py_XDECREF(sd);
        Py_XDECREF(pr);
        Py_XDECREF(dl);
        Py_XDECREF(sv);
        return NULL;
    }
    d_configured = 1;
    return Py_BuildValue("(NNNNNN)", batch, sd, pr, dl, sv, rd);
}
