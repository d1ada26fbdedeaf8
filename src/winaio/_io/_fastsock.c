/* winaio._io._fastio, the sockets' part: the immediate paths of ``Socket.start_read`` and
 * ``Socket.start_write`` (``_streams.py``) in C, installed on Socket as method descriptors by
 * ``_streams._install`` (through ``_accel.register``).
 *
 * Three files and a header (split by concept, csplit 2026-12-05): this one (the shape checks,
 * the steps both directions share - ``sock_reset``, ``sock_succeeded``/``notify``,
 * ``sock_pend``, ``sock_users_left`` - and ``configure_sockets``), ``_fastsock_recv.c``
 * (``start_read``), ``_fastsock_send.c`` (``start_write``); ``_fastsock.h``: what they share.
 *
 * Same rules as ``_fastio.c``: the Python methods are the reference. Every shape not handled
 * here goes to them before anything was touched (keywords, a completion routine, a buffer that
 * is not one whole byte buffer, nothing to read or send, a pending request in that direction, a
 * Socket, Overlapped, FdUsers or socket object of another type or layout, a send claim that is
 * not a plain lock or is taken, a buffer larger than MAX_GIL_COPY), and every result the Python
 * method hands to a continuation goes to the very same Python function here (``_streams``:
 * ``_closed_error``, ``_recv_blocked``, ``_recv_failed``, ``_recv_end``, ``_send_failed``,
 * ``_send_rest``), so the two cannot drift; an immediate success's notification is
 * ``_dispatch.notify_success``'s steps, inline (``notify``), the port's ``_post_locked`` called.
 *
 * Invariants:
 * - The descriptor is the socket object's own (``sock_fd``, read at the layout checked by
 *   ``configure_sockets`` against ``fileno()`` and ``settimeout``), as CPython's ``recv_into``
 *   and ``send`` read it. The syscall is made with the GIL held (MSG_DONTWAIT: a non-blocking
 *   attempt of at most MAX_GIL_COPY bytes, microseconds), so no other thread runs between the
 *   fetch and the syscall; the fast path still counts itself among the descriptor's users
 *   (``_fd_users``) before it reads ``closing``, because a Python callable it calls meanwhile
 *   (the readiness poll, which releases the GIL) lets other threads run.
 * - A socket object whose timeout is not 0 or None (``settimeout(t)``: CPython would wait for
 *   readiness) goes to the Python method.
 * - Effects in the Python order: E reset, F cleared, Internal = STATUS_PENDING, the syscall,
 *   then the IOSB alone (nothing to signal or post) or ``notify_success``'s steps under LOCK
 *   (``notify``: the Python calls, wake_waiters and _post_locked, last); ``finally``: counted
 *   out, the claim released, ``users.left()`` when closing.
 */
#include "_fastsock.h"

static const char *const SOCK_A_NAMES[] = {"closing", "stream_in", "stream_out", "overlapped",
                                           "winsock", "sock", "_signaled", "fd_users", NULL};
static const char *const SOCK_B_NAMES[] = {"_recv_ready", "_recv_misses", "_pend", "send_claim",
                                           "skip_set_event", "skip_port_on_success", "port",
                                           NULL};
/* The offsets of every slot of SOCK_A_NAMES, SOCK_B_NAMES and SOCK_C_NAMES (the socket
 * class's, from its kinds at configuration), which ``common_shape`` requires set. */
#define SET_COUNT 17
static Py_ssize_t g_set_off[SET_COUNT];
static const char *const SEVENT_NAMES[] = {"_signaled", "_waiters", NULL};
static const char *const SOCK_C_NAMES[] = {"_waiters", "key", NULL};
static const char *const SOV_NAMES[] = {"event", "skip_port", "information", "status", NULL};

kind_t k_sa, k_sb, k_sov, k_mode;
static const char *const MODE_NAMES[] = {"shut_rd", NULL};
static kind_t k_sc, k_sev;
static PyTypeObject *g_fd_users_type; /* FdUsers (a list subclass) */
static PyTypeObject *g_socket_type;   /* socket.socket: exactly (a subclass may redefine recv) */
PyTypeObject *g_claim_type;           /* _thread.lock */
PyObject *g_py_sock_read, *g_py_sock_write; /* Socket.start_read/start_write (Python) */
static PyObject *g_closed_error;
PyObject *g_recv_blocked, *g_recv_failed, *g_recv_end;
PyObject *g_send_failed, *g_send_rest;
static PyObject *g_pending; /* STATUS_PENDING */
static PyObject *g_sock_lock;      /* the dispatcher LOCK */
static PyObject *g_sock_wake;      /* _kernel._dispatcher.wake_waiters */
static PyObject *s_post_locked;
PyObject *g_sone, *g_szero;
PyObject *s_shut_rd;
static PyObject *s_left;
long g_ask_run, g_ask_every;

