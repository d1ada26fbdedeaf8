/* winaio._io._fastio (part): the sockets' pended receive on io_uring in C.
 *
 * Four files (split by concept, csplit 2026-12-05; tools 2026-12-06): this one
 * (``pend_receive``: the shape checks, the request built, the backend's lock held and the
 * Python calls that follow; ``configure_pend``), ``_fastpend_register.c`` (the issuer's part
 * under the dispatcher LOCK: the request registered, the receive slot's arm step 1, and the
 * thread's state), ``_fastpend_ring.c`` (the backend's part: its attributes read from its
 * dict, and ``pend_locked``, the state writes under its lock down to the SQE) and
 * ``_fastpend.h`` (the kinds and data they share).
 *
 * What it replaces: ``Receives.pend_receive`` (``_backends/uring/receives.py``: the backend's
 * receive side, an object the backend owns, whose method the backend's ``pend_receive`` is;
 * ``self`` below is that object, ``b`` its attributes; recv 2026-12-06) and what
 * it calls on its common path: ``_files.register_receive`` (the request built slot by slot and
 * registered under LOCK), ``current_thread_state``, ``_pend_locked`` (under the backend's
 * lock: the checks, the in-flight table's ``next_ud`` and entry ``(op, line)``, the deferred
 * list, the ring owner's hint, else ``_submit_locked``), ``StreamLines.open_direct_locked``
 * (a spare line reused) and ``SqePrep.prep_recv`` (the first 40 bytes of the SQE written into
 * the mmapped SQE array at ``(_sq_tail & _sq_mask) << 6``; the last 24 stay zero: ``prep``'s
 * invariant, so ``_sq_dirty`` is not touched). Installed as a method descriptor on the class by
 * ``_backends/uring/fastpend.py`` through ``_io._accel``.
 *
 * Invariants (the Python functions stay the reference and the fallback):
 * - Before anything is touched, every unusual shape goes to the Python ``pend_receive``: the C
 *   path switched off, a subclass of ``Receives``, a keyword argument, an argument that is not an
 *   exact, whole, writable, non-empty 1-D byte memoryview of at most 4 GiB, any class on the way
 *   whose attributes were redefined (``kind_fast`` on every class read, methods included: a
 *   patched ``prep_recv``, ``open_direct_locked``, ``_pend_locked``, ``Line.__init__``...), a
 *   receive side's attribute shadowed by its class or ``_pend_locked`` patched on the instance,
 *   a file
 *   being closed (the Python function raises ERROR_INVALID_HANDLE; building a request has no
 *   effect beyond adopting the thread, which is idempotent).
 * - Once registered, anything unusual under the backend's lock (a closing backend, a backlog, a
 *   line already there, ``cancel_requested``, a full SQ ring or a refused SQE) takes
 *   ``Receives._pend_rest``, the Python continuation the Python path takes too.
 * - Under the backend's lock, every fallible insertion (table entry, line, the line's deque,
 *   the deferred list) is made first and undone if a later one fails (a failed allocation
 *   leaves no half state); then the SQE and the plain stores. Python is called only where the
 *   Python path calls it (``_sq_reserve`` when the cached free count ran out, ``hint_locked``
 *   when not hinted, ``_submit_locked``, ``os.eventfd_write``, ``Leadership.bind_issuer``),
 *   after the
 *   state writes it follows.
 * - Instance attributes of the receive side (no ``__slots__``) are read from its dict; slots
 *   at their member descriptors' offsets (``kind_t``).
 * - CPython 3.11/3.12 only (the dict pointer, version tags); elsewhere the Python function.
 */
#include "_fastpend.h"
#include "_fastslot.h"

/* ------------------------------------------------------------------ the classes read */

static const char *const FILE_NAMES[] = {"closing", "_pending", "stream_in", "port", "fd", NULL};
/* (apart: read only when the file class has it, ``_io._slot``'s ``FileObject._rslot``) */
static const char *const RSLOT_NAMES[] = {"_rslot", NULL};
static const char *const OV_NAMES[] = {"event", "skip_port", NULL};
static const char *const OP1_NAMES[] = {"file",    "overlapped", "event", "skip_port",
                                        "routine", "issuer",     "done",  "cancel_requested",
                                        NULL};
static const char *const OP2_NAMES[] = {"token",  "sync_done",  "buffers",   "nbytes",
                                        "flags",  "registered", "submitted", NULL};
static const char *const TS_NAMES[] = {"extensions", "parker", NULL};
static const char *const RP_NAMES[] = {"lead", NULL};
static const char *const LEAD_NAMES[] = {"owner", NULL};
static const char *const DEF_NAMES[] = {"hinted", NULL};
static const char *const BACKLOG_NAMES[] = {"entries", NULL};
static const char *const SL_NAMES[] = {"lines", "_spare", NULL};
static const char *const SLM_NAMES[] = {"open_direct_locked", NULL};
static const char *const LINE_NAMES[] = {"fd",     "key",  "ops",  "poll_ud",
                                         "direct", "keep", "busy", NULL};
