/* winaio._io._fastio (part): the O_DIRECT read's issue in C (qd1, 2026-12-06).
 *
 * What it replaces: on a DiskFile opened with FILE_FLAG_NO_BUFFERING (no cached reads), the
 * hot case of ``DiskFile.start_read`` (one whole aligned writable buffer, no keyword, no
 * routine: ``_disk.py``), the request it builds slot by slot (``_ops.pinned_read``) and the
 * one-step issue ``_issue.submit_pending_file`` (E reset, F cleared, Internal = STATUS_PENDING,
 * the registration under LOCK, then ``_issue._hand_to_backend``). It is the QD1 read's
 * critical path: everything here runs between the completion of one read and the submission
 * of the next (docs/design.md, "The O_DIRECT issue in C (qd1, 2026-12-06)"). Reached from
 * ``_fastio.c``'s ``start_read`` when the file has no cached reads.
 *
 * Invariants (the Python functions stay the reference and the fallback):
 * - Before anything is touched, every unusual shape goes to the Python ``start_read``
 *   (``Py_NotImplemented``): a file not ``direct`` or not readable, a buffer that is not an
 *   exact bytearray or 1-D byte memoryview, released, read-only, not contiguous, empty or not
 *   aligned, an offset that is not an exact int in [0, 2**63) or not aligned, a class on the
 *   way whose attributes were redefined (``kind_fast``). The Python method then makes the
 *   same checks and takes its general path, which reports the error.
 * - The pin is a memoryview of the buffer (what ``ctypes.c_char.from_buffer`` keeps inside:
 *   the same export, as ``_fastpend_ring.c``'s receive).
 * - The request is built whole (every slot of FileReadOp, ``pinned_read``'s values) before it
 *   is registered; a failed allocation until then leaves nothing registered and raises.
 * - The registration is ``submit_pending_file``'s, in its order, under LOCK in one hold: the
 *   fallible step (the ``_pending`` insert) first, then the flags. A request with an event, a
 *   SKIP_PORT overlapped or a file bound to no port (the issuer's list, spec section 8), or a
 *   file being closed, goes to the Python ``submit_pending_file`` once built.
 * - Once registered, the request goes to ``_hand_to_backend``; an exception from it (an
 *   interrupt cut at its entry included) goes through ``_handed_again``, as in Python, which
 *   hands over a request whose ``submit`` did not run; then it propagates.
 */
#include "_fastio.h"

#include <stdint.h>

static const char *const DFILE_NAMES[] = {"direct", "readable", "closing", "_pending", NULL};
enum { D_DIRECT, D_READABLE, D_CLOSING, D_PENDING };
static const char *const OP1_NAMES[] = {"file",    "overlapped", "event", "skip_port",
                                        "routine", "issuer",     "done",  "cancel_requested",
                                        NULL};
enum { P_FILE, P_OV, P_EVENT, P_SKIP, P_ROUTINE, P_ISSUER, P_DONE, P_CANCEL };
static const char *const OP2_NAMES[] = {"registered", "submitted", "token",  "sync_done",
                                        "buffers",    "offset",    "nbytes", "tried",
                                        NULL};
enum { P_REGISTERED, P_SUBMITTED, P_TOKEN, P_SYNC_DONE, P_BUFFERS, P_OFFSET, P_NBYTES, P_TRIED };
static const char *const OP3_NAMES[] = {"anchor", "address", NULL};
enum { P_ANCHOR, P_ADDRESS };

static kind_t d_file, d_op1, d_op2, d_op3;
static PyTypeObject *g_op_type;  /* FileReadOp */
static PyObject *g_dlock;        /* the dispatcher LOCK */
static PyObject *g_submit;       /* _issue.submit_pending_file */
static PyObject *g_hand;         /* _issue._hand_to_backend */
static PyObject *g_handed_again; /* _issue._handed_again */
static PyObject *g_tls, *g_cts;  /* _kernel._threads._tls, current_thread_state */
static PyObject *g_pending;      /* STATUS_PENDING */
static long long g_align_mask;
static int g_direct_ok;

/* Borrowed slot ``i`` of ``obj`` (its kind checked fast), NULL when unset. */
#define DSLOT(k, obj, i) (*(PyObject **)((char *)(obj) + (k).offsets[i]))

/* ``pinned_read(file, ov, view, offset, anchor, address, nbytes)``: the whole request (a new
 * reference; steals nothing), or NULL with an error. */