#if SOCK_ACCEL

/* One whole byte buffer (the Python method's ``hot`` test): 1 or 0 (a released memoryview is
 * not: the general path reports it). ``writable``: a receive (no read-only memoryview); bytes
 * only for a send. */
static int
hot_buffer(PyObject *buf, int writable)
{
    PyTypeObject *cls = Py_TYPE(buf);
    if (cls == &PyByteArray_Type) {
        return 1;
    }
    if (cls == &PyBytes_Type) {
        return !writable;
    }
    if (cls != &PyMemoryView_Type) {
        return 0;
    }
    PyMemoryViewObject *m = (PyMemoryViewObject *)buf;
    if ((m->flags & _Py_MEMORYVIEW_RELEASED) || (m->mbuf->flags & _Py_MANAGED_BUFFER_RELEASED)) {
        return 0;
    }
    Py_buffer *v = &m->view;
    if (writable && v->readonly) {
        return 0;
    }
    if (!(m->flags & _Py_MEMORYVIEW_C) || v->ndim != 1) {
        return 0;
    }
    return v->format == NULL || strcmp(v->format, "B") == 0;
}

static inline Py_ssize_t
buffer_len(PyObject *buf)
{
    PyTypeObject *cls = Py_TYPE(buf);
    if (cls == &PyByteArray_Type) {
        return PyByteArray_GET_SIZE(buf);
    }
    if (cls == &PyBytes_Type) {
        return PyBytes_GET_SIZE(buf);
    }
    return ((PyMemoryViewObject *)buf)->view.shape[0]; /* len(): 1-D, format B */
}

/* The current exception gets (et, ev, etb) as its context (a ``finally`` that raised while
 * another exception propagated); steals the three references. */
static void
chain(PyObject *et, PyObject *ev, PyObject *etb)
{
    PyObject *t2, *v2, *tb2;
    PyErr_Fetch(&t2, &v2, &tb2);
    if (t2 == NULL) { /* (no new exception: the first one stands) */
        PyErr_Restore(et, ev, etb);
        return;
    }
    PyErr_NormalizeException(&et, &ev, &etb);
    if (etb != NULL && ev != NULL) {
        PyException_SetTraceback(ev, etb);
    }
    PyErr_NormalizeException(&t2, &v2, &tb2);
    if (v2 != NULL && ev != NULL && v2 != ev) {
        PyException_SetContext(v2, ev); /* steals ev */
    }
    else {
        Py_XDECREF(ev);
    }
    Py_XDECREF(et);
    Py_XDECREF(etb);
    PyErr_Restore(t2, v2, tb2);
}

/* The ``finally`` of both methods after ``users.pop()`` (and the claim's release): if the
 * socket is closing, ``users.left()``; its exception replaces (and chains) a pending one. */
PyObject *
sock_users_left(PyObject *self, PyObject *users, PyObject *res)
{
    PyObject *closing = slot(&k_sa, self, SA_CLOSING);
    int c = closing == NULL ? 0 : fio_is_true(closing);
    if (c == 0) {
        return res;
    }
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *r = c < 0 ? NULL : PyObject_CallMethodNoArgs(users, s_left);
    if (r == NULL) {
        Py_XDECREF(res);
        res = NULL;
        if (et != NULL) {
            chain(et, ev, etb);
        }
        return NULL;
    }
    Py_DECREF(r);
    PyErr_Restore(et, ev, etb);
    return res;
}