static const char *const LINEM_NAMES[] = {"__init__", NULL};
static const char *const TABLE_NAMES[] = {"next_ud", NULL};
static const char *const RING_NAMES[] = {"_sq_tail", "_sq_limit", "_sq_mask", "_sqes", NULL};
static const char *const RINGM_NAMES[] = {"prep_recv", NULL};
/* The receive side's instance attributes (absent from its class) and the method inlined
 * here (``Receives``, ``_backends/uring/receives.py``: the object the backend owns). */
static const char *const BE1_NAMES[] = {"_lock",  "closing", "_backlog",     "_streams",
                                        "_table", "_ring",   "_recv_ioprio", "submitted",
                                        NULL};
static const char *const BE2_NAMES[] = {"_unsubmitted", "_lead",        "_deferral", "_efd",
                                        "slots",        "_pend_locked", NULL};

kind_t pk_rslot;
kind_t pk_file, pk_ov, pk_op1, pk_op2, pk_ts, pk_rp, pk_lead, pk_def, pk_backlog, pk_sl, pk_slm,
    pk_line, pk_linem, pk_table, pk_ring, pk_ringm, pk_be1, pk_be2;

static PyTypeObject *g_backend_type, *g_op_type, *g_rp_type, *g_table_type;
PyTypeObject *g_line_type;
static PyObject *g_py_pend;        /* Receives.pend_receive, the Python reference */
PyObject *g_LOCK;                  /* the dispatcher LOCK */
PyObject *g_tls;                   /* _kernel._threads._tls (``current_thread_state``) */
PyObject *g_cts;                   /* current_thread_state */
PyObject *g_deque;                 /* collections.deque */
PyObject *g_deque_append;          /* deque.append */
static PyObject *g_eventfd_write;  /* os.eventfd_write */
PyObject *g_io_key;                /* _files._IO_KEY */
PyObject *g_one, *g_zero_int;
static PyObject *s_arm_slot;        /* Receives._arm_slot: a slot's step 2 in Python */
static int g_slots_c; /* ``slots`` is ``c`` (``_accel``): the slot's shape arms the C slot */
static PyObject *s_pend_rest, *s_hint_locked, *s_submit_locked, *s_bind_parker;
PyObject *s_append, *s_pop, *s_sq_reserve;
PyObject *be_names[B_COUNT + 1];
static int g_on;
/* ``slots`` is ``py`` (``_accel``): the receive slot's shape (port-bound, no event, no
 * ``hEvent|1``) goes to the Python method, which arms the Python slot (step 2 of
 * docs/plans/receive-slot.md; until the C slot arms it here). */
static int g_slots_py;

/* The classes of the hot shape as last checked whole (pend, session 13): the version tag of
 * each class read on the way (the file's, the OVERLAPPED's, the request's, the receive side's,
 * and those of its attributes' values), taken when every ``kfast`` check of them passed (its
 * ``kind_fast_check`` cost ~270 instructions a call). 3.11: a class's version tag is globally
 * unique and is reset (to 0) when the class or one of its bases is modified, so a class
 * whose tag equals the one remembered is the class checked, unmodified since: its checks
 * hold. 0: nothing remembered (a class without a valid tag is never remembered). */
#if PEND_FAST && PY_VERSION_HEX < 0x030C0000
#define PEND_HOT 1
#else
#define PEND_HOT 0
#endif
static struct {
    unsigned int file, ov, op, be;                                     /* first */
    unsigned int backlog, streams, table, ring, lead, def, line, rp;   /* the attributes' */
    unsigned int ts;                                                   /* the thread state's */
    int rslot; /* ``kfast(&pk_rslot, file's class)`` as it was then */
} g_hot;

#define TAG(tp) (((PyTypeObject *)(tp))->tp_version_tag)

/* The first classes (the file's, the OVERLAPPED's, the request's, the receive side's) are
 * the ones remembered. */
static inline int
hot_first(PyObject *file, PyObject *ov)
{
    return PEND_HOT && g_hot.file != 0 && TAG(Py_TYPE(file)) == g_hot.file &&
           TAG(Py_TYPE(ov)) == g_hot.ov && TAG(g_op_type) == g_hot.op &&
           TAG(g_backend_type) == g_hot.be;
}

/* The classes of the receive side's attributes ``b`` are the ones remembered. */
static inline int
hot_second(PyObject **b)
{
    return TAG(Py_TYPE(b[B_BACKLOG])) == g_hot.backlog &&
           TAG(Py_TYPE(b[B_STREAMS])) == g_hot.streams &&
           TAG(Py_TYPE(b[B_TABLE])) == g_hot.table && TAG(Py_TYPE(b[B_RING])) == g_hot.ring &&
           TAG(Py_TYPE(b[B_LEAD])) == g_hot.lead && TAG(Py_TYPE(b[B_DEFERRAL])) == g_hot.def &&
           TAG(g_line_type) == g_hot.line && TAG(g_rp_type) == g_hot.rp;
}

