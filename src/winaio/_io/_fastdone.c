/* The completion side of the sockets' pended receives in C (cdone, 2026-12-05).
 *
 * Sources (one concept each, shared declarations in ``_fastdone.h``): this file (the lines'
 * ``service_direct``/``service``, the method definitions, ``configure_done`` and the data it
 * configures), ``_fastdeliver.c`` (the delivery funnel), ``_fastpost.c`` (posting to a
 * completion port), ``_fastprocess.c`` (``Reaper.process``/``deliver``).
 *
 * What it replaces, with exactly their effects (the Python functions stay the reference and
 * the fallback; ``winaio._backends.uring.reaper`` installs these through ``_accel.register``):
 *
 * - ``_dispatch.deliver_batch(batch)``: the funnel of spec section 1.5 for a reaped batch, in one
 *   hold of the dispatcher LOCK: ``op.done``, the IOSB, the event E or the file object F,
 *   the APC or the packet queued on the file's port (``CompletionPort._post_locked`` with the
 *   port ``holding``: packets queue, waiters are released once at the end), the file's and the
 *   issuer's bookkeeping (``FileObject._forget_locked``), the synchronous handle's event; at
 *   the end every held port's ``release_held_locked`` (``_release_locked``: LIFO hand-off to
 *   the port's GQCS waiters under the concurrency limit, ``end_wait``).
 * - ``_dispatch.deliver(op, status, information, immediate=False)`` as the reaper's one-CQE
 *   path calls it: the same for one request, the port not held (``_post_locked`` in full: the
 *   packet handed straight to the most recent GQCS waiter when nothing is queued;
 *   ``_posted_locked``; SKIP_COMPLETION_PORT_ON_SUCCESS for an immediate success).
 * - ``StreamLines.service_direct(heads, finished)`` and the first case of
 *   ``StreamLines.service(line, res, finished)``: a direct head alone in its line whose RECV
 *   brought data, taken out in one hold of the backend's lock; every other line goes to the
 *   Python ``service``.
 * - ``Reaper.process(cqes, finished)`` for the common batch (every CQE a request's own, with a
 *   positive result) and ``Reaper.deliver(finished)`` (through the reaper module's
 *   ``deliver_batch``, whichever is in place); any other batch goes whole to the Python
 *   method before anything is touched.
 *
 * Invariants:
 * - Slots are read and written at their member descriptors' offsets only for types whose
 *   lookup gives those descriptors (``kind_fast``); other types go through the attribute
 *   protocol, so that every object is treated as the Python code treats it. A port of another
 *   class than CompletionPort, a CompletionPort whose ``_post_locked``/``_posted_locked``/
 *   ``release_held_locked``/``_release_locked`` were replaced, a file class whose
 *   ``_forget_locked`` is not FileObject's: their Python methods are called, at the point where
 *   the Python code calls them.
 * - Per request, the steps run in the Python order. An Exception from one stops that request
 *   (``deliver_batch`` collects it and goes on, as the Python loop's ``except Exception``;
 *   ``deliver`` raises it); any other BaseException (a KeyboardInterrupt at the entry of a
 *   Python call: ``wake_waiters``, ``_queue_routine``, ``_release_fd``, a parker's ``release``)
 *   is kept while the request's remaining state is written, then stops the batch. The held
 *   ports are released in every case (every one, even if one raises: the first error wins),
 *   then LOCK, then the error propagates.
 * - The hot shapes make no Python call: no interrupt can land between a CQE leaving the
 *   table (or a head its line) and its completion being queued. A result tuple is queued
 *   before its head is taken, so a failed allocation leaves the head in its line
 *   (``ReaperCuts.heads_cut``); ``process`` hands the rest of a batch to ``process_cut`` then.
 */
#include "_fastdone.h"

static const char *const OP_NAMES[] = {"done", "file", "overlapped", "event", "routine",
                                       "skip_port", "registered", "sync_done", NULL};
static const char *const OP2_NAMES[] = {"issuer", NULL};
static const char *const FI_NAMES[] = {"port", "key", "skip_set_event", "_signaled", "_waiters",
                                       "_pending", "closing", "stream_in", NULL};