/* Raises the Python method's Win32Error for a closed socket (``_streams._closed_error``). */
PyObject *
sock_raise_closed(void)
{
    PyObject *exc = PyObject_CallNoArgs(g_closed_error);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* ``self._pend(self, overlapped, view)``; returns False or NULL. A bytearray goes to the C
 * ``pend_receive`` as it is (``fio_pend_bytearray``: the view is made only where a request
 * needs it). */
PyObject *
sock_pend(PyObject *self, PyObject *ov, PyObject *buffer)
{
    PyObject *fn = slot(&k_sb, self, SB_PEND);
    if (fn == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_pend");
        return NULL;
    }
    Py_INCREF(fn);
    PyObject *r = fio_pend_bytearray(fn, self, ov, buffer);
    if (r != NULL || PyErr_Occurred()) {
        Py_DECREF(fn);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
        Py_RETURN_FALSE;
    }
    PyObject *view = Py_TYPE(buffer) == &PyMemoryView_Type ? Py_NewRef(buffer)
                                                             : PyMemoryView_FromObject(buffer);
    if (view == NULL) {
        Py_DECREF(fn);
        return NULL;
    }
    PyObject *args[3] = {self, ov, view};
    r = PyObject_Vectorcall(fn, args, 3, NULL);
    Py_DECREF(fn);
    Py_DECREF(view);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

/* ``_dispatch.notify_success`` for a Socket whose slots are read directly (its steps, under one
 * hold of LOCK): the IOSB, then E (or F unless FILE_SKIP_SET_EVENT_ON_HANDLE), then the packet
 * through the port's own ``_post_locked`` unless ``hEvent|1`` or
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS. Every field is written before the Python calls
 * (``wake_waiters``, ``_post_locked``), which come last: an exception from the first (a
 * KeyboardInterrupt at its entry) still leaves the second made and is the one raised. Steals
 * ``info``; 0 or -1. */
static int
notify(PyObject *self, PyObject *ov, PyObject *event, PyObject *info)
{
    /* The syscall took (or sent) the data: an interrupt while a contended LOCK is waited for
     * is kept and the wait goes on, so that the completion is written whole before it goes
     * on (review7; the bytes were lost: neither in the IOSB nor the socket). */
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    while (fio_acquire(g_sock_lock) < 0) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            Py_DECREF(info);
            fio_keep_first(NULL, &et, &ev, &etb); /* (the interrupt kept first wins) */
            PyErr_Restore(et, ev, etb);
            return -1;
        }
        fio_keep_first(NULL, &et, &ev, &etb);
    }
    PyObject *wake = NULL, *port = NULL, *post = NULL, *key = NULL;
    int r;
    kind_put(&k_sov, ov, SO_INFORMATION, Py_NewRef(info));
    kind_put(&k_sov, ov, SO_STATUS, Py_NewRef(g_szero));
    if (event != Py_None) {
        int efast = kind_fast(&k_sev, Py_TYPE(event));
        if (set(&k_sev, efast, event, SE_SIGNALED, Py_NewRef(Py_True)) < 0) {
            goto calls;
        }
        if ((r = truth(&k_sev, efast, event, SE_WAITERS)) < 0) {
            goto calls;
        }
        if (r) {
            wake = Py_NewRef(event);
        }
    }
    else {
        if ((r = truth(&k_sb, 1, self, SB_SKIP_SET)) < 0) {
            goto calls;
        }
        if (!r) {
            kind_put(&k_sa, self, SA_SIGNALED, Py_NewRef(Py_True));
            if ((r = truth(&k_sc, 1, self, SC_WAITERS)) < 0) {
                goto calls;
            }
            if (r) {
                wake = Py_NewRef(self);
            }
        }
    }
    if ((r = truth(&k_sov, 1, ov, SO_SKIP_PORT)) < 0) {
        goto calls;
    }
    if (!r) {
        port = get(&k_sb, 1, self, SB_PORT);
        if (port == NULL) {
            goto calls;
        }
        if (port != Py_None) {
            if ((r = truth(&k_sb, 1, self, SB_SKIP_SUCCESS)) < 0) {
                goto calls;
            }
            if (!r) {
                key = get(&k_sc, 1, self, SC_KEY);
                if (key == NULL) {
                    goto calls;
                }
                post = Py_NewRef(port);
            }
        }
    }
calls: {
    if (PyErr_Occurred()) {
        fio_keep_first(NULL, &et, &ev, &etb);
    }
    if (wake != NULL) {
        fio_keep_first(fio_wake(g_sock_wake, wake), &et, &ev, &etb);
    }
    if (post != NULL) {
        /* port._post_locked(key, ov, 0, information): the port's own method (Python, or a C
         * one installed on its class); made again after an interrupt at its entry */
        PyObject *args[5] = {post, key, ov, g_szero, info};
        fio_keep_first(fio_again(NULL, s_post_locked, args, 5), &et, &ev, &etb);
    }
    fio_release(g_sock_lock);
    Py_XDECREF(wake);
    Py_XDECREF(port);
    Py_XDECREF(post);
    Py_XDECREF(key);
    Py_DECREF(info);
    if (et != NULL || ev != NULL) {
        PyErr_Restore(et, ev, etb);
        return -1;
    }
    return 0;
}
}

