/* winaio._io._fastio, the alias layer's WSARecv / WSASend hot shapes (c1, 2026-12-05).
 *
 * A Win32-style echo server's C=1 round trip runs WSARecv (which pends), the GQCSEx that brings
 * its completion and the WSASend of what came: with GQCSEx in C (``_fastio_win32.c``), the two
 * Python wrappers were ~155 of the ~270 interpreter opcodes left per echo and the gap to the
 * core's echo (callgrind, one thread: 43.5K against 28.3K instructions per echo).
 *
 * Same rules as ``_fastio_win32.c``: the Python functions
 * (``win32._winsock_overlapped.WSARecv`` / ``WSASend``) are the reference. Their hot shape (a
 * win32 OVERLAPPED without hEvent, one buffer in a list, no flags, no completion routine, a
 * plain overlapped Socket handle) is done here statement for statement: the core's
 * ``Socket.start_read`` / ``start_write`` called as the Python function calls it, the thread's
 * last error and the out-parameters written as it writes them; a Win32Error from the core call
 * goes to the Python ``_wsa_fail``. Every other call goes to the Python function before
 * anything is touched. The only Python calls are the core method (which makes the I/O) and
 * ``_wsa_fail`` (last). */
#include "_fastio.h"
#include "_fastwin32.h"

static kind_t k_xov, k_xref, k_xts, k_xsock;
static PyTypeObject *g_xov_type, *g_xref_type, *g_xsock_type;
static PyObject *g_x_recv, *g_x_send, *g_x_entry, *g_x_tls, *g_x_fail, *g_x_error, *g_x_cts;
static PyObject *s_x_ts, *s_x_start_read, *s_x_start_write, *s_x_value;
static PyObject *g_x_pending, *g_x_socket_error, *g_x_last;
static int g_x_enabled = 1;

static const char *const XOV_NAMES[] = {"hEvent", "event", "skip_port", "information", NULL};
enum { X_HEVENT, X_EVENT, X_SKIP_PORT, X_INFORMATION };
static const char *const XREF_NAMES[] = {"value", NULL};
static const char *const XTS_NAMES[] = {"last_error", NULL};
static const char *const XSOCK_NAMES[] = {"overlapped", NULL};

/* The plain overlapped Socket behind handle ``s`` (a new reference), NULL with no error when the
 * call is not the hot shape (the Python function decides), NULL with an error otherwise. */
static PyObject *
hot_socket(PyObject *s)
{
    PyObject *sock;
    if (fio_handle_object(g_x_entry, s, g_xsock_type, &sock) <= 0) {
        return NULL; /* (an error set only if not the shape's: as in Python) */
    }
    int r = kind_fast(&k_xsock, g_xsock_type) ? truth(&k_xsock, 1, sock, 0) : 0;
    if (r <= 0) {
        if (r < 0) {
            PyErr_Clear(); /* the Python function reads it again and reports it */
        }
        Py_CLEAR(sock); /* not overlapped (or another shape): the general path */
    }
    return sock;
}

/* The OVERLAPPED and the common arguments of the hot shape: 1 (hot), 0 (the Python function). */
static int
hot_args(PyObject *buffers, PyObject *count, PyObject *ov, PyObject *routine)
{
    if (Py_TYPE(ov) != g_xov_type || !kind_fast(&k_xov, g_xov_type) || routine != Py_None ||
        !PyLong_CheckExact(count) || !PyList_CheckExact(buffers) || PyList_GET_SIZE(buffers) != 1) {
        return 0;
    }
    int overflow;
    if (PyLong_AsLongAndOverflow(count, &overflow) != 1 || overflow) {
        return 0;
    }
    PyObject *h = *(PyObject **)((char *)ov + k_xov.offsets[X_HEVENT]);
    if (h == NULL) {
        return 0; /* (unset: the Python function raises it) */
    }
    int r = h == Py_None ? 0 : PyObject_IsTrue(h);
    if (r != 0) {
        if (r < 0) {
            PyErr_Clear(); /* the Python function evaluates it again and raises */
        }
        return 0;
    }
    return 1;
}

/* ``ts.last_error = code`` for the calling thread (``current_thread_state()``): 0 or -1. */
static int
set_last(PyObject *code)
{
    PyObject *ts = PyObject_GetAttr(g_x_tls, s_x_ts);
    if (ts == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear(); /* a thread's first call: current_thread_state adopts it */
        ts = PyObject_CallNoArgs(g_x_cts);
        if (ts == NULL) {
            return -1;
        }
    }
    int r = set(&k_xts, kind_fast(&k_xts, Py_TYPE(ts)), ts, 0, Py_NewRef(code));
    Py_DECREF(ts);
    return r;
}