static const char *const FI2_NAMES[] = {"stream_out", "skip_port_on_success", NULL};
static const char *const OV_NAMES_D[] = {"information", "status", NULL};
static const char *const EV_NAMES[] = {"_signaled", "_waiters", NULL};
static const char *const PO_NAMES[] = {"closed", "_packets", "_getters", "_waiters",
                                       "holding", "_running", "concurrency", NULL};
static const char *const WB_NAMES[] = {"detach", "data", "result", "thread", NULL};
static const char *const TS_NAMES[] = {"awake_in_wait", "wait", "wake_pending", "parker",
                                       "extensions", NULL};
static const char *const LI_NAMES[] = {"ops", "direct", "busy", "poll_ud", "keep", "key", NULL};
static const char *const SL_NAMES[] = {"_lock", "lines", "_spare", NULL};
static const char *const RE_NAMES[] = {"_table", "_streams", "_migration", "done", "cancelled",
                                       "closing", "_slots", NULL};
static const char *const MI_NAMES[] = {"migrating", NULL};

kind_t d_op, d_op2, d_file, d_file2, d_ov, d_event, d_port, d_wb, d_ts, d_line, d_lines,
    d_reaper, d_migration;

int d_configured;
PyObject *d_lock;             /* the dispatcher LOCK */
PyTypeObject *d_port_type;    /* CompletionPort */
PyTypeObject *d_packet_type;  /* CompletionPacket */
PyTypeObject *d_deque_type;   /* collections.deque */
PyObject *d_deque_append, *d_deque_popleft, *d_deque_clear; /* its method descriptors */
PyCFunction d_deque_append_fn; /* ``deque.append``'s C function (METH_O), or NULL */
PyObject *d_wake_waiters;     /* _dispatcher.wake_waiters */
PyObject *d_queue_routine;    /* _dispatch._queue_routine */
PyObject *d_py_forget;        /* FileObject._forget_locked (the reference) */
PyObject *d_py_post, *d_py_release_held, *d_py_release, *d_py_posted; /* the port's */
PyObject *d_stream_kind;      /* OpKind.STREAM */
long d_pollin;
PyObject *d_io_key;           /* the issuer's extensions key ("io") */
PyObject *d_handoff;          /* WAIT_OBJECT_0 */
PyObject *d_one;
PyObject *d_read_from_cqe;    /* StreamReadOp.from_cqe */
PyObject *d_py_service_direct;
PyObject *d_c_service_direct; /* this file's service_direct descriptor */
PyObject *d_py_deliver_batch;  /* _dispatch.deliver_batch, the Python reference */
PyObject *d_py_process;       /* Reaper.process, the Python reference */
PyObject *d_py_deliver, *d_py_service; /* _dispatch.deliver, StreamLines.service */
PyObject *d_py_reaper_deliver; /* Reaper.deliver */
PyObject *d_reaper_globals;    /* the reaper module's namespace (its ``deliver_batch``) */
PyObject *d_plain_complete;    /* Operation.complete */
PyObject *d_report;            /* common.report */
PyObject *d_batch_fn;          /* this file's deliver_batch function object */
PyTypeObject *d_line_type, *d_inflight_type;
long d_ud_poke;          /* UD_POKE */
PyObject *d_success;          /* STATUS_SUCCESS */
Py_ssize_t d_spare_max;
PyObject *ds_forget, *ds_post, *ds_release_held, *ds_release, *ds_kind, *ds_poll_events,
    *ds_release_fd, *ds_append, *ds_popleft, *ds_clear, *ds_service, *ds_from_cqe, *ds_pop, *ds_get, *ds_release_parker,
    *ds_service_direct, *ds_process, *ds_process_cut, *ds_heads_cut, *ds_posted, *ds_complete, *ds_deliver,
    *ds_deliver_rest, *ds_deliver_batch, *ds_cuts;

