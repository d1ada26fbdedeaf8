/* winaio._io._fastio (part): an O_DIRECT read into an idle io_uring ring, in C (qd1,
 * 2026-12-06; ``_fastdirect.c`` is the issuer's part).
 *
 * What it replaces: ``IoUringBackend.submit``'s FILE branch (``_backends/uring/backend.py``)
 * for its QD1 shape - a pinned ``FileReadOp`` (``op.anchor`` set: one READ at ``op.address``)
 * issued while the ring holds nothing else - and what that branch calls on it:
 * ``FileReadOp.prep`` -> ``BackendRing.prep_read`` (the SQE's first 40 bytes at
 * ``(_sq_tail & _sq_mask) << 6``; the last 24 stay zero: ``prep``'s invariant), the counters and
 * the in-flight entry, and ``Submission.submit_one_locked`` (publish, one enter, the request
 * recorded as the issuer's). Installed as ``IoUringBackend.submit`` (a method descriptor) by
 * ``_backends/uring/fastsubmit.py`` through ``_io._accel``.
 *
 * Invariants (the Python methods stay the reference and the fallback):
 * - Before anything is touched, every other shape goes to the Python ``submit``: another
 *   request class or kind, an unpinned read, a subclass of the backend, keywords, a class on
 *   the way whose attributes were redefined (``kind_fast``), an instance attribute missing.
 * - Under the backend's lock, anything unusual (a closing backend, a backlog, a ring that
 *   holds another request, a full SQ cache, an offset or size the SQE cannot hold) releases
 *   the lock with nothing touched and takes the Python method (which takes the lock again and
 *   decides).
 * - What may fail comes first (the entry, the new ints; then the table insert, the only
 *   fallible insertion); then the SQE and the plain stores, as in Python, before the publish.
 * - The submission is ``submit_one_locked``'s: its fast test (one SQE published, no stuck
 *   backlog) in C, else the Python method (``publish`` is idempotent); the enter and the
 *   publish are ``BackendRing``'s own (C) methods; ``own_locked``, ``submit_locked``,
 *   ``_bind_parker`` and ``os.eventfd_write`` are called as in Python, last, each made again
 *   when an interrupt cut it at its entry (``fio_again_keep``: the interrupt is raised once
 *   every step is made).
 * - As the Python method, it raises only having taken nothing (the issuer then fails the
 *   request: ``_issue._hand_to_backend``): a MemoryError once the read is in the kernel
 *   (recording it as the issuer's, binding the issuer's parker) is not raised.
 */
#include "_fastio.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

/* (the methods that the C code inlines are in the kinds: one redefined on its class - a
 * test's stand-in - sends every call to the Python method) */
static const char *const OPA_NAMES[] = {"file",   "issuer", "anchor", "address", "nbytes",
                                        "offset", "token",  "prep",   NULL};
enum { A_FILE, A_ISSUER, A_ANCHOR, A_ADDRESS, A_NBYTES, A_OFFSET, A_TOKEN, A_PREP };
static const char *const FD_NAMES[] = {"fd", NULL};
static const char *const RING_NAMES[] = {"_sq_tail", "_sq_limit", "_sq_mask", "_sqes",
                                         "prep_read", NULL};
enum { R_TAIL, R_LIMIT, R_MASK, R_SQES };
static const char *const TABLE_NAMES[] = {"next_ud", NULL};
static const char *const BACKLOG_NAMES[] = {"entries", "stuck", NULL};
enum { K_ENTRIES, K_STUCK };
static const char *const SQ_NAMES[] = {"enters", "_migration", "_unsubmitted",
                                       "submit_one_locked", NULL};
enum { S_ENTERS, S_MIGRATION, S_UNSUBMITTED };
static const char *const TS_NAMES[] = {"parker", NULL};
static const char *const RP_NAMES[] = {"lead", NULL};
/* The backend's instance attributes read from its dict. */
static const char *const BE_NAMES[] = {"_lock",  "_closing", "_backlog", "_table", "_ring",
                                       "_submitted", "_sq", "_efd",   "_lead",  NULL};
enum { B_LOCK, B_CLOSING, B_BACKLOG, B_TABLE, B_RING, B_SUBMITTED, B_SQ, B_EFD, B_LEAD, B_N };

