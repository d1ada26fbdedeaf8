/* Shared by the sockets' pended receive in C (cpend, split by csplit 2026-12-05 and tools
 * 2026-12-06): ``_fastpend.c`` (``Receives.pend_receive``: the shape checks, the request
 * built, the backend's lock held, the calls that follow; the configuration and every datum
 * below), ``_fastpend_register.c`` (the issuer's part under LOCK: the request registered, the
 * slot's arm step 1, the thread's state) and ``_fastpend_ring.c`` (the backend's part: its
 * attributes, remembered by its dict's version, and ``pend_locked``: ``_pend_locked``'s state
 * writes under the backend's lock, the in-flight table, the line, the SQE). Not a public
 * interface; see ``_fastpend.c`` for what they replace and their invariants.
 *
 * Invariant of the split: the kinds below are initialised once by ``configure_pend`` before
 * any ``pend_receive`` runs; ``pend_locked`` is called only by ``pend_receive``, under the
 * backend's lock, after every kind it reads was checked (``kfast``).
 */
#ifndef WINAIO_FASTPEND_H
#define WINAIO_FASTPEND_H

#include "_fastio.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
#define PEND_FAST 1
#else
#define PEND_FAST 0
#endif

/* ``kind_fast`` (its first cache entry checked inline, ``_fastio.h``). */
static inline int
kfast(kind_t *k, PyTypeObject *tp)
{
    return kind_fast(k, tp);
}

/* An exact int's value as 64 unsigned bits, -1 with an error when out of range (an in-flight
 * table's user_data): ``PyLong_AsUnsignedLong`` where a long has 64 bits (LP64): CPython 3.11's
 * ``PyLong_AsUnsignedLongLong`` takes ``_PyLong_AsByteArray``'s slow path (~200 instructions
 * against ~20; session 13). */
static inline uint64_t
pend_as_u64(PyObject *o)
{
#if ULONG_MAX == UINT64_MAX
    return (uint64_t)PyLong_AsUnsignedLong(o);
#else
    return (uint64_t)PyLong_AsUnsignedLongLong(o);
#endif
}

/* An int's value (``o`` an int: ``PyLong_Check``), read from its one digit when it has one
 * (3.11's layout: the SQ ring's tail, limit and mask, a socket's fd, the ioprio), else
 * ``PyLong_AsLongLong`` (-1 with an error when out of range). ~5 instructions against ~18
 * for each of a slot's arm's five (pend, session 13). */
static inline long long
pend_as_ll(PyObject *o)
{
#if PY_VERSION_HEX < 0x030C0000
    Py_ssize_t size = Py_SIZE(o);
    if (size == 0 || size == 1) {
        return size ? (long long)((PyLongObject *)o)->ob_digit[0] : 0;
    }
#endif
    return PyLong_AsLongLong(o);
}

/* Borrowed slot ``i`` of ``obj`` (a kind checked fast), NULL when unset. */
#define SLOT(k, obj, i) (*(PyObject **)((char *)(obj) + (k).offsets[i]))

/* (Slots are written with ``kind_put``, truth tested with ``fio_is_true``: ``_fastio.h``.) */

/* ------------------------------------------------------------------ the classes read */

enum { PF_CLOSING, PF_PENDING, PF_STREAM_IN, PF_PORT, PF_FD };
enum { PO_EVENT, PO_SKIP_PORT };
enum { Q_FILE, Q_OV, Q_EVENT, Q_SKIP_PORT, Q_ROUTINE, Q_ISSUER, Q_DONE, Q_CANCEL };
enum { Q_TOKEN, Q_SYNC_DONE, Q_BUFFERS, Q_NBYTES, Q_FLAGS, Q_REGISTERED, Q_SUBMITTED };
enum { T_EXTENSIONS, T_PARKER };
enum { S_LINES, S_SPARE };
enum { L_FD, L_KEY, L_OPS, L_POLL_UD, L_DIRECT, L_KEEP, L_BUSY };
enum { R_TAIL, R_LIMIT, R_MASK, R_SQES };
enum { B_LOCK, B_CLOSING, B_BACKLOG, B_STREAMS, B_TABLE, B_RING, B_IOPRIO, B_SUBMITTED };
enum { B_UNSUBMITTED = 8, B_LEAD, B_DEFERRAL, B_EFD, B_SLOTS, B_PEND_LOCKED };
#define B_COUNT 13 /* instance attributes read from the dict */

