/* The reaper's batch in C (cdone, 2026-12-05): ``Reaper.process`` for the common batch (every
 * CQE a request's own with a positive result: FILE successes, direct STREAM heads serviced by
 * ``service_direct``) and ``Reaper.deliver`` (the batch through the reaper module's
 * ``deliver_batch``), with exactly their effects; any other batch goes whole to the Python
 * method before anything is touched. See ``_fastdone.c`` for the invariants. */
#include "_fastdone.h"

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

/* The batch of a reap where every CQE is a direct STREAM head's (the C=64 socket echo), the
 * checks of :c:func:`dn_process` passed and ``streams.service_direct`` is the C one: the heads
 * go to its body as C arrays, without the ``(line, res, ud)`` list the Python method builds
 * (rslot). Nothing is allocated between the checks and the heads' service, so the entries
 * looked up by the checks are the ones taken out of the table. Py_NotImplemented (a new
 * reference; nothing touched) for any other batch. */
#define HEADS_MAX 64
static PyObject *
heads_only(PyObject *self, PyObject *table, PyObject *cqes, Py_ssize_t n, PyObject **hl,
           PyObject *finished, Py_ssize_t start)
{
    PyObject *hr[HEADS_MAX], *keys[HEADS_MAX];
    for (Py_ssize_t i = 0; i < n; i++) {
        /* The table's own key object, when the line's ``poll_ud`` is it (``pend_locked`` and
         * the Python ``_pend_locked`` store the same int in both): deleted by identity, without
         * the int comparison a dict makes for an equal key of another object. */
        PyObject *ud = PyTuple_GET_ITEM(PyList_GET_ITEM(cqes, i), 0);
        PyObject *poll_ud = *(PyObject **)((char *)hl[i] + d_line.offsets[LI_POLL_UD]);
        keys[i] = ud;
        if (poll_ud != NULL && poll_ud != ud && PyLong_CheckExact(poll_ud)) {
            int overflow_a, overflow_b;
            long long a = PyLong_AsLongLongAndOverflow(poll_ud, &overflow_a);
            long long b = PyLong_AsLongLongAndOverflow(ud, &overflow_b);
            if (a == b && !overflow_a && !overflow_b && a != -1) {
                keys[i] = poll_ud;
            }
        }
    }
    PyObject *streams = get(&d_reaper, 1, self, RE_STREAMS), *lock, *lines, *spare;
    if (streams == NULL) {
        PyErr_Clear();
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (n == 0 || !dn_heads_direct(streams, &lock, &lines, &spare)) {
        Py_DECREF(streams);
        Py_RETURN_NOTIMPLEMENTED;
    }
    /* Taken out of the table (the line held: the entry goes), as the Python loop does. */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *cqe = PyList_GET_ITEM(cqes, i);
        Py_INCREF(hl[i]);
        hr[i] = PyTuple_GET_ITEM(cqe, 1);
        if (PyDict_DelItem(table, keys[i]) < 0) {
            PyErr_Clear(); /* (an int key that is there) */
        }
    }
    PyObject *cancelled = dn_service_heads(streams, lock, lines, spare, hl, hr, n, finished);
    PyObject *result = NULL;
    if (cancelled == NULL) {
        /* the Python method's ``except BaseException`` around service_direct (Ctrl-C) */
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        if (add_to(self, RE_DONE, PyList_GET_SIZE(finished) - start, NULL) < 0) {
            PyErr_Clear();
        }
        PyObject *heads = PyList_New(n);
        for (Py_ssize_t i = 0; heads != NULL && i < n; i++) {
            PyObject *cqe = PyList_GET_ITEM(cqes, i);
            PyObject *t = PyTuple_Pack(3, hl[i], hr[i], PyTuple_GET_ITEM(cqe, 0));
            if (t == NULL) {
                Py_CLEAR(heads);
                break;
            }
            PyList_SET_ITEM(heads, i, t);
        }
        PyObject *a[2] = {heads, finished};
        PyObject *r = heads == NULL ? NULL : dn_cut_call(self, ds_heads_cut, a, 2);
        if (r == NULL) {
            PyErr_Clear(); /* the first error is the one raised */
        }
        Py_XDECREF(r);
        Py_XDECREF(heads);
        PyErr_Restore(et, ev, etb);
    }
    else {
        /* Counted before delivery, so that a woken issuer already sees them in statistics(). */
        int ok = add_to(self, RE_DONE, PyList_GET_SIZE(finished) - start, NULL);
        if (ok == 0) {
            ok = add_to(self, RE_CANCELLED, 0, cancelled);
        }
        if (ok == 0) {
            result = Py_NewRef(Py_None);
        }
        Py_DECREF(cancelled);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_DECREF(hl[i]);
    }
    Py_DECREF(streams);
    return result;
}

