/* winaio._io._fastio: the optional C accelerator of the cached-read fast path.
 *
 * What it replaces: ``DiskFile.read_now`` (Windows' fast I/O read: a page-cache hit served
 * inside the call, with exactly the effects of an immediate completion) and the hot shape of
 * ``DiskFile.start_read`` (one buffer, no keyword argument), both installed on DiskFile as
 * method descriptors by ``_disk.use_accelerator``. (The alias layer's ReadFile and
 * GetQueuedCompletionStatusEx hot shapes are in ``_fastio_win32.c``; shared declarations in
 * ``_fastio.h``; what every C part shares - locks, slot access by kind, the hand-off to the
 * Python function - in ``_fastcommon.c``.) The pure-Python methods stay the reference and the
 * fallback: every shape this file does not handle is handed to them before anything was
 * touched (a completion routine, several buffers, an Overlapped or DiskFile subclass that
 * redefines one of the attributes used here, a non-int offset or descriptor), so the two
 * implementations cannot differ there; tests/io/test_cached_reads.py runs its differential
 * tests against both.
 *
 * Invariants:
 * - The descriptor is fetched and ``preadv2(RWF_NOWAIT)`` made with the GIL held, so no other
 *   thread can close the file (and no reopened file can take its number) in between: the
 *   fd-reuse race (``_disk.read_now`` holds LOCK there instead) cannot happen here. RWF_NOWAIT
 *   never waits for I/O: a page-cache hit is copied, anything else is EAGAIN.
 * - The syscall comes first and is the check (as in Python): a buffer or offset it refuses
 *   returns None with nothing touched, and the caller's general path reports the error; an
 *   exception that ``read_now`` would not catch propagates.
 * - The notification (IOSB, then E or F, then the completion packet; spec section 1.5) is
 *   made under the dispatcher LOCK in one hold, as ``read_now`` does, and calls the same
 *   Python functions (``wake_waiters``, ``CompletionPort._posted_locked``) when someone waits,
 *   after every field and the packet are written (an exception from one, a KeyboardInterrupt
 *   at its entry, leaves the completion whole and the other call made).
 * - Reads of more than MAX_GIL_COPY bytes go to the Python method (its syscall releases the
 *   GIL): a big page-cache copy must not keep every other thread out for milliseconds. When
 *   LOCK is contended and the wait for it is interrupted (Ctrl-C), the bytes were read but no
 *   completion is delivered and the call raises: as in the Python method.
 * - Slots are read at the offsets of their member descriptors only for types whose attribute
 *   lookup was checked to give those very descriptors (exact-type cache with version tags);
 *   other types go through the generic attribute protocol or the Python method.
 */
#include "_fastio.h"

/* ------------------------------------------------------------------ the dispatcher lock */

static PyObject *g_lock; /* the dispatcher LOCK (``fio_acquire``: ``_fastcommon.c``) */

static inline int
lock_acquire(void)
{
    return fio_acquire(g_lock);
}

static inline void
lock_release(void)
{
    fio_release(g_lock);
}


static const char *const FILE_NAMES[] = {
    "cached_reads", "fd", "port", "key", "_signaled", "_waiters", "skip_set_event",
    "skip_port_on_success", NULL};

static const char *const OV_NAMES[] = {"offset", "event", "skip_port", "information", "status",
                                       NULL};

static const char *const PORT_NAMES[] = {"closed", "_packets", "_getters", "_waiters", NULL};

static const char *const EVENT_NAMES[] = {"_signaled", "_waiters", NULL};


kind_t k_file, k_ov, k_port;
static kind_t k_event;