/* Every class checked whole just now (``kfast``): their tags remembered, if all are valid. */
static void
hot_remember(PyObject *file, PyObject *ov, PyObject **b)
{
    PyTypeObject *tps[12] = {Py_TYPE(file),         Py_TYPE(ov),          g_op_type,
                             g_backend_type,        Py_TYPE(b[B_BACKLOG]), Py_TYPE(b[B_STREAMS]),
                             Py_TYPE(b[B_TABLE]),   Py_TYPE(b[B_RING]),    Py_TYPE(b[B_LEAD]),
                             Py_TYPE(b[B_DEFERRAL]), g_line_type,          g_rp_type};
    g_hot.file = 0;
    for (int i = 0; i < 12; i++) {
        if (!(tps[i]->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) || tps[i]->tp_version_tag == 0) {
            return;
        }
    }
    g_hot.rslot = pk_rslot.offsets[0] >= 0 && kfast(&pk_rslot, tps[0]);
    g_hot.ov = TAG(tps[1]);
    g_hot.op = TAG(tps[2]);
    g_hot.be = TAG(tps[3]);
    g_hot.backlog = TAG(tps[4]);
    g_hot.streams = TAG(tps[5]);
    g_hot.table = TAG(tps[6]);
    g_hot.ring = TAG(tps[7]);
    g_hot.lead = TAG(tps[8]);
    g_hot.def = TAG(tps[9]);
    g_hot.line = TAG(tps[10]);
    g_hot.rp = TAG(tps[11]);
    g_hot.file = PEND_HOT ? TAG(tps[0]) : 0; /* (last: the record is whole) */
}

/* The receive side's attributes held for the call, and released (every one set: unrolled,
 * ~65 instructions against the loops' ~117; pend, session 13). */
static inline void
b_hold(PyObject **b)
{
    Py_INCREF(b[0]), Py_INCREF(b[1]), Py_INCREF(b[2]), Py_INCREF(b[3]), Py_INCREF(b[4]);
    Py_INCREF(b[5]), Py_INCREF(b[6]), Py_INCREF(b[7]), Py_INCREF(b[8]), Py_INCREF(b[9]);
    Py_INCREF(b[10]), Py_INCREF(b[11]), Py_INCREF(b[12]);
}

static inline void
b_release(PyObject **b)
{
    Py_DECREF(b[0]), Py_DECREF(b[1]), Py_DECREF(b[2]), Py_DECREF(b[3]), Py_DECREF(b[4]);
    Py_DECREF(b[5]), Py_DECREF(b[6]), Py_DECREF(b[7]), Py_DECREF(b[8]), Py_DECREF(b[9]);
    Py_DECREF(b[10]), Py_DECREF(b[11]), Py_DECREF(b[12]);
}
#if B_COUNT != 13
#error "b_hold and b_release hold B_COUNT attributes"
#endif

/* The Python ``pend_receive`` with ``self`` and the caller's arguments. */
static PyObject *
python_pend(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return fio_delegate(g_py_pend, self, args, nargs, kwnames);
}

/* The Python ``pend_receive`` for ``pend_impl``'s arguments: with ``raw`` (an exact bytearray
 * from ``fio_pend_bytearray``), the memoryview the Python caller makes of it (``own``: one made
 * already, else NULL). */
static PyObject *
python_pend_any(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                int raw, PyObject *own)
{
    if (!raw) {
        return python_pend(self, args, nargs, kwnames);
    }
    PyObject *view = own != NULL ? Py_NewRef(own) : PyMemoryView_FromObject(args[2]);
    if (view == NULL) {
        return NULL;
    }
    PyObject *a[3] = {args[0], args[1], view};
    PyObject *r = python_pend(self, a, 3, NULL);
    Py_DECREF(view);
    return r;
}

/* Receives.pend_receive(file, overlapped, view); with ``raw``, ``view`` is an exact
 * bytearray (``fio_pend_bytearray``: the sockets' C receive, which makes no memoryview for a
 * receive that the C slot arms): the slot pins the bytearray itself, and every other path
 * (the request, the Python method) gets ``memoryview(bytearray)``, as from the Python
 * ``Socket.start_read``. */
