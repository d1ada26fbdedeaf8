/* winaio._io._fastio, the io_uring ring's part (``_fastring.h``): the port wait. */
#include "_fastring.h"

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
    /* Under LOCK, the hint of idle work read here, as the Python method reads it. LOCK does not
     * order it: the thread backend writes ``IdleWork.queued`` under its own lock, so this read
     * may be stale either way, and that is safe (``_io._backend.IdleWork``): a stale 0 blocks
     * this thread while a request is queued, but the backend never leaves a request to a
     * waiter alone - it wakes a watching worker, or sets the issuer's ``on_block``, which
     * ``port_block`` runs (through ``_wait.block``) before it parks and which hands the request
     * to a worker; a stale non-zero sends the call to the Python method, whose
     * ``run_idle_work`` takes the backend's lock, finds nothing and blocks. Only a cost. */
    int c = flag(self, &k_port2, Q_CLOSED);
    PyObject *queued = c ? NULL : PyObject_GetAttr(fr_idle_work, s_queued);
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
        PyObject *d = PyObject_GetAttr(fr_idle_work, s_deferred2);
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
PyObject *
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
    ref(&fr_idle_work, idle);
    ref(&g_py_block, block);
    ref(&g_unlink_wait, unlink);
    ref(&g_check_terminating, check);
    ref(&g_flush_deferred, flush);
    ref(&g_take, take);
    ref(&g_terminated, term);
    ref(&g_handoff, ho);
    g_port_ok = 1;
    return fr_descriptors(tp, port_defs);
}