static kind_t r_op, r_file, r_ring, r_table, r_backlog, r_sq, r_ts, r_rp;
static PyTypeObject *g_be_type, *g_op_type, *g_ring_type, *g_table_type, *g_backlog_type,
    *g_sq_type, *g_rp_type;
static PyObject *g_py_submit, *g_busy, *g_eventfd_write, *g_one_i;
static PyObject *be_names[B_N];
static PyObject *s_publish, *s_enter, *s_own_locked, *s_submit_one, *s_submit_locked,
    *s_bind_parker, *s_append;
static int g_submit_on;

#define RSLOT(k, obj, i) (*(PyObject **)((char *)(obj) + (k).offsets[i]))

static PyObject *
python_submit(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return fio_delegate(g_py_submit, self, args, nargs, kwnames);
}

/* The backend's attributes ``be_names`` (borrowed) from its dict: 1, or 0 (one is missing). */
static int
backend_attrs(PyObject *self, PyObject **b)
{
    PyObject **dp = _PyObject_GetDictPtr(self);
    if (dp == NULL || *dp == NULL || !PyDict_CheckExact(*dp)) {
        return 0;
    }
    for (int i = 0; i < B_N; i++) {
        b[i] = PyDict_GetItemWithError(*dp, be_names[i]);
        if (b[i] == NULL) {
            PyErr_Clear();
            return 0;
        }
    }
    return 1;
}

/* ``x + 1`` for an int slot (a new reference), or NULL with an error. */
static PyObject *
plus_one(PyObject *x)
{
    return PyNumber_Add(x, g_one_i);
}

/* What the lock-held part decided. */
enum { SUB_ERROR = -1, SUB_PYTHON = 0, SUB_DONE = 1 };

/* The ring is idle and the shape plain: prepare, insert and count (under the backend's lock).
 * SUB_DONE (the SQE prepared and ``*ud_out`` its user_data: a new reference), SUB_PYTHON
 * (nothing touched) or SUB_ERROR (nothing touched). */