static PyObject *
pend_impl(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int raw)
{
    PyObject *own = NULL; /* (raw: the memoryview made for the request path) */
#if !PEND_FAST
    goto python; /* (another CPython: the Python method) */
#else
    if (!g_on || nargs != 3 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames)) ||
        Py_TYPE(self) != g_backend_type) {
        goto python;
    }
    PyObject *file = args[0], *ov = args[1], *view = args[2];
    Py_ssize_t nbytes;
    int shape_ok;
    if (raw) {
        /* (an exact bytearray: whole, writable, 1-D bytes; its size now) */
        nbytes = PyByteArray_GET_SIZE(view);
        shape_ok = nbytes > 0 && nbytes <= UINT32_MAX;
    }
    else {
        /* The shape: an exact, whole, writable, non-empty 1-D byte view. */
        if (!Py_IS_TYPE(view, &PyMemoryView_Type)) {
            goto python;
        }
        Py_buffer vb;
        if (PyObject_GetBuffer(view, &vb, PyBUF_WRITABLE | PyBUF_ND) < 0) {
            PyErr_Clear(); /* (released, read-only...: Python reports it) */
            goto python;
        }
        nbytes = vb.len;
        shape_ok = vb.ndim == 1 && vb.itemsize == 1 && nbytes > 0 && nbytes <= UINT32_MAX;
        PyBuffer_Release(&vb);
    }
    if (!shape_ok) {
        goto python;
    }
    /* The classes: as remembered (``g_hot``), else checked one by one. */
    int hot = hot_first(file, ov);
    if (!hot && (!kfast(&pk_file, Py_TYPE(file)) || !kfast(&pk_ov, Py_TYPE(ov)) ||
                 !kfast(&pk_op1, g_op_type) || !kfast(&pk_op2, g_op_type) ||
                 !kfast(&pk_be1, g_backend_type) || !kfast(&pk_be2, g_backend_type))) {
        goto python;
    }
    PyObject *fd = SLOT(pk_file, file, PF_FD);
    PyObject *event = SLOT(pk_ov, ov, PO_EVENT), *skip = SLOT(pk_ov, ov, PO_SKIP_PORT);
    if (fd == NULL || !PyLong_CheckExact(fd) || event == NULL || skip == NULL) {
        goto python;
    }
    if (g_slots_py && event == Py_None && skip == Py_False) {
        PyObject *port = SLOT(pk_file, file, PF_PORT);
        if (port != NULL && port != Py_None) {
            goto python; /* a receive slot's shape: the Python slot */
        }
    }
    PyObject **dictptr = _PyObject_GetDictPtr(self);
    if (dictptr == NULL || *dictptr == NULL || !PyDict_CheckExact(*dictptr)) {
        goto python;
    }
    PyObject *d = *dictptr;
    PyObject *b[B_COUNT];
    int got = backend_attributes(d, b); /* (borrowed) */
    if (got <= 0) {
        if (got < 0) {
            return NULL;
        }
        goto python;
    }
    uint64_t seen = DICT_VERSION(d);
    if (!PyList_CheckExact(b[B_UNSUBMITTED]) || !PyLong_CheckExact(b[B_IOPRIO]) ||
        !PyLong_CheckExact(b[B_SUBMITTED])) {
        goto python;
    }
    if (!hot || !hot_second(b)) {
        if (!kfast(&pk_file, Py_TYPE(file)) || !kfast(&pk_ov, Py_TYPE(ov)) ||
            !kfast(&pk_op1, g_op_type) || !kfast(&pk_op2, g_op_type) ||
            !kfast(&pk_be1, g_backend_type) || !kfast(&pk_be2, g_backend_type) ||
            !kfast(&pk_backlog, Py_TYPE(b[B_BACKLOG])) ||
            !kfast(&pk_sl, Py_TYPE(b[B_STREAMS])) || !kfast(&pk_slm, Py_TYPE(b[B_STREAMS])) ||
            !Py_IS_TYPE(b[B_TABLE], g_table_type) || !kfast(&pk_table, g_table_type) ||
            !kfast(&pk_ring, Py_TYPE(b[B_RING])) || !kfast(&pk_ringm, Py_TYPE(b[B_RING])) ||
            !kfast(&pk_lead, Py_TYPE(b[B_LEAD])) || !kfast(&pk_def, Py_TYPE(b[B_DEFERRAL])) ||
            !kfast(&pk_line, g_line_type) || !kfast(&pk_linem, g_line_type) ||
            !kfast(&pk_rp, g_rp_type)) {
            goto python;
        }
        hot_remember(file, ov, b); /* (no Python ran since the first checks) */
    }
    event = SLOT(pk_ov, ov, PO_EVENT); /* (again: a first _PyObject_GetDictPtr allocates) */
    skip = SLOT(pk_ov, ov, PO_SKIP_PORT);
    if (event == NULL || skip == NULL) {
        goto python;
    }
    b_hold(b); /* (Python calls below may rebind the dict's entries) */
    /* The OVERLAPPED's fields as read here, held (as the Python function's locals): the
     * thread's adoption and any allocation (a collection) run Python code that may rebind
     * them (creview: tests/io/test_fastpath_review.py). */
    Py_INCREF(event);
    Py_INCREF(skip);
    PyObject *ts = NULL, *op = NULL, *key = NULL, *result = NULL;
    ReceiveSlotObject *slot = NULL; /* the receive slot armed (step 1), or the request (op) */
    PyObject *it = NULL, *iv = NULL, *itb = NULL; /* an interrupt kept (``_submit_locked``) */
    ts = thread_state();
    if (ts == NULL) {
        goto done;
    }
    if (!PEND_HOT || g_hot.ts == 0 || TAG(Py_TYPE(ts)) != g_hot.ts) {
        if (!kfast(&pk_ts, Py_TYPE(ts))) {
            goto python_after;
        }
        g_hot.ts = PEND_HOT && (Py_TYPE(ts)->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)
                       ? TAG(Py_TYPE(ts))
                       : 0;
    }

    /* The receive slot's shape (``_slot.eligible``; the port is checked under LOCK): arm
     * step 1, else the request below. */
    if (g_slots_c && event == Py_None && skip == Py_False) {
        /* (the file's class as remembered, checked just now: whether it has the slot) */
        int rslot = TAG(Py_TYPE(file)) == g_hot.file && g_hot.file != 0 ? g_hot.rslot : -1;
        int a = arm_step1(file, ov, view, ts, b[B_SLOTS], rslot, &slot);
        if (a < 0) {
            goto done;
        }
        if (a == 2) {
            goto python_after;
        }
        if (slot != NULL) {
            goto backend_part; /* (from here the slot is ARMING: only Python may take it on) */
        }
    }
    if (raw) {
        /* The request path: the view the Python caller would have made (its buffer, the
         * request's ``buffers``). */
        if ((own = PyMemoryView_FromObject(view)) == NULL) {
            goto done;
        }
        view = own;
        Py_ssize_t now = PyByteArray_GET_SIZE(args[2]);
        if (now != nbytes) {
            goto python_after; /* (resized by Python code run meanwhile: the Python method) */
        }
    }

    /* register_receive: built slot by slot, registered under LOCK. */
    PyObject *buffers = PyList_New(1);
    if (buffers == NULL) {
        goto done;
    }
    PyList_SET_ITEM(buffers, 0, Py_NewRef(view));
    /* (the last size's int again: a socket's receives mostly use one buffer; ints are
     * immutable, so sharing one is invisible) */
    static PyObject *last_nb;
    PyObject *nb;
    if (last_nb != NULL && PyLong_AsSsize_t(last_nb) == nbytes) {
        nb = Py_NewRef(last_nb);
    }
    else if ((nb = PyLong_FromSsize_t(nbytes)) != NULL) {
        Py_XSETREF(last_nb, Py_NewRef(nb));
    }
    if (nb == NULL) {
        Py_DECREF(buffers);
        goto done;
    }
    op = g_op_type->tp_alloc(g_op_type, 0);
    if (op == NULL) {
        Py_DECREF(buffers);
        Py_DECREF(nb);
        goto done;
    }
    kind_put(&pk_op1, op, Q_FILE, Py_NewRef(file));
    kind_put(&pk_op1, op, Q_OV, Py_NewRef(ov));
    kind_put(&pk_op1, op, Q_EVENT, Py_NewRef(event));
    kind_put(&pk_op1, op, Q_SKIP_PORT, Py_NewRef(skip));
    kind_put(&pk_op1, op, Q_ROUTINE, Py_NewRef(Py_None));
    kind_put(&pk_op1, op, Q_ISSUER, Py_NewRef(ts));
    kind_put(&pk_op1, op, Q_DONE, Py_NewRef(Py_False));
    kind_put(&pk_op1, op, Q_CANCEL, Py_NewRef(Py_False));
    kind_put(&pk_op2, op, Q_TOKEN, Py_NewRef(Py_None));
    kind_put(&pk_op2, op, Q_SYNC_DONE, Py_NewRef(Py_None));
    kind_put(&pk_op2, op, Q_BUFFERS, buffers);
    kind_put(&pk_op2, op, Q_NBYTES, nb);
    kind_put(&pk_op2, op, Q_FLAGS, Py_NewRef(g_zero_int));
    if (fio_acquire(g_LOCK) < 0) {
        goto done;
    }
    int closing = fio_is_true(SLOT(pk_file, file, PF_CLOSING) ? SLOT(pk_file, file, PF_CLOSING)
                                                           : Py_True);
    if (closing) {
        fio_release(g_LOCK);
        if (closing < 0) {
            goto done;
        }
        goto python_after; /* raises ERROR_INVALID_HANDLE; nothing was registered */
    }
    int r = register_locked(file, op, ts, event, skip);
    fio_release(g_LOCK);
    if (r < 0) {
        goto done;
    }

    /* The backend's part: one hold of its lock. ``file.fd`` read now, as the Python function
     * does (Python may have run since the first read: the adoption, a collection). */
