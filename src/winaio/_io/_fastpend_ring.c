/* winaio._io._fastio (part): the backend's part of the sockets' pended receive in C
 * (``_fastpend.c`` is the rest; ``_fastpend.h`` what they share).
 *
 * What it replaces: the receive side's instance attributes read from its dict (remembered
 * while the dict's version stands: ``backend_attributes``), and ``_pend_locked``'s state writes
 * (``Receives``, ``_backends/uring/receives.py``) for a receive that is its line's head: the
 * in-flight table's ``next_ud`` and entry ``(op, line)``,
 * the line (``StreamLines.open_direct_locked``: a spare line reused, else a new ``Line``), the
 * op in the line's deque, the unsubmitted list, ``submitted``, and ``SqePrep.prep_recv`` (the
 * first 40 bytes of the SQE written into the mmapped SQE array at ``(_sq_tail & _sq_mask) <<
 * 6``; the last 24 stay zero: ``prep``'s invariant, so ``_sq_dirty`` is not touched).
 *
 * Invariants:
 * - Called by ``pend_receive`` only, under the backend's lock, once the checks that take the
 *   Python continuation (``_pend_rest``) passed; it makes none of ``_pend_locked``'s Python
 *   calls (the caller makes them after it): the only Python it may run is ``_sq_reserve`` when
 *   the cached free count ran out, after which every borrowed slot is read again.
 * - Everything that may fail comes first (no visible effect: PEND_REST); then every fallible
 *   insertion (table entry, line, the line's deque, the unsubmitted list), each undone if a
 *   later one fails (a failed allocation leaves no half state); then the SQE and plain stores.
 */
#include "_fastpend.h"
#include "_fastslot.h"

#if PEND_FAST

/* The receive side's instance attributes (``Receives``), remembered with the version of its
 * dict (3.11: every change of a dict gives it a new, globally unique version; PEP 509): while
 * the version stands, the dict holds every value remembered (borrowed), ``closing`` and
 * ``submitted`` included. This process pends on one backend at a time in practice: one entry. */
static struct {
    PyObject *dict; /* (compared only: the version says whether it is the same dict) */
    uint64_t version;
    PyObject *b[B_COUNT];
} g_seen;

/* The attributes ``be_names`` of the receive side's dict ``d`` (borrowed): 1, 0 (one is missing,
 * or ``_pend_locked`` is patched on the instance: the Python function) or -1. */
int
backend_attributes(PyObject *d, PyObject **b)
{
    uint64_t version = DICT_VERSION(d);
    if (d == g_seen.dict && version == g_seen.version && version != 0) {
        memcpy(b, g_seen.b, sizeof(g_seen.b));
        return 1;
    }
    for (int i = 0; i < B_COUNT; i++) {
        b[i] = PyDict_GetItemWithError(d, be_names[i]);
        if (b[i] == NULL) {
            return PyErr_Occurred() ? -1 : 0;
        }
    }
    if (PyDict_GetItemWithError(d, be_names[B_PEND_LOCKED]) != NULL) {
        return 0; /* patched on the instance */
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    g_seen.dict = d;
    g_seen.version = version;
    memcpy(g_seen.b, b, sizeof(g_seen.b));
    return 1;
}

/* A new Line(fd, key), as ``Line.__init__`` makes it. */
static PyObject *
new_line(PyObject *fd, PyObject *key)
{
    PyObject *ops = PyObject_CallNoArgs(g_deque);
    if (ops == NULL) {
        return NULL;
    }
    PyObject *line = g_line_type->tp_alloc(g_line_type, 0);
    if (line == NULL) {
        Py_DECREF(ops);
        return NULL;
    }
    kind_put(&pk_line, line, L_FD, Py_NewRef(fd));
    kind_put(&pk_line, line, L_KEY, Py_NewRef(key));
    kind_put(&pk_line, line, L_OPS, ops);
    kind_put(&pk_line, line, L_POLL_UD, Py_NewRef(g_zero_int));
    kind_put(&pk_line, line, L_DIRECT, Py_NewRef(Py_False));
    kind_put(&pk_line, line, L_KEEP, Py_NewRef(Py_None));
    kind_put(&pk_line, line, L_BUSY, Py_NewRef(Py_False));
    return line;
}

/* The SQE array's memory (``_sqes``): an exact memoryview's own buffer (3.11: not
 * released, writable, C-contiguous - what ``PyObject_GetBuffer(PyBUF_WRITABLE)`` of it checks;
 * no Python runs between this and the SQE's write, under the backend's lock), else exported
 * into ``*sb`` (``*held``: the caller releases it). 1, 0 (unusable) or -1 with an error. */
static int
sqe_memory(PyObject *sqes, Py_buffer *sb, int *held)
{
#if PY_VERSION_HEX < 0x030C0000
    if (Py_IS_TYPE(sqes, &PyMemoryView_Type)) {
        PyMemoryViewObject *mv = (PyMemoryViewObject *)sqes;
        if (!(mv->flags & _Py_MEMORYVIEW_RELEASED) && mv->mbuf != NULL &&
            !(mv->mbuf->flags & _Py_MANAGED_BUFFER_RELEASED) && !mv->view.readonly &&
            (mv->flags & _Py_MEMORYVIEW_C) && mv->view.buf != NULL) {
            sb->buf = mv->view.buf;
            sb->len = mv->view.len;
            *held = 0;
            return 1;
        }
    }
#endif
    if (PyObject_GetBuffer(sqes, sb, PyBUF_WRITABLE) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return -1;
        }
        PyErr_Clear();
        return 0;
    }
    *held = 1;
    return 1;
}