PyTypeObject *g_disk_type;    /* DiskFile: start_read is accelerated for it exactly */
static PyTypeObject *g_packet_type;  /* CompletionPacket (a NamedTuple: a tuple subclass) */
static PyObject *g_wake_waiters;     /* _kernel._dispatcher.wake_waiters */
static PyObject *g_py_read_now;      /* DiskFile.read_now, the Python reference */
static PyObject *g_py_start_read;    /* DiskFile.start_read, the Python reference */
static PyObject *g_start_read_after; /* _disk._start_read_after(file, buffer, ov, routine, st) */
static PyObject *g_swallowed;        /* what read_now's try/except turns into None */
static PyObject *g_would_block;      /* _disk.WOULD_BLOCK */
static PyObject *s_append, *s_posted_locked;
int g_configured;
PyObject *g_zero; /* 0: STATUS_SUCCESS */


/* ------------------------------------------------------------------ the read */

/* ``read_now`` for one buffer and no routine, on a DiskFile whose slots are read directly.
 * Returns a new reference (0, WOULD_BLOCK or None), NULL with an error, or ``Py_NotImplemented``
 * (borrowed, not a new reference) when the shape is not handled here (nothing touched). */
PyObject *
fast_read(PyObject *self, PyObject *buffer, PyObject *ov)
{
    int ofast = kind_fast(&k_ov, Py_TYPE(ov));
    PyObject *offset_obj = get(&k_ov, ofast, ov, O_OFFSET);
    if (offset_obj == NULL) {
        return NULL;
    }
    if (!PyLong_CheckExact(offset_obj)) {
        Py_DECREF(offset_obj);
        return Py_NotImplemented;
    }
    if (_PyLong_Sign(offset_obj) < 0) {
        Py_DECREF(offset_obj);
        Py_RETURN_NONE; /* preadv2 reads at the file pointer at -1: the general path refuses */
    }
    long long offset = PyLong_AsLongLong(offset_obj);
    Py_DECREF(offset_obj);
    if (offset == -1 && PyErr_Occurred()) {
        goto refused; /* OverflowError, as os.preadv */
    }
    Py_buffer view;
    if (PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE) < 0) {
        goto refused; /* read-only, non-contiguous, released, not a buffer */
    }
    if (view.len > MAX_GIL_COPY) {
        PyBuffer_Release(&view);
        return Py_NotImplemented; /* the Python method: the copy without the GIL (under LOCK) */
    }
    /* From here to the syscall the GIL is not released: nobody can close the descriptor. */
    PyObject *fd_obj = *(PyObject **)((char *)self + k_file.offsets[F_FD]);
    if (fd_obj == NULL || !PyLong_CheckExact(fd_obj)) {
        PyBuffer_Release(&view);
        return Py_NotImplemented;
    }
    int overflow;
    long fd = PyLong_AsLongAndOverflow(fd_obj, &overflow);
    if (overflow || fd < INT_MIN || fd > INT_MAX) {
        PyBuffer_Release(&view);
        return Py_NotImplemented;
    }
    struct iovec iov = {view.buf, (size_t)view.len};
    ssize_t n;
    for (;;) {
        n = preadv2((int)fd, &iov, 1, (off_t)offset, RWF_NOWAIT);
        if (n >= 0 || errno != EINTR) {
            break;
        }
        if (PyErr_CheckSignals() < 0) { /* as os.preadv: a handler's exception propagates */
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    int err = errno;
    PyBuffer_Release(&view);
    if (n < 0) {
        if (err == EAGAIN || err == EWOULDBLOCK) {
            return Py_NewRef(g_would_block);
        }
        Py_RETURN_NONE; /* the request object path reports it (or EOPNOTSUPP: it retries) */
    }
    if (n == 0) {
        return Py_NewRef(g_would_block); /* at EOF (Win8+ pends, spec section 4.4) */
    }

    /* The completion: IOSB, then E or F, then the packet, in one LOCK hold (read_now). */
    PyObject *info = PyLong_FromSsize_t(n);
    if (info == NULL) {
        return NULL;
    }
    PyObject *event = get(&k_ov, ofast, ov, O_EVENT);
    if (event == NULL) {
        Py_DECREF(info);
        return NULL;
    }
    if (lock_acquire() < 0) {
        Py_DECREF(info);
        Py_DECREF(event);
        return NULL;
    }
    /* Every field and the packet first, the Python calls (wake_waiters, _posted_locked) last:
     * an exception from one of them (a KeyboardInterrupt at its entry) still leaves the
     * completion whole and the other call made; the first error is raised. */
    PyObject *wake = NULL; /* the object whose waiters to wake (borrowed: event or self) */
    PyObject *post = NULL; /* the port whose waiters to release (a strong reference) */
    int r;
    if (set(&k_ov, ofast, ov, O_INFORMATION, info) < 0 ||
        set(&k_ov, ofast, ov, O_STATUS, Py_NewRef(g_zero)) < 0) {
        goto calls;
    }
    if (event != Py_None) {
        set(&k_file, 1, self, F_SIGNALED, Py_NewRef(Py_False));
        int efast = kind_fast(&k_event, Py_TYPE(event));
        if (set(&k_event, efast, event, E_SIGNALED, Py_NewRef(Py_True)) < 0) {
            goto calls;
        }
        if ((r = truth(&k_event, efast, event, E_WAITERS)) < 0) {
            goto calls;
        }
        if (r) {
            wake = event;
        }
    }
    else {
        if ((r = truth(&k_file, 1, self, F_SKIP_SET)) < 0) {
            goto calls;
        }
        if (r) {
            set(&k_file, 1, self, F_SIGNALED, Py_NewRef(Py_False));
        }
        else {
            set(&k_file, 1, self, F_SIGNALED, Py_NewRef(Py_True));
            if ((r = truth(&k_file, 1, self, F_WAITERS)) < 0) {
                goto calls;
            }
            if (r) {
                wake = self;
            }
        }
    }
    if ((r = truth(&k_ov, ofast, ov, O_SKIP_PORT)) < 0) {
        goto calls;
    }
    if (!r) {
        PyObject *port = *(PyObject **)((char *)self + k_file.offsets[F_PORT]);
        if (port == NULL) {
            port = get(&k_file, 0, self, F_PORT); /* raises AttributeError */
            Py_XDECREF(port);
            goto calls;
        }
        if (port != Py_None) {
            if ((r = truth(&k_file, 1, self, F_SKIP_SUCCESS)) < 0) {
                goto calls;
            }
            int pfast = kind_fast(&k_port, Py_TYPE(port));
            int closed = r ? 1 : truth(&k_port, pfast, port, P_CLOSED);
            if (closed < 0) {
                goto calls;
            }
            if (!closed) {
                Py_INCREF(port); /* (a concurrent setattr would not free it under us) */
                int ok = -1;
                PyObject *packets = NULL, *packet = NULL, *res = NULL;
                PyObject *key = get(&k_file, 1, self, F_KEY);
                if (key == NULL) {
                    goto port_done;
                }
                packets = get(&k_port, pfast, port, P_PACKETS);
                if (packets == NULL) {
                    Py_DECREF(key);
                    goto port_done;
                }
                /* tuple.__new__(CompletionPacket, (key, ov, 0, n)), as read_now builds it */
                packet = g_packet_type->tp_alloc(g_packet_type, 4);
                if (packet == NULL) {
                    Py_DECREF(key);
                    goto port_done;
                }
                PyTuple_SET_ITEM(packet, 0, key);
                PyTuple_SET_ITEM(packet, 1, Py_NewRef(ov));
                PyTuple_SET_ITEM(packet, 2, Py_NewRef(g_zero));
                PyTuple_SET_ITEM(packet, 3, PyLong_FromSsize_t(n));
                if (PyTuple_GET_ITEM(packet, 3) == NULL) {
                    goto port_done;
                }
                res = PyObject_CallMethodOneArg(packets, s_append, packet);
                if (res == NULL) {
                    goto port_done;
                }
                Py_DECREF(res);
                if ((r = truth(&k_port, pfast, port, P_GETTERS)) < 0) {
                    goto port_done;
                }
                if (!r && (r = truth(&k_port, pfast, port, P_WAITERS)) < 0) {
                    goto port_done;
                }
                if (r) {
                    post = Py_NewRef(port);
                }
                ok = 0;
            port_done:
                Py_XDECREF(packet);
                Py_XDECREF(packets);
                Py_DECREF(port);
                if (ok < 0) {
                    goto calls;
                }
            }
        }
    }
calls: {
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    if (PyErr_Occurred()) {
        PyErr_Fetch(&et, &ev, &etb);
    }
    if (wake != NULL) {
        fio_keep_first(fio_wake(g_wake_waiters, wake), &et, &ev, &etb);
    }
    if (post != NULL) {
        fio_keep_first(fio_again_always(NULL, s_posted_locked, &post, 1, 1), &et, &ev, &etb);
        Py_DECREF(post);
    }
    lock_release();
    Py_DECREF(event);
    if (et != NULL || ev != NULL) {
        PyErr_Restore(et, ev, etb);
        return NULL;
    }
    return Py_NewRef(g_zero);
}

refused:
    /* read_now's ``except (OSError, TypeError, ...): return None``; anything else propagates */
    if (PyErr_ExceptionMatches(g_swallowed)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return NULL;
}

PyObject *
py_read_now(PyObject *self, PyObject *buffers, PyObject *ov, PyObject *routine)
{
    PyObject *args[4] = {self, buffers, ov, routine};
    return PyObject_Vectorcall(g_py_read_now, args, 4, NULL);
}

/* DiskFile.read_now(buffers, overlapped, routine) */
static PyObject *
read_now(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 3 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        return fio_delegate(g_py_read_now, self, args, nargs, kwnames);
    }
    PyObject *buffers = args[0], *ov = args[1], *routine = args[2];
    if (!kind_fast(&k_file, Py_TYPE(self))) {
        return py_read_now(self, buffers, ov, routine);
    }
    int r = cached_reads(self);
    if (r <= 0) {
        if (r < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *buffer;
    if (routine == Py_None && PyTuple_CheckExact(buffers) && PyTuple_GET_SIZE(buffers) == 1) {
        buffer = PyTuple_GET_ITEM(buffers, 0);
    }
    else if (routine == Py_None && PyList_CheckExact(buffers) && PyList_GET_SIZE(buffers) == 1) {
        buffer = PyList_GET_ITEM(buffers, 0);
    }
    else {
        return py_read_now(self, buffers, ov, routine);
    }
    Py_INCREF(buffer);
    PyObject *res = fast_read(self, buffer, ov);
    Py_DECREF(buffer);
    if (res == Py_NotImplemented) {
        return py_read_now(self, buffers, ov, routine);
    }
    return res;
}

/* DiskFile.start_read(buffer, overlapped, *, size=None, routine=None) */
static PyObject *
start_read(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    /* Exactly DiskFile: a subclass may override read_now, which start_read must then call. */
    if (nargs != 2 || nkw || args[1] == Py_None || Py_TYPE(self) != g_disk_type ||
        !kind_fast(&k_file, Py_TYPE(self))) {
        goto python;
    }
    int r = cached_reads(self);
    if (r < 0) {
        return NULL;
    }
    if (!r) {
        /* no cached reads: the O_DIRECT hot case (``_fastdirect.c``), else the Python method */
        PyObject *issued = fio_direct_start_read(self, args[0], args[1]);
        if (issued != Py_NotImplemented) {
            return issued;
        }
        goto python;
    }
    PyObject *buffer = args[0], *ov = args[1];
    PyObject *status = fast_read(self, buffer, ov);
    if (status == NULL) {
        return NULL;
    }
    if (status == Py_NotImplemented) {
        goto python;
    }
    if (PyLong_CheckExact(status) && _PyLong_Sign(status) == 0) {
        Py_DECREF(status);
        Py_RETURN_TRUE;
    }
    /* not served inside the call: start_read's own continuation (the request object path) */
    PyObject *after[5] = {self, buffer, ov, Py_None, status};
    PyObject *res = PyObject_Vectorcall(g_start_read_after, after, 5, NULL);
    Py_DECREF(status);
    return res;

python:
    return fio_delegate(g_py_start_read, self, args, nargs, kwnames);
}

static PyMethodDef read_now_def = {
    "read_now", (PyCFunction)(void (*)(void))read_now, METH_FASTCALL | METH_KEYWORDS,
    "read_now(buffers, overlapped, routine)\n--\n\n"
    "The page-cache fast path of an overlapped ReadFile (C accelerator of the Python method)."};

static PyMethodDef start_read_def = {
    "start_read", (PyCFunction)(void (*)(void))start_read, METH_FASTCALL | METH_KEYWORDS,
    "start_read(buffer, overlapped, *, size=None, routine=None)\n--\n\n"
    "ReadFile(Ex) (C accelerator of the Python method's hot case)."};

/* ------------------------------------------------------------------ configuration */

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyTypeObject *disk, *ovt, *portt, *eventt, *packett;
    PyObject *lock, *wake, *rn, *sr, *after, *swallowed, *would_block;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!OOOOOO!O:configure", &PyType_Type, &disk,
                          &PyType_Type, &ovt, &PyType_Type, &portt, &PyType_Type, &eventt,
                          &PyType_Type, &packett, &lock, &wake, &rn, &sr, &after,
                          &PyTuple_Type, &swallowed, &would_block)) {
        return NULL;
    }
    if (g_configured) {
        PyErr_SetString(PyExc_RuntimeError, "_fastio is configured once");
        return NULL;
    }
    if (!PyType_IsSubtype(packett, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "the packet type must be a tuple subclass");
        return NULL;
    }
    if (kind_init(&k_file, disk, FILE_NAMES) < 0 || kind_init(&k_ov, ovt, OV_NAMES) < 0 ||
        kind_init(&k_port, portt, PORT_NAMES) < 0 || kind_init(&k_event, eventt, EVENT_NAMES) < 0) {
        return NULL;
    }
    s_append = PyUnicode_InternFromString("append");
    s_posted_locked = PyUnicode_InternFromString("_posted_locked");
    if (s_append == NULL || s_posted_locked == NULL) {
        return NULL;
    }
    int direct = fio_configure_locks(lock);
    if (direct < 0) {
        return NULL;
    }
    g_lock = Py_NewRef(lock);
    g_packet_type = (PyTypeObject *)Py_NewRef(packett);
    g_disk_type = (PyTypeObject *)Py_NewRef(disk);
    g_wake_waiters = Py_NewRef(wake);
    g_py_read_now = Py_NewRef(rn);
    g_py_start_read = Py_NewRef(sr);
    g_start_read_after = Py_NewRef(after);
    g_swallowed = Py_NewRef(swallowed);
    g_would_block = Py_NewRef(would_block);
    g_zero = PyLong_FromLong(0);
    /* The file type is the one the methods are checked against (descriptor's __get__) */
    kind_fast(&k_file, disk);
    kind_fast(&k_ov, ovt);
    PyObject *rd = PyDescr_NewMethod(disk, &read_now_def);
    PyObject *sd = PyDescr_NewMethod(disk, &start_read_def);
    if (rd == NULL || sd == NULL) {
        Py_XDECREF(rd);
        Py_XDECREF(sd);
        return NULL;
    }
    g_configured = 1;
    return Py_BuildValue("(NNi)", rd, sd, direct);
}



