/* winaio._io._fastio (part): the pended receive's issuer side under the dispatcher LOCK
 * (cpend / cslot, 2026-12-05/06; split out of ``_fastpend.c`` by tools, 2026-12-06;
 * ``_fastpend.h``: the kinds and data shared, ``_fastpend.c``: what the whole replaces).
 *
 * - ``thread_state``: ``current_thread_state()`` (``fio_thread_state_seen``, ``_fastio.c``).
 * - ``register_locked``: ``_files.register_receive``'s registration of a built request (the
 *   file's ``_pending`` and ``stream_in``, the thread's non-port I/O set), under LOCK.
 * - ``arm_step1``: the receive slot's arm step 1 (``_slot.arm_locked``, its reference), which
 *   takes LOCK itself.
 *
 * Invariants:
 * - called only by ``pend_receive`` (``_fastpend.c``), after its shape checks (every kind read
 *   here checked fast), with ``register_locked`` under LOCK;
 * - ``arm_step1``: any result but 1 means nothing was touched (LOCK released): 0 takes the
 *   request path, 2 the Python method, -1 returns the error; its fallible steps come first
 *   (the slot made before LOCK, the pin before any store), and no Python code runs between
 *   its checks and its stores;
 * - ``register_locked`` writes in ``register_receive``'s order (the Python reference) and
 *   returns -1 at the first error, where the Python function raises. */
#include "_fastpend.h"
#include "_fastslot.h"

#if PEND_FAST

/* ``current_thread_state()`` (``_fastio.h``'s ``fio_thread_state``, shared with the O_DIRECT
 * issue: one remembered state per thread; ``fio_thread_state_seen``: its dict lookup skipped
 * while the thread's state dict is unchanged). */
PyObject *
thread_state(void)
{
    return fio_thread_state_seen(g_tls, g_cts);
}

/* ``register_receive`` for a request whose checks passed: 0 (registered), 1 (the file is
 * being closed: nothing registered; the caller goes to Python) or -1 with an error. */
int
register_locked(PyObject *file, PyObject *op, PyObject *ts, PyObject *event, PyObject *skip)
{
    kind_put(&pk_op2, op, Q_REGISTERED, Py_NewRef(Py_True));
    kind_put(&pk_op2, op, Q_SUBMITTED, Py_NewRef(Py_True));
    PyObject *pending = SLOT(pk_file, file, PF_PENDING);
    PyObject *stream_in = SLOT(pk_file, file, PF_STREAM_IN);
    PyObject *port = SLOT(pk_file, file, PF_PORT);
    if (pending == NULL || stream_in == NULL || port == NULL) {
        PyErr_SetString(PyExc_AttributeError, "a file slot is unset");
        return -1;
    }
    PyObject *count = PyNumber_Add(stream_in, g_one);
    if (count == NULL) {
        return -1;
    }
    int r = PyObject_SetItem(pending, op, Py_None);
    if (r < 0) {
        Py_DECREF(count);
        return -1;
    }
    kind_put(&pk_file, file, PF_STREAM_IN, count);
    int sk = fio_is_true(skip);
    if (sk < 0) {
        return -1;
    }
    if (event != Py_None || sk || port == Py_None) {
        PyObject *ext = SLOT(pk_ts, ts, T_EXTENSIONS);
        if (ext == NULL) {
            PyErr_SetString(PyExc_AttributeError, "extensions");
            return -1;
        }
        Py_INCREF(ext);
        PyObject *ops = NULL;
        if (PyDict_CheckExact(ext)) {
            ops = Py_XNewRef(PyDict_GetItemWithError(ext, g_io_key));
        }
        else {
            ops = PyObject_CallMethod(ext, "get", "O", g_io_key);
            if (ops == Py_None) {
                Py_CLEAR(ops);
            }
        }
        if (ops == NULL && !PyErr_Occurred()) {
            ops = PyDict_New();
            if (ops != NULL && PyObject_SetItem(ext, g_io_key, ops) < 0) {
                Py_CLEAR(ops);
            }
        }
        Py_DECREF(ext);
        if (ops == NULL) {
            return -1;
        }
        r = PyObject_SetItem(ops, op, Py_None);
        Py_DECREF(ops);
        if (r < 0) {
            return -1;
        }
    }
    return 0;
}