/* An immediate success of ``n`` bytes (the Python method's tail): the IOSB alone when there is
 * nothing to signal or post, else ``notify_success``. True or NULL. */
PyObject *
sock_succeeded(PyObject *self, PyObject *ov, PyObject *event, Py_ssize_t n)
{
    PyObject *info = PyLong_FromSsize_t(n);
    if (info == NULL) {
        return NULL;
    }
    int quiet = 0;
    if (event == Py_None) {
        PyObject *v = slot(&k_sb, self, SB_SKIP_SET);
        int r = v == NULL ? 0 : fio_is_true(v);
        if (r < 0) {
            goto fail;
        }
        if (r) {
            v = slot(&k_sov, ov, SO_SKIP_PORT);
            r = v == NULL ? 0 : fio_is_true(v);
            if (r == 0) {
                v = slot(&k_sb, self, SB_SKIP_SUCCESS);
                r = v == NULL ? 0 : fio_is_true(v);
            }
            if (r == 0) {
                v = slot(&k_sb, self, SB_PORT);
                r = v == Py_None;
            }
            if (r < 0) {
                goto fail;
            }
            quiet = r;
        }
    }
    if (quiet) {
        kind_put(&k_sov, ov, SO_INFORMATION, info);
        kind_put(&k_sov, ov, SO_STATUS, Py_NewRef(g_szero));
        Py_RETURN_TRUE;
    }
    if (notify(self, ov, event, info) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
fail:
    Py_DECREF(info);
    return NULL;
}

/* §4.2 step 2: reset E, clear F, Internal = STATUS_PENDING (plain stores). 0 or -1. */
int
sock_reset(PyObject *self, PyObject *ov, PyObject *event)
{
    if (event != Py_None) {
        int efast = kind_fast(&k_sev, Py_TYPE(event));
        if (set(&k_sev, efast, event, 0, Py_NewRef(Py_False)) < 0) {
            return -1;
        }
    }
    kind_put(&k_sa, self, SA_SIGNALED, Py_NewRef(Py_False));
    kind_put(&k_sov, ov, SO_STATUS, Py_NewRef(g_pending));
    return 0;
}

/* ``fn(self, err)``: the Python method's continuation for a failed syscall (``_recv_failed``,
 * ``_send_failed``), which raises its error; ``returned``: the SystemError if it did not. NULL
 * with an exception. */
PyObject *
sock_failed(PyObject *fn, PyObject *self, int err, const char *returned)
{
    PyObject *e = PyLong_FromLong(err);
    if (e != NULL) {
        PyObject *a[2] = {self, e};
        PyObject *x = PyObject_Vectorcall(fn, a, 2, NULL); /* raises */
        Py_XDECREF(x);
        Py_DECREF(e);
        if (x != NULL) {
            PyErr_SetString(PyExc_SystemError, returned);
        }
    }
    return NULL;
}

/* The checks common to both directions, before anything is touched: 1 if the C path applies. */
static int
common_shape(PyObject *self, Py_ssize_t nargs, PyObject *kwnames, PyObject *ov)
{
    if (nargs != 2 || kwnames != NULL || ov == Py_None) {
        return 0;
    }
    PyTypeObject *tp = Py_TYPE(self);
    if (!kind_fast(&k_sa, tp) || !kind_fast(&k_sb, tp) || !kind_fast(&k_sov, Py_TYPE(ov)) ||
        !kind_fast(&k_sc, tp)) {
        return 0;
    }
    /* every slot used is set (``g_set_off``: the three kinds' offsets in one unrolled loop,
     * ~50 instructions against the three loops' ~170; pend, session 13), of the type the
     * Python method expects */
    const char *base = (const char *)self;
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 17
#endif
    for (int i = 0; i < SET_COUNT; i++) {
        if (*(PyObject *const *)(base + g_set_off[i]) == NULL) {
            return 0;
        }
    }
    if (slot(&k_sov, ov, SO_EVENT) == NULL || slot(&k_sov, ov, SO_SKIP_PORT) == NULL) {
        return 0;
    }
    if (Py_TYPE(slot(&k_sa, self, SA_FD_USERS)) != g_fd_users_type) {
        return 0;
    }
#if SOCK_ACCEL
    PyObject *sock = slot(&k_sa, self, SA_SOCK);
    if (Py_TYPE(sock) != g_socket_type || ((sockobject *)sock)->sock_timeout > 0) {
        return 0; /* a socket subclass, None, or a timeout (CPython would wait) */
    }
    return 1;
#else
    return 0;
#endif
}

/* The checks both directions make before anything is touched (one helper for both since
 * csplit's D1): the common shape, one whole byte buffer (``writable`` for a receive), no earlier
 * request pending in that direction (``stream``: SA_STREAM_IN or SA_STREAM_OUT; it goes first,
 * #66), an overlapped socket, and 1..MAX_GIL_COPY bytes (a zero-byte read waits for data, a
 * zero-byte send is the request's to decide; big copies release the GIL). The byte count (>
 * 0), 0 (the Python method) or -1 with an error. */
Py_ssize_t
sock_shape(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int stream,
           int writable)
{
    if (nargs < 2 || !common_shape(self, nargs, kwnames, args[1])) {
        return 0;
    }
    PyObject *buffer = args[0];
    if (!hot_buffer(buffer, writable)) {
        return 0;
    }
    int r;
    if ((r = fio_is_true(slot(&k_sa, self, stream))) != 0) {
        return r < 0 ? -1 : 0;
    }
    if ((r = fio_is_true(slot(&k_sa, self, SA_OVERLAPPED))) <= 0) {
        return r; /* (-1: an error; 0: not overlapped) */
    }
    Py_ssize_t len = buffer_len(buffer);
    if (len == 0 || len > MAX_GIL_COPY) {
        return 0;
    }
    return len;
}

#endif /* SOCK_ACCEL */

static PyMethodDef sock_read_def = {
    "start_read", (PyCFunction)(void (*)(void))sock_start_read, METH_FASTCALL | METH_KEYWORDS,
    "start_read(buffer, overlapped, *, size=None, routine=None)\n--\n\n"
    "ReadFile/WSARecv on a socket (C accelerator of the Python method's immediate path)."};

static PyMethodDef sock_write_def = {
    "start_write", (PyCFunction)(void (*)(void))sock_start_write, METH_FASTCALL | METH_KEYWORDS,
    "start_write(data, overlapped, *, size=None, routine=None)\n--\n\n"
    "WriteFile/WSASend on a socket (C accelerator of the Python method's immediate path)."};

/* ------------------------------------------------------------------ configuration */

#if SOCK_ACCEL
/* The socket object's layout is the one above: its fd and timeout read where fileno() and
 * settimeout() put them. 0 or -1 with an error. */
static int
check_socket_layout(PyObject *probe)
{
    PyTypeObject *base = Py_TYPE(probe);
    while (base->tp_base != NULL && base->tp_base != &PyBaseObject_Type) {
        base = base->tp_base;
    }
    if (strcmp(base->tp_name, "_socket.socket") != 0 ||
        base->tp_basicsize < (Py_ssize_t)sizeof(sockobject)) {
        goto bad;
    }
    int fd = PyObject_AsFileDescriptor(probe);
    if (fd < 0) {
        return -1;
    }
    sockobject *s = (sockobject *)probe;
    if (s->sock_fd != fd) {
        goto bad;
    }
    PyObject *r = PyObject_CallMethod(probe, "settimeout", "d", 2.5);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    int ok = s->sock_timeout > 0;
    r = PyObject_CallMethod(probe, "settimeout", "O", Py_None);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    ok = ok && s->sock_timeout < 0;
    r = PyObject_CallMethod(probe, "settimeout", "d", 0.0);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    if (ok && s->sock_timeout == 0) {
        return 0;
    }
bad:
    PyErr_SetString(PyExc_NotImplementedError, "unknown socket object layout");
    return -1;
}
#endif

PyObject *
configure_sockets(PyObject *module, PyObject *args)
{
    PyTypeObject *sockt, *usert, *eventt, *ovt, *pysockt, *modet;
    PyObject *probe, *claim, *rd, *wr, *closed, *blocked, *rfailed, *rend, *sfailed, *srest,
        *pending, *lock, *wake;
    long ask_run, ask_every;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!OOOOOOOOOOOllOOO!:configure_sockets",
                          &PyType_Type, &sockt, &PyType_Type, &usert, &PyType_Type, &eventt,
                          &PyType_Type, &ovt, &PyType_Type,
                          &pysockt, &probe, &claim, &rd, &wr, &closed, &blocked, &rfailed,
                          &rend, &sfailed, &srest, &pending, &ask_run, &ask_every,
                          &lock, &wake, &PyType_Type, &modet)) {
        return NULL;
    }
