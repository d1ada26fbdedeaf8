/* winaio._io._fastio, the kernel's events and single waits (fastevent, 2026-12-06 night):
 * the Event object's ``set``, the shared data and the configuration (this file); the single
 * wait in ``_fastevent_wait.c``; the alias layer's hot shapes in ``_fastevent_win32.c``
 * (``_fastevent.h``: what they share and the split's invariants).
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
 * - ``_wait.wait_for_one`` on an exact ``Event``, INFINITE or a zero timeout
 *   (``_fastevent_wait.c``): the object check, or the wait block registered and the thread
 *   parked (the parker's own C ``acquire``, which waits without the GIL and runs the signal
 *   handlers), as ``wait_for_one`` -> ``block`` do. An exception once the wait is registered
 *   (an interrupt in the parker) goes through the Python ``abandon_wait`` (made again when an
 *   interrupt cut it at its entry: it is idempotent), as in Python; the result's follow-up
 *   (APCs, special APCs, termination) is the Python ``_finish`` / ``check_terminating``,
 *   called last.
 * - The alias layer's SetEvent / ResetEvent / WaitForSingleObject(Ex) (``win32._sync``;
 *   ``_fastevent_win32.c``): their hot shape (a plain int handle with the access right to an
 *   exact ``Event``, INFINITE or 0 ms) straight to the two above; a Win32Error from a Python
 *   follow-up goes to ``fail`` and WAIT_FAILED, as the Python function does.
 *
 * The Python functions are the reference and the fallback: every other shape (subclasses,
 * other object types, several waiters, a parker that is not a ``threading.Lock``, APCs or
 * termination pending, a completion port's thread, finite timeouts, tag bits and pseudo
 * handles) goes to the Python function before anything is touched. One switch
 * (``event_set_enabled``, from ``_accel``) sends every call of the module functions to
 * Python; ``Event.set`` is swapped on the class (``install_methods``). */
#include "_fastevent.h"

int g_direct;
int g_nogil_wake = 1;
int g_fe_enabled = 1;

static const char *const EV_NAMES[] = {"_signaled", "manual_reset", "_waiters", NULL};
/* (two kinds: a kind holds at most MAX_NAMES slots) */
static const char *const TS_NAMES[] = {"special_apcs", "terminating", "block_listener", "on_block",
                                       "parker", "wait", "wake_pending", "awake_in_wait", NULL};
static const char *const TS_APC_NAMES[] = {"apcs", NULL};
static const char *const WB_NAMES[] = {"thread", "objects", "wait_all", "alertable", "detach",
                                       "result", "data", NULL};

kind_t k_fev, k_fts, k_fts_apc, k_fwb;
PyTypeObject *g_ev_type, *g_ts_type, *g_wb_type, *g_parker_type;
PyObject *g_ev_lock, *g_ev_tls, *g_acquire;
PyObject *g_py_set, *g_py_wait_for_one, *g_abandon, *g_check_terminating, *g_finish;
PyObject *g_terminated, *g_io_completion, *g_timeout_code, *g_zero_code;
PyObject *s_fts;
static PyObject *s_facquire;

/* Truth of a borrowed slot value: 1, 0, or -1 (unset, or its truth raised: cleared). */
int
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
int
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