static int
prepare_locked(PyObject **b, PyObject *op, PyObject **ud_out, PyObject **more_out,
               PyObject **uds_out)
{
    PyObject *backlog = b[B_BACKLOG], *table = b[B_TABLE], *ring = b[B_RING];
    if (b[B_CLOSING] != Py_False || !kind_fast(&r_backlog, Py_TYPE(backlog)) ||
        !kind_fast(&r_table, Py_TYPE(table)) || !kind_fast(&r_ring, Py_TYPE(ring)) ||
        !kind_fast(&r_sq, Py_TYPE(b[B_SQ]))) {
        return SUB_PYTHON;
    }
    PyObject *entries = RSLOT(r_backlog, backlog, K_ENTRIES);
    int busy = entries == NULL ? -1 : fio_is_true(entries);
    if (busy != 0 || PyDict_GET_SIZE(table) != 0) {
        PyErr_Clear(); /* (a truth test that raised: the Python method decides) */
        return SUB_PYTHON; /* (backlogged, or another request in the ring: not QD1) */
    }
    PyObject *ud = RSLOT(r_table, table, 0);
    PyObject *tail_o = RSLOT(r_ring, ring, R_TAIL), *limit_o = RSLOT(r_ring, ring, R_LIMIT);
    PyObject *mask_o = RSLOT(r_ring, ring, R_MASK), *sqes = RSLOT(r_ring, ring, R_SQES);
    PyObject *file = RSLOT(r_op, op, A_FILE);
    PyObject *fd_o = file != NULL && kind_fast(&r_file, Py_TYPE(file)) ? RSLOT(r_file, file, 0)
                                                                        : NULL;
    PyObject *addr_o = RSLOT(r_op, op, A_ADDRESS), *n_o = RSLOT(r_op, op, A_NBYTES);
    PyObject *off_o = RSLOT(r_op, op, A_OFFSET), *anchor = RSLOT(r_op, op, A_ANCHOR);
    if (ud == NULL || anchor == NULL || anchor == Py_None || tail_o == NULL || limit_o == NULL ||
        mask_o == NULL || sqes == NULL || fd_o == NULL || addr_o == NULL || n_o == NULL || off_o == NULL ||
        !PyLong_CheckExact(ud) || !PyLong_CheckExact(tail_o) || !PyLong_CheckExact(limit_o) ||
        !PyLong_CheckExact(mask_o) || !PyLong_CheckExact(fd_o) || !PyLong_CheckExact(addr_o) ||
        !PyLong_CheckExact(n_o) || !PyLong_CheckExact(off_o) ||
        !PyLong_CheckExact(b[B_SUBMITTED]) || RSLOT(r_sq, b[B_SQ], S_ENTERS) == NULL ||
        !PyLong_CheckExact(RSLOT(r_sq, b[B_SQ], S_ENTERS))) {
        return SUB_PYTHON;
    }
    unsigned long long udv = PyLong_AsUnsignedLongLong(ud);
    unsigned long long addr = PyLong_AsUnsignedLongLong(addr_o);
    long long tail = PyLong_AsLongLong(tail_o), limit = PyLong_AsLongLong(limit_o);
    long long mask = PyLong_AsLongLong(mask_o), off = PyLong_AsLongLong(off_o);
    long fd = PyLong_AsLong(fd_o);
    long long n = PyLong_AsLongLong(n_o);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return SUB_PYTHON; /* (struct.error in Python: the slow path reports it) */
    }
    if (tail == limit || mask < 0 || fd < INT32_MIN || fd > INT32_MAX || n < 0 ||
        n > UINT32_MAX || udv == ULLONG_MAX) {
        return SUB_PYTHON; /* (``_sq_reserve`` to call, or what the SQE cannot hold) */
    }
    Py_buffer sb;
    if (PyObject_GetBuffer(sqes, &sb, PyBUF_WRITABLE) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return SUB_ERROR;
        }
        PyErr_Clear();
        return SUB_PYTHON;
    }
    Py_ssize_t at = (Py_ssize_t)((tail & mask) << 6);
    if (at < 0 || at + (Py_ssize_t)sizeof(fio_sqe_head_t) > sb.len) {
        PyBuffer_Release(&sb);
        return SUB_PYTHON;
    }
    /* What may fail first, then the one fallible insertion, then the stores. (The user_data
     * held first: an allocation may run a collection, whose finalizers run Python code.) */
    Py_INCREF(ud);
    PyObject *entry = PyTuple_Pack(2, op, anchor);
    PyObject *next_ud = entry != NULL ? PyLong_FromUnsignedLongLong(udv + 1) : NULL;
    PyObject *next_tail = next_ud != NULL ? PyLong_FromLongLong(tail + 1) : NULL;
    PyObject *submitted = next_tail != NULL ? plus_one(b[B_SUBMITTED]) : NULL;
    /* (and ``submit_one_locked``'s: the enters counted, the user_data recorded as the
     * issuer's - nothing may fail between the publish and the enter) */
    PyObject *more = submitted != NULL ? plus_one(RSLOT(r_sq, b[B_SQ], S_ENTERS)) : NULL;
    PyObject *uds = more != NULL ? PyTuple_Pack(1, ud) : NULL;
    if (uds == NULL || PyDict_SetItem(table, ud, entry) < 0) {
        PyBuffer_Release(&sb);
        Py_XDECREF(entry);
        Py_XDECREF(next_ud);
        Py_XDECREF(next_tail);
        Py_XDECREF(submitted);
        Py_XDECREF(more);
        Py_XDECREF(uds);
        Py_DECREF(ud);
        return SUB_ERROR;
    }
    *more_out = more;
    *uds_out = uds;
    Py_DECREF(entry);
    fio_sqe_head_t h = {FIO_OP_READ, 0, 0, (int32_t)fd, (int64_t)off, addr, (uint32_t)n, 0, udv};
    memcpy((char *)sb.buf + at, &h, sizeof h);
    PyBuffer_Release(&sb);
    kind_put(&r_ring, ring, R_TAIL, next_tail);
    kind_put(&r_table, table, 0, next_ud);
    kind_put(&r_op, op, A_TOKEN, Py_NewRef(ud));
    *ud_out = ud;
    b[B_SUBMITTED] = submitted; /* (stored by the caller: the dict write) */
    return SUB_DONE;
}