#if !SOCK_ACCEL
    PyErr_SetString(PyExc_NotImplementedError, "the sockets' C path needs CPython 3.11/3.12");
    return NULL;
#else
    if (g_py_sock_read != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_sockets is called once");
        return NULL;
    }
    if (!PyType_IsSubtype(usert, &PyList_Type) || Py_TYPE(probe) != pysockt) {
        PyErr_SetString(PyExc_TypeError, "configure_sockets: bad FdUsers or probe socket");
        return NULL;
    }
    if (strcmp(Py_TYPE(claim)->tp_name, "_thread.lock") != 0 ||
        Py_TYPE(claim)->tp_basicsize != (Py_ssize_t)sizeof(sk_lockobject)) {
        PyErr_SetString(PyExc_NotImplementedError, "unknown lock layout");
        return NULL;
    }
    if (check_socket_layout(probe) < 0) {
        return NULL;
    }
    if (kind_init(&k_sa, sockt, SOCK_A_NAMES) < 0 || kind_init(&k_sb, sockt, SOCK_B_NAMES) < 0 ||
        kind_init(&k_sc, sockt, SOCK_C_NAMES) < 0 ||
        kind_init(&k_sev, eventt, SEVENT_NAMES) < 0 || kind_init(&k_sov, ovt, SOV_NAMES) < 0 ||
        kind_init(&k_mode, modet, MODE_NAMES) < 0) {
        return NULL;
    }
    if (k_sa.n + k_sb.n + k_sc.n != SET_COUNT) {
        PyErr_SetString(PyExc_SystemError, "configure_sockets: SET_COUNT");
        return NULL;
    }
    for (int i = 0, j = 0; i < 3; i++) {
        kind_t *k = i == 0 ? &k_sa : i == 1 ? &k_sb : &k_sc;
        for (int m = 0; m < k->n; m++) {
            g_set_off[j++] = k->offsets[m];
        }
    }
    s_shut_rd = PyUnicode_InternFromString("shut_rd");
    s_left = PyUnicode_InternFromString("left");
    s_post_locked = PyUnicode_InternFromString("_post_locked");
    g_sone = PyLong_FromLong(1);
    g_szero = PyLong_FromLong(0);
    if (s_shut_rd == NULL || s_left == NULL || s_post_locked == NULL || g_sone == NULL || g_szero == NULL) {
        return NULL;
    }
    g_fd_users_type = (PyTypeObject *)Py_NewRef(usert);
    g_socket_type = (PyTypeObject *)Py_NewRef(pysockt);
    g_claim_type = (PyTypeObject *)Py_NewRef(Py_TYPE(claim));
    g_closed_error = Py_NewRef(closed);
    g_recv_blocked = Py_NewRef(blocked);
    g_recv_failed = Py_NewRef(rfailed);
    g_recv_end = Py_NewRef(rend);
    g_send_failed = Py_NewRef(sfailed);
    g_send_rest = Py_NewRef(srest);
    g_sock_lock = Py_NewRef(lock);
    g_sock_wake = Py_NewRef(wake);
    g_pending = Py_NewRef(pending);
    g_ask_run = ask_run;
    g_ask_every = ask_every;
    kind_fast(&k_sa, sockt);
    kind_fast(&k_sb, sockt);
    kind_fast(&k_sc, sockt);
    kind_fast(&k_sov, ovt);
    PyObject *rdd = PyDescr_NewMethod(sockt, &sock_read_def);
    PyObject *wrd = PyDescr_NewMethod(sockt, &sock_write_def);
    if (rdd == NULL || wrd == NULL) {
        Py_XDECREF(rdd);
        Py_XDECREF(wrd);
        return NULL;
    }
    g_py_sock_read = Py_NewRef(rd);
    g_py_sock_write = Py_NewRef(wr);
    return Py_BuildValue("(NN)", rdd, wrd);
#endif
}