/* The SQ ring's next SQE for a RECV whose fallible steps come next: its tail, mask, the SQE
 * array's memory (``*sb``, released by the caller when ``*held``) and the entry's offset.
 * ``prep``'s ``_sq_reserve`` is called when the cached free count ran out (Python: the caller
 * reads its borrowed slots again). 1, 0 (a full or closed ring, an odd ring: the Python
 * continuation; nothing touched) or -1 with an error (an interrupt in ``_sq_reserve``). */
static int
sqe_slot(PyObject *ring, long long *tail, long long *mask, Py_buffer *sb, int *held,
         Py_ssize_t *at)
{
    for (int tries = 0;; tries++) {
        PyObject *tail_o = SLOT(pk_ring, ring, R_TAIL), *limit_o = SLOT(pk_ring, ring, R_LIMIT);
        PyObject *mask_o = SLOT(pk_ring, ring, R_MASK), *sqes = SLOT(pk_ring, ring, R_SQES);
        if (tail_o == NULL || limit_o == NULL || mask_o == NULL || sqes == NULL ||
            !PyLong_CheckExact(tail_o) || !PyLong_CheckExact(limit_o) ||
            !PyLong_CheckExact(mask_o)) {
            return 0;
        }
        *tail = pend_as_ll(tail_o);
        long long limit = pend_as_ll(limit_o);
        *mask = pend_as_ll(mask_o);
        if (PyErr_Occurred() || *mask < 0) {
            PyErr_Clear();
            return 0;
        }
        if (*tail == limit) {
            if (tries) {
                return 0;
            }
            PyObject *r = PyObject_CallMethodNoArgs(ring, s_sq_reserve);
            if (r == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                    return -1;
                }
                PyErr_Clear();
                return 0; /* (a full ring, a closed one) */
            }
            Py_DECREF(r);
            continue;
        }
        int got = sqe_memory(sqes, sb, held);
        if (got <= 0) {
            return got;
        }
        *at = (Py_ssize_t)((*tail & *mask) << 6);
        if (*at < 0 || *at + (Py_ssize_t)sizeof(fio_sqe_head_t) > sb->len) {
            if (*held) {
                PyBuffer_Release(sb);
            }
            return 0;
        }
        return 1;
    }
}

/* ``_pend_locked`` minus its Python calls (the caller makes them): returns PEND_DONE (the
 * request is its line's head and a RECV; ``*owner_is_issuer`` says which call follows),
 * PEND_REST (nothing touched: the Python continuation) or PEND_ERROR. */