static PyObject *
direct_request(PyObject *file, PyObject *ov, PyObject *view, PyObject *offset_obj,
               PyObject *anchor, void *buf, Py_ssize_t n)
{
    static PyObject *last_n; /* (the last size's int again: ints are immutable) */
    PyObject *nb;
    if (last_n != NULL && PyLong_AsSsize_t(last_n) == n) {
        nb = Py_NewRef(last_n);
    }
    else if ((nb = PyLong_FromSsize_t(n)) != NULL) {
        Py_XSETREF(last_n, Py_NewRef(nb));
    }
    if (nb == NULL) {
        return NULL;
    }
    PyObject *address = PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)buf);
    PyObject *buffers = address != NULL ? PyTuple_Pack(1, view) : NULL;
    PyObject *ts = buffers != NULL ? fio_thread_state(g_tls, g_cts) : NULL;
    PyObject *op = ts != NULL ? g_op_type->tp_alloc(g_op_type, 0) : NULL;
    if (op == NULL) {
        Py_DECREF(nb);
        Py_XDECREF(address);
        Py_XDECREF(buffers);
        Py_XDECREF(ts);
        return NULL;
    }
    PyObject *event = DSLOT(k_ov, ov, O_EVENT), *skip = DSLOT(k_ov, ov, O_SKIP_PORT);
    kind_put(&d_op1, op, P_FILE, Py_NewRef(file));
    kind_put(&d_op1, op, P_OV, Py_NewRef(ov));
    kind_put(&d_op1, op, P_EVENT, Py_XNewRef(event));
    kind_put(&d_op1, op, P_SKIP, Py_XNewRef(skip));
    kind_put(&d_op1, op, P_ROUTINE, Py_NewRef(Py_None));
    kind_put(&d_op1, op, P_ISSUER, ts);
    kind_put(&d_op1, op, P_DONE, Py_NewRef(Py_False));
    kind_put(&d_op1, op, P_CANCEL, Py_NewRef(Py_False));
    kind_put(&d_op2, op, P_REGISTERED, Py_NewRef(Py_False));
    kind_put(&d_op2, op, P_SUBMITTED, Py_NewRef(Py_False));
    kind_put(&d_op2, op, P_TOKEN, Py_NewRef(Py_None));
    kind_put(&d_op2, op, P_SYNC_DONE, Py_NewRef(Py_None));
    kind_put(&d_op2, op, P_BUFFERS, buffers);
    kind_put(&d_op2, op, P_OFFSET, Py_NewRef(offset_obj));
    kind_put(&d_op2, op, P_NBYTES, nb);
    kind_put(&d_op2, op, P_TRIED, Py_NewRef(Py_True));
    kind_put(&d_op3, op, P_ANCHOR, Py_NewRef(anchor));
    kind_put(&d_op3, op, P_ADDRESS, address);
    return op;
}

/* ``_hand_to_backend(op)`` in ``submit_pending_file``'s ``try``: an exception goes through
 * ``_handed_again(op, exc)`` and propagates (the one ``_handed_again`` raised, if it did).
 * 0, or -1 with an error. */
static int
direct_hand(PyObject *op)
{
    PyObject *r = PyObject_Vectorcall(g_hand, &op, 1, NULL);
    if (r != NULL) {
        Py_DECREF(r);
        return 0;
    }
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb != NULL && v != NULL) {
        PyException_SetTraceback(v, tb);
    }
    PyObject *args[2] = {op, v != NULL ? v : Py_None};
    PyObject *again = PyObject_Vectorcall(g_handed_again, args, 2, NULL);
    if (again == NULL) {
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
        return -1; /* (``_handed_again``'s own exception replaces it, as in Python) */
    }
    Py_DECREF(again);
    PyErr_Restore(t, v, tb);
    return -1;
}

/* ``submit_pending_file(op)`` for a request built by ``direct_request``: Py_False (new
 * reference: ``start_read``'s result) or NULL with an error. */
