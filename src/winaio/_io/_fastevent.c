/* winaio._io._fastio, the kernel's events and single waits (fastevent, 2026-12-06 night).
 *
 * Issue 9's event ping-pong: the signaler's path from SetEvent (the wake-up of the other
 * thread, made under the GIL) to its own blocking wait holds the GIL the woken thread wants;
 * in the slow mode the woken thread finds it held (docs/design.md, "The event hot shapes in
 * C"). Here that path is C from end to end:
 *
 * - ``Event.set`` (``_kernel._objects``): no waiter, or one waiter in a plain single-object
 *   wait on a thread parked on its ``threading.Lock``: the state written, the waiter
 *   satisfied, unlinked, given its result and its token, in one LOCK hold, as ``set`` ->
 *   ``wake_waiters`` -> ``try_satisfy`` -> ``complete_wait`` do (no allocation: nothing can
 *   fail half way). The wake-up itself (the parker's semaphore post) is made after LOCK,
 *   with the GIL released (``_parker.py``'s reasoning for the pool's workers): woken on the
 *   signaler's CPU, the waiter preempts it and finds the GIL free, instead of sleeping again
 *   on the GIL until the signaler blocks (the ping-pong's slow mode: ~4 voluntary switches
 *   per round trip instead of ~1.2). A token given under LOCK and posted after it is at
 *   worst a spurious wake-up of a later wait (a timed wait that gave up meanwhile took it
 *   as consumed), which every wait loop re-checks.
 * - ``_wait.wait_for_one`` on an exact ``Event``, INFINITE or a zero timeout: the object
 *   check, or the wait block registered and the thread parked (the parker's own C
 *   ``acquire``, which waits without the GIL and runs the signal handlers), as
 *   ``wait_for_one`` -> ``block`` do. An exception once the wait is registered (an interrupt
 *   in the parker) goes through the Python ``abandon_wait`` (made again when an interrupt
 *   cut it at its entry: it is idempotent), as in Python; the result's follow-up (APCs,
 *   special APCs, termination) is the Python ``_finish`` / ``check_terminating``, called last.
 * - The alias layer's SetEvent / ResetEvent / WaitForSingleObject(Ex) (``win32._sync``):
 *   their hot shape (a plain int handle with the access right to an exact ``Event``, INFINITE
 *   or 0 ms) straight to the two above; a Win32Error from a Python follow-up goes to ``fail``
 *   and WAIT_FAILED, as the Python function does.
 *
 * The Python functions are the reference and the fallback: every other shape (subclasses,
 * other object types, several waiters, a parker that is not a ``threading.Lock``, APCs or
 * termination pending, a completion port's thread, finite timeouts, tag bits and pseudo
 * handles) goes to the Python function before anything is touched. One switch
 * (``event_set_enabled``, from ``_accel``) sends every call of the module functions to
 * Python; ``Event.set`` is swapped on the class (``install_methods``). */
#include "_fastio.h"

/* CPython 3.11/3.12's _thread.lock (as ``_fastcommon.c``): a parker of that exact layout
 * (checked once by ``configure_event``) is parked on and given its token here directly. */
typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock_lock;
    PyObject *in_weakreflist;
    char locked;
} fe_lockobject;
static int g_direct; /* the layout is that one */
/* Set's wake-up made after LOCK, without the GIL (``event_wake_without_gil``; on by default). */
static int g_nogil_wake = 1;

static const char *const EV_NAMES[] = {"_signaled", "manual_reset", "_waiters", NULL};
enum { EV_SIGNALED, EV_MANUAL, EV_WAITERS };
/* (two kinds: a kind holds at most MAX_NAMES slots) */
static const char *const TS_NAMES[] = {"special_apcs", "terminating", "block_listener", "on_block",
                                       "parker", "wait", "wake_pending", "awake_in_wait", NULL};
enum { T_SPECIAL, T_TERMINATING, T_LISTENER, T_ON_BLOCK, T_PARKER, T_WAIT, T_WAKE_PENDING,
       T_AWAKE };
