/* Shared by the C accelerator's sources (``_fastio.c``: the module, the dispatcher lock, slot
 * access, DiskFile's read_now/start_read; ``_fastio_win32.c``: the alias layer's ReadFile and
 * GetQueuedCompletionStatusEx hot shapes). Not a public interface. */
#ifndef WINAIO_FASTIO_H
#define WINAIO_FASTIO_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <errno.h>
#include <sys/uio.h>
#include <stdint.h>

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

/* The largest read made with the GIL held: a page-cache copy of 256 KiB takes tens of
 * microseconds; a bigger one would keep every other thread out for milliseconds (a 64 MiB hit:
 * 12-16 ms measured), so it goes to the Python method, whose syscall releases the GIL. */
#define MAX_GIL_COPY (256 * 1024)

/* ------------------------------------------------------------------ slot access */

#define MAX_NAMES 8
#define MAX_TYPES 6

/* A class whose instances' slots are read directly: the names used, the member descriptors
 * they resolve to on the configured class, and the subclasses checked to resolve them to the
 * same descriptors (strong references, with the version tag they had when checked). */
typedef struct {
    PyTypeObject *base; /* the configured class */
    int n;
    PyObject *names[MAX_NAMES];
    PyObject *descrs[MAX_NAMES];
    Py_ssize_t offsets[MAX_NAMES];
    PyTypeObject *types[MAX_TYPES];
    unsigned int tags[MAX_TYPES];
} kind_t;

/* A kind of ``tp``'s object slots ``names`` (NULL-terminated); with ``any``, names that may be
 * anything on the class (methods, absent: their offset is -1; ``_fastcommon.c``). */
int kind_init_any(kind_t *k, PyTypeObject *tp, const char *const *names, int any);
static inline int
kind_init(kind_t *k, PyTypeObject *tp, const char *const *names)
{
    return kind_init_any(k, tp, names, 0);
}
int kind_fast_check(kind_t *k, PyTypeObject *tp);
/* 1 if instances of ``tp`` may have their slots read directly (``_fastcommon.c``
 * ``kind_fast_check``). The first cache entry is checked inline: the common case is one class
 * per kind, and every hot path checks a dozen kinds per call (trim: ~26 instructions per
 * out-of-line call, ~12 calls per C=64 echo). */
static inline int
kind_fast(kind_t *k, PyTypeObject *tp)
{
    if (k->types[0] == tp && (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) &&
        tp->tp_version_tag == k->tags[0]) {
        return 1;
    }
    return kind_fast_check(k, tp);
}

/* New reference to attribute ``i`` of ``obj`` (direct when ``fast``). */
static inline PyObject *
get(kind_t *k, int fast, PyObject *obj, int i)
{
    if (fast) {
        PyObject *v = *(PyObject **)((char *)obj + k->offsets[i]);
        if (v != NULL) {
            return Py_NewRef(v);
        }
    }
    return PyObject_GetAttr(obj, k->names[i]); /* (an unset slot raises AttributeError) */
}

/* Steals ``value`` into slot ``i`` of ``obj``, its kind checked fast (``kind_fast``). */
static inline void
kind_put(kind_t *k, PyObject *obj, int i, PyObject *value)
{
    PyObject **p = (PyObject **)((char *)obj + k->offsets[i]);
    PyObject *old = *p;
    *p = value;
    Py_XDECREF(old);
}

/* Truth of a borrowed object: 1, 0, or -1 with an error (True, False, None without a call). */
static inline int
fio_is_true(PyObject *v)
{
    return v == Py_True ? 1 : v == Py_False || v == Py_None ? 0 : PyObject_IsTrue(v);
}

/* Steals ``value``. */
static inline int
set(kind_t *k, int fast, PyObject *obj, int i, PyObject *value)
{
    if (fast) {
        kind_put(k, obj, i, value);
        return 0;
    }
    int r = PyObject_SetAttr(obj, k->names[i], value);
    Py_DECREF(value);
    return r;
}

