/* winaio._io._fastio, the io_uring ring's part (``_fastring.h``): ``Reaper.reap``: 0 at once on
 * an empty CQ ring (a leader's first look, every wait), the one-CQE (QD1) path statement for
 * statement with the Python method (the CQ lock, the reap, the in-flight table, the line's
 * ``service`` and the module's ``deliver`` called as there, ``cuts.service_cut``,
 * ``cuts.deliver_rest`` and ``report`` on an exception), and the shared Python continuation
 * ``Reaper._batch_locked`` for every other batch. */
#include "_fastring.h"
#include "_fastslot.h"

static const char *const REAPER_NAMES[] = {"_ring", NULL};
static kind_t k_reaper;
static PyObject *py_reaper_reap; /* the Python reference */

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
    *s_service_cut, *s_batch_locked, *s_report, *s_cuts;

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

/* ``self.cuts.method(arg)`` (the continuations, the object the reaper owns: ``reaper_cuts``)
 * keeping the current exception (``except BaseException: ...; raise``); an exception of the
 * handler replaces it (as in Python). */
static void
on_error_call(PyObject *self, PyObject *name, PyObject *const *args, Py_ssize_t n)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *cuts = PyObject_GetAttr(self, s_cuts);
    PyObject *all[5] = {cuts, NULL, NULL, NULL, NULL};
    for (Py_ssize_t i = 0; i < n && i < 4; i++) {
        all[i + 1] = args[i];
    }
    PyObject *r = cuts == NULL ? NULL : PyObject_VectorcallMethod(name, all, n + 1, NULL);
    Py_XDECREF(cuts);
    if (r == NULL) {
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return;
    }
    Py_DECREF(r);
    PyErr_Restore(et, ev, etb);
}

/* ``self.deliver(finished)`` (the batch), with ``cuts.deliver_rest`` on an exception: 0 or -1. */
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
 * is reported (``report``), a BaseException goes through ``cuts.deliver_rest`` and propagates. */
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
    Py_INCREF(fn); /* (the module's name may be rebound meanwhile: it stays alive for its call) */
    PyObject *r = PyObject_Vectorcall(fn, args, 3, NULL);
    Py_DECREF(fn);
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
        Py_XINCREF(report); /* (held for its call, as ``deliver``) */
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
        Py_XDECREF(report);
        Py_XDECREF(what);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return ok;
    }
    /* Ctrl-C: cuts.deliver_rest([(op, status, res)]) then raise */
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

/* The QD1 path for a C receive slot's CQE (``_batch_locked`` for one plain slot CQE, its
 * reference: ``process`` - REAPED under the backend's lock, ``_fastslot_done.c`` - then
 * ``self.deliver``), 1 when handled (*err on an error, ``cuts.deliver_rest`` made), 0 when the
 * general path must run (nothing touched). */
static int
reap_slot_one(PyObject *self, PyObject *cqes, int *err)
{
    PyObject *finished = PyList_New(0);
    if (finished == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyObject *r = dn_slot_batch(self, cqes, finished);
    if (r == Py_NotImplemented) {
        Py_DECREF(r);
        Py_DECREF(finished);
        return 0;
    }
    if (r == NULL) {
        on_error_call(self, s_deliver_rest, &finished, 1); /* (Ctrl-C while it waited) */
        *err = 1;
    }
    else {
        Py_DECREF(r);
        if (PyList_GET_SIZE(finished) && deliver_batch_m(self, finished) < 0) {
            *err = 1;
        }
    }
    Py_DECREF(finished);
    return 1;
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
        int overflow = 0;
        (void)PyLong_AsLongAndOverflow(ud, &overflow); /* (a slot's user_data: 1 << 63 set) */
        return overflow ? reap_slot_one(self, cqes, err) : 0;
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
PyObject *
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
    /* A batch of plain receive slot CQEs (the C=64 echo): in place, without the CQE tuples
     * and ``_batch_locked``'s frame (``_fastslot_done.c``); any other, below. */
    long long max_n = PyLong_AsLongLong(g_reap_batch);
    if (max_n < 0) {
        PyErr_Clear();
        max_n = 0; /* (not reached: REAP_BATCH is a positive int) */
    }
    PyObject *sr = dn_slot_reap(self, ring, max_n);
    if (sr != Py_NotImplemented) {
        result = sr;
        goto unlock;
    }
    Py_DECREF(sr);
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
        /* (made again when an interrupt cut it at its entry: the CQEs are out of the CQ ring,
         * nobody else would map them) */
        result = fio_again(NULL, s_batch_locked, bargs, 2);
    }
    Py_DECREF(cqes);
unlock:
    fio_release(cq_lock);
out:
    Py_DECREF(cq_lock);
    Py_DECREF(ring);
    return result;
}

static PyMethodDef reaper_defs[] = {
    {"reap", reaper_reap, METH_NOARGS,
     "reap()\n--\n\nReap and deliver; 0 at once on an empty CQ ring (C accelerator)."},
    {NULL, NULL, 0, NULL}};

PyObject *
configure_reaper(PyObject *args)
{
    const char *what;
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
        return fr_descriptors(tp, reaper_defs);
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
    s_deliver_rest = PyUnicode_InternFromString("deliver_rest");
    s_service_cut = PyUnicode_InternFromString("service_cut");
    s_cuts = PyUnicode_InternFromString("cuts");
    s_batch_locked = PyUnicode_InternFromString("_batch_locked");
    s_report = PyUnicode_InternFromString("report");
    if (s_complete == NULL || s_service == NULL || s_deliver_fn == NULL ||
        s_deliver_rest == NULL || s_service_cut == NULL || s_batch_locked == NULL ||
        s_report == NULL || s_cuts == NULL) {
        return NULL;
    }
    g_inflight_type = (PyTypeObject *)Py_NewRef(inft);
    g_line_type = (PyTypeObject *)Py_NewRef(linet);
    ref(&g_plain_complete, plain);
    ref(&g_reaper_globals, globals);
    ref(&g_success, success);
    ref(&g_reap_batch, batch);
    g_reaper_ok = g_qd1_ok = 1;
    return fr_descriptors(tp, reaper_defs);
}