static const char *const TS_APC_NAMES[] = {"apcs", NULL};
static const char *const WB_NAMES[] = {"thread", "objects", "wait_all", "alertable", "detach",
                                       "result", "data", NULL};
enum { W_THREAD, W_OBJECTS, W_WAIT_ALL, W_ALERTABLE, W_DETACH, W_RESULT, W_DATA };

static kind_t k_fev, k_fts, k_fts_apc, k_fwb;
static PyTypeObject *g_ev_type, *g_ts_type, *g_wb_type, *g_parker_type;
static PyObject *g_ev_lock, *g_ev_tls, *g_acquire;
static PyObject *g_py_set, *g_py_wait_for_one, *g_abandon, *g_check_terminating, *g_finish;
static PyObject *g_terminated, *g_io_completion, *g_timeout_code, *g_zero_code;
static PyObject *s_fts, *s_facquire;
static PyObject *g_entries, *g_py_set_event, *g_py_reset_event, *g_py_wfso, *g_py_wfso_ex;
static PyObject *g_fail, *g_w32error, *g_wait_failed;
static unsigned long g_modify_state, g_synchronize;
static int g_fe_enabled = 1, g_fe_win32;

#define SLOT(k, obj, i) (*(PyObject **)((char *)(obj) + (k)->offsets[i]))
/* A wait the C does not make: the caller runs the Python function (nothing was touched). */
#define NOT_MINE Py_NotImplemented

/* Truth of a borrowed slot value: 1, 0, or -1 (unset, or its truth raised: cleared). */
static int
fe_truth(PyObject *v)
{
    if (v == Py_True) {
        return 1;
    }
    if (v == Py_False || v == Py_None) {
        return 0;
    }
    if (v == NULL) {
        return -1;
    }
    int r = PyObject_IsTrue(v);
    if (r < 0) {
        PyErr_Clear();
    }
    return r;
}

/* ------------------------------------------------------------------ Event.set */

/* ``Event.set`` on an exact Event (its kind checked): the previous state (1 or 0), -1 with an
 * error (an interrupt while a contended LOCK was awaited: nothing done), or -2 when the shape
 * is not handled (LOCK released again, nothing touched: the Python method decides). */
