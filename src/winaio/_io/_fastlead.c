/* winaio._io._fastio, the io_uring ring's part (``_fastring.h``): the leader's wait. */
#include "_fastring.h"

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
PyTypeObject *g_plain_lock_type; /* _thread.lock, when its layout is ring_lockobject */
static PyObject *py_acquire, *g_busy;   /* RingParker.acquire; abi.RingBusyError */
PyObject *g_acquire_descr;       /* the C RingParker.acquire */
/* Leadership.enter_or_follow and RingParker._wait_as_leader, as configured: one replaced on
 * its class (a test's stand-in) sends every wait to the Python method, which calls it. */
static PyObject *py_enter_or_follow, *py_wait_as_leader, *s_enter_or_follow, *s_wait_as_leader;
PyObject *s_acquire_r;
static PyObject *s_leave, *s_idle_for, *s_flush_taken, *s_enter, *s_enter_timeout,
    *s_sq_ready;
/* lock.acquire(False): 1 taken, 0 not, -1 error. */
int
try_lock(PyObject *lock)
{
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
    if (Py_IS_TYPE(lock, g_plain_lock_type)) {
        ring_lockobject *l = (ring_lockobject *)lock;
        if (fio_try_lock(l->lock_lock)) { /* (one sem_trywait: no clock read) */
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
    PyObject *more = PyNumber_Add(v, fr_one);
    if (more == NULL) {
        return -1;
    }
    return set(k, 1, obj, i, more);
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
                    args[1] = fr_one;
                    submitted = args[0] == NULL ? NULL : ring_enter(ring, args, 2);
                    Py_XDECREF(args[0]);
                }
                else {
                    PyObject *b = PyLong_FromLong(burst);
                    submitted = b == NULL ? NULL
                                          : PyObject_CallMethodObjArgs(ring, s_enter, b, fr_one, NULL);
                    Py_XDECREF(b);
                }
            }
            else {
                PyObject *b = PyLong_FromLong(burst), *r = PyFloat_FromDouble(remaining);
                if (b == NULL || r == NULL) {
                    submitted = NULL;
                }
                else if (_PyType_Lookup(Py_TYPE(ring), s_enter_timeout) == g_enter_timeout_descr) {
                    PyObject *args[3] = {b, fr_one, r};
                    submitted = ring_enter_timeout(ring, args, 3);
                }
                else {
                    submitted = PyObject_CallMethodObjArgs(ring, s_enter_timeout, b, fr_one, r, NULL);
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
PyObject *
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
PyObject *
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
    PyObject *d = fr_descriptors(tp, lead_defs);
    if (d == NULL) {
        return NULL;
    }
    ref(&g_acquire_descr, PyDict_GetItemString(d, "acquire"));
    g_lead_ok = 1;
    return d;
}