backend_part:
    fd = SLOT(pk_file, file, PF_FD);
    if (fd == NULL || !PyLong_CheckExact(fd)) {
        goto rest; /* (registered, or the slot ARMING, already) */
    }
    /* The line key ``fd + fd``: made (before the lock: an allocation may run Python) for the
     * request, which opens a line under it, and for a slot only when the lines are not empty
     * (the slot's common case has no line at all: the lookup and the int skipped; pend,
     * session 13). Empty before the lock but not under it: the Python step 2 looks. */
    PyObject *lines0 = SLOT(pk_sl, b[B_STREAMS], S_LINES);
    if (slot == NULL || lines0 == NULL || !PyDict_CheckExact(lines0) ||
        PyDict_GET_SIZE(lines0) != 0) {
        long fdv = PyLong_AsLong(fd);
        if (fdv == -1 && PyErr_Occurred()) {
            goto rest_after_error;
        }
        key = PyLong_FromLong(fdv + fdv);
        if (key == NULL) {
            goto rest_after_error;
        }
    }
    PyObject *lock = b[B_LOCK];
    /* (registered, or the slot ARMING: an interrupt while a contended lock is waited for is
     * kept, raised once the receive is in the kernel's hands) */
    while (fio_acquire(lock) < 0) {
        fio_keep_first(NULL, &it, &iv, &itb);
    }
    int st = PEND_REST, owner_is_issuer = 0, wake = 0;
    /* ``closing`` and ``submitted`` as of now: remembered unless the dict changed since */
    PyObject *closing_o = b[B_CLOSING], *submitted_o = b[B_SUBMITTED];
    if (seen == 0 || DICT_VERSION(d) != seen) {
        seen = 0;
        closing_o = PyDict_GetItemWithError(d, be_names[B_CLOSING]);
        submitted_o = closing_o ? PyDict_GetItemWithError(d, be_names[B_SUBMITTED]) : NULL;
    }
    PyObject *entries = SLOT(pk_backlog, b[B_BACKLOG], 0);
    PyObject *lines = SLOT(pk_sl, b[B_STREAMS], S_LINES);
    PyObject *cancel = slot != NULL ? Py_False : SLOT(pk_op1, op, Q_CANCEL);
    if (closing_o != NULL && submitted_o != NULL && entries != NULL && lines != NULL &&
        cancel != NULL) {
        int c = fio_is_true(closing_o);
        /* (the backlog's entries: a deque's length is its size, no call) */
        int e = c ? c
                  : Py_IS_TYPE(entries, (PyTypeObject *)g_deque) ? Py_SIZE(entries) != 0
                                                                  : fio_is_true(entries);
        int l = e;
        if (!l) {
            /* (2: not a dict, or no key - a slot's, the lines empty before the lock - and a
             * line came meanwhile: the Python continuation looks) */
            l = !PyDict_CheckExact(lines)      ? 2
                : PyDict_GET_SIZE(lines) == 0 ? 0
                : key != NULL                 ? PyDict_Contains(lines, key)
                                              : 2;
        }
        int k = l ? l : fio_is_true(cancel);
        if (k == 2) {
            st = PEND_REST; /* (a line came meanwhile: the Python step 2 looks for the fd's) */
        }
        else if (k < 0) {
            st = PEND_ERROR;
        }
        else if (!k && slot != NULL) {
            /* (a demoter between the two holds: DEMOTING_A, the Python step 2's case) */
            st = pend_slot_locked(b, (PyObject *)slot, ts, file, &owner_is_issuer);
        }
        else if (!k) {
            if (PyLong_CheckExact(submitted_o)) {
                Py_INCREF(submitted_o); /* (pend_locked may run Python: ``_sq_reserve``) */
                st = pend_locked(d, b, submitted_o, seen, op, ts, file, key, view,
                                 &owner_is_issuer);
                Py_DECREF(submitted_o);
            }
        }
    }
    else if (PyErr_Occurred()) {
        st = PEND_ERROR;
    }
    /* (PEND_DONE here: the RECV is in the ring; a later PEND_ERROR - the hint, the submit -
     * leaves it there) */
    int placed = st == PEND_DONE;
    if (st == PEND_DONE) {
        if (owner_is_issuer) {
            int hinted = fio_is_true(SLOT(pk_def, b[B_DEFERRAL], 0) ? SLOT(pk_def, b[B_DEFERRAL], 0)
                                                                 : Py_False);
            if (hinted == 0) {
                result = PyObject_CallMethodNoArgs(b[B_DEFERRAL], s_hint_locked);
                if (result == NULL) {
                    st = PEND_ERROR;
                }
                Py_CLEAR(result);
            }
            else if (hinted < 0) {
                st = PEND_ERROR;
            }
        }
        else {
            /* (made again after an interrupt at its entry: it recounts from the kernel's SQ
             * head; the RECV was left prepared and never submitted - review7) */
            PyObject *sargs[2] = {self, ts};
            result = fio_again_keep(NULL, s_submit_locked, sargs, 2, 1, &it, &iv, &itb);
            if (result == NULL || (wake = fio_is_true(result)) < 0) {
                st = PEND_ERROR;
            }
            Py_CLEAR(result);
        }
    }
    fio_release(lock);
    if (st == PEND_ERROR && slot != NULL && slot->state == SLOT_ARMING) {
        goto rest_after_error; /* (nothing armed: the Python step 2 takes it on) */
    }
    if (st == PEND_ERROR && slot == NULL && !placed) {
        /* A registered request not put into the ring (a failed allocation under the lock,
         * undone): the Python continuation submits it, as after an arm step 1 (trim: it was
         * left registered, never submitted - its receive never completed and held its buffer;
         * tests/io/test_fastsock_bytearray.py's allocation sweep) */
        goto rest_after_error;
    }
    if (st == PEND_ERROR) {
        goto done;
    }
    if (st == PEND_REST) {
        goto rest;
    }
    if (wake) {
        PyObject *efd_args[2] = {b[B_EFD], g_one};
        result = PyObject_Vectorcall(g_eventfd_write, efd_args, 2, NULL);
        if (result == NULL) {
            goto done;
        }
        Py_CLEAR(result);
    }
    PyObject *parker = SLOT(pk_ts, ts, T_PARKER);
    if (parker == NULL || !Py_IS_TYPE(parker, g_rp_type) ||
        SLOT(pk_rp, parker, 0) != b[B_LEAD]) {
        result = PyObject_CallMethodOneArg(b[B_LEAD], s_bind_parker, ts);
        if (result == NULL) {
            goto done;
        }
        Py_CLEAR(result);
    }
    result = Py_NewRef(Py_None);
    goto done;