/* ``Submission.submit_one_locked(ts, ud)`` after the C prepare: False (Py_False), True (the
 * ring thread must be woken) as a new reference, or NULL with an error. ``*et``.. keep an
 * interrupt that cut ``own_locked`` at its entry (the call made again). */
static PyObject *
submit_one_locked(PyObject **b, PyObject *ts, PyObject *ud, PyObject *more, PyObject *uds,
                  PyObject **et, PyObject **ev, PyObject **etb)
{
    PyObject *sq = b[B_SQ], *ring = b[B_RING], *backlog = b[B_BACKLOG];
    static PyObject *one_zero[2];
    if (one_zero[0] == NULL) {
        one_zero[0] = PyLong_FromLong(1);
        one_zero[1] = PyLong_FromLong(0);
        if (one_zero[0] == NULL || one_zero[1] == NULL) {
            Py_CLEAR(one_zero[0]);
            Py_CLEAR(one_zero[1]);
            return NULL;
        }
    }
    PyObject *published = PyObject_CallMethodNoArgs(ring, s_publish);
    if (published == NULL) {
        return NULL;
    }
    int one = PyLong_CheckExact(published) && PyLong_AsLong(published) == 1;
    Py_DECREF(published);
    PyObject *migration = RSLOT(r_sq, sq, S_MIGRATION);
    if (!one || RSLOT(r_backlog, backlog, K_STUCK) != Py_False || migration == NULL) {
        PyObject *args[3] = {sq, ts, ud}; /* (publish is idempotent: the Python method) */
        return PyObject_VectorcallMethod(s_submit_one, args, 3, NULL);
    }
    Py_INCREF(migration);
    kind_put(&r_sq, sq, S_ENTERS, Py_NewRef(more)); /* (made before: nothing fails here) */
    PyObject *eargs[3] = {ring, one_zero[0], one_zero[1]};
    PyObject *consumed = PyObject_VectorcallMethod(s_enter, eargs, 3, NULL);
    PyObject *result = NULL;
    long c = 0;
    if (consumed == NULL) {
        if (!PyErr_ExceptionMatches(g_busy)) {
            goto out;
        }
        PyErr_Clear(); /* (EBUSY: the general path below) */
    }
    else {
        c = PyLong_AsLong(consumed);
        Py_DECREF(consumed);
        if (c == -1 && PyErr_Occurred()) {
            goto out;
        }
    }
    if (c == 1) {
        PyObject *oargs[4] = {migration, ts, uds, b[B_TABLE]};
        PyObject *r = fio_again_keep(NULL, s_own_locked, oargs, 4, 0, et, ev, etb);
        if (r != NULL) {
            Py_DECREF(r);
            result = Py_NewRef(Py_False);
        }
        else if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
            /* In the kernel, not recorded as the issuer's (``Migration.died`` resubmits it if
             * it dies with its submitter): never raised, or the issuer would fail a request
             * the kernel has (``submit`` raises only having taken nothing). */
            PyErr_Clear();
            result = Py_NewRef(Py_False);
        }
        goto out;
    }
    PyObject *unsubmitted = RSLOT(r_sq, sq, S_UNSUBMITTED);
    if (unsubmitted == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_unsubmitted");
        goto out;
    }
    PyObject *aargs[2] = {unsubmitted, ud};
    PyObject *r = PyObject_VectorcallMethod(s_append, aargs, 2, NULL);
    if (r != NULL || PyErr_ExceptionMatches(PyExc_MemoryError)) {
        /* (not listed for want of memory: ``submit_locked`` submits every published SQE all
         * the same, only its record as the issuer's is missing - ``Migration.died``) */
        if (r == NULL) {
            PyErr_Clear();
        }
        Py_XDECREF(r);
        PyObject *sargs[2] = {sq, ts};
        result = PyObject_VectorcallMethod(s_submit_locked, sargs, 2, NULL);
    }
out:
    Py_DECREF(migration);
    return result;
}