/* Reaper.process(cqes, finished): the common batch - every CQE a request's own, with a
 * positive result: a FILE request's (success) or a direct STREAM head's (its line, serviced
 * with the others by ``service_direct``) - mapped without a Python frame; any other batch
 * (a poke, a failed or cancelled request, a migration, EOF) goes whole to the Python method,
 * before anything is touched. */
PyObject *
dn_process(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
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
    /* A batch of plain receive slot CQEs only (the C=64 echo with slots): REAPED in one hold
     * of the backend's lock (``_fastslot_done.c``); any other batch, nothing touched, below. */
    PyObject *sr = dn_slot_batch(self, cqes, finished);
    if (sr != Py_NotImplemented) {
        return sr;
    }
    Py_DECREF(sr);
    /* The check, touching nothing (no Python code runs from here to service_direct). */
    Py_ssize_t n = PyList_GET_SIZE(cqes);
    PyObject *hl[HEADS_MAX]; /* the lines of a batch of direct heads (borrowed) */
    int heads_only_batch = n <= HEADS_MAX;
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
            if (overflow || ud == d_ud_poke) {
                /* the leaders' poke; or a receive slot's incarnation (``SLOT_TAG``, 1 << 63:
                 * the only user_data above LONG_MAX; not in the table unless demoted): the
                 * Python method's slot path (``Reaper._reap_slot``) until the C one */
                return py_process(self, args, nargs);
            }
            heads_only_batch = 0;
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
            if (heads_only_batch) {
                hl[i] = extra;
            }
        }
        else {
            heads_only_batch = 0;
        }
    }
    Py_ssize_t start = PyList_GET_SIZE(finished);
    if (heads_only_batch) {
        PyObject *r = heads_only(self, table, cqes, n, hl, finished, start);
        if (r != Py_NotImplemented) {
            return r;
        }
        Py_DECREF(r);
    }
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
    PyObject *a[2] = {heads, finished};
    PyObject *r = dn_cut_call(self, ds_heads_cut, a, 2);
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
    /* a failed allocation at CQE i: the Python method's ``cuts.process_cut`` maps the rest */
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (add_to(self, RE_DONE, PyList_GET_SIZE(finished) - start, NULL) < 0) {
        PyErr_Clear();
    }
    PyObject *rest = PyList_GetSlice(cqes, i, n);
    PyObject *it = rest == NULL ? NULL : PyObject_GetIter(rest);
    PyObject *empty = heads == NULL ? PyList_New(0) : Py_NewRef(heads);
    if (it != NULL && empty != NULL) {
        PyObject *a[8] = {cqes,
                          it,
                          prev == NULL ? g_zero : PyTuple_GET_ITEM(prev, 0),
                          prev == NULL ? g_zero : PyTuple_GET_ITEM(prev, 1),
                          prev == NULL ? g_zero : PyTuple_GET_ITEM(prev, 2),
                          prev_entry == NULL ? Py_None : prev_entry,
                          empty,
                          finished};
        PyObject *r = dn_cut_call(self, ds_process_cut, a, 8);
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


/* ------------------------------------------------------------------ Reaper.deliver */

/* Reaper.deliver(finished): the common batch (not closing, every op's ``complete`` the plain
 * one) through the module's ``deliver_batch`` (this file's, called directly when it is the one
 * in place); every other batch goes to the Python method. */
PyObject *
dn_reaper_deliver(PyObject *self, PyObject *finished)
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
        if (ReceiveSlot_CheckExact(item)) {
            continue; /* (a C receive slot: ``deliver_batch``'s own item; a Python one: the
                       * Python method, below) */
        }
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3 ||
            _PyType_Lookup(Py_TYPE(PyTuple_GET_ITEM(item, 0)), ds_complete) != d_plain_complete) {
            goto python;
        }
    }
    PyObject *fn = PyDict_GetItemWithError(d_reaper_globals, ds_deliver_batch);
    if (fn == NULL) {
        if (!PyErr_Occurred()) {
            goto python;
        }
        return NULL;
    }
    Py_INCREF(fn); /* (the module's name may be rebound meanwhile: it stays alive for its call) */
    PyObject *errors = fn == d_batch_fn ? dn_deliver_batch(NULL, finished)
                                        : PyObject_CallOneArg(fn, finished);
    Py_DECREF(fn);
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
    PyObject *r = dn_cut_call(self, ds_deliver_rest, &finished, 1);
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