static PyMethodDef module_methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(DiskFile, Overlapped, CompletionPort, Event, CompletionPacket, LOCK,\n"
     "          wake_waiters, read_now, start_read, start_read_after, swallowed, WOULD_BLOCK)\n"
     "-> (read_now descriptor, start_read descriptor, lock taken directly)"},
    {"configure_direct", fio_configure_direct, METH_VARARGS,
     "configure_direct(DiskFile, FileReadOp, LOCK, submit_pending_file, _hand_to_backend,\n"
     "                 _handed_again, _tls, current_thread_state, STATUS_PENDING, align)"},
    {"configure_submit", fio_configure_submit, METH_VARARGS,
     "configure_submit(IoUringBackend, submit, FileReadOp, FileObject, BackendRing, InFlight,\n"
     "                 Backlog, Submission, ThreadState, RingParker, RingBusyError,\n"
     "                 eventfd_write) -> the C submit descriptor"},
    {"submit_set_enabled", fio_submit_set_enabled, METH_O,
     "submit_set_enabled(flag): the C IoUringBackend.submit serves its shape (else Python)"},
    {"configure_alias", configure_alias, METH_VARARGS,
     "configure_alias(OVERLAPPED, handle_entry, ReadFile, read_file_after) -> C ReadFile"},
    {"configure_gqcs", configure_gqcs, METH_VARARGS,
     "configure_gqcs(GQCSEx, OVERLAPPED_ENTRY, Ref, handle_entry, after, failed, Win32Error)\n"
     "-> C GQCSEx"},
    {"set_enabled", set_enabled, METH_O,
     "set_enabled(flag): the C ReadFile runs its hot shape (else it calls the Python one)"},
    {"configure_ring", configure_ring, METH_VARARGS,
     "configure_ring(part, ...) -> {name: method descriptor} (_fastring.c: BackendRing,\n"
     "Deferral, Reaper)"},
    {"configure_pend", configure_pend, METH_VARARGS,
     "configure_pend(Receives, pend_receive, StreamReadOp, ...) -> (descriptor, switch)"},
    {"configure_sockets", configure_sockets, METH_VARARGS,
     "configure_sockets(Socket, FdUsers, Event, Overlapped, socket.socket, probe, lock, start_read,\n"
     "                  start_write, continuations..., STATUS_PENDING, ask_run, ask_every, LOCK,\n"
     "                  wake_waiters)\n"
     "-> (start_read descriptor, start_write descriptor)"},
    {"configure_done", configure_done, METH_VARARGS,
     "configure_done(...) -> (C deliver_batch, StreamLines.service_direct, Reaper.process,\n"
     "                        deliver, StreamLines.service)"},
    {"configure_wsa", configure_wsa, METH_VARARGS,
     "configure_wsa(WSARecv, WSASend, WSAGetLastError, Socket, OVERLAPPED, Ref, ThreadState,\n"
     "              handle_entry, tls, current_thread_state, _wsa_fail, Win32Error,\n"
     "              WSA_IO_PENDING, SOCKET_ERROR) -> (C WSARecv, C WSASend, C WSAGetLastError)"},
    {"wsa_set_enabled", wsa_set_enabled, METH_O,
     "wsa_set_enabled(flag): the C WSARecv/WSASend run their hot shape (else the Python ones)"},
    {"configure_event", configure_event, METH_VARARGS,
     "configure_event(Event, WaitBlock, ThreadState, LOCK, tls, Event.set, wait_for_one,\n"
     "                abandon_wait, check_terminating, _finish, TERMINATED,\n"
     "                WAIT_IO_COMPLETION, WAIT_TIMEOUT) -> (Event.set descriptor, C wait_for_one)"},
    {"configure_event_win32", configure_event_win32, METH_VARARGS,
     "configure_event_win32(entries, SetEvent, ResetEvent, WaitForSingleObject,\n"
     "                      WaitForSingleObjectEx, fail, Win32Error, WAIT_FAILED,\n"
     "                      EVENT_MODIFY_STATE, SYNCHRONIZE) -> the four C functions"},
    {"event_set_enabled", event_set_enabled, METH_O,
     "event_set_enabled(flag): the C event functions run their hot shapes (else Python's)"},
    {"event_wake_without_gil", event_wake_without_gil, METH_O,
     "event_wake_without_gil(flag) -> previous: Event.set's wake-up after LOCK, without the GIL"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef fastio_module = {
    PyModuleDef_HEAD_INIT, "winaio._io._fastio",
    "Optional C accelerator of the cached-read fast path (see _disk.use_accelerator).", -1,
    module_methods, NULL, NULL, NULL, NULL};

static PyObject *s_ts, *s_ts_key; /* ``ts``; the thread state dict's key (``fio_thread_state``) */

PyObject *
fio_thread_state(PyObject *tls, PyObject *cts)
{
    PyObject *tdict = PyThreadState_GetDict(); /* borrowed; NULL without an error */
    if (tdict != NULL) {
        PyObject *ts = PyDict_GetItemWithError(tdict, s_ts_key);
        if (ts != NULL) {
            return Py_NewRef(ts);
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    PyObject *ts = PyObject_GetAttr(tls, s_ts);
    if (ts == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return NULL;
        }
        PyErr_Clear();
        ts = PyObject_CallNoArgs(cts);
        if (ts == NULL) {
            return NULL;
        }
    }
    if (tdict != NULL && PyDict_SetItem(tdict, s_ts_key, ts) < 0) {
        PyErr_Clear(); /* (only not remembered) */
    }
    return ts;
}

/* ``fio_thread_state`` remembered per OS thread with the version of the thread's state dict
 * (pend, session 13: its dict lookup was ~200 of a pended receive's ~2.5K instructions). A
 * dict's version is globally unique in 3.11 (PEP 509: every new dict and every change takes
 * the next one): while the dict at that address has the version seen, it is the same dict,
 * unchanged, and holds the ThreadState remembered (borrowed). A thread's end clears its dict
 * (a new version); a new thread starts with an empty cache. 3.12+ (the version deprecated):
 * ``fio_thread_state``. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
static _Thread_local struct {
    PyObject *tdict;
    uint64_t version;
    PyObject *ts; /* (borrowed: the dict holds it while its version stands) */
} t_seen_ts;
#endif

PyObject *
fio_thread_state_seen(PyObject *tls, PyObject *cts)
{
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    PyObject *tdict = PyThreadState_GetDict(); /* borrowed; NULL without an error */
    if (tdict == NULL) {
        return fio_thread_state(tls, cts);
    }
    uint64_t version = ((PyDictObject *)tdict)->ma_version_tag;
    if (tdict == t_seen_ts.tdict && version == t_seen_ts.version) {
        return Py_NewRef(t_seen_ts.ts);
    }
    PyObject *ts = fio_thread_state(tls, cts);
    if (ts != NULL && PyThreadState_GetDict() == tdict) {
        PyObject *held = PyDict_GetItemWithError(tdict, s_ts_key); /* (Python ran: again) */
        if (held == ts) {
            t_seen_ts.tdict = tdict;
            t_seen_ts.version = ((PyDictObject *)tdict)->ma_version_tag;
            t_seen_ts.ts = ts;
        }
        else if (held == NULL) {
            PyErr_Clear(); /* (only not remembered) */
        }
    }
    return ts;
#else
    return fio_thread_state(tls, cts);
#endif
}

PyMODINIT_FUNC
PyInit__fastio(void)
{
    s_ts = PyUnicode_InternFromString("ts");
    s_ts_key = PyUnicode_InternFromString("winaio._io._fastio.thread_state");
    if (s_ts == NULL || s_ts_key == NULL) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&fastio_module);
    if (m != NULL && fastslot_add_types(m) < 0) { /* (_fastslot.c: ReceiveSlot, SlotTable) */
        Py_CLEAR(m);
    }
    return m;
}