/* IoUringBackend.submit(op) */
static PyObject *
direct_backend_submit(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *b[B_N];
    if (!g_submit_on || nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames)) ||
        !Py_IS_TYPE(self, g_be_type) || !Py_IS_TYPE(args[0], g_op_type) ||
        !kind_fast(&r_op, g_op_type)) {
        return python_submit(self, args, nargs, kwnames);
    }
    PyObject *op = args[0];
    PyObject *issuer = RSLOT(r_op, op, A_ISSUER), *anchor = RSLOT(r_op, op, A_ANCHOR);
    if (issuer == NULL || anchor == NULL || anchor == Py_None ||
        !kind_fast(&r_ts, Py_TYPE(issuer)) || !backend_attrs(self, b) ||
        !kind_fast(&r_sq, Py_TYPE(b[B_SQ]))) {
        return python_submit(self, args, nargs, kwnames);
    }
    PyObject *lock = Py_NewRef(b[B_LOCK]);
    Py_INCREF(op);
    Py_INCREF(issuer);
    PyObject *result = NULL, *et = NULL, *ev = NULL, *etb = NULL, *ud = NULL, *wake = NULL;
    PyObject *more = NULL, *uds = NULL;
    if (fio_acquire(lock) < 0) {
        goto done;
    }
    if (!backend_attrs(self, b)) { /* (again: Python may have run while the lock was waited) */
        fio_release(lock);
        goto python;
    }
    /* (the attributes below are borrowed from the dict: no Python code runs until the stores) */
    int st = prepare_locked(b, op, &ud, &more, &uds);
    if (st == SUB_DONE) {
        PyObject **dp = _PyObject_GetDictPtr(self);
        /* ``self._submitted += 1`` (the new int made in ``prepare_locked``): a dict store
         * whose old value is an int (its release runs no code) */
        if (PyDict_SetItem(*dp, be_names[B_SUBMITTED], b[B_SUBMITTED]) < 0) {
            PyErr_Clear(); /* (a replaced key's value: no allocation; cannot fail) */
        }
        Py_DECREF(b[B_SUBMITTED]);
        wake = submit_one_locked(b, issuer, ud, more, uds, &et, &ev, &etb);
    }
    fio_release(lock);
    if (st == SUB_PYTHON) {
        goto python;
    }
    if (st == SUB_ERROR || wake == NULL) {
        goto done;
    }
    int must_wake = fio_is_true(wake);
    if (must_wake < 0) {
        goto done;
    }
    if (must_wake) {
        PyObject *efd = NULL;
        if (backend_attrs(self, b)) {
            efd = b[B_EFD];
        }
        if (efd == NULL) {
            PyErr_SetString(PyExc_AttributeError, "_efd");
            goto done;
        }
        PyObject *wargs[2] = {efd, g_one_i};
        PyObject *r = fio_again_keep(g_eventfd_write, NULL, wargs, 2, 0, &et, &ev, &etb);
        if (r == NULL) {
            goto done;
        }
        Py_DECREF(r);
    }
    /* the parker: ``parker.__class__ is not RingParker or parker.lead is not self._lead`` */
    PyObject *parker = RSLOT(r_ts, issuer, 0);
    int bound = parker != NULL && Py_IS_TYPE(parker, g_rp_type) &&
                kind_fast(&r_rp, g_rp_type) && backend_attrs(self, b) &&
                RSLOT(r_rp, parker, 0) == b[B_LEAD];
    if (!bound) {
        PyObject *pargs[2] = {self, issuer};
        PyObject *r = fio_again_keep(NULL, s_bind_parker, pargs, 2, 0, &et, &ev, &etb);
        if (r == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_MemoryError)) {
                goto done;
            }
            PyErr_Clear(); /* (the request is in: its issuer waits without leading) */
        }
        Py_XDECREF(r);
    }
    result = Py_NewRef(Py_None);
    goto done;

python:
    result = python_submit(self, args, nargs, kwnames);
done:
    Py_XDECREF(more);
    Py_XDECREF(uds);
    Py_XDECREF(wake);
    Py_XDECREF(ud);
    Py_DECREF(lock);
    Py_DECREF(op);
    Py_DECREF(issuer);
    if (et != NULL || ev != NULL) { /* an interrupt kept: raised once every step was made */
        Py_XDECREF(result);
        if (PyErr_Occurred()) {
            PyErr_Clear();
        }
        PyErr_Restore(et, ev, etb);
        return NULL;
    }
    return result;
}

static PyMethodDef submit_def = {
    "submit", (PyCFunction)(void (*)(void))direct_backend_submit, METH_FASTCALL | METH_KEYWORDS,
    "submit(op)\n--\n\nIoUringBackend.submit (C accelerator of its QD1 O_DIRECT read)."};

