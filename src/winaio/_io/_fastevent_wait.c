/* winaio._io._fastio: the single wait in C (fastevent, 2026-12-06 night; split out of
 * ``_fastevent.c`` by tools, 2026-12-06; ``_fastevent.h``: the shared data).
 *
 * ``_wait.wait_for_one`` on an exact ``Event``, INFINITE or a zero timeout: the object check,
 * or the wait block registered and the thread parked (the parker's own C ``acquire``, which
 * waits without the GIL and runs the signal handlers), as ``wait_for_one`` -> ``block`` do.
 * The alias layer's WaitForSingleObject(Ex) hot shape (``_fastevent_win32.c``) calls the same
 * ``wait_core``.
 *
 * Invariants:
 * - nothing is touched before the shape is known to be this file's (an exact Event; the
 *   thread's state without special APCs, termination or an ``on_block`` hook; for a wait that
 *   blocks, no APC pending if alertable, no port listener, a plain ``threading.Lock`` parker):
 *   any other shape is NOT_MINE with LOCK released (the Python function decides);
 * - the wait block is registered (the event's waiters, ``ts.wait``) in one LOCK hold, and
 *   settled by the signaler (``set_core``: unlinked, result given, a token), or here under
 *   LOCK (termination, APCs: unlinked), or by the Python ``abandon_wait`` when an error (an
 *   interrupt in the parker) leaves the wait: made again when an interrupt cut it at its
 *   entry (it is idempotent), the first error kept;
 * - a token with no result is a stale one (a timed wait that gave up took it as consumed):
 *   the thread parks again;
 * - the result's follow-up (APCs, special APCs, termination) is the Python ``_finish`` /
 *   ``check_terminating``, called last, LOCK released. */
#include "_fastevent.h"


/* ``parker.acquire()`` (blocking, no timeout) on a ``threading.Lock``: 0, or -1 with the error
 * a signal handler raised (as ``lock.acquire``: it waits without the GIL and runs the
 * handlers when the wait is interrupted, then waits again). */
static int
park(PyObject *parker)
{
    if (!g_direct) {
        PyObject *got = PyObject_Vectorcall(g_acquire, &parker, 1, NULL);
        Py_XDECREF(got);
        return got == NULL ? -1 : 0;
    }
    fe_lockobject *l = (fe_lockobject *)parker;
    if (fio_try_lock(l->lock_lock)) {
        l->locked = 1;
        return 0;
    }
    for (;;) {
        PyThreadState *save = PyEval_SaveThread();
        PyLockStatus r = PyThread_acquire_lock_timed(l->lock_lock, -1, 1);
        PyEval_RestoreThread(save);
        if (r == PY_LOCK_ACQUIRED) {
            l->locked = 1;
            return 0;
        }
        if (Py_MakePendingCalls() < 0) {
            return -1;
        }
    }
}

/* ``abandon_wait(ts, wb, None)`` with the current exception kept: made again when an
 * interrupt cut it at its entry (it is idempotent); a second error is dropped for the first. */