/* ``lpCount.value = value`` (a new reference to ``value`` stolen): 0 or -1. */
static int
set_value(PyObject *ref, PyObject *value)
{
    if (Py_TYPE(ref) == g_xref_type && kind_fast(&k_xref, g_xref_type)) {
        return set(&k_xref, 1, ref, 0, value);
    }
    int r = PyObject_SetAttr(ref, s_x_value, value);
    Py_DECREF(value);
    return r;
}

/* The hot shape once checked: ``done = sock.start_xxx(lpBuffers[0], lpOverlapped)`` and what
 * the Python function does with its result. ``flags``: WSARecv's lpFlags (set to 0), or NULL. */
static PyObject *
wsa_io(PyObject *sock, PyObject *method, PyObject *buffers, PyObject *nbytes, PyObject *flags,
       PyObject *ov)
{
    /* lpOverlapped.event = None; lpOverlapped.skip_port = False */
    set(&k_xov, 1, ov, X_EVENT, Py_NewRef(Py_None));
    set(&k_xov, 1, ov, X_SKIP_PORT, Py_NewRef(Py_False));
    PyObject *call[3] = {sock, PyList_GET_ITEM(buffers, 0), ov};
    Py_INCREF(call[1]); /* (the list may change under the call) */
    PyObject *done = PyObject_VectorcallMethod(method, call, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                               NULL);
    Py_DECREF(call[1]);
    if (done == NULL) {
        return PyErr_ExceptionMatches(g_x_error) ? fio_call_fail(g_x_fail, NULL) : NULL;
    }
    int ok = PyObject_IsTrue(done);
    Py_DECREF(done);
    if (ok < 0) {
        return NULL;
    }
    if (!ok) {
        return set_last(g_x_pending) < 0 ? NULL : Py_NewRef(g_x_socket_error);
    }
    if (nbytes != Py_None) {
        PyObject *info = get(&k_xov, 1, ov, X_INFORMATION);
        if (info == NULL || set_value(nbytes, info) < 0) {
            return NULL;
        }
    }
    if (flags != NULL && set_value(flags, Py_NewRef(g_zero)) < 0) {
        return NULL;
    }
    return set_last(g_zero) < 0 ? NULL : Py_NewRef(g_zero);
}

/* WSARecv(s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpOverlapped,
 *         lpCompletionRoutine) */
static PyObject *
wsa_recv(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    /* (keywords, and a byte count that is no Ref: the Python function, which names them or
     * refuses them before any I/O - review8) */
    if (kwnames != NULL || nargs != 7 || !g_x_enabled ||
        !hot_args(args[1], args[2], args[5], args[6]) ||
        (args[3] != Py_None && Py_TYPE(args[3]) != g_xref_type)) {
        goto python;
    }
    PyObject *flags = args[4];
    if (Py_TYPE(flags) != g_xref_type || !kind_fast(&k_xref, g_xref_type)) {
        goto python; /* (None: WSAEFAULT from the Python function) */
    }
    PyObject *fv = *(PyObject **)((char *)flags + k_xref.offsets[0]);
    if (fv == NULL || !PyLong_CheckExact(fv) || _PyLong_Sign(fv) != 0) {
        goto python; /* flags asked for: the general path */
    }
    PyObject *sock = hot_socket(args[0]);
    if (sock == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        goto python;
    }
    PyObject *r = wsa_io(sock, s_x_start_read, args[1], args[3], flags, args[5]);
    Py_DECREF(sock);
    return r;
python:
    return PyObject_Vectorcall(g_x_recv, args, (size_t)nargs, kwnames);
}

/* WSASend(s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpOverlapped,
 *         lpCompletionRoutine) */
static PyObject *
wsa_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (kwnames != NULL || nargs != 7 || !g_x_enabled ||
        !hot_args(args[1], args[2], args[5], args[6]) || !PyLong_CheckExact(args[4]) ||
        _PyLong_Sign(args[4]) != 0 || (args[3] != Py_None && Py_TYPE(args[3]) != g_xref_type)) {
        goto python;
    }
    PyObject *sock = hot_socket(args[0]);
    if (sock == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        goto python;
    }
    PyObject *r = wsa_io(sock, s_x_start_write, args[1], args[3], NULL, args[5]);
    Py_DECREF(sock);
    return r;
python:
    return PyObject_Vectorcall(g_x_send, args, (size_t)nargs, kwnames);
}

/* WSAGetLastError(): ``current_thread_state().last_error`` */
static PyObject *
wsa_last_error(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 0 || !g_x_enabled) {
        return PyObject_Vectorcall(g_x_last, args, (size_t)nargs, NULL);
    }
    PyObject *ts = PyObject_GetAttr(g_x_tls, s_x_ts);
    if (ts == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return NULL;
        }
        PyErr_Clear(); /* a thread's first call: the Python function adopts it */
        return PyObject_Vectorcall(g_x_last, args, (size_t)nargs, NULL);
    }
    PyObject *r = get(&k_xts, kind_fast(&k_xts, Py_TYPE(ts)), ts, 0);
    Py_DECREF(ts);
    return r;
}