/* Arm step 1 of the receive slot (``_slot.arm_locked``, its reference) for the slot's shape
 * (no event, no ``hEvent|1``; the port checked here): under LOCK, a file not closing, no
 * receive pending (#66), its slot (made here on first use: the C type) IDLE: the view pinned,
 * its objects held, ARMING, ``stream_in`` 1. 1 (``*out``: the slot, a new reference), 0 (the
 * request path: nothing touched), 2 (the Python method: a file being closed, a Python slot,
 * a slot of another table; nothing touched) or -1 with an error (nothing touched). */
int
arm_step1(PyObject *file, PyObject *ov, PyObject *view, PyObject *ts, PyObject *slots, int rslot,
          ReceiveSlotObject **out)
{
    if (rslot < 0) {
        rslot = pk_rslot.offsets[0] >= 0 && kfast(&pk_rslot, Py_TYPE(file));
    }
    if (!rslot) {
        return 0; /* (a file class without the slot member) */
    }
    PyObject *port = SLOT(pk_file, file, PF_PORT), *rs = SLOT(pk_rslot, file, 0);
    if (port == NULL || port == Py_None || rs == NULL) {
        return 0;
    }
    if (!SlotTable_CheckExact(slots) || (rs != Py_None && !ReceiveSlot_CheckExact(rs))) {
        return 2;
    }
    PyObject *fresh = rs == Py_None ? slot_create(slots) : NULL; /* (made before LOCK) */
    if (rs == Py_None && fresh == NULL) {
        return -1;
    }
    if (fio_acquire(g_LOCK) < 0) {
        Py_XDECREF(fresh);
        return -1;
    }
    int r = 0;
    PyObject *closing = SLOT(pk_file, file, PF_CLOSING);
    PyObject *stream_in = SLOT(pk_file, file, PF_STREAM_IN);
    rs = SLOT(pk_rslot, file, 0); /* (again: Python may have run meanwhile) */
    if (closing != Py_False || rs == NULL) {
        r = 2; /* (the Python method raises ERROR_INVALID_HANDLE) */
        goto unlock;
    }
    if (stream_in == NULL || !PyLong_CheckExact(stream_in) || _PyLong_Sign(stream_in) != 0) {
        goto unlock; /* an earlier receive pends: it goes first, as a request (#66) */
    }
    ReceiveSlotObject *s;
    if (rs == Py_None) {
        if (fresh == NULL) {
            goto unlock;
        }
        s = (ReceiveSlotObject *)fresh;
        kind_put(&pk_rslot, file, 0, fresh); /* (None before: no code runs) */
        fresh = NULL;
    }
    else if (!ReceiveSlot_CheckExact(rs) || ((ReceiveSlotObject *)rs)->table != slots) {
        r = 2;
        goto unlock;
    }
    else {
        s = (ReceiveSlotObject *)rs;
    }
    if (s->state != SLOT_IDLE) {
        goto unlock; /* (busy: the request path) */
    }
    /* The objects of an IDLE slot are None: replacing them runs no code. */
    Py_SETREF(s->view, Py_NewRef(view));
    if (slot_pin(s) < 0) {
        PyErr_Clear(); /* (the request path reports a buffer it cannot take) */
        Py_SETREF(s->view, Py_NewRef(Py_None));
        goto unlock;
    }
    if (s->nbytes == 0) {
        /* (a bytearray emptied since the caller's check, by another thread while LOCK was
         * waited for: a zero-byte receive is the request's; releasing a bytearray's export
         * runs no code) */
        slot_unpin(s);
        Py_SETREF(s->view, Py_NewRef(Py_None));
        goto unlock;
    }
    Py_SETREF(s->file, Py_NewRef(file));
    Py_SETREF(s->overlapped, Py_NewRef(ov));
    Py_SETREF(s->issuer, Py_NewRef(ts));
    s->state = SLOT_ARMING;
    kind_put(&pk_file, file, PF_STREAM_IN, Py_NewRef(g_one)); /* (was 0) */
    *out = (ReceiveSlotObject *)Py_NewRef((PyObject *)s);
    r = 1;
unlock:
    fio_release(g_LOCK);
    Py_XDECREF(fresh);
    return r;
}

#endif /* PEND_FAST */