rest_after_error:
    /* An error after the receive was registered or the slot armed (step 1): an Exception (a
     * failed allocation) is dropped - the Python continuation meets the same conditions and
     * reports what it cannot do - an interrupt is kept and raised once it is made. */
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
    }
    else {
        fio_keep_first(NULL, &it, &iv, &itb);
    }
rest:
    /* The Python continuation: the request's ``_pend_rest`` (``submit``), or the slot's step 2
     * and what follows it (``_arm_slot``: armed, or demoted into the request path). */
    if (slot != NULL) {
        PyObject *gen = PyLong_FromUnsignedLong(slot->gen);
        PyObject *fd_now = SLOT(pk_file, file, PF_FD);
        PyObject *sargs[5] = {self, (PyObject *)slot, gen, ts, fd_now ? fd_now : Py_None};
        result = gen == NULL ? NULL
                             : PyObject_VectorcallMethod(s_arm_slot, sargs,
                                                         5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_XDECREF(gen);
        if (result != NULL) {
            Py_SETREF(result, Py_NewRef(Py_None));
        }
    }
    else {
        result = PyObject_CallMethodOneArg(self, s_pend_rest, op);
    }
done:
    if (it != NULL) {
        /* an interrupt kept while the request went on: raised now (it came first) */
        Py_CLEAR(result);
        PyErr_Clear();
        PyErr_Restore(it, iv, itb);
    }
    b_release(b);
    Py_DECREF(event);
    Py_DECREF(skip);
    Py_XDECREF(ts);
    Py_XDECREF(op);
    Py_XDECREF((PyObject *)slot);
    Py_XDECREF(key);
    Py_XDECREF(own);
    return result;

python_after:
    b_release(b);
    Py_DECREF(event);
    Py_DECREF(skip);
    Py_XDECREF(ts);
    Py_XDECREF(op);
    Py_XDECREF(key);
#endif
python:;
    PyObject *py = python_pend_any(self, args, nargs, kwnames, raw, own);
    Py_XDECREF(own);
    return py;
}