static int
set_core(PyObject *ev)
{
    if (fio_acquire(g_ev_lock) < 0) {
        return -1;
    }
    PyObject *sig = SLOT(&k_fev, ev, EV_SIGNALED);
    PyObject *manual = SLOT(&k_fev, ev, EV_MANUAL);
    PyObject *waiters = SLOT(&k_fev, ev, EV_WAITERS);
    if (sig == NULL || !PyBool_Check(sig) || manual == NULL || !PyBool_Check(manual) ||
        waiters == NULL || !PyDict_CheckExact(waiters)) {
        goto not_mine;
    }
    int previous = sig == Py_True;
    if (PyDict_GET_SIZE(waiters) == 0) {
        kind_put(&k_fev, ev, EV_SIGNALED, Py_NewRef(Py_True));
        fio_release(g_ev_lock);
        return previous;
    }
    if (PyDict_GET_SIZE(waiters) != 1) {
        goto not_mine; /* (wake_waiters' FIFO walk) */
    }
    Py_ssize_t pos = 0;
    PyObject *wb, *unused;
    if (!PyDict_Next(waiters, &pos, &wb, &unused) || !Py_IS_TYPE(wb, g_wb_type) ||
        !kind_fast(&k_fwb, g_wb_type)) {
        goto not_mine;
    }
    PyObject *objects = SLOT(&k_fwb, wb, W_OBJECTS);
    PyObject *ts = SLOT(&k_fwb, wb, W_THREAD);
    if (SLOT(&k_fwb, wb, W_RESULT) != Py_None || SLOT(&k_fwb, wb, W_WAIT_ALL) != Py_False ||
        SLOT(&k_fwb, wb, W_DETACH) != Py_None || objects == NULL || !PyTuple_CheckExact(objects) ||
        PyTuple_GET_SIZE(objects) != 1 || PyTuple_GET_ITEM(objects, 0) != ev || ts == NULL ||
        !Py_IS_TYPE(ts, g_ts_type) || !kind_fast(&k_fts, g_ts_type) ||
        !kind_fast(&k_fts_apc, g_ts_type)) {
        goto not_mine;
    }
    PyObject *pending = SLOT(&k_fts, ts, T_WAKE_PENDING);
    PyObject *parker = SLOT(&k_fts, ts, T_PARKER);
    if (SLOT(&k_fts, ts, T_AWAKE) != Py_False || pending == NULL || !PyBool_Check(pending) ||
        parker == NULL || !Py_IS_TYPE(parker, g_parker_type)) {
        goto not_mine;
    }
    /* set -> wake_waiters -> try_satisfy (signaled; an auto-reset event is consumed) ->
     * complete_wait (unlinked, result 0, a token unless one is outstanding). No allocation
     * below: nothing can fail half way. */
    kind_put(&k_fev, ev, EV_SIGNALED, Py_NewRef(manual == Py_True ? Py_True : Py_False));
    Py_INCREF(wb);
    if (PyDict_DelItem(waiters, wb) < 0) {
        PyErr_Clear(); /* (cannot happen: the key is there and hashes by identity) */
    }
    kind_put(&k_fwb, wb, W_RESULT, Py_NewRef(g_zero_code));
    Py_DECREF(wb);
    if (pending == Py_True) {
        fio_release(g_ev_lock);
        return previous;
    }
    kind_put(&k_fts, ts, T_WAKE_PENDING, Py_NewRef(Py_True));
    if (!g_nogil_wake || !g_direct) {
        fio_release(parker);
        fio_release(g_ev_lock);
        return previous;
    }
    fe_lockobject *l = (fe_lockobject *)parker;
    l->locked = 0;
    Py_INCREF(parker);
    fio_release(g_ev_lock);
    Py_BEGIN_ALLOW_THREADS
    PyThread_release_lock(l->lock_lock);
    Py_END_ALLOW_THREADS
    Py_DECREF(parker);
    return previous;
not_mine:
    fio_release(g_ev_lock);
    return -2;
}

/* Event.set(self) */
static PyObject *
ev_set(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 0 || !Py_IS_TYPE(self, g_ev_type) || !kind_fast(&k_fev, g_ev_type)) {
        return fio_delegate(g_py_set, self, args, nargs, NULL);
    }
    int r = set_core(self);
    if (r == -2) {
        return PyObject_CallOneArg(g_py_set, self);
    }
    return r < 0 ? NULL : PyBool_FromLong(r);
}

/* ------------------------------------------------------------------ the single wait */

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
static PyObject *
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
static PyObject *
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

/* ------------------------------------------------------------------ the alias layer */

/* The exact Event behind the plain int handle ``h`` granting ``access`` (a new reference), or
 * NULL with no error (the Python function decides). */