/* Truth value of attribute ``i``: 1, 0, or -1 with an error. */
static inline int
truth(kind_t *k, int fast, PyObject *obj, int i)
{
    PyObject *v = get(k, fast, obj, i);
    if (v == NULL) {
        return -1;
    }
    int r = v == Py_True ? 1 : v == Py_False ? 0 : PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

enum { F_CACHED, F_FD, F_PORT, F_KEY, F_SIGNALED, F_WAITERS, F_SKIP_SET, F_SKIP_SUCCESS };
enum { O_OFFSET, O_EVENT, O_SKIP_PORT, O_INFORMATION, O_STATUS };
enum { P_CLOSED, P_PACKETS, P_GETTERS, P_WAITERS };
enum { E_SIGNALED, E_WAITERS };

extern kind_t k_file, k_ov, k_port;
extern PyTypeObject *g_disk_type;
extern PyObject *g_zero;
extern int g_configured;

/* ------------------------------------------------------------------ io_uring SQEs */

#define FIO_OP_READ 22 /* IORING_OP_READ */
#define FIO_OP_RECV 27 /* IORING_OP_RECV */

/* One SQE's first 40 bytes (``prep._SQE_HEAD``: ``<BBHiqQIIQ``), what the C paths that prepare
 * an SQE write into the mmapped SQE array at ``(_sq_tail & _sq_mask) << 6`` (the last 24 stay
 * zero: ``prep``'s invariant): ``_fastdirect_ring.c``'s READ, ``_fastpend_ring.c``'s RECV. */
typedef struct {
    uint8_t opcode;
    uint8_t flags;
    uint16_t ioprio;
    int32_t fd;
    int64_t off;
    uint64_t addr;
    uint32_t len;
    uint32_t op_flags;
    uint64_t user_data;
} fio_sqe_head_t;
_Static_assert(sizeof(fio_sqe_head_t) == 40, "the SQE head is 40 bytes");

/* ------------------------------------------------------------------ thread states */

/* ``current_thread_state()``: ``tls.ts`` (``_kernel._threads._tls``), else ``cts()`` (the
 * Python function, which adopts the thread); remembered in the thread's own state dict
 * (``PyThreadState_GetDict``, cleared when the thread ends) under one key for every C path:
 * ``_tls.ts`` is set once per thread, before any request of that thread, and never rebound.
 * A new reference, or NULL with an error (``_fastio.c``). */
PyObject *fio_thread_state(PyObject *tls, PyObject *cts);
/* The same, remembered per OS thread while the thread's state dict keeps its version (3.11;
 * ``_fastio.c``): the pended receive's (pend, session 13). */
PyObject *fio_thread_state_seen(PyObject *tls, PyObject *cts);

/* ``read_now`` for one buffer and no routine (``_fastio.c``): a new reference (0, WOULD_BLOCK
 * or None), NULL with an error, or a borrowed Py_NotImplemented (the shape is not handled). */
PyObject *fast_read(PyObject *self, PyObject *buffer, PyObject *ov);
/* ``start_read``'s O_DIRECT hot case (``_fastdirect.c``): Py_False (a new reference: issued),
 * a borrowed Py_NotImplemented (the shape is not handled: nothing touched) or NULL with an
 * error; and its configuration (``configure_direct``). */
PyObject *fio_direct_start_read(PyObject *self, PyObject *buffer, PyObject *ov);
PyObject *fio_configure_direct(PyObject *module, PyObject *args);
/* ``IoUringBackend.submit``'s QD1 O_DIRECT read (``_fastdirect_ring.c``): its configuration
 * (returns the method descriptor) and its switch. */
PyObject *fio_configure_submit(PyObject *module, PyObject *args);
PyObject *fio_submit_set_enabled(PyObject *module, PyObject *flag);
/* The Python ``DiskFile.read_now``. */
PyObject *py_read_now(PyObject *self, PyObject *buffers, PyObject *ov, PyObject *routine);

/* The file's ``cached_reads`` test: 1, 0 or -1. */
static inline int
cached_reads(PyObject *self)
{
    return truth(&k_file, 1, self, F_CACHED);
}

/* Any ``threading.Lock`` (``_fastcommon.c``): 0, or -1 with an error (a signal handler raised
 * while a contended acquire waited); the release keeps a pending error. */
int fio_acquire(PyObject *lock);
void fio_release(PyObject *lock);

/* A non-blocking try on a CPython lock (``PyThread_type_lock``): 1 when taken. With POSIX
 * semaphores (``sys.thread_info.lock == "semaphore"``, probed once by ``configure``) a plain
 * ``sem_trywait``: 3.11's ``PyThread_acquire_lock_timed(lock, 0, 0)`` reads the monotonic
 * clock first to compute a deadline it does not use for a zero timeout (rslot: ~0.1 us of a
 * C=64 echo's server CPU, 3-4 locks per echo). Otherwise that function. */
extern int fio_lock_is_sem;
int fio_try_lock(PyThread_type_lock lk);
/* ``configure``'s part for the locks (``_fastcommon.c``): 1 when ``lock`` (and every lock of
 * its type) is taken directly, 0 if not, -1 with an error. */
int fio_configure_locks(PyObject *lock);

/* The result ``res`` of a call made after a first error may have been fetched into ``*et``,
 * ``*ev``, ``*etb`` (the wake-up calls made last, after every field is written): a result is
 * dropped; an error is kept when it is the first, else cleared - the first error is the one
 * raised once every call was made. */
static inline void
fio_keep_first(PyObject *res, PyObject **et, PyObject **ev, PyObject **etb)
{
    if (res != NULL) {
        Py_DECREF(res);
    }
    else if (*et == NULL && *ev == NULL) {
        PyErr_Fetch(et, ev, etb);
    }
    else {
        PyErr_Clear();
    }
}

/* An interrupt (its traceback ``tb``) cut the Python function ``callee`` (a function or a
 * method of one) at its entry, before its first statement: no frame of its code in the
 * traceback (raised by the call's set-up), or its frame at its first line (the eval-breaker
 * check of its RESUME, where a signal that came while C code ran is raised; the signal
 * handler's or a profile hook's frames may be under it). Its frame at a later line means it
 * ran (review7). */
static inline int
fio_cut_at_entry(PyObject *tb, PyObject *callee)
{
    if (callee != NULL && PyMethod_Check(callee)) {
        callee = PyMethod_GET_FUNCTION(callee);
    }
    if (callee == NULL || !PyFunction_Check(callee)) {
        return 0; /* (not Python code: no eval-breaker check of its own) */
    }
    PyObject *code = PyFunction_GET_CODE(callee);
    for (PyTracebackObject *t = (PyTracebackObject *)tb; t != NULL && PyTraceBack_Check(t);
         t = t->tb_next) {
        PyCodeObject *c = PyFrame_GetCode(t->tb_frame);
        int mine = (PyObject *)c == code;
        int first = mine && PyCode_Addr2Line(c, t->tb_lasti) == c->co_firstlineno;
        Py_DECREF(c);
        if (mine) {
            return first; /* (frames under it at its first line: a hook, the handler) */
        }
    }
    return 1;
}

/* ``func(*args)``, or ``args[0].name(*args[1:])`` when ``func`` is NULL. */
static inline PyObject *
fio_call(PyObject *func, PyObject *name, PyObject *const *args, size_t nargs)
{
    return func != NULL ? PyObject_Vectorcall(func, args, nargs, NULL)
                        : PyObject_VectorcallMethod(name, args, nargs, NULL);
}

/* A Python call made once state is written, whose effect an interrupt must not cut. A
 * signal that arrived while C code ran is raised at the entry of the first Python function
 * called (the first eval-breaker check), before its first statement: nothing was done, so
 * the call is made again (the handler ran: nothing is pending) and the interrupt is kept in
 * ``*et``.. (the first one kept wins) for the caller, who raises it once every effect is
 * made. An interrupt raised inside the callee (it ran) is returned as is, unless ``always``
 * (an idempotent callee: made again anyway). An Exception is returned as is. The result of
 * the call that ran: a new reference, or NULL with an error (review7). */
static inline PyObject *
fio_again_keep(PyObject *func, PyObject *name, PyObject *const *args, size_t nargs, int always,
               PyObject **et, PyObject **ev, PyObject **etb)
{
    PyObject *r = fio_call(func, name, args, nargs);
    if (r != NULL || PyErr_ExceptionMatches(PyExc_Exception)) {
        return r;
    }
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (!always &&
        !fio_cut_at_entry(tb, func != NULL ? func : _PyType_Lookup(Py_TYPE(args[0]), name))) {
        PyErr_Restore(t, v, tb);
        return NULL;
    }
    if (*et == NULL && *ev == NULL) {
        *et = t, *ev = v, *etb = tb;
    }
    else {
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
    }
    return fio_call(func, name, args, nargs);
}

/* ``fio_again_keep`` whose interrupt is raised at once, the call made again: a new
 * reference, or NULL with the first error. */
static inline PyObject *
fio_again_always(PyObject *func, PyObject *name, PyObject *const *args, size_t nargs,
                 int always)
{
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    PyObject *r = fio_again_keep(func, name, args, nargs, always, &et, &ev, &etb);
    if (et == NULL && ev == NULL) {
        return r;
    }
    if (r == NULL) {
        PyErr_Clear(); /* (a second interrupt: the first one is raised) */
    }
    Py_XDECREF(r);
    PyErr_Restore(et, ev, etb);
    return NULL;
}

/* A call made again only when an interrupt cut it at its entry (``fio_again_keep``). */
static inline PyObject *
fio_again(PyObject *func, PyObject *name, PyObject *const *args, size_t nargs)
{
    return fio_again_always(func, name, args, nargs, 0);
}

/* ``wake(obj)`` (the kernel's ``wake_waiters``) for an object just signaled, made again after
 * any interrupt: the walk is idempotent (a satisfied waiter is skipped), the kernel layer's
 * rule (``_objects``): no waiter of a signaled object is left asleep. */
static inline PyObject *
fio_wake(PyObject *wake, PyObject *obj)
{
    return fio_again_always(wake, NULL, &obj, 1, 1);
}

/* ``func(self, *args, **kwnames)`` for a vectorcall method's arguments (``_fastcommon.c``): how a
 * C method hands a shape it does not handle to the Python function it replaces. */
PyObject *fio_delegate(PyObject *func, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames);

/* A configure function's module globals as one table: ``FIO_KEEP({&g_a, a}, {&g_b, b})`` stores
 * a new strong reference to each value in its global (configured objects live as long as the
 * process). */
typedef struct {
    PyObject **global;
    PyObject *value;
} fio_keep_t;

static inline void
fio_keep(const fio_keep_t *keep, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *keep[i].global = Py_NewRef(keep[i].value);
    }
}
#define FIO_KEEP(...)                                                                          \
    fio_keep((const fio_keep_t[]){__VA_ARGS__},                                                \
             sizeof((const fio_keep_t[]){__VA_ARGS__}) / sizeof(fio_keep_t))