/* ``reaper.cuts.<name>(*args)`` (``_fastdone.h``). */
PyObject *
dn_cut_call(PyObject *reaper, PyObject *name, PyObject *const *args, Py_ssize_t n)
{
    PyObject *cuts = PyObject_GetAttr(reaper, ds_cuts);
    if (cuts == NULL) {
        return NULL;
    }
    PyObject *all[9] = {cuts, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    for (Py_ssize_t i = 0; i < n && i < 8; i++) {
        all[i + 1] = args[i];
    }
    PyObject *r = PyObject_VectorcallMethod(name, all, (n < 8 ? n : 8) + 1, NULL);
    Py_DECREF(cuts);
    return r;
}


/* ------------------------------------------------------------------ StreamLines.service_direct */

static PyObject *
py_service_direct(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *full[4];
    if (nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "service_direct(heads, finished)");
        return NULL;
    }
    full[0] = self;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        full[i + 1] = args[i];
    }
    return PyObject_Vectorcall(d_py_service_direct, full, (size_t)nargs + 1, NULL);
}

/* Under the lines' lock: the head of ``line`` (its own RECV brought ``res`` > 0 bytes) alone
 * in its line and a plain receive: taken out, ``(op, STATUS_SUCCESS, res)`` appended to
 * ``finished``, the line ended (and kept as a spare): 1; another shape: 0 (nothing touched);
 * -1 with an error (nothing touched). No Python code runs. */
static int
take_head(PyObject *lines, PyObject *spare, PyObject *line, PyObject *res, PyObject *finished)
{
    if (!kind_fast(&d_line, Py_TYPE(line))) {
        return 0;
    }
    PyObject *ops = *(PyObject **)((char *)line + d_line.offsets[LI_OPS]);
    PyObject *direct = *(PyObject **)((char *)line + d_line.offsets[LI_DIRECT]);
    PyObject *busy = *(PyObject **)((char *)line + d_line.offsets[LI_BUSY]);
    PyObject *key = *(PyObject **)((char *)line + d_line.offsets[LI_KEY]);
    int dt = direct == NULL ? 0 : is_true(direct);
    int bt = busy == NULL ? 1 : is_true(busy);
    if (dt < 0 || bt < 0) {
        return -1;
    }
    if (ops == NULL || !Py_IS_TYPE(ops, d_deque_type) || !dt || bt || key == NULL ||
        !PyLong_CheckExact(key) || PyObject_Length(ops) != 1) {
        return 0;
    }
    PyObject *op = PySequence_GetItem(ops, 0);
    if (op == NULL) {
        return -1;
    }
    if (_PyType_Lookup(Py_TYPE(op), ds_from_cqe) != d_read_from_cqe) {
        Py_DECREF(op);
        return 0;
    }
    /* (op, STATUS_SUCCESS, res): queued first, so that a failed allocation leaves the head in
     * its line (``ReaperCuts.heads_cut`` takes it) */
    PyObject *t = PyTuple_New(3);
    if (t == NULL) {
        Py_DECREF(op);
        return -1;
    }
    PyTuple_SET_ITEM(t, 0, op);
    PyTuple_SET_ITEM(t, 1, Py_NewRef(d_success));
    PyTuple_SET_ITEM(t, 2, Py_NewRef(res));
    int a = PyList_Append(finished, t);
    Py_DECREF(t);
    if (a < 0) {
        return -1;
    }
    PyObject *gone = PyObject_Vectorcall(d_deque_popleft, &ops, 1, NULL);
    Py_XDECREF(gone); /* (one op in the deque: cannot fail) */
    set(&d_line, 1, line, LI_POLL_UD, Py_NewRef(g_zero));
    set(&d_line, 1, line, LI_DIRECT, Py_NewRef(Py_False));
    set(&d_line, 1, line, LI_KEEP, Py_NewRef(Py_None));
    PyObject *cur = PyDict_GetItemWithError(lines, key); /* (an int key) */
    if (cur == line) {
        Py_INCREF(line); /* (the dict's reference may be the last) */
        if (PyDict_DelItem(lines, key) == 0 && PyList_GET_SIZE(spare) < d_spare_max) {
            /* empty, idle, nothing in the kernel: as good as new */
            if (PyList_Append(spare, line) < 0) {
                PyErr_Clear(); /* a spare is only an economy */
            }
        }
        Py_DECREF(line);
    }
    PyErr_Clear();
    return 1;
}