static PyObject *
pend_receive(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return pend_impl(self, args, PyVectorcall_NARGS(nargsf), kwnames, 0);
}

static PyMethodDef pend_receive_def;

/* ``fn(file, ov, memoryview(buffer))`` for the sockets' C receive (``sock_pend``), ``buffer``
 * an exact bytearray: when ``fn`` is this C ``pend_receive`` bound to a receive side, the call is
 * made without the memoryview where the C slot arms (``pend_impl``'s ``raw``: the slot pins
 * the bytearray; trim, 2026-12-06: the view and its release were ~760 of the ~13.4K
 * instructions of a C=64 echo); NULL without an error when ``fn`` is another callable (the
 * caller makes the view and calls it). */
PyObject *
fio_pend_bytearray(PyObject *fn, PyObject *file, PyObject *ov, PyObject *buffer)
{
    if (!PyCFunction_Check(fn) || ((PyCFunctionObject *)fn)->m_ml != &pend_receive_def ||
        !Py_IS_TYPE(buffer, &PyByteArray_Type)) {
        return NULL;
    }
    PyObject *backend = PyCFunction_GET_SELF(fn);
    if (backend == NULL) {
        return NULL;
    }
    PyObject *args[3] = {file, ov, buffer};
    Py_INCREF(backend); /* (the bound method's self, held while Python may run) */
    PyObject *r = pend_impl(backend, args, 3, NULL, 1);
    Py_DECREF(backend);
    if (r == NULL && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_SystemError, "pend_receive returned NULL without an error");
    }
    return r;
}

static PyMethodDef pend_receive_def = {
    "pend_receive", (PyCFunction)(void (*)(void))pend_receive, METH_FASTCALL | METH_KEYWORDS,
    "pend_receive(file, overlapped, view)\n--\n\n"
    "The sockets' pended receive in one call (C accelerator of the Python method)."};

static PyObject *
set_pend_enabled(PyObject *module, PyObject *flag)
{
    int on = PyObject_IsTrue(flag);
    if (on < 0) {
        return NULL;
    }
    g_on = on && PEND_FAST;
    long mode = PyLong_Check(flag) ? PyLong_AsLong(flag) : 0;
    g_slots_py = mode == 2;
    g_slots_c = mode == 3 && PEND_FAST;
    Py_RETURN_NONE;
}

static PyMethodDef set_pend_enabled_def = {
    "set_pend_enabled", set_pend_enabled, METH_O,
    "set_pend_enabled(flag): the C pend_receive runs its hot shape (else the Python one); "
    "2: on, but the receive slot's shape goes to the Python method; 3: on, the receive slot's "
    "shape arms the C slot"};

/* configure_pend(Receives, pend_receive, StreamReadOp, FileObject, Overlapped,
 *                ThreadState, RingParker, Leadership, Deferral, Backlog, StreamLines, Line,
 *                InFlight, BackendRing, LOCK, _tls, current_thread_state, deque,
 *                eventfd_write, _IO_KEY) -> (descriptor, set_pend_enabled, the C path runs
 *                here: this CPython's layout is known) */