static PyObject *
hot_event(PyObject *h, unsigned long access)
{
    if (!PyLong_CheckExact(h)) {
        return NULL;
    }
    PyObject *entry = PyDict_GetItemWithError(g_entries, h); /* borrowed */
    if (entry == NULL || !PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *obj = PyTuple_GET_ITEM(entry, 0), *granted = PyTuple_GET_ITEM(entry, 1);
    if (!Py_IS_TYPE(obj, g_ev_type) || !PyLong_CheckExact(granted) ||
        !(PyLong_AsUnsignedLongMask(granted) & access) || !kind_fast(&k_fev, g_ev_type)) {
        PyErr_Clear();
        return NULL;
    }
    return Py_NewRef(obj); /* (a CloseHandle while LOCK is awaited must not free it) */
}

/* SetEvent(hEvent) */
static PyObject *
fe_SetEvent(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *ev;
    if (!g_fe_enabled || nargs != 1 || (ev = hot_event(args[0], g_modify_state)) == NULL) {
        return PyObject_Vectorcall(g_py_set_event, args, (size_t)nargs, NULL);
    }
    int r = set_core(ev);
    if (r == -2) {
        PyObject *p = PyObject_CallOneArg(g_py_set, ev);
        r = p == NULL ? -1 : 0;
        Py_XDECREF(p);
    }
    Py_DECREF(ev);
    return r < 0 ? NULL : Py_NewRef(Py_True);
}

/* ResetEvent(hEvent) */
static PyObject *
fe_ResetEvent(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *ev;
    if (!g_fe_enabled || nargs != 1 || (ev = hot_event(args[0], g_modify_state)) == NULL) {
        return PyObject_Vectorcall(g_py_reset_event, args, (size_t)nargs, NULL);
    }
    if (fio_acquire(g_ev_lock) < 0) {
        Py_DECREF(ev);
        return NULL;
    }
    kind_put(&k_fev, ev, EV_SIGNALED, Py_NewRef(Py_False));
    fio_release(g_ev_lock);
    Py_DECREF(ev);
    return Py_NewRef(Py_True);
}

/* The wait code ``r`` of a WaitForSingleObject(Ex) call (stolen), or the Python function's
 * handling of a Win32Error: ``fail(exc)`` and WAIT_FAILED. */
static PyObject *
wait_result(PyObject *r)
{
    if (r != NULL || !PyErr_ExceptionMatches(g_w32error)) {
        return r;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    PyObject *f = PyObject_CallOneArg(g_fail, value);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    if (f == NULL) {
        return NULL;
    }
    Py_DECREF(f);
    return Py_NewRef(g_wait_failed);
}

/* INFINITE -> 0, 0 ms -> 1, anything else -> -1 (the Python function). */
static int
ms_timeout(PyObject *ms)
{
    if (!PyLong_CheckExact(ms)) {
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(ms, &overflow);
    return overflow ? -1 : v == 0xFFFFFFFFLL ? 0 : v == 0 ? 1 : -1;
}

static PyObject *
wfso(PyObject *const *args, Py_ssize_t nargs, PyObject *alertable, PyObject *py)
{
    int poll = ms_timeout(args[1]);
    PyObject *ev;
    if (poll < 0 || (ev = hot_event(args[0], g_synchronize)) == NULL) {
        return PyObject_Vectorcall(py, args, (size_t)nargs, NULL);
    }
    PyObject *r = wait_core(ev, poll, alertable);
    Py_DECREF(ev);
    if (r == NOT_MINE) {
        return PyObject_Vectorcall(py, args, (size_t)nargs, NULL);
    }
    return wait_result(r);
}

/* WaitForSingleObject(hHandle, dwMilliseconds) */
static PyObject *
fe_WaitForSingleObject(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!g_fe_enabled || nargs != 2) {
        return PyObject_Vectorcall(g_py_wfso, args, (size_t)nargs, NULL);
    }
    return wfso(args, nargs, Py_False, g_py_wfso);
}

/* WaitForSingleObjectEx(hHandle, dwMilliseconds, bAlertable) */
static PyObject *
fe_WaitForSingleObjectEx(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!g_fe_enabled || nargs != 3 || (!PyBool_Check(args[2]) && !PyLong_CheckExact(args[2]))) {
        return PyObject_Vectorcall(g_py_wfso_ex, args, (size_t)nargs, NULL);
    }
    return wfso(args, nargs, args[2], g_py_wfso_ex);
}

/* ------------------------------------------------------------------ configuration */

static PyMethodDef ev_set_def = {
    "set", (PyCFunction)(void (*)(void))ev_set, METH_FASTCALL,
    "set()\n--\n\nSetEvent. Returns the previous state (the C accelerator of the Python\n"
    "method's hot shapes: no waiter, or one plain single-object waiter)."};
static PyMethodDef wait_for_one_def = {
    "wait_for_one", (PyCFunction)(void (*)(void))fe_wait_for_one, METH_FASTCALL,
    "wait_for_one(obj, timeout, alertable)\n--\n\n"
    "WaitForSingleObjectEx on a validated object (the C accelerator of the Python function's\n"
    "hot shapes: an Event, INFINITE or a zero timeout)."};
static PyMethodDef alias_defs[] = {
    {"SetEvent", (PyCFunction)(void (*)(void))fe_SetEvent, METH_FASTCALL,
     "SetEvent(hEvent)\n--\n\n[MS:SetEvent] -> core ``Event.set`` (the C accelerator of the\n"
     "Python function's hot shape; every other call runs the Python function)."},
    {"ResetEvent", (PyCFunction)(void (*)(void))fe_ResetEvent, METH_FASTCALL,
     "ResetEvent(hEvent)\n--\n\n[MS:ResetEvent] -> core ``Event.reset`` (the C accelerator of\n"
     "the Python function's hot shape; every other call runs the Python function)."},
    {"WaitForSingleObject", (PyCFunction)(void (*)(void))fe_WaitForSingleObject, METH_FASTCALL,
     "WaitForSingleObject(hHandle, dwMilliseconds)\n--\n\n[MS:WaitForSingleObject] -> core\n"
     "``wait`` (the C accelerator of the Python function's hot shape: an Event, INFINITE or\n"
     "0 ms; every other call runs the Python function)."},
    {"WaitForSingleObjectEx", (PyCFunction)(void (*)(void))fe_WaitForSingleObjectEx,
     METH_FASTCALL,
     "WaitForSingleObjectEx(hHandle, dwMilliseconds, bAlertable)\n--\n\n"
     "[MS:WaitForSingleObjectEx] -> core ``wait`` (the C accelerator of the Python function's\n"
     "hot shape: an Event, INFINITE or 0 ms; every other call runs the Python function)."},
    {NULL, NULL, 0, NULL}};

/* configure_event(Event, WaitBlock, ThreadState, LOCK, tls, Event.set, wait_for_one,
 *                 abandon_wait, check_terminating, _finish, TERMINATED, WAIT_IO_COMPLETION,
 *                 WAIT_TIMEOUT) -> (Event.set descriptor, C wait_for_one) */
PyObject *
configure_event(PyObject *module, PyObject *args)
{
    PyTypeObject *evt, *wbt, *tst;
    PyObject *lock, *tls, *set, *wfo, *abandon_, *check, *finish, *term, *ioc, *tmo;
    if (!PyArg_ParseTuple(args, "O!O!O!OOOOOOOO!O!O!:configure_event", &PyType_Type, &evt,
                          &PyType_Type, &wbt, &PyType_Type, &tst, &lock, &tls, &set, &wfo,
                          &abandon_, &check, &finish, &PyLong_Type, &term, &PyLong_Type, &ioc,
                          &PyLong_Type, &tmo)) {
        return NULL;
    }
    if (!g_configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    if (g_ev_type != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_event() is called once");
        return NULL;
    }
    PyTypeObject *lt = Py_TYPE(lock);
    s_fts = PyUnicode_InternFromString("ts");
    s_facquire = PyUnicode_InternFromString("acquire");
    if (s_fts == NULL || s_facquire == NULL) {
        return NULL;
    }
    PyObject *acquire = _PyType_Lookup(lt, s_facquire); /* (borrowed) */
    if (acquire == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "LOCK has no acquire");
        }
        return NULL;
    }
    if (kind_init(&k_fev, evt, EV_NAMES) < 0 || kind_init(&k_fts, tst, TS_NAMES) < 0 ||
        kind_init(&k_fts_apc, tst, TS_APC_NAMES) < 0 || kind_init(&k_fwb, wbt, WB_NAMES) < 0) {
        return NULL;
    }
    g_zero_code = PyLong_FromLong(0);
    if (g_zero_code == NULL) {
        return NULL;
    }
    g_acquire = Py_NewRef(acquire);
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
    g_direct = strcmp(lt->tp_name, "_thread.lock") == 0 &&
               lt->tp_basicsize == (Py_ssize_t)sizeof(fe_lockobject);
#endif
    g_parker_type = (PyTypeObject *)Py_NewRef(lt);
    g_ts_type = (PyTypeObject *)Py_NewRef(tst);
    g_wb_type = (PyTypeObject *)Py_NewRef(wbt);
    g_ev_lock = Py_NewRef(lock);
    g_ev_tls = Py_NewRef(tls);
    g_py_set = Py_NewRef(set);
    g_py_wait_for_one = Py_NewRef(wfo);
    g_abandon = Py_NewRef(abandon_);
    g_check_terminating = Py_NewRef(check);
    g_finish = Py_NewRef(finish);
    g_terminated = Py_NewRef(term);
    g_io_completion = Py_NewRef(ioc);
    g_timeout_code = Py_NewRef(tmo);
    g_ev_type = (PyTypeObject *)Py_NewRef(evt);
    kind_fast(&k_fev, evt);
    kind_fast(&k_fts, tst);
    kind_fast(&k_fts_apc, tst);
    kind_fast(&k_fwb, wbt);
    PyObject *sd = PyDescr_NewMethod(evt, &ev_set_def);
    PyObject *name = PyUnicode_FromString("winaio._kernel._wait");
    PyObject *wf = name == NULL ? NULL : PyCFunction_NewEx(&wait_for_one_def, NULL, name);
    Py_XDECREF(name);
    if (sd == NULL || wf == NULL) {
        Py_XDECREF(sd);
        Py_XDECREF(wf);
        return NULL;
    }
    return Py_BuildValue("(NN)", sd, wf);
}