/* The lines' lock, dict and spares, when they are what the C code knows (new references). */
static int
lines_parts(PyObject *self, PyObject **lock, PyObject **lines, PyObject **spare)
{
    if (!kind_fast(&d_lines, Py_TYPE(self))) {
        return 0;
    }
    *lock = *(PyObject **)((char *)self + d_lines.offsets[SL_LOCK]);
    *lines = *(PyObject **)((char *)self + d_lines.offsets[SL_LINES]);
    *spare = *(PyObject **)((char *)self + d_lines.offsets[SL_SPARE]);
    if (*lock == NULL || *lines == NULL || *spare == NULL || !PyDict_CheckExact(*lines) ||
        !PyList_CheckExact(*spare)) {
        return 0;
    }
    /* held across the lock's release: the calls after it may change what the slots hold */
    Py_INCREF(*lock);
    Py_INCREF(*lines);
    Py_INCREF(*spare);
    return 1;
}

/* ``service_direct``'s body over C arrays: the heads ``hl[i]`` (lines) whose RECV brought
 * ``hr[i]`` bytes (borrowed, held by the caller), the lines' parts from ``lines_parts``
 * (references stolen): the plain heads in one hold of the lock, every other one through
 * ``service``. The cancelled count, or NULL with an error. */
static PyObject *
service_heads(PyObject *self, PyObject *lock, PyObject *lines, PyObject *spare,
              PyObject *const *hl, PyObject *const *hr, Py_ssize_t n, PyObject *finished)
{
    PyObject *slow = NULL, *result = NULL;
    if (fio_acquire(lock) < 0) {
        goto out;
    }
    /* Under the lock, on the hot shape: no Python code runs (no interrupt can cut it). */
    for (Py_ssize_t i = 0; i < n; i++) {
        int taken = take_head(lines, spare, hl[i], hr[i], finished);
        if (taken < 0) {
            goto unlock;
        }
        if (!taken) {
            if (slow == NULL && (slow = PyList_New(0)) == NULL) {
                goto unlock;
            }
            PyObject *pair = PyTuple_Pack(2, hl[i], hr[i]);
            int a = pair == NULL ? -1 : PyList_Append(slow, pair);
            Py_XDECREF(pair);
            if (a < 0) {
                goto unlock;
            }
        }
    }
    result = Py_NewRef(g_zero);
unlock:
    fio_release(lock);
    if (result != NULL && slow != NULL) {
        /* every other line: ``service`` (with its own holds) */
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(slow); i++) {
            PyObject *item = PyList_GET_ITEM(slow, i);
            PyObject *a[3] = {PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1), finished};
            PyObject *c = call_method(self, ds_service, a, 3);
            if (c == NULL) {
                Py_CLEAR(result);
                break;
            }
            PyObject *sum = PyNumber_Add(result, c);
            Py_DECREF(c);
            Py_SETREF(result, sum);
            if (result == NULL) {
                break;
            }
        }
    }
out:
    Py_XDECREF(slow);
    Py_DECREF(lock);
    Py_DECREF(lines);
    Py_DECREF(spare);
    return result;
}

/* ``Reaper.process``'s call of ``streams.service_direct`` without the heads list (rslot): 1 when
 * the method in place is this file's and the lines are what it knows (``*lock``.. set, new
 * references, for :c:func:`dn_service_heads`), else 0 (the caller makes the list and calls
 * the method). */
int
dn_heads_direct(PyObject *streams, PyObject **lock, PyObject **lines, PyObject **spare)
{
    return d_c_service_direct != NULL &&
           _PyType_Lookup(Py_TYPE(streams), ds_service_direct) == d_c_service_direct &&
           lines_parts(streams, lock, lines, spare);
}

PyObject *
dn_service_heads(PyObject *streams, PyObject *lock, PyObject *lines, PyObject *spare,
                 PyObject *const *hl, PyObject *const *hr, Py_ssize_t n, PyObject *finished)
{
    return service_heads(streams, lock, lines, spare, hl, hr, n, finished);
}