int
pend_locked(PyObject *d, PyObject **b, PyObject *submitted_o, uint64_t seen, PyObject *op,
            PyObject *ts, PyObject *file, PyObject *key, PyObject *view, int *owner_is_issuer)
{
    PyObject *ring = b[B_RING], *table = b[B_TABLE], *streams = b[B_STREAMS];
    PyObject *ud = SLOT(pk_table, table, 0);
    PyObject *tail_o = SLOT(pk_ring, ring, R_TAIL), *limit_o = SLOT(pk_ring, ring, R_LIMIT);
    PyObject *mask_o = SLOT(pk_ring, ring, R_MASK), *sqes = SLOT(pk_ring, ring, R_SQES);
    if (ud == NULL || tail_o == NULL || limit_o == NULL || mask_o == NULL || sqes == NULL ||
        !PyLong_CheckExact(ud) || !PyLong_CheckExact(tail_o) || !PyLong_CheckExact(limit_o) ||
        !PyLong_CheckExact(mask_o)) {
        return PEND_REST;
    }
    unsigned long long udv = pend_as_u64(ud);
    if (udv == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return PEND_REST; /* (struct.error in Python: the general path) */
    }
    /* ``_from_buffer(buf)``: what keeps the memory the kernel writes into (a released view
     * raises: the general path reports it). */
    PyObject *anchor = PyMemoryView_FromObject(view);
    if (anchor == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return PEND_ERROR;
        }
        PyErr_Clear();
        return PEND_REST;
    }
    long long tail = PyLong_AsLongLong(tail_o);
    long long limit = PyLong_AsLongLong(limit_o);
    if ((tail == -1 || limit == -1) && PyErr_Occurred()) {
        PyErr_Clear();
        Py_DECREF(anchor);
        return PEND_REST;
    }
    if (tail == limit) {
        /* The cached free count ran out: ``prep_recv`` calls ``_sq_reserve`` (a full ring or a
         * closed one raises: the general path). */
        PyObject *r = PyObject_CallMethodNoArgs(ring, s_sq_reserve);
        if (r == NULL) {
            Py_DECREF(anchor);
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                return PEND_ERROR;
            }
            PyErr_Clear();
            return PEND_REST;
        }
        Py_DECREF(r);
        /* (Python ran: every borrowed slot is read again) */
        ud = SLOT(pk_table, table, 0);
        tail_o = SLOT(pk_ring, ring, R_TAIL);
        limit_o = SLOT(pk_ring, ring, R_LIMIT);
        mask_o = SLOT(pk_ring, ring, R_MASK);
        sqes = SLOT(pk_ring, ring, R_SQES);
        if (ud == NULL || tail_o == NULL || limit_o == NULL || mask_o == NULL || sqes == NULL ||
            !PyLong_CheckExact(ud) || !PyLong_CheckExact(tail_o) ||
            !PyLong_CheckExact(limit_o) || !PyLong_CheckExact(mask_o)) {
            Py_DECREF(anchor);
            return PEND_REST;
        }
        udv = pend_as_u64(ud);
        tail = PyLong_AsLongLong(tail_o);
        limit = PyLong_AsLongLong(limit_o);
        if (PyErr_Occurred() || tail == limit) {
            PyErr_Clear();
            Py_DECREF(anchor);
            return PEND_REST;
        }
    }
    long long mask = PyLong_AsLongLong(mask_o);
    long ioprio = PyLong_AsLong(b[B_IOPRIO]);
    long fdv = PyLong_AsLong(SLOT(pk_file, file, PF_FD));
    if (PyErr_Occurred() || ioprio < 0 || ioprio > 0xFFFF || fdv < INT32_MIN ||
        fdv > INT32_MAX || mask < 0) {
        PyErr_Clear();
        Py_DECREF(anchor);
        return PEND_REST;
    }
    Py_buffer *ab = PyMemoryView_GET_BUFFER(anchor);
    Py_buffer sb;
    if (PyObject_GetBuffer(sqes, &sb, PyBUF_WRITABLE) < 0) {
        Py_DECREF(anchor);
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return PEND_ERROR;
        }
        PyErr_Clear();
        return PEND_REST; /* (a released view: ValueError in Python) */
    }
    Py_ssize_t at = (Py_ssize_t)((tail & mask) << 6);
    if (at < 0 || at + (Py_ssize_t)sizeof(fio_sqe_head_t) > sb.len || ab->len > UINT32_MAX) {
        PyBuffer_Release(&sb);
        Py_DECREF(anchor);
        return PEND_REST;
    }

    /* Everything that may fail first (no visible effect), then the insertions, undone if a
     * later one fails; then the SQE and the plain stores. */
    Py_INCREF(ud); /* (released at ``out``: the slot is rebound below) */
    PyObject *spare = SLOT(pk_sl, streams, S_SPARE), *lines = SLOT(pk_sl, streams, S_LINES);
    PyObject *unsubmitted = b[B_UNSUBMITTED];
    PyObject *line = NULL, *entry = NULL, *next_ud = NULL, *next_tail = NULL, *submitted = NULL;
    PyObject *res = NULL, *fd = NULL;
    int reused = 0, st = PEND_ERROR, undo = 0;
    if (spare == NULL || lines == NULL || !PyList_CheckExact(spare) || !PyDict_CheckExact(lines)) {
        st = PEND_REST;
        goto out;
    }
    /* held (review7): the allocations below may run a collection, whose Python code may
     * rebind the slot (a close's ``_release_fd`` cannot: this request is registered) */
    fd = Py_XNewRef(SLOT(pk_file, file, PF_FD));
    if (fd == NULL) {
        st = PEND_REST;
        goto out;
    }
    if (PyList_GET_SIZE(spare) > 0) {
        line = Py_NewRef(PyList_GET_ITEM(spare, PyList_GET_SIZE(spare) - 1));
        if (!Py_IS_TYPE(line, g_line_type) || SLOT(pk_line, line, L_OPS) == NULL) {
            st = PEND_REST;
            goto out;
        }
        reused = 1;
    }
    else if ((line = new_line(fd, key)) == NULL) {
        goto out;
    }
    PyObject *ops = SLOT(pk_line, line, L_OPS);
    if ((entry = PyTuple_Pack(2, op, line)) == NULL ||
        (next_ud = PyLong_FromUnsignedLongLong(udv + 1)) == NULL ||
        (next_tail = PyLong_FromLongLong(tail + 1)) == NULL ||
        (submitted = PyNumber_Add(submitted_o, g_one)) == NULL) {
        goto out;
    }
    if (PyDict_SetItem(table, ud, entry) < 0) {
        goto out;
    }
    if (PyDict_SetItem(lines, key, line) < 0) {
        goto undo_table;
    }
    /* ``ops.append(op)``: a deque's own method without looking it up, else by name */
    if (Py_IS_TYPE(ops, (PyTypeObject *)g_deque)) {
        PyObject *a[2] = {ops, op};
        res = PyObject_Vectorcall(g_deque_append, a, 2, NULL);
    }
    else {
        res = PyObject_CallMethodOneArg(ops, s_append, op);
    }
    if (res == NULL) {
        goto undo_lines;
    }
    Py_CLEAR(res);
    if (PyList_Append(unsubmitted, ud) < 0) {
        goto undo_ops;
    }
    /* (``seen``: the dict unchanged since its attributes were read; ``_sq_reserve`` does not
     * touch it, but is Python: looked at again) */
    int unchanged = seen != 0 && DICT_VERSION(d) == seen;
    if (PyDict_SetItem(d, be_names[B_SUBMITTED], submitted) < 0) {
        /* (not in practice: the key is there, the dict does not grow) */
        Py_ssize_t n = PyList_GET_SIZE(unsubmitted);
        PyList_SetSlice(unsubmitted, n - 1, n, NULL);
        goto undo_ops;
    }
    if (unchanged && g_seen.dict == d && g_seen.version == seen) {
        g_seen.version = DICT_VERSION(d); /* only ``submitted`` changed: to this value */
        g_seen.b[B_SUBMITTED] = submitted;
    }
    else {
        g_seen.dict = NULL;
    }
    /* prep_recv */
    fio_sqe_head_t sqe = {FIO_OP_RECV, 0, (uint16_t)ioprio, (int32_t)fdv, 0,
                          (uint64_t)(uintptr_t)ab->buf, (uint32_t)ab->len, 0, (uint64_t)udv};
    memcpy((char *)sb.buf + at, &sqe, sizeof(sqe));
    kind_put(&pk_ring, ring, R_TAIL, next_tail);
    next_tail = NULL;
    kind_put(&pk_table, table, 0, next_ud);
    next_ud = NULL;
    /* open_direct_locked */
    if (reused) {
        /* spare.pop(): the list keeps its allocation; its reference goes with ``line``'s */
        Py_ssize_t n = PyList_GET_SIZE(spare);
        Py_SET_SIZE(spare, n - 1);
        Py_DECREF(PyList_GET_ITEM(spare, n - 1)); /* (``line`` holds another) */
        kind_put(&pk_line, line, L_FD, Py_NewRef(fd));
        kind_put(&pk_line, line, L_KEY, Py_NewRef(key));
    }
    kind_put(&pk_line, line, L_POLL_UD, Py_NewRef(ud));
    kind_put(&pk_line, line, L_DIRECT, Py_NewRef(Py_True));
    kind_put(&pk_line, line, L_KEEP, anchor);
    anchor = NULL;
    kind_put(&pk_op2, op, Q_TOKEN, Py_NewRef(line));
    *owner_is_issuer = SLOT(pk_lead, b[B_LEAD], 0) == SLOT(pk_ts, ts, T_PARKER);
    st = PEND_DONE;
    goto out;