/* configure_event_win32(handle entries, SetEvent, ResetEvent, WaitForSingleObject,
 *                       WaitForSingleObjectEx, fail, Win32Error, WAIT_FAILED,
 *                       EVENT_MODIFY_STATE, SYNCHRONIZE) -> (the four C functions) */
PyObject *
configure_event_win32(PyObject *module, PyObject *args)
{
    PyObject *entries, *se, *re, *w, *wx, *fail, *err, *failed;
    unsigned long modify, sync;
    if (!PyArg_ParseTuple(args, "O!OOOOOOO!kk:configure_event_win32", &PyDict_Type, &entries, &se,
                          &re, &w, &wx, &fail, &err, &PyLong_Type, &failed, &modify, &sync)) {
        return NULL;
    }
    if (g_ev_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_event() first");
        return NULL;
    }
    if (g_fe_win32) {
        PyErr_SetString(PyExc_RuntimeError, "configure_event_win32() is called once");
        return NULL;
    }
    g_entries = Py_NewRef(entries);
    g_py_set_event = Py_NewRef(se);
    g_py_reset_event = Py_NewRef(re);
    g_py_wfso = Py_NewRef(w);
    g_py_wfso_ex = Py_NewRef(wx);
    g_fail = Py_NewRef(fail);
    g_w32error = Py_NewRef(err);
    g_wait_failed = Py_NewRef(failed);
    g_modify_state = modify;
    g_synchronize = sync;
    g_fe_win32 = 1;
    PyObject *name = PyUnicode_FromString("winaio.win32");
    if (name == NULL) {
        return NULL;
    }
    PyObject *out = PyTuple_New(4);
    for (int i = 0; out != NULL && i < 4; i++) {
        PyObject *f = PyCFunction_NewEx(&alias_defs[i], NULL, name);
        if (f == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, i, f);
    }
    Py_DECREF(name);
    return out;
}

/* event_set_enabled(flag): the C functions run their hot shapes (else the Python ones). */
PyObject *
event_set_enabled(PyObject *module, PyObject *flag)
{
    int r = PyObject_IsTrue(flag);
    if (r < 0) {
        return NULL;
    }
    g_fe_enabled = r;
    Py_RETURN_NONE;
}

/* event_wake_without_gil(flag): Event.set's wake-up of a parked waiter is made after LOCK,
 * without the GIL (the default), or under LOCK with the GIL held, as the Python method makes
 * it. Returns the previous setting. */
PyObject *
event_wake_without_gil(PyObject *module, PyObject *flag)
{
    int r = PyObject_IsTrue(flag);
    if (r < 0) {
        return NULL;
    }
    int before = g_nogil_wake;
    g_nogil_wake = r;
    return PyBool_FromLong(before);
}