/* (``_fastpend.c``'s; ``configure_pend`` initialises them) */
extern kind_t pk_rslot; /* the file class's ``_rslot`` (offset -1 without it) */
extern kind_t pk_file, pk_ov, pk_op1, pk_op2, pk_ts, pk_rp, pk_lead, pk_def, pk_backlog, pk_sl,
    pk_slm, pk_line, pk_linem, pk_table, pk_ring, pk_ringm, pk_be1, pk_be2;
extern PyTypeObject *g_line_type;
extern PyObject *g_deque;         /* collections.deque */
extern PyObject *g_deque_append;  /* its ``append`` method descriptor */
extern PyObject *g_one, *g_zero_int;
extern PyObject *s_append, *s_pop, *s_sq_reserve;
extern PyObject *be_names[B_COUNT + 1];
extern PyObject *g_LOCK;   /* the dispatcher LOCK */
extern PyObject *g_tls;    /* _kernel._threads._tls (``current_thread_state``) */
extern PyObject *g_cts;    /* current_thread_state */
extern PyObject *g_io_key; /* _files._IO_KEY */

#if PEND_FAST

/* A dict's version (PEP 509; ``_fastpend_ring.c`` remembers the backend's attributes with it). */
#if PY_VERSION_HEX < 0x030C0000
#define DICT_VERSION(d) (((PyDictObject *)(d))->ma_version_tag)
#else
#define DICT_VERSION(d) ((uint64_t)0) /* (3.12: deprecated; never remembered) */
#endif

/* The attributes ``be_names`` of the receive side's dict ``d`` (borrowed): 1, 0 (one is missing,
 * or ``_pend_locked`` is patched on the instance: the Python function) or -1. */
int backend_attributes(PyObject *d, PyObject **b);

/* What ``_pend_locked`` decides, under the backend's lock. */
enum { PEND_ERROR = -1, PEND_DONE = 0, PEND_REST = 1 };

/* ``_pend_locked`` minus its Python calls (the caller makes them): returns PEND_DONE (the
 * request is its line's head and a RECV; ``*owner_is_issuer`` says which call follows),
 * PEND_REST (nothing touched: the Python continuation) or PEND_ERROR. */
int pend_locked(PyObject *d, PyObject **b, PyObject *submitted_o, uint64_t seen, PyObject *op,
                PyObject *ts, PyObject *file, PyObject *key, PyObject *view,
                int *owner_is_issuer);

/* Arm step 2 of a C receive slot under the backend's lock (``_fastpend_ring.c``): PEND_DONE,
 * PEND_REST (the Python continuation) or PEND_ERROR. */
int pend_slot_locked(PyObject **b, PyObject *slot, PyObject *ts, PyObject *file,
                     int *owner_is_issuer);

/* ``_fastpend_register.c``: the calling thread's ThreadState (a new reference) or NULL with an
 * error; ``register_receive``'s registration under LOCK: 0, 1 (the file is being closed:
 * nothing registered) or -1; the receive slot's arm step 1: 1 (``*out``: the slot, a
 * ``ReceiveSlotObject``, a new reference), 0 (the request path), 2 (the Python method) or -1
 * (nothing touched in each but 1); ``rslot``: whether the file's class has the slot member
 * (checked by the caller), -1: check it. */
PyObject *thread_state(void);
int register_locked(PyObject *file, PyObject *op, PyObject *ts, PyObject *event, PyObject *skip);

#endif /* PEND_FAST */

#include "_fastslot.h"

#if PEND_FAST
int arm_step1(PyObject *file, PyObject *ov, PyObject *view, PyObject *ts, PyObject *slots,
              int rslot, ReceiveSlotObject **out);
#endif

#endif