undo_ops:
    undo = 3;
    goto undo;
undo_lines:
    undo = 2;
    goto undo;
undo_table:
    undo = 1;
undo: {
    /* The insertion's error is kept aside while the earlier ones are undone, and raised
     * after (trim: ``ops.pop()`` called with it set failed with a SystemError, whose
     * ``PyErr_WriteUnraisable`` cleared both, and ``pend_receive`` returned NULL without an
     * exception; tests/io/test_fastsock_bytearray.py's allocation sweep). */
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    if (undo >= 3) {
        res = PyObject_CallMethodNoArgs(ops, s_pop);
        if (res == NULL) {
            PyErr_WriteUnraisable(ops);
        }
        Py_CLEAR(res);
    }
    if (undo >= 2 && PyDict_DelItem(lines, key) < 0) {
        PyErr_WriteUnraisable(lines);
    }
    if (PyDict_DelItem(table, ud) < 0) {
        PyErr_WriteUnraisable(table);
    }
    PyErr_Restore(et, ev, etb);
}
out:
    PyBuffer_Release(&sb);
    Py_XDECREF(fd);
    Py_DECREF(ud);
    Py_XDECREF(anchor);
    Py_XDECREF(line);
    Py_XDECREF(entry);
    Py_XDECREF(next_ud);
    Py_XDECREF(next_tail);
    Py_XDECREF(submitted);
    return st;
}