PyObject *
configure_pend(PyObject *module, PyObject *args)
{
    PyTypeObject *backend, *opt, *filet, *ovt, *tst, *rpt, *leadt, *deft, *blt, *slt, *linet,
        *tablet, *ringt;
    PyObject *py, *lock, *tls, *cts, *deque, *efdw, *io_key;
    if (!PyArg_ParseTuple(args, "O!OO!O!O!O!O!O!O!O!O!O!O!O!OOOOOU:configure_pend",
                          &PyType_Type, &backend, &py, &PyType_Type, &opt, &PyType_Type, &filet,
                          &PyType_Type, &ovt, &PyType_Type, &tst, &PyType_Type, &rpt,
                          &PyType_Type, &leadt, &PyType_Type, &deft, &PyType_Type, &blt,
                          &PyType_Type, &slt, &PyType_Type, &linet, &PyType_Type, &tablet,
                          &PyType_Type, &ringt, &lock, &tls, &cts, &deque, &efdw, &io_key)) {
        return NULL;
    }
    if (g_backend_type != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_pend is called once");
        return NULL;
    }
    if (kind_init(&pk_file, filet, FILE_NAMES) < 0 ||
        kind_init_any(&pk_rslot, filet, RSLOT_NAMES, 1) < 0 || kind_init(&pk_ov, ovt, OV_NAMES) < 0 ||
        kind_init(&pk_op1, opt, OP1_NAMES) < 0 || kind_init(&pk_op2, opt, OP2_NAMES) < 0 ||
        kind_init(&pk_ts, tst, TS_NAMES) < 0 || kind_init(&pk_rp, rpt, RP_NAMES) < 0 ||
        kind_init(&pk_lead, leadt, LEAD_NAMES) < 0 || kind_init(&pk_def, deft, DEF_NAMES) < 0 ||
        kind_init(&pk_backlog, blt, BACKLOG_NAMES) < 0 ||
        kind_init(&pk_sl, slt, SL_NAMES) < 0 || kind_init_any(&pk_slm, slt, SLM_NAMES, 1) < 0 ||
        kind_init(&pk_line, linet, LINE_NAMES) < 0 ||
        kind_init_any(&pk_linem, linet, LINEM_NAMES, 1) < 0 ||
        kind_init(&pk_table, tablet, TABLE_NAMES) < 0 ||
        kind_init(&pk_ring, ringt, RING_NAMES) < 0 ||
        kind_init_any(&pk_ringm, ringt, RINGM_NAMES, 1) < 0 ||
        kind_init_any(&pk_be1, backend, BE1_NAMES, 1) < 0 ||
        kind_init_any(&pk_be2, backend, BE2_NAMES, 1) < 0) {
        return NULL;
    }
    /* The instance attributes must not be on the class (a data descriptor would win over
     * the instance dict); the inlined method must be. */
    for (int i = 0; i < B_COUNT; i++) {
        kind_t *k = i < 8 ? &pk_be1 : &pk_be2;
        int j = i < 8 ? i : i - 8;
        if (k->descrs[j] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s.%U is a class attribute", backend->tp_name,
                         k->names[j]);
            return NULL;
        }
        be_names[i] = k->names[j];
    }
    be_names[B_PEND_LOCKED] = pk_be2.names[B_PEND_LOCKED - 8];
    if (pk_be2.descrs[B_PEND_LOCKED - 8] == NULL) {
        PyErr_SetString(PyExc_TypeError, "the receive side has no _pend_locked");
        return NULL;
    }
    if (!PyType_IsSubtype(tablet, &PyDict_Type)) {
        PyErr_SetString(PyExc_TypeError, "the in-flight table must be a dict subclass");
        return NULL;
    }
    s_append = PyUnicode_InternFromString("append");
    s_pop = PyUnicode_InternFromString("pop");
    s_pend_rest = PyUnicode_InternFromString("_pend_rest");
    s_arm_slot = PyUnicode_InternFromString("_arm_slot");
    s_sq_reserve = PyUnicode_InternFromString("_sq_reserve");
    s_hint_locked = PyUnicode_InternFromString("hint_locked");
    s_submit_locked = PyUnicode_InternFromString("_submit_locked");
    s_bind_parker = PyUnicode_InternFromString("bind_issuer");
    g_one = PyLong_FromLong(1);
    g_zero_int = PyLong_FromLong(0);
    if (s_append == NULL || s_pop == NULL ||
        s_pend_rest == NULL || s_arm_slot == NULL || s_sq_reserve == NULL || s_hint_locked == NULL ||
        s_submit_locked == NULL || s_bind_parker == NULL || g_one == NULL || g_zero_int == NULL) {
        return NULL;
    }
    g_backend_type = (PyTypeObject *)Py_NewRef(backend);
    g_op_type = (PyTypeObject *)Py_NewRef(opt);
    g_rp_type = (PyTypeObject *)Py_NewRef(rpt);
    g_line_type = (PyTypeObject *)Py_NewRef(linet);
    g_table_type = (PyTypeObject *)Py_NewRef(tablet);
    g_py_pend = Py_NewRef(py);
    g_LOCK = Py_NewRef(lock);
    g_tls = Py_NewRef(tls);
    g_cts = Py_NewRef(cts);
    g_deque = Py_NewRef(deque);
    if (!PyType_Check(deque) || (g_deque_append = PyObject_GetAttr(deque, s_append)) == NULL) {
        PyErr_SetString(PyExc_TypeError, "configure_pend: deque must be a class with append");
        return NULL;
    }
    g_eventfd_write = Py_NewRef(efdw);
    g_io_key = Py_NewRef(io_key);
    PyObject *descr = PyDescr_NewMethod(backend, &pend_receive_def);
    if (descr == NULL) {
        return NULL;
    }
    PyObject *setter = PyCFunction_New(&set_pend_enabled_def, NULL);
    if (setter == NULL) {
        Py_DECREF(descr);
        return NULL;
    }
    return Py_BuildValue("(NNi)", descr, setter, PEND_FAST);
}
