/* winaio._io._fastio (part): ``Socket.start_write``'s immediate path in C (a send: the send
 * claim, ``send`` with MSG_NOSIGNAL | MSG_DONTWAIT, the rest registered when the socket buffer
 * is full). See ``_fastsock.c`` for what the sockets' C paths replace and their invariants;
 * ``_fastsock.h`` for what the files share.
 *
 * Invariants (the send's own): the send claim (a plain ``_thread.lock``) is taken without
 * waiting (taken: the Python method waits for it) and held until a partial send's remainder is
 * registered (``_send_rest``), so sends on one socket keep their order (#66).
 */
#include "_fastsock.h"

PyObject *
sock_start_write(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
#if SOCK_ACCEL
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nbytes = sock_shape(self, args, nargs, kwnames, SA_STREAM_OUT, 0);
    if (nbytes <= 0) {
        if (nbytes < 0) {
            return NULL;
        }
        goto python;
    }
    PyObject *data = args[0], *ov = args[1];
    int r;
    /* Another thread is issuing a send: wait for it in the general path. Held until a partial
     * send's remainder is registered. */
    PyObject *claim = slot(&k_sb, self, SB_CLAIM);
    if (Py_TYPE(claim) != g_claim_type) {
        goto python; /* None (a pipe), or another lock type */
    }
    sk_lockobject *lk = (sk_lockobject *)claim;
    if (!fio_try_lock(lk->lock_lock)) {
        goto python;
    }
    lk->locked = 1;
    Py_INCREF(claim);

    PyObject *res = NULL, *event = NULL, *sock = NULL;
    PyObject *users = Py_NewRef(slot(&k_sa, self, SA_FD_USERS));
    if (PyList_Append(users, Py_None) < 0) {
        lk->locked = 0;
        PyThread_release_lock(lk->lock_lock);
        Py_DECREF(claim);
        Py_DECREF(users);
        return NULL;
    }
    if ((r = fio_is_true(slot(&k_sa, self, SA_CLOSING))) != 0) {
        if (r > 0) {
            sock_raise_closed(); /* closed since the test above: as ``_files.start`` */
        }
        goto counted;
    }
    /* (The Python method checks ``stream_out`` again here: a general-path send may have
     * registered while it took the claim. Here the GIL was held since the test above.) */
    sock = Py_NewRef(slot(&k_sa, self, SA_SOCK));
    event = Py_NewRef(slot(&k_sov, ov, SO_EVENT));
    if (sock_reset(self, ov, event) < 0) {
        goto counted;
    }
    /* sock.send(data, MSG_NOSIGNAL), with the GIL held (a non-blocking attempt) */
    int err = 0;
    Py_ssize_t n = sock_syscall(sock, data, 1, &err);
    if (n == -2) {
        goto counted;
    }
    if (n < 0) {
        if (err == EAGAIN || err == EWOULDBLOCK) {
            n = 0;
        }
        else {
            sock_failed(g_send_failed, self, err, "_send_failed returned");
            goto counted;
        }
    }
    if (n < nbytes) {
        /* the socket buffer is full: the rest waits for room, registered under the claim */
        PyObject *sent = PyLong_FromSsize_t(n);
        PyObject *total = PyLong_FromSsize_t(nbytes);
        if (sent != NULL && total != NULL) {
            PyObject *a[5] = {self, ov, data, sent, total};
            res = PyObject_Vectorcall(g_send_rest, a, 5, NULL);
        }
        Py_XDECREF(sent);
        Py_XDECREF(total);
        goto counted;
    }
    res = sock_succeeded(self, ov, event, n);
counted:
    users_out(users);
    lk->locked = 0;
    PyThread_release_lock(lk->lock_lock);
    Py_DECREF(claim);
    res = sock_users_left(self, users, res);
    Py_DECREF(users);
    Py_XDECREF(sock);
    Py_XDECREF(event);
    return res;
python:
#endif
    return fio_delegate(g_py_sock_write, self, args, PyVectorcall_NARGS(nargsf), kwnames);
}
