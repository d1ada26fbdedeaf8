/* winaio._io._fastio (part): what every C part of the accelerator shares (split out of
 * ``_fastio.c`` by csplit, 2026-12-05; declared in ``_fastio.h``).
 *
 * - Any ``threading.Lock`` from C (``fio_try_lock``, ``fio_acquire``, ``fio_release``): a
 *   non-blocking try on the lock itself when its layout is CPython 3.11/3.12's
 *   ``_thread.lock`` (checked once by ``fio_configure_locks``, called by ``_fastio.c``'s
 *   ``configure``), else the lock's own methods, which wait with the GIL released and run the
 *   signal handlers.
 * - Slot access by kind (``kind_init``, ``kind_fast``): a class's slots read at their member
 *   descriptors' offsets only for types whose attribute lookup was checked to give those very
 *   descriptors (exact-type cache keyed by version tags; a modified type is checked again).
 * - ``fio_delegate``: how a C method hands a shape it does not handle to the Python function
 *   it replaces (the reference and the fallback), with the caller's arguments unchanged.
 *
 * Invariant: nothing here holds state of a path; the lock layout and the semaphore probe are
 * set once, before any C method is installed.
 */
#include "_fastio.h"

#include <semaphore.h>

/* ------------------------------------------------------------------ locks */

int fio_lock_is_sem; /* (``_fastio.h``) set by ``fio_configure_locks`` */

int
fio_try_lock(PyThread_type_lock lk)
{
    if (fio_lock_is_sem) {
        /* (thread_pthread.h with USE_SEMAPHORES: the lock is a ``sem_t *``; a zero timeout is
         * exactly one ``sem_trywait``, which never fails with EINTR) */
        return sem_trywait((sem_t *)lk) == 0;
    }
    return PyThread_acquire_lock_timed(lk, 0, 0) == PY_LOCK_ACQUIRED;
}

/* CPython 3.11/3.12's _thread.lock object (Modules/_threadmodule.c). Used only after
 * ``fio_configure_locks`` checked the type name and size; otherwise the lock's own methods are
 * called. */
typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock_lock;
    PyObject *in_weakreflist;
    char locked;
} lockobject;

static PyTypeObject *g_lock_type;     /* _thread.lock, when its layout is the one above */
static PyObject *s_acquire, *s_release;

/* Any ``threading.Lock`` (``_fastio.h``): a non-blocking try on the lock itself when the
 * layout is known; contended (or another layout), the lock's ``acquire`` method, which waits
 * with the GIL released and handles signals (-1 with the error when a handler raised). */
int
fio_acquire(PyObject *lock)
{
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
    if (Py_IS_TYPE(lock, g_lock_type)) {
        lockobject *l = (lockobject *)lock;
        if (fio_try_lock(l->lock_lock)) {
            l->locked = 1;
            return 0;
        }
    }
#endif
    PyObject *r = PyObject_CallMethodNoArgs(lock, s_acquire);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* Release a lock taken by :c:func:`fio_acquire`; a pending error is kept across the call. */
void
fio_release(PyObject *lock)
{
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030D0000
    if (Py_IS_TYPE(lock, g_lock_type)) {
        lockobject *l = (lockobject *)lock;
        l->locked = 0;
        PyThread_release_lock(l->lock_lock);
        return;
    }
#endif
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyObject *r = PyObject_CallMethodNoArgs(lock, s_release);
    if (r == NULL) {
        PyErr_WriteUnraisable(lock);
    }
    else {
        Py_DECREF(r);
    }
    PyErr_Restore(exc_type, exc_value, exc_tb);
}

/* ``sys.thread_info``: pthread locks made of POSIX semaphores (``fio_try_lock``). */
static int
probe_sem_locks(void)
{
    PyObject *info = PySys_GetObject("thread_info"); /* borrowed */
    if (info == NULL) {
        return 0;
    }
    PyObject *name = PyObject_GetAttrString(info, "name");
    PyObject *kind = name == NULL ? NULL : PyObject_GetAttrString(info, "lock");
    if (kind == NULL) {
        Py_XDECREF(name);
        PyErr_Clear();
        return 0;
    }
    int a = PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "pthread") == 0;
    int b = PyUnicode_Check(kind) && PyUnicode_CompareWithASCIIString(kind, "semaphore") == 0;
    Py_DECREF(name);
    Py_DECREF(kind);
    fio_lock_is_sem = a && b;
    return 0;
}

/* ``configure``'s part for the locks: the layout of ``lock``'s type (``_thread.lock``, taken
 * directly by ``fio_acquire`` when it is CPython 3.11/3.12's), the semaphore probe, the
 * method names of the general path. 1 when the lock is taken directly, 0 if not, -1. */