/* ``def`` as a function of the alias layer (``__module__`` "winaio.win32", ``_fastio_win32.c``):
 * a new reference, or NULL with an exception set. */
PyObject *fio_win32_function(PyMethodDef *def);

/* ``_fastio_win32.c``'s module functions. */
PyObject *configure_alias(PyObject *module, PyObject *args);
PyObject *configure_gqcs(PyObject *module, PyObject *args);
PyObject *set_enabled(PyObject *module, PyObject *flag);

/* ``_fastring.c``: the io_uring ring's wait chain (BackendRing, Deferral, Reaper methods). */
PyObject *configure_ring(PyObject *module, PyObject *args);
/* ``_fastpend.c``: Receives.pend_receive (the sockets' pended receive; the backend's). */
PyObject *configure_pend(PyObject *module, PyObject *args);
/* ``_fastsock.c``: the sockets' immediate paths (Socket.start_read/start_write). */
PyObject *configure_sockets(PyObject *module, PyObject *args);
/* ``_fastdone.c``: the completion side (``deliver_batch``, ``StreamLines.service_direct``). */
PyObject *configure_done(PyObject *module, PyObject *args);
/* ``_fastwsa.c``: the alias layer's WSARecv / WSASend hot shapes. */
PyObject *configure_wsa(PyObject *module, PyObject *args);
PyObject *wsa_set_enabled(PyObject *module, PyObject *flag);
/* ``_fastslot.c``: the ReceiveSlot and SlotTable types added to the module. */
int fastslot_add_types(PyObject *module);

/* ``_fastevent*.c``: the kernel's Event.set / wait_for_one and the alias layer's SetEvent,
 * ResetEvent, WaitForSingleObject(Ex) hot shapes (``_fastevent.h``). */
PyObject *configure_event(PyObject *module, PyObject *args);
PyObject *configure_event_win32(PyObject *module, PyObject *args);
PyObject *event_set_enabled(PyObject *module, PyObject *flag);
PyObject *event_wake_without_gil(PyObject *module, PyObject *flag);

#endif