/* ------------------------------------------------------------------ the receive slot */

/* Arm step 2 of a C receive slot (docs/plans/receive-slot.md §2; the Python reference: the
 * backend's slot arm under its lock): under the backend's lock, the checks that take the
 * Python continuation passed (backend open, no backlog, no line for the socket, the slot
 * ARMING): the slot's index (its first arm: a dead slot's reused, or a new one), its
 * incarnation's user_data into the unsubmitted list, the RECV's SQE from the pinned buffer,
 * ARMED, the table's ``armed`` and ``submitted`` counted. PEND_DONE (``*owner_is_issuer``
 * says which call follows), PEND_REST (nothing touched but the index: the Python
 * continuation) or PEND_ERROR. */
int
pend_slot_locked(PyObject **b, PyObject *slot_o, PyObject *ts, PyObject *file,
                 int *owner_is_issuer)
{
    ReceiveSlotObject *s = (ReceiveSlotObject *)slot_o;
    PyObject *ring = b[B_RING], *slots_o = b[B_SLOTS];
    if (!SlotTable_CheckExact(slots_o) || s->state != SLOT_ARMING || s->buf.obj == NULL ||
        s->nbytes > UINT32_MAX || s->table != slots_o) {
        return PEND_REST;
    }
    SlotTableObject *t = (SlotTableObject *)slots_o;
    if (t->items == NULL || t->free == NULL || !PyList_CheckExact(t->items) ||
        !PyList_CheckExact(t->free)) {
        return PEND_REST;
    }
    long long tail, mask;
    Py_buffer sb;
    Py_ssize_t at;
    int held = 0;
    int got = sqe_slot(ring, &tail, &mask, &sb, &held, &at);
    if (got <= 0) {
        return got < 0 ? PEND_ERROR : PEND_REST;
    }
    PyObject *fd_o = SLOT(pk_file, file, PF_FD); /* (``_sq_reserve`` may have run: again) */
    long long ioprio = pend_as_ll(b[B_IOPRIO]);  /* (an exact int: ``pend_impl``) */
    long long fdv = fd_o != NULL && PyLong_Check(fd_o) ? pend_as_ll(fd_o) : -1;
    if (fd_o == NULL || !PyLong_Check(fd_o) || PyErr_Occurred() || ioprio < 0 ||
        ioprio > 0xFFFF || fdv < INT32_MIN || fdv > INT32_MAX) {
        PyErr_Clear();
        if (held) {
            PyBuffer_Release(&sb);
        }
        return PEND_REST;
    }
    int st = PEND_ERROR;
    PyObject *ud = NULL, *next_tail = NULL;
    /* ``add_locked``: the slot's index (kept if a later step fails: harmless) */
    if (s->index == SLOT_NO_INDEX) {
        Py_ssize_t nfree = PyList_GET_SIZE(t->free);
        if (nfree > 0) {
            PyObject *io = PyList_GET_ITEM(t->free, nfree - 1);
            Py_ssize_t index = PyLong_Check(io) ? PyLong_AsSsize_t(io) : -1;
            if (index < 0 || index >= PyList_GET_SIZE(t->items) ||
                !ReceiveSlot_CheckExact(PyList_GET_ITEM(t->items, index))) {
                PyErr_Clear();
                st = PEND_REST; /* (a Python twin's there: the Python function) */
                goto out;
            }
            ReceiveSlotObject *dead = (ReceiveSlotObject *)PyList_GET_ITEM(t->items, index);
            s->gen = (dead->gen + 1) & SLOT_GEN_MASK;
            Py_SET_SIZE(t->free, nfree - 1); /* free.pop() */
            Py_DECREF(io);
            PyList_SET_ITEM(t->items, index, Py_NewRef(slot_o));
            s->index = (uint32_t)index;
            Py_DECREF(dead); /* (a dead slot: its objects are None; no code runs) */
        }
        else {
            if (PyList_GET_SIZE(t->items) >= (Py_ssize_t)SLOT_NO_INDEX) {
                st = PEND_REST;
                goto out;
            }
            if (PyList_Append(t->items, slot_o) < 0) {
                goto out;
            }
            s->index = (uint32_t)(PyList_GET_SIZE(t->items) - 1);
        }
    }
    /* Everything that may fail, then the stores. */
    uint64_t udv = slot_user_data(s);
    if ((ud = PyLong_FromUnsignedLongLong(udv)) == NULL ||
        (next_tail = PyLong_FromLongLong(tail + 1)) == NULL ||
        PyList_Append(b[B_UNSUBMITTED], ud) < 0) {
        goto out;
    }
    fio_sqe_head_t sqe = {FIO_OP_RECV, 0, (uint16_t)ioprio, (int32_t)fdv, 0,
                          (uint64_t)(uintptr_t)s->addr, (uint32_t)s->nbytes, 0, udv};
    memcpy((char *)sb.buf + at, &sqe, sizeof(sqe));
    kind_put(&pk_ring, ring, R_TAIL, next_tail);
    next_tail = NULL;
    Py_XSETREF(s->ud, ud); /* (None before: no code runs) */
    ud = NULL;
    s->state = SLOT_ARMED;
    t->armed++;
    t->submitted++;
    *owner_is_issuer = SLOT(pk_lead, b[B_LEAD], 0) == SLOT(pk_ts, ts, T_PARKER);
    st = PEND_DONE;
out:
    if (held) {
        PyBuffer_Release(&sb);
    }
    Py_XDECREF(ud);
    Py_XDECREF(next_tail);
    return st;
}

#endif /* PEND_FAST */