static void
abandon(PyObject *ts, PyObject *wb)
{
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *args[3] = {ts, wb, Py_None};
    PyObject *r = fio_again_always(g_abandon, NULL, args, 3, 1);
    if (r == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(r);
    PyErr_Restore(et, ev, etb);
}

static int
is_terminated(PyObject *res)
{
    return PyLong_CheckExact(res) && PyObject_RichCompareBool(res, g_terminated, Py_EQ) == 1;
}

/* ``_wait.block(ts, wb, None, None)`` for a thread parked on its ``threading.Lock``
 * (``parker``): the result (a new reference) or NULL with an error (the caller abandons the
 * wait). */
static PyObject *
block_core(PyObject *ev, PyObject *ts, PyObject *wb, PyObject *parker, int alert)
{
    for (;;) {
        if (park(parker) < 0) {
            return NULL;
        }
        if (fio_acquire(g_ev_lock) < 0) {
            return NULL;
        }
        kind_put(&k_fts, ts, T_WAKE_PENDING, Py_NewRef(Py_False));
        PyObject *res = SLOT(&k_fwb, wb, W_RESULT);
        if (res == NULL) {
            fio_release(g_ev_lock);
            PyErr_SetString(PyExc_AttributeError, "result");
            return NULL;
        }
        if (res == Py_None) {
            int term = fe_truth(SLOT(&k_fts, ts, T_TERMINATING));
            int apcs = alert ? fe_truth(SLOT(&k_fts_apc, ts, 0)) : 0;
            if (alert && apcs == 0) {
                apcs = fe_truth(SLOT(&k_fts, ts, T_SPECIAL));
            }
            if (term == 1) {
                res = g_terminated;
            }
            else if (apcs == 1) {
                res = g_io_completion;
            }
            else {
                fio_release(g_ev_lock);
                continue; /* spurious (a stale token): park again */
            }
            /* unlink_wait: out of the event's waiter list (its detach is None) */
            PyObject *waiters = SLOT(&k_fev, ev, EV_WAITERS);
            if (waiters != NULL && PyDict_CheckExact(waiters) &&
                PyDict_Contains(waiters, wb) == 1 && PyDict_DelItem(waiters, wb) < 0) {
                PyErr_Clear();
            }
        }
        Py_INCREF(res);
        kind_put(&k_fts, ts, T_WAIT, Py_NewRef(Py_None));
        fio_release(g_ev_lock);
        if (is_terminated(res)) {
            PyObject *c = PyObject_CallOneArg(g_check_terminating, ts);
            if (c == NULL) {
                Py_DECREF(res);
                return NULL;
            }
            Py_DECREF(c);
        }
        return res;
    }
}

/* ``wait_for_one(ev, timeout, alertable)`` for an exact Event, INFINITE (``poll`` 0) or a zero
 * timeout: the wait code (a new reference), NULL with an error, or NOT_MINE (borrowed, nothing
 * touched: the Python function decides). */
PyObject *
wait_core(PyObject *ev, int poll, PyObject *alertable)
{
    if (!Py_IS_TYPE(ev, g_ev_type) || !kind_fast(&k_fev, g_ev_type)) {
        return NOT_MINE;
    }
    int alert = fe_truth(alertable);
    if (alert < 0) {
        return NOT_MINE;
    }
    PyObject *ts = PyObject_GetAttr(g_ev_tls, s_fts);
    if (ts == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return NULL; /* (as current_thread_state) */
        }
        PyErr_Clear(); /* a thread's first wait: current_thread_state adopts it */
        return NOT_MINE;
    }
    if (!Py_IS_TYPE(ts, g_ts_type) || !kind_fast(&k_fts, g_ts_type) ||
        !kind_fast(&k_fts_apc, g_ts_type) || fe_truth(SLOT(&k_fts, ts, T_SPECIAL)) != 0 ||
        fe_truth(SLOT(&k_fts, ts, T_TERMINATING)) != 0 ||
        SLOT(&k_fts, ts, T_ON_BLOCK) != Py_None) {
        Py_DECREF(ts);
        return NOT_MINE; /* special APCs to run, termination, a hook: the Python function */
    }
    if (fio_acquire(g_ev_lock) < 0) {
        Py_DECREF(ts);
        return NULL;
    }
    PyObject *sig = SLOT(&k_fev, ev, EV_SIGNALED);
    PyObject *manual = SLOT(&k_fev, ev, EV_MANUAL);
    PyObject *waiters = SLOT(&k_fev, ev, EV_WAITERS);
    PyObject *parker = SLOT(&k_fts, ts, T_PARKER);
    PyObject *res;
    if (sig == NULL || !PyBool_Check(sig) || manual == NULL || !PyBool_Check(manual)) {
        goto not_mine;
    }
    if (sig == Py_True) {
        if (manual == Py_False) {
            kind_put(&k_fev, ev, EV_SIGNALED, Py_NewRef(Py_False)); /* _satisfy */
        }
        fio_release(g_ev_lock);
        res = Py_NewRef(g_zero_code);
        goto finish;
    }
    if (alert && (fe_truth(SLOT(&k_fts_apc, ts, 0)) != 0 ||
                  fe_truth(SLOT(&k_fts, ts, T_SPECIAL)) != 0)) {
        goto not_mine; /* WAIT_IO_COMPLETION and its APCs: the Python function */
    }
    if (poll) {
        fio_release(g_ev_lock);
        res = Py_NewRef(g_timeout_code);
        goto finish;
    }
    if (SLOT(&k_fts, ts, T_LISTENER) != Py_None || parker == NULL ||
        !Py_IS_TYPE(parker, g_parker_type) || waiters == NULL || !PyDict_CheckExact(waiters)) {
        goto not_mine; /* a port's thread, a parker that runs code: the Python function */
    }
    /* Register: WaitBlock(ts, (ev,), False, alertable), in the event's waiters, ts.wait. */
    PyObject *objects = PyTuple_Pack(1, ev);
    PyObject *wb = objects == NULL ? NULL : g_wb_type->tp_alloc(g_wb_type, 0);
    if (wb == NULL) {
        Py_XDECREF(objects);
        fio_release(g_ev_lock);
        Py_DECREF(ts);
        return NULL;
    }
    kind_put(&k_fwb, wb, W_THREAD, Py_NewRef(ts));
    kind_put(&k_fwb, wb, W_OBJECTS, objects);
    kind_put(&k_fwb, wb, W_WAIT_ALL, Py_NewRef(Py_False));
    kind_put(&k_fwb, wb, W_ALERTABLE, Py_NewRef(alertable));
    kind_put(&k_fwb, wb, W_DETACH, Py_NewRef(Py_None));
    kind_put(&k_fwb, wb, W_RESULT, Py_NewRef(Py_None));
    kind_put(&k_fwb, wb, W_DATA, Py_NewRef(Py_None));
    if (PyDict_SetItem(waiters, wb, Py_None) < 0) {
        fio_release(g_ev_lock); /* (not registered: nothing to undo) */
        Py_DECREF(wb);
        Py_DECREF(ts);
        return NULL;
    }
    kind_put(&k_fts, ts, T_WAIT, Py_NewRef(wb));
    Py_INCREF(parker); /* (replaced only while the thread is in none of its waits) */
    fio_release(g_ev_lock);
    res = block_core(ev, ts, wb, parker, alert);
    Py_DECREF(parker);
    if (res == NULL) {
        abandon(ts, wb);
        Py_DECREF(wb);
        Py_DECREF(ts);
        return NULL;
    }
    Py_DECREF(wb);
finish:
    /* _finish: APCs for WAIT_IO_COMPLETION, special APCs that came meanwhile (Python). */
    if (res == g_io_completion || fe_truth(SLOT(&k_fts, ts, T_SPECIAL)) != 0) {
        PyObject *args[2] = {ts, res};
        PyObject *r = PyObject_Vectorcall(g_finish, args, 2, NULL);
        Py_DECREF(res);
        res = r;
    }
    Py_DECREF(ts);
    return res;
not_mine:
    fio_release(g_ev_lock);
    Py_DECREF(ts);
    return NOT_MINE;
}

/* A zero or no timeout: 1 (poll), 0 (INFINITE), -1 (another: the Python function). */
static int
core_timeout(PyObject *t)
{
    if (t == Py_None) {
        return 0;
    }
    if (PyFloat_CheckExact(t)) {
        return PyFloat_AS_DOUBLE(t) == 0.0 ? 1 : -1;
    }
    if (PyLong_CheckExact(t)) {
        return _PyLong_Sign(t) == 0 ? 1 : -1;
    }
    return -1;
}

/* _wait.wait_for_one(obj, timeout, alertable) */
PyObject *
fe_wait_for_one(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int poll;
    if (!g_fe_enabled || nargs != 3 || (poll = core_timeout(args[1])) < 0) {
        goto python;
    }
    PyObject *r = wait_core(args[0], poll, args[2]);
    if (r != NOT_MINE) {
        return r;
    }
python:
    return PyObject_Vectorcall(g_py_wait_for_one, args, (size_t)nargs, NULL);
}