int
fio_configure_locks(PyObject *lock)
{
    s_acquire = PyUnicode_InternFromString("acquire");
    s_release = PyUnicode_InternFromString("release");
    if (s_acquire == NULL || s_release == NULL) {
        return -1;
    }
    if (probe_sem_locks() < 0) {
        return -1;
    }
    if (strcmp(Py_TYPE(lock)->tp_name, "_thread.lock") == 0 &&
        Py_TYPE(lock)->tp_basicsize == (Py_ssize_t)sizeof(lockobject)) {
        g_lock_type = (PyTypeObject *)Py_NewRef(Py_TYPE(lock));
    }
    return g_lock_type != NULL;
}

/* ------------------------------------------------------------------ slot access */

/* ``kind_init`` (``_fastio.h``) and, with ``any``, a kind whose names may be anything on the
 * class (methods; absent names: NULL descriptors): only its member descriptors get an offset
 * (-1 otherwise). ``kind_fast`` checks either the same way (each name resolves to the
 * descriptor seen here). */
int
kind_init_any(kind_t *k, PyTypeObject *tp, const char *const *names, int any)
{
    k->n = 0;
    k->base = (PyTypeObject *)Py_NewRef(tp);
    for (int i = 0; names[i] != NULL; i++) {
        if (i == MAX_NAMES) { /* (a kind's arrays hold MAX_NAMES: never write past them) */
            PyErr_Format(PyExc_SystemError, "a kind of %s names more than %d slots",
                         tp->tp_name, MAX_NAMES);
            return -1;
        }
        PyObject *name = PyUnicode_InternFromString(names[i]);
        if (name == NULL) {
            return -1;
        }
        PyObject *d = _PyType_Lookup(tp, name); /* borrowed, may be NULL */
        int member = d != NULL && Py_IS_TYPE(d, &PyMemberDescr_Type);
        if (!any && !member) {
            PyErr_Format(PyExc_TypeError, "%s.%U is not a slot", tp->tp_name, name);
            Py_DECREF(name);
            return -1;
        }
        if (!any && ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX) {
            PyErr_Format(PyExc_TypeError, "%s.%U is not an object slot", tp->tp_name, name);
            Py_DECREF(name);
            return -1;
        }
        k->names[i] = name;
        k->descrs[i] = Py_XNewRef(d);
        k->offsets[i] = member ? ((PyMemberDescrObject *)d)->d_member->offset : -1;
        k->n = i + 1;
    }
    return 0;
}

/* 1 if instances of ``tp`` may have their slots read directly: ``kind_fast``'s whole check
 * (``_fastio.h`` checks the first cache entry inline before calling it). */
int
kind_fast_check(kind_t *k, PyTypeObject *tp)
{
    int free_slot = -1;
    for (int i = 0; i < MAX_TYPES; i++) {
        if (k->types[i] == tp) {
            if ((tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) && tp->tp_version_tag == k->tags[i]) {
                return 1;
            }
            Py_CLEAR(k->types[i]); /* modified since: check it again */
            free_slot = i;
            break;
        }
        if (k->types[i] == NULL && free_slot < 0) {
            free_slot = i;
        }
    }
    for (int i = 0; i < k->n; i++) {
        if (_PyType_Lookup(tp, k->names[i]) != k->descrs[i]) {
            return 0;
        }
    }
    /* _PyType_Lookup gave the type a version tag if it can have one: cache it only then. */
    if (free_slot >= 0 && (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
        Py_INCREF(tp);
        k->types[free_slot] = tp;
        k->tags[free_slot] = tp->tp_version_tag;
    }
    return 1;
}

/* Calls ``func`` (a Python method's function: the reference a C method hands a shape to) with
 * ``self`` and the caller's vectorcall arguments (``_fastio.h``; every accelerated method). */
PyObject *
fio_delegate(PyObject *func, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
         PyObject *kwnames)
{
    PyObject *small[8];
    PyObject **full = small;
    Py_ssize_t total = nargs + (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames));
    if (total + 1 > 8) {
        full = PyMem_Malloc((size_t)(total + 1) * sizeof(PyObject *));
        if (full == NULL) {
            return PyErr_NoMemory();
        }
    }
    full[0] = self;
    for (Py_ssize_t i = 0; i < total; i++) {
        full[i + 1] = args[i];
    }
    PyObject *res = PyObject_Vectorcall(func, full, nargs + 1, kwnames);
    if (full != small) {
        PyMem_Free(full);
    }
    return res;
}
