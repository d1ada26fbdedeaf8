/* winaio._io._fastio (part): ``Socket.start_read``'s immediate path in C (a receive: the
 * readiness hint, ``recv`` with MSG_DONTWAIT, the pend when nothing is there). See
 * ``_fastsock.c`` for what the sockets' C paths replace and their invariants; ``_fastsock.h``
 * for what the files share.
 *
 * Invariants (the receive's own): a receive found nothing ``_recv_misses`` times in a row asks
 * the readiness poll (``_recv_ready``) before trying, and past ``ask_run`` misses pends without
 * asking (but for one in ``ask_every + 1``); ``winsock.shut_rd`` (SD_RECEIVE) goes to the
 * Python method (WSAESHUTDOWN); a zero-byte result is ``_recv_end``'s (a graceful close).
 */
#include "_fastsock.h"

PyObject *
sock_start_read(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
#if SOCK_ACCEL
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t len = sock_shape(self, args, nargs, kwnames, SA_STREAM_IN, 1);
    if (len <= 0) {
        if (len < 0) {
            return NULL;
        }
        goto python;
    }
    PyObject *buffer = args[0], *ov = args[1];
    int r;
    PyObject *winsock = slot(&k_sa, self, SA_WINSOCK);
    if (winsock != Py_None) {
        /* (its slot when the class is SocketMode's, as checked; else the attribute) */
        PyObject *shut = kind_fast(&k_mode, Py_TYPE(winsock))
                             ? Py_XNewRef(slot(&k_mode, winsock, 0))
                             : NULL;
        if (shut == NULL && (shut = PyObject_GetAttr(winsock, s_shut_rd)) == NULL) {
            return NULL;
        }
        r = fio_is_true(shut);
        Py_DECREF(shut);
        if (r) {
            if (r < 0) {
                return NULL;
            }
            goto python; /* WSAESHUTDOWN: the request object reports it */
        }
    }
    PyObject *ready0 = slot(&k_sb, self, SB_READY);
    PyObject *misses0 = slot(&k_sb, self, SB_MISSES);
    if (ready0 != Py_None && !PyLong_CheckExact(misses0)) {
        goto python;
    }
    if ((r = fio_is_true(slot(&k_sa, self, SA_CLOSING))) != 0) {
        return r < 0 ? NULL : sock_raise_closed(); /* as ``_files.start``: before any effect */
    }

    /* From here on the effects, in the Python method's order. */
    PyObject *event = Py_NewRef(slot(&k_sov, ov, SO_EVENT));
    PyObject *res = NULL, *users = NULL, *ready = NULL;
    if (sock_reset(self, ov, event) < 0) {
        goto done;
    }
    ready = Py_NewRef(slot(&k_sb, self, SB_READY));
    if (ready != Py_None) {
        /* After a run of receives that found nothing, pend without asking. */
        long misses = PyLong_AsLong(slot(&k_sb, self, SB_MISSES));
        if (misses == -1 && PyErr_Occurred()) {
            goto done;
        }
        if (misses >= g_ask_run && (misses & g_ask_every)) {
            PyObject *m = PyLong_FromLong(misses + 1);
            if (m == NULL) {
                goto done;
            }
            kind_put(&k_sb, self, SB_MISSES, m);
            res = sock_pend(self, ov, buffer);
            goto done;
        }
    }
    /* The descriptor is used from here on: counted in before ``closing`` is read again. */
    users = Py_NewRef(slot(&k_sa, self, SA_FD_USERS));
    if (PyList_Append(users, Py_None) < 0) {
        Py_CLEAR(users); /* (not counted in: no finally) */
        goto done;
    }
    PyObject *sock = NULL;
    if ((r = fio_is_true(slot(&k_sa, self, SA_CLOSING))) != 0) {
        if (r > 0) {
            sock_raise_closed();
        }
        goto counted;
    }
    sock = Py_NewRef(slot(&k_sa, self, SA_SOCK));
    if (ready != Py_None) {
        /* Its last receive found nothing: ask before trying. */
        int waiting;
        PyObject *found = PyObject_CallOneArg(ready, g_szero);
        if (found == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_RuntimeError)) {
                goto counted;
            }
            PyErr_Clear(); /* another thread polls this socket at this moment */
            waiting = 0;
        }
        else {
            waiting = PyObject_Not(found);
            Py_DECREF(found);
            if (waiting < 0) {
                goto counted;
            }
        }
        if (waiting) {
            /* ``self._recv_misses += 1`` (Python code may have run: the generic way) */
            PyObject *m = get(&k_sb, 1, self, SB_MISSES);
            if (m == NULL) {
                goto counted;
            }
            PyObject *m1 = PyNumber_Add(m, g_sone);
            Py_DECREF(m);
            if (m1 == NULL) {
                goto counted;
            }
            kind_put(&k_sb, self, SB_MISSES, m1);
            res = sock_pend(self, ov, buffer);
            goto counted;
        }
        kind_put(&k_sb, self, SB_READY, Py_NewRef(Py_None)); /* data flows: try first again */
        kind_put(&k_sb, self, SB_MISSES, Py_NewRef(g_szero));
    }
    /* sock.recv_into(buffer), with the GIL held (a non-blocking attempt) */
    int err = 0;
    Py_ssize_t n = sock_syscall(sock, buffer, 0, &err);
    if (n == -2) {
        goto counted;
    }
    if (n < 0) {
        if (err == EAGAIN || err == EWOULDBLOCK) {
            PyObject *bv = Py_TYPE(buffer) == &PyMemoryView_Type ? Py_NewRef(buffer)
                                                                   : PyMemoryView_FromObject(buffer);
            if (bv != NULL) {
                PyObject *a[3] = {self, ov, bv};
                res = PyObject_Vectorcall(g_recv_blocked, a, 3, NULL);
                Py_DECREF(bv);
            }
            goto counted;
        }
        sock_failed(g_recv_failed, self, err, "_recv_failed returned");
        goto counted;
    }
    if (n == 0) {
        /* a graceful close, or a reset that stays reset */
        PyObject *x = PyObject_CallOneArg(g_recv_end, self);
        if (x == NULL) {
            goto counted;
        }
        Py_DECREF(x);
    }
    res = sock_succeeded(self, ov, event, n);
counted:
    Py_XDECREF(sock);
    users_out(users);
    res = sock_users_left(self, users, res);
done:
    Py_XDECREF(users);
    Py_XDECREF(ready);
    Py_DECREF(event);
    return res;
python:
#endif
    return fio_delegate(g_py_sock_read, self, args, PyVectorcall_NARGS(nargsf), kwnames);
}