/* StreamLines.service_direct(heads, finished) -> cancelled count */
static PyObject *
service_direct(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *lock, *lines, *spare;
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[1])) {
        return py_service_direct(self, args, nargs);
    }
    PyObject *heads = args[0], *finished = args[1];
    Py_ssize_t n = PyList_GET_SIZE(heads);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(heads, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3) {
            return py_service_direct(self, args, nargs);
        }
    }
    if (!lines_parts(self, &lock, &lines, &spare)) {
        return py_service_direct(self, args, nargs);
    }
    /* (the items, held by ``heads``, held here: the list may change when Python runs) */
    PyObject *items = PyList_GetSlice(heads, 0, n);
    PyObject **hl = items == NULL ? NULL : PyMem_Malloc(sizeof(PyObject *) * 2 * (n ? n : 1));
    if (hl == NULL) {
        Py_XDECREF(items);
        Py_DECREF(lock);
        Py_DECREF(lines);
        Py_DECREF(spare);
        return items == NULL ? NULL : PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        hl[i] = PyTuple_GET_ITEM(item, 0);
        hl[n + i] = PyTuple_GET_ITEM(item, 1);
    }
    PyObject *result = service_heads(self, lock, lines, spare, hl, hl + n, n, finished);
    PyMem_Free(hl);
    Py_DECREF(items);
    return result;
}

/* StreamLines.service(line, res, finished) -> cancelled count: its first case (the head's own
 * RECV brought data, the head alone and a plain receive: one hold) in C; every other case,
 * and this one when the check under the lock fails, the Python method. */
static PyObject *
service(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *lock, *lines, *spare;
    if (nargs != 3 || !PyLong_CheckExact(args[1]) || _PyLong_Sign(args[1]) <= 0 ||
        !PyList_CheckExact(args[2]) || !kind_fast(&d_line, Py_TYPE(args[0]))) {
        goto python;
    }
    PyObject *direct = *(PyObject **)((char *)args[0] + d_line.offsets[LI_DIRECT]);
    if (direct != Py_True) {
        goto python;
    }
    if (!lines_parts(self, &lock, &lines, &spare)) {
        goto python;
    }
    int taken = -1;
    if (fio_acquire(lock) == 0) {
        taken = take_head(lines, spare, args[0], args[1], args[2]);
        fio_release(lock);
    }
    Py_DECREF(lock);
    Py_DECREF(lines);
    Py_DECREF(spare);
    if (taken < 0) {
        return NULL;
    }
    if (taken) {
        return Py_NewRef(g_zero);
    }
python: {
    PyObject *full[4] = {self, NULL, NULL, NULL};
    if (nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "service(line, res, finished)");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        full[i + 1] = args[i];
    }
    return PyObject_Vectorcall(d_py_service, full, (size_t)nargs + 1, NULL);
}
}


static PyMethodDef reaper_deliver_def = {
    "deliver", (PyCFunction)dn_reaper_deliver, METH_O,
    "deliver(finished)\n--\n\n"
    "Complete a batch of operations, in order (C accelerator of Reaper.deliver)."};


/* ------------------------------------------------------------------ method definitions */

static PyMethodDef deliver_batch_def = {
    "deliver_batch", (PyCFunction)dn_deliver_batch, METH_O,
    "deliver_batch(batch)\n--\n\n"
    "Deliver reaped completions in one hold of the dispatcher lock (C accelerator of\n"
    "_dispatch.deliver_batch); returns the exceptions raised."};

static PyMethodDef deliver_def = {
    "deliver", (PyCFunction)(void (*)(void))dn_deliver, METH_FASTCALL | METH_KEYWORDS,
    "deliver(op, status, information, immediate=False)\n--\n\n"
    "Deliver one completion (C accelerator of _dispatch.deliver); False if delivered already."};

static PyMethodDef service_direct_def = {
    "service_direct", (PyCFunction)(void (*)(void))service_direct, METH_FASTCALL,
    "service_direct(heads, finished)\n--\n\n"
    "The plain direct heads of a reaped batch in one hold of the lock (C accelerator of\n"
    "StreamLines.service_direct); returns the cancelled count."};

static PyMethodDef service_def = {
    "service", (PyCFunction)(void (*)(void))service, METH_FASTCALL,
    "service(line, res, finished)\n--\n\n"
    "A line whose head's request ended (C accelerator of StreamLines.service's first case)."};

static PyMethodDef process_def = {
    "process", (PyCFunction)(void (*)(void))dn_process, METH_FASTCALL,
    "process(cqes, finished)\n--\n\n"
    "Map a batch of CQEs to completions (C accelerator of Reaper.process's common batch)."};


/* ------------------------------------------------------------------ configure_done */

static PyObject *
intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