static PyObject *
direct_submit(PyObject *file, PyObject *ov, PyObject *op)
{
    PyObject *event = DSLOT(d_op1, op, P_EVENT), *skip = DSLOT(d_op1, op, P_SKIP);
    PyObject *port = DSLOT(k_file, file, F_PORT);
    if (event != Py_None || skip != Py_False || port == NULL || port == Py_None ||
        DSLOT(d_file, file, D_CLOSING) != Py_False) {
        goto python; /* (the issuer's list, a closed file: the Python function) */
    }
    kind_put(&k_file, file, F_SIGNALED, Py_NewRef(Py_False));
    kind_put(&k_ov, ov, O_STATUS, Py_NewRef(g_pending));
    if (fio_acquire(g_dlock) < 0) {
        return NULL; /* (interrupted before the registration: nothing to hand over) */
    }
    PyObject *pending = DSLOT(d_file, file, D_PENDING);
    if (DSLOT(d_file, file, D_CLOSING) != Py_False || pending == NULL ||
        !PyDict_CheckExact(pending)) {
        fio_release(g_dlock);
        goto python; /* (closed meanwhile: the Python function raises ERROR_INVALID_HANDLE) */
    }
    if (PyDict_SetItem(pending, op, Py_None) < 0) {
        fio_release(g_dlock);
        return NULL; /* (a failed allocation: nothing registered) */
    }
    /* Registered and marked submitted in one hold: nobody could see it before, so no cancel
     * can be waiting for it (``submit_pending_file``). */
    kind_put(&d_op2, op, P_REGISTERED, Py_NewRef(Py_True));
    kind_put(&d_op2, op, P_SUBMITTED, Py_NewRef(Py_True));
    fio_release(g_dlock);
    if (direct_hand(op) < 0) {
        return NULL;
    }
    Py_RETURN_FALSE;

python:;
    PyObject *r = PyObject_Vectorcall(g_submit, &op, 1, NULL);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

PyObject *
fio_direct_start_read(PyObject *self, PyObject *buffer, PyObject *ov)
{
    if (!g_direct_ok || !kind_fast(&d_file, Py_TYPE(self)) || !kind_fast(&k_ov, Py_TYPE(ov)) ||
        !kind_fast(&d_op1, g_op_type) || !kind_fast(&d_op2, g_op_type) ||
        !kind_fast(&d_op3, g_op_type)) {
        return Py_NotImplemented;
    }
    PyTypeObject *cls = Py_TYPE(buffer);
    int is_view = cls == &PyMemoryView_Type;
    if (DSLOT(d_file, self, D_DIRECT) != Py_True ||
        DSLOT(d_file, self, D_READABLE) != Py_True ||
        (!is_view && cls != &PyByteArray_Type)) {
        return Py_NotImplemented;
    }
    PyObject *offset_obj = DSLOT(k_ov, ov, O_OFFSET);
    if (offset_obj == NULL || !PyLong_CheckExact(offset_obj) ||
        DSLOT(k_ov, ov, O_EVENT) == NULL || DSLOT(k_ov, ov, O_SKIP_PORT) == NULL) {
        return Py_NotImplemented;
    }
    int overflow;
    long long offset = PyLong_AsLongLongAndOverflow(offset_obj, &overflow);
    if (overflow || offset < 0) {
        return Py_NotImplemented; /* (-1 is never an error here: an exact int) */
    }
    /* The pin (``_from_buffer``): what it refuses, the Python method refuses too. (The offset
     * held: an allocation may run a collection, whose finalizers may rebind the slot.) */
    Py_INCREF(offset_obj);
    PyObject *anchor = PyMemoryView_FromObject(buffer);
    if (anchor == NULL) {
        Py_DECREF(offset_obj);
        if (PyErr_ExceptionMatches(PyExc_TypeError) ||
            PyErr_ExceptionMatches(PyExc_ValueError) ||
            PyErr_ExceptionMatches(PyExc_BufferError)) {
            PyErr_Clear();
            return Py_NotImplemented;
        }
        return NULL;
    }
    Py_buffer *pb = PyMemoryView_GET_BUFFER(anchor);
    Py_ssize_t n = pb->len;
    if (pb->readonly || pb->ndim != 1 || pb->itemsize != 1 || n <= 0 ||
        !PyBuffer_IsContiguous(pb, 'C') ||
        (((long long)(uintptr_t)pb->buf | (long long)n | offset) & g_align_mask)) {
        Py_DECREF(offset_obj);
        Py_DECREF(anchor);
        return Py_NotImplemented;
    }
    PyObject *view = is_view ? Py_NewRef(buffer) : PyMemoryView_FromObject(buffer);
    PyObject *op = view != NULL ? direct_request(self, ov, view, offset_obj, anchor, pb->buf, n)
                                : NULL;
    Py_XDECREF(view);
    Py_DECREF(anchor);
    Py_DECREF(offset_obj);
    if (op == NULL) {
        return NULL;
    }
    PyObject *r = direct_submit(self, ov, op);
    Py_DECREF(op);
    return r;
}

/* configure_direct(DiskFile, FileReadOp, LOCK, submit_pending_file, _hand_to_backend,
 *                  _handed_again, _tls, current_thread_state, STATUS_PENDING, align) */
PyObject *
fio_configure_direct(PyObject *module, PyObject *args)
{
    PyTypeObject *disk, *optype;
    PyObject *lock, *submit, *hand, *again, *tls, *cts, *pending;
    long long align;
    if (!PyArg_ParseTuple(args, "O!O!OOOOOOOL:configure_direct", &PyType_Type, &disk,
                          &PyType_Type, &optype, &lock, &submit, &hand, &again, &tls, &cts,
                          &pending, &align)) {
        return NULL;
    }
    if (g_direct_ok || !g_configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure_direct: once, after configure");
        return NULL;
    }
    if (align <= 0 || (align & (align - 1))) {
        PyErr_SetString(PyExc_ValueError, "configure_direct: align must be a power of two");
        return NULL;
    }
    if (kind_init(&d_file, disk, DFILE_NAMES) < 0 || kind_init(&d_op1, optype, OP1_NAMES) < 0 ||
        kind_init(&d_op2, optype, OP2_NAMES) < 0 || kind_init(&d_op3, optype, OP3_NAMES) < 0) {
        return NULL;
    }
    g_op_type = (PyTypeObject *)Py_NewRef(optype);
    fio_keep_t keep[] = {{&g_dlock, lock}, {&g_submit, submit}, {&g_hand, hand},
                         {&g_handed_again, again}, {&g_tls, tls}, {&g_cts, cts},
                         {&g_pending, pending}};
    fio_keep(keep, sizeof keep / sizeof keep[0]);
    g_align_mask = align - 1;
    kind_fast(&d_file, disk);
    g_direct_ok = 1;
    Py_RETURN_NONE;
}