static PyMethodDef wsa_last_error_def = {
    "WSAGetLastError", (PyCFunction)(void (*)(void))wsa_last_error, METH_FASTCALL,
    "WSAGetLastError()\n--\n\n"
    "[MS:WSAGetLastError]: the thread's last error (the same value as GetLastError; the C\n"
    "accelerator of the Python function)."};

static PyMethodDef wsa_recv_def = {
    "WSARecv", (PyCFunction)(void (*)(void))wsa_recv, METH_FASTCALL | METH_KEYWORDS,
    "WSARecv(s, lpBuffers, dwBufferCount, lpNumberOfBytesRecvd, lpFlags, lpOverlapped,\n"
    "    lpCompletionRoutine)\n--\n\n"
    "[MS:WSARecv] -> core ``Socket.recv_op`` (the C accelerator of the Python function's hot\n"
    "shape, ``Socket.start_read``; every other call runs the Python function)."};
static PyMethodDef wsa_send_def = {
    "WSASend", (PyCFunction)(void (*)(void))wsa_send, METH_FASTCALL | METH_KEYWORDS,
    "WSASend(s, lpBuffers, dwBufferCount, lpNumberOfBytesSent, dwFlags, lpOverlapped,\n"
    "    lpCompletionRoutine)\n--\n\n"
    "[MS:WSASend] -> core ``Socket.send_op`` (the C accelerator of the Python function's hot\n"
    "shape, ``Socket.start_write``; every other call runs the Python function)."};

/* configure_wsa(WSARecv, WSASend, WSAGetLastError, Socket, OVERLAPPED, Ref, ThreadState,
 *               handle_entry, tls, current_thread_state, _wsa_fail, Win32Error, WSA_IO_PENDING,
 *               SOCKET_ERROR) -> (C WSARecv, C WSASend, C WSAGetLastError) */
PyObject *
configure_wsa(PyObject *module, PyObject *args)
{
    PyObject *recv, *send, *last, *entry, *tls, *cts, *fail, *err, *pending, *serr;
    PyTypeObject *sockt, *ovt, *reft, *tst;
    if (!PyArg_ParseTuple(args, "OOOO!O!O!O!OOOOOO!O!:configure_wsa", &recv, &send, &last,
                          &PyType_Type,
                          &sockt, &PyType_Type, &ovt, &PyType_Type, &reft, &PyType_Type, &tst,
                          &entry, &tls, &cts, &fail, &err, &PyLong_Type, &pending, &PyLong_Type,
                          &serr)) {
        return NULL;
    }
    if (!g_configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    if (g_x_recv != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_wsa() is called once");
        return NULL;
    }
    if (kind_init(&k_xov, ovt, XOV_NAMES) < 0 || kind_init(&k_xref, reft, XREF_NAMES) < 0 ||
        kind_init(&k_xts, tst, XTS_NAMES) < 0 || kind_init(&k_xsock, sockt, XSOCK_NAMES) < 0) {
        return NULL;
    }
    s_x_ts = PyUnicode_InternFromString("ts");
    s_x_start_read = PyUnicode_InternFromString("start_read");
    s_x_start_write = PyUnicode_InternFromString("start_write");
    s_x_value = PyUnicode_InternFromString("value");
    if (s_x_ts == NULL || s_x_start_read == NULL || s_x_start_write == NULL || s_x_value == NULL) {
        return NULL;
    }
    g_xov_type = (PyTypeObject *)Py_NewRef(ovt);
    g_xref_type = (PyTypeObject *)Py_NewRef(reft);
    g_xsock_type = (PyTypeObject *)Py_NewRef(sockt);
    FIO_KEEP({&g_x_recv, recv}, {&g_x_send, send}, {&g_x_last, last}, {&g_x_entry, entry},
             {&g_x_tls, tls}, {&g_x_cts, cts}, {&g_x_fail, fail}, {&g_x_error, err},
             {&g_x_pending, pending}, {&g_x_socket_error, serr});
    PyObject *r = fio_win32_function(&wsa_recv_def);
    PyObject *s = r == NULL ? NULL : fio_win32_function(&wsa_send_def);
    PyObject *e = s == NULL ? NULL : fio_win32_function(&wsa_last_error_def);
    if (r == NULL || s == NULL || e == NULL) {
        Py_XDECREF(r);
        Py_XDECREF(s);
        Py_XDECREF(e);
        return NULL;
    }
    return Py_BuildValue("(NNN)", r, s, e);
}

/* wsa_set_enabled(flag): the C WSARecv/WSASend run their hot shape (else the Python ones). */
PyObject *
wsa_set_enabled(PyObject *module, PyObject *flag)
{
    int r = PyObject_IsTrue(flag);
    if (r < 0) {
        return NULL;
    }
    g_x_enabled = r;
    Py_RETURN_NONE;
}