PyObject *
configure_done(PyObject *module, PyObject *args)
{
    PyTypeObject *opt, *filet, *ovt, *eventt, *portt, *packett, *wbt, *tst, *linet, *linest,
        *dequet, *reapert, *migrationt, *inflightt;
    PyObject *lock, *wake, *queue_routine, *py_batch, *from_cqe, *stream_kind, *pollin, *io_key,
        *handoff, *success, *spare_max, *ud_poke, *py_deliver, *globals, *plain_complete, *report;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!O!O!O!O!O!O!O!O!OOOOOOOOOOOOOO!OO:configure_done",
                          &PyType_Type, &opt, &PyType_Type, &filet, &PyType_Type, &ovt,
                          &PyType_Type, &eventt, &PyType_Type, &portt, &PyType_Type, &packett,
                          &PyType_Type, &wbt, &PyType_Type, &tst, &PyType_Type, &linet,
                          &PyType_Type, &linest, &PyType_Type, &dequet, &PyType_Type, &reapert,
                          &PyType_Type, &migrationt, &PyType_Type, &inflightt, &lock, &wake,
                          &queue_routine, &py_batch, &from_cqe, &stream_kind, &pollin, &io_key,
                          &handoff, &success, &spare_max, &ud_poke, &py_deliver,
                          &PyDict_Type, &globals, &plain_complete, &report)) {
        return NULL;
    }
    if (d_configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure_done is called once");
        return NULL;
    }
    if (!PyType_IsSubtype(packett, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "the packet type must be a tuple subclass");
        return NULL;
    }
    if (kind_init(&d_op, opt, OP_NAMES) < 0 || kind_init(&d_op2, opt, OP2_NAMES) < 0 ||
        kind_init(&d_file, filet, FI_NAMES) < 0 || kind_init(&d_file2, filet, FI2_NAMES) < 0 ||
        kind_init(&d_ov, ovt, OV_NAMES_D) < 0 || kind_init(&d_event, eventt, EV_NAMES) < 0 ||
        kind_init(&d_port, portt, PO_NAMES) < 0 || kind_init(&d_wb, wbt, WB_NAMES) < 0 ||
        kind_init(&d_ts, tst, TS_NAMES) < 0 || kind_init(&d_line, linet, LI_NAMES) < 0 ||
        kind_init(&d_lines, linest, SL_NAMES) < 0 || kind_init(&d_reaper, reapert, RE_NAMES) < 0 ||
        kind_init(&d_migration, migrationt, MI_NAMES) < 0) {
        return NULL;
    }
    if ((ds_forget = intern("_forget_locked")) == NULL || (ds_post = intern("_post_locked")) == NULL ||
        (ds_release_held = intern("release_held_locked")) == NULL ||
        (ds_release = intern("_release_locked")) == NULL || (ds_kind = intern("kind")) == NULL ||
        (ds_poll_events = intern("poll_events")) == NULL ||
        (ds_release_fd = intern("_release_fd")) == NULL || (ds_append = intern("append")) == NULL ||
        (ds_popleft = intern("popleft")) == NULL || (ds_clear = intern("clear")) == NULL ||
        (ds_service = intern("service")) == NULL || (ds_from_cqe = intern("from_cqe")) == NULL ||
        (ds_pop = intern("pop")) == NULL || (ds_get = intern("get")) == NULL ||
        (ds_release_parker = intern("release")) == NULL ||
        (ds_service_direct = intern("service_direct")) == NULL ||
        (ds_process = intern("process")) == NULL ||
        (ds_process_cut = intern("process_cut")) == NULL ||
        (ds_heads_cut = intern("heads_cut")) == NULL || (ds_cuts = intern("cuts")) == NULL ||
        (ds_posted = intern("_posted_locked")) == NULL ||
        (ds_complete = intern("complete")) == NULL || (ds_deliver = intern("deliver")) == NULL ||
        (ds_deliver_rest = intern("deliver_rest")) == NULL ||
        (ds_deliver_batch = intern("deliver_batch")) == NULL) {
        return NULL;
    }
    d_py_forget = Py_XNewRef(_PyType_Lookup(filet, ds_forget));
    d_py_post = Py_XNewRef(_PyType_Lookup(portt, ds_post));
    d_py_release_held = Py_XNewRef(_PyType_Lookup(portt, ds_release_held));
    d_py_release = Py_XNewRef(_PyType_Lookup(portt, ds_release));
    d_py_posted = Py_XNewRef(_PyType_Lookup(portt, ds_posted));
    d_py_service_direct = Py_XNewRef(_PyType_Lookup(linest, ds_service_direct));
    d_py_process = Py_XNewRef(_PyType_Lookup(reapert, ds_process));
    d_py_service = Py_XNewRef(_PyType_Lookup(linest, ds_service));
    d_py_deliver = Py_NewRef(py_deliver);
    d_py_reaper_deliver = Py_XNewRef(_PyType_Lookup(reapert, ds_deliver));
    d_reaper_globals = Py_NewRef(globals);
    d_plain_complete = Py_NewRef(plain_complete);
    d_report = Py_NewRef(report);
    if (d_py_process == NULL || d_py_posted == NULL || d_py_service == NULL ||
        d_py_reaper_deliver == NULL || d_py_forget == NULL || d_py_post == NULL || d_py_release_held == NULL ||
        d_py_release == NULL || d_py_service_direct == NULL) {
        PyErr_SetString(PyExc_TypeError, "configure_done: a method is missing");
        return NULL;
    }
    d_deque_type = (PyTypeObject *)Py_NewRef(dequet);
    d_deque_append = PyObject_GetAttr((PyObject *)dequet, ds_append);
    d_deque_popleft = PyObject_GetAttr((PyObject *)dequet, ds_popleft);
    d_deque_clear = PyObject_GetAttr((PyObject *)dequet, ds_clear);
    if (d_deque_append == NULL || d_deque_popleft == NULL || d_deque_clear == NULL) {
        return NULL;
    }
    if (Py_IS_TYPE(d_deque_append, &PyMethodDescr_Type)) {
        PyMethodDef *ml = ((PyMethodDescrObject *)d_deque_append)->d_method;
        if ((ml->ml_flags & ~METH_COEXIST) == METH_O) {
            d_deque_append_fn = ml->ml_meth;
        }
    }
    d_pollin = PyLong_AsLong(pollin);
    d_spare_max = PyLong_AsSsize_t(spare_max);
    d_ud_poke = PyLong_AsLong(ud_poke);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if ((d_one = PyLong_FromLong(1)) == NULL) {
        return NULL;
    }
    if (g_zero == NULL && (g_zero = PyLong_FromLong(0)) == NULL) {
        return NULL;
    }
    d_lock = Py_NewRef(lock);
    d_port_type = (PyTypeObject *)Py_NewRef(portt);
    d_packet_type = (PyTypeObject *)Py_NewRef(packett);
    d_wake_waiters = Py_NewRef(wake);
    d_queue_routine = Py_NewRef(queue_routine);
    d_py_deliver_batch = Py_NewRef(py_batch);
    d_read_from_cqe = Py_NewRef(from_cqe);
    d_stream_kind = Py_NewRef(stream_kind);
    d_io_key = Py_NewRef(io_key);
    d_handoff = Py_NewRef(handoff);
    d_success = Py_NewRef(success);
    d_line_type = (PyTypeObject *)Py_NewRef(linet);
    d_inflight_type = (PyTypeObject *)Py_NewRef(inflightt);
    PyObject *batch = PyCFunction_New(&deliver_batch_def, NULL);
    PyObject *sd = PyDescr_NewMethod(linest, &service_direct_def);
    PyObject *pr = PyDescr_NewMethod(reapert, &process_def);
    PyObject *dl = PyCFunction_New(&deliver_def, NULL);
    PyObject *sv = PyDescr_NewMethod(linest, &service_def);
    PyObject *rd = PyDescr_NewMethod(reapert, &reaper_deliver_def);
    d_batch_fn = Py_XNewRef(batch);
    d_c_service_direct = Py_XNewRef(sd);
    if (batch == NULL || sd == NULL || pr == NULL || dl == NULL || sv == NULL || rd == NULL) {
        Py_XDECREF(rd);
        Py_XDECREF(batch);
        Py_XDECREF(sd);
        Py_XDECREF(pr);
        Py_XDECREF(dl);
        Py_XDECREF(sv);
        return NULL;
    }
    d_configured = 1;
    return Py_BuildValue("(NNNNNN)", batch, sd, pr, dl, sv, rd);
}
