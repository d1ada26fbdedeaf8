/* Shared by the sockets' immediate paths in C (csend, split by concept by csplit 2026-12-05):
 * ``_fastsock.c`` (the shape checks, the steps both directions share - the reset, an
 * immediate success's notification, the pend, the ``finally`` - and the configuration, which
 * owns every datum below), ``_fastsock_recv.c`` (``Socket.start_read``) and
 * ``_fastsock_send.c`` (``Socket.start_write``). Not a public interface; see ``_fastsock.c``
 * for what they replace and their invariants.
 *
 * Invariant of the split: every kind and datum below is set once by ``configure_sockets``
 * before the methods are installed; the helpers are called only after ``sock_shape``
 * accepted the call (every slot read is set, every class the configured one).
 */
#ifndef WINAIO_FASTSOCK_H
#define WINAIO_FASTSOCK_H

#include "_fastio.h"
#include <sys/socket.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
#define SOCK_ACCEL 1
#else
#define SOCK_ACCEL 0
#endif

#if SOCK_ACCEL
/* CPython 3.11/3.12's _socket.socket object (Modules/socketmodule.h); checked at configure. */
typedef struct {
    PyObject_HEAD
    int sock_fd;
    int sock_family;
    int sock_type;
    int sock_proto;
    PyObject *(*errorhandler)(void);
    _PyTime_t sock_timeout;
} sockobject;

/* CPython 3.11/3.12's _thread.lock (as in _fastio.c); checked at configure. */
typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock_lock;
    PyObject *in_weakreflist;
    char locked;
} sk_lockobject;
#endif

enum { SA_CLOSING, SA_STREAM_IN, SA_STREAM_OUT, SA_OVERLAPPED, SA_WINSOCK, SA_SOCK, SA_SIGNALED,
       SA_FD_USERS };
enum { SB_READY, SB_MISSES, SB_PEND, SB_CLAIM, SB_SKIP_SET, SB_SKIP_SUCCESS, SB_PORT };
enum { SE_SIGNALED, SE_WAITERS };
enum { SC_WAITERS, SC_KEY };
enum { SO_EVENT, SO_SKIP_PORT, SO_INFORMATION, SO_STATUS };

extern kind_t k_sa, k_sb, k_sov;
extern kind_t k_mode; /* _netevents.SocketMode (``shut_rd``) */
extern PyTypeObject *g_claim_type;                 /* _thread.lock */
extern PyObject *g_py_sock_read, *g_py_sock_write; /* Socket.start_read/start_write (Python) */
extern PyObject *g_recv_blocked, *g_recv_failed, *g_recv_end;
extern PyObject *g_send_failed, *g_send_rest;
extern PyObject *g_sone, *g_szero;
extern PyObject *s_shut_rd;
extern long g_ask_run, g_ask_every;

/* The two methods (``_fastsock_recv.c``, ``_fastsock_send.c``). */
PyObject *sock_start_read(PyObject *self, PyObject *const *args, size_t nargsf,
                          PyObject *kwnames);
PyObject *sock_start_write(PyObject *self, PyObject *const *args, size_t nargsf,
                           PyObject *kwnames);

#if SOCK_ACCEL

/* Borrowed slot value, or NULL if unset (the Python method then raises AttributeError). */
static inline PyObject *
slot(kind_t *k, PyObject *obj, int i)
{
    return *(PyObject **)((char *)obj + k->offsets[i]);
}

/* (Slots are written with ``kind_put``, truth tested with ``fio_is_true``: ``_fastio.h``.) */

/* ``users.pop()``: the list shrinks by its last item (never fails). */
static inline void
users_out(PyObject *users)
{
    PyListObject *l = (PyListObject *)users;
    Py_ssize_t n = Py_SIZE(l);
    if (n > 0) {
        PyObject *item = l->ob_item[n - 1];
        Py_SET_SIZE(l, n - 1);
        Py_DECREF(item);
    }
}

/* The syscall of both directions, made with the GIL held: a non-blocking attempt
 * (``recv_into(buffer)``, or ``send(data, MSG_NOSIGNAL)`` when ``sending``), retried on EINTR
 * once the signal handlers ran (the descriptor read again: a handler may have closed the
 * socket). The byte count, -1 with ``*err`` (errno), or -2 with an exception (the buffer
 * refused, or a signal handler raised). Inline: the hot path of both. */
static inline Py_ssize_t
sock_syscall(PyObject *sock, PyObject *buffer, int sending, int *err)
{
    Py_buffer view;
    if (PyObject_GetBuffer(buffer, &view, sending ? PyBUF_SIMPLE : PyBUF_WRITABLE) < 0) {
        return -2;
    }
    ssize_t n;
    for (;;) {
        int fd = ((sockobject *)sock)->sock_fd;
        n = sending ? send(fd, view.buf, (size_t)view.len, MSG_NOSIGNAL | MSG_DONTWAIT)
                    : recv(fd, view.buf, (size_t)view.len, MSG_DONTWAIT);
        if (n >= 0) {
            break;
        }
        *err = errno;
        if (*err != EINTR) {
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            n = -2;
            break;
        }
    }
    PyBuffer_Release(&view);
    return n;
}

/* ``_fastsock.c``'s shared steps. */
PyObject *sock_users_left(PyObject *self, PyObject *users, PyObject *res);
PyObject *sock_raise_closed(void);
PyObject *sock_pend(PyObject *self, PyObject *ov, PyObject *buffer);
/* ``_fastpend.c``: ``fn(file, ov, buffer)`` without a memoryview of the bytearray ``buffer``
 * when ``fn`` is the C ``pend_receive`` bound to a backend; NULL without an error otherwise. */
PyObject *fio_pend_bytearray(PyObject *fn, PyObject *file, PyObject *ov, PyObject *buffer);
PyObject *sock_succeeded(PyObject *self, PyObject *ov, PyObject *event, Py_ssize_t n);
int sock_reset(PyObject *self, PyObject *ov, PyObject *event);
/* ``fn(self, err)``, a continuation that raises (``_recv_failed``, ``_send_failed``): NULL. */
PyObject *sock_failed(PyObject *fn, PyObject *self, int err, const char *returned);
/* The checks both directions make before anything is touched: the byte count (> 0), 0 (the
 * Python method) or -1 with an error. ``stream``: SA_STREAM_IN or SA_STREAM_OUT. */
Py_ssize_t sock_shape(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                      int stream, int writable);

#endif /* SOCK_ACCEL */

#endif