/* fio_submit_set_enabled(flag) */
PyObject *
fio_submit_set_enabled(PyObject *module, PyObject *flag)
{
    int on = PyObject_IsTrue(flag);
    if (on < 0) {
        return NULL;
    }
    g_submit_on = on;
    Py_RETURN_NONE;
}

/* configure_submit(IoUringBackend, submit, FileReadOp, FileObject, BackendRing, InFlight,
 *                  Backlog, Submission, ThreadState, RingParker, RingBusyError,
 *                  os.eventfd_write) -> the C ``submit`` descriptor */
PyObject *
fio_configure_submit(PyObject *module, PyObject *args)
{
    PyTypeObject *be, *opt, *filet, *ringt, *tablet, *backlogt, *sqt, *tst, *rpt;
    PyObject *py_submit, *busy, *efdw;
    if (!PyArg_ParseTuple(args, "O!OO!O!O!O!O!O!O!O!OO:configure_submit", &PyType_Type, &be,
                          &py_submit, &PyType_Type, &opt, &PyType_Type, &filet, &PyType_Type,
                          &ringt, &PyType_Type, &tablet, &PyType_Type, &backlogt, &PyType_Type,
                          &sqt, &PyType_Type, &tst, &PyType_Type, &rpt, &busy, &efdw)) {
        return NULL;
    }
    if (g_be_type != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_submit: once");
        return NULL;
    }
    if (kind_init_any(&r_op, opt, OPA_NAMES, 1) < 0 || kind_init(&r_file, filet, FD_NAMES) < 0 ||
        kind_init_any(&r_ring, ringt, RING_NAMES, 1) < 0 ||
        kind_init(&r_table, tablet, TABLE_NAMES) < 0 ||
        kind_init(&r_backlog, backlogt, BACKLOG_NAMES) < 0 ||
        kind_init_any(&r_sq, sqt, SQ_NAMES, 1) < 0 ||
        kind_init(&r_ts, tst, TS_NAMES) < 0 || kind_init(&r_rp, rpt, RP_NAMES) < 0) {
        return NULL;
    }
    for (int i = 0; i < B_N; i++) {
        if ((be_names[i] = PyUnicode_InternFromString(BE_NAMES[i])) == NULL) {
            return NULL;
        }
        /* an instance attribute shadowed by a data descriptor of the class: Python only */
        PyObject *d = _PyType_Lookup(be, be_names[i]);
        if (d != NULL) {
            PyErr_Format(PyExc_TypeError, "configure_submit: %U is on the class", be_names[i]);
            return NULL;
        }
    }
    s_publish = PyUnicode_InternFromString("publish");
    s_enter = PyUnicode_InternFromString("enter");
    s_own_locked = PyUnicode_InternFromString("own_locked");
    s_submit_one = PyUnicode_InternFromString("submit_one_locked");
    s_submit_locked = PyUnicode_InternFromString("submit_locked");
    s_bind_parker = PyUnicode_InternFromString("_bind_parker");
    s_append = PyUnicode_InternFromString("append");
    g_one_i = PyLong_FromLong(1);
    if (s_publish == NULL || s_enter == NULL || s_own_locked == NULL || s_submit_one == NULL ||
        s_submit_locked == NULL || s_bind_parker == NULL || s_append == NULL ||
        g_one_i == NULL) {
        return NULL;
    }
    g_be_type = (PyTypeObject *)Py_NewRef(be);
    g_op_type = (PyTypeObject *)Py_NewRef(opt);
    g_ring_type = (PyTypeObject *)Py_NewRef(ringt);
    g_table_type = (PyTypeObject *)Py_NewRef(tablet);
    g_backlog_type = (PyTypeObject *)Py_NewRef(backlogt);
    g_sq_type = (PyTypeObject *)Py_NewRef(sqt);
    g_rp_type = (PyTypeObject *)Py_NewRef(rpt);
    fio_keep_t keep[] = {{&g_py_submit, py_submit}, {&g_busy, busy}, {&g_eventfd_write, efdw}};
    fio_keep(keep, sizeof keep / sizeof keep[0]);
    return PyDescr_NewMethod(be, &submit_def);
}
