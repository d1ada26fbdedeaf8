/* winaio._io._fastio, the io_uring ring's part (``_fastring.h``): ``Deferral.take_burst`` (a
 * leader takes the owner's deferred burst over: publish, record it as the taker's
 * (``Migration.own_locked``), clear it, update the ports' hint, in one hold of the backend's
 * lock) and ``Deferral.hint_locked``, with exactly the Python methods' effects.
 *
 * Invariants: ``take_burst`` does its whole work under the backend's lock without calling
 * Python code (but ``publish`` on a dirty SQ list and the rare pruning of
 * ``Migration.owned``), so no signal handler can cut it; an allocation failure raises with
 * the lock released, like the Python method would. A Deferral (or Backlog, Migration) whose
 * class redefines a slot used here goes to the Python method, and so does one whose ring,
 * migration or own class redefines a method it calls (``publish``, ``own_locked``,
 * ``hint_locked``). */
#include "_fastring.h"

static const char *const DEFERRAL_NAMES[] = {"_backlog", "_lock", "_migration", "_ring",
                                             "_table",   "enters", "hinted", "unsubmitted",
                                             NULL};
enum { D_BACKLOG, D_LOCK, D_MIGRATION, D_RING, D_TABLE, D_ENTERS, D_HINTED, D_UNSUBMITTED };
static const char *const BACKLOG_NAMES[] = {"stuck", NULL};
static const char *const MIGRATION_NAMES[] = {"owned", NULL};

static kind_t k_deferral, k_backlog, k_migration;
static PyObject *py_take_burst, *py_hint_locked; /* the Python references */
static PyObject *g_deferring;                    /* deferral._deferring (dict) */
static PyObject *s_deferred, *s_intersection_update;
/* The methods take_burst calls, as configured: a class that redefines one (a subclass, a
 * test's stand-in) sends take_burst to the Python method, which calls it (review7). */
static PyObject *s_publish, *s_own_locked, *s_hint_locked, *py_own_locked, *g_hint_descr;

/* ------------------------------------------------------------------ Deferral */

/* Deferral.hint_locked's body for a fast Deferral: 0, or -1 with an error (nothing changed). */
static int
hint(PyObject *self)
{
    PyObject *uns = slot_borrow(&k_deferral, self, D_UNSUBMITTED);
    PyObject *hinted = slot_borrow(&k_deferral, self, D_HINTED);
    if (uns == NULL || hinted == NULL) {
        return 1;
    }
    int deferred = PyObject_IsTrue(uns);
    if (deferred < 0) {
        return -1;
    }
    if ((deferred ? Py_True : Py_False) == hinted) {
        return 0;
    }
    if (deferred) {
        if (PyDict_SetItem(g_deferring, self, Py_None) < 0) {
            return -1;
        }
    }
    else if (PyDict_DelItem(g_deferring, self) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
            return -1;
        }
        PyErr_Clear();
    }
    set(&k_deferral, 1, self, D_HINTED, Py_NewRef(deferred ? Py_True : Py_False));
    PyObject *count = PyLong_FromSsize_t(PyDict_GET_SIZE(g_deferring));
    if (count == NULL) {
        return -1;
    }
    int r = PyObject_SetAttr(fr_idle_work, s_deferred, count);
    Py_DECREF(count);
    return r;
}

/* Deferral.hint_locked() */
static PyObject *
deferral_hint_locked(PyObject *self, PyObject *unused)
{
    if (!g_deferral_ok || !kind_fast(&k_deferral, Py_TYPE(self))) {
        return call1(py_hint_locked, self);
    }
    int r = hint(self);
    if (r > 0) {
        return call1(py_hint_locked, self); /* (an unset slot: Python raises) */
    }
    if (r < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Migration.own_locked(ts, uds, table) for a fast Migration and a list of uds: 0 or -1. */
static int
own(PyObject *migration, PyObject *ts, PyObject *uds, PyObject *table)
{
    PyObject *owned = slot_borrow(&k_migration, migration, 0);
    if (owned == NULL || !PyDict_CheckExact(owned)) {
        PyErr_SetString(PyExc_TypeError, "Migration.owned is not a dict");
        return -1;
    }
    PyObject *mine = PyDict_GetItemWithError(owned, ts); /* borrowed */
    if (mine == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        PyObject *fresh = PySet_New(NULL);
        if (fresh == NULL) {
            return -1;
        }
        if (PyDict_SetItem(owned, ts, fresh) < 0) {
            Py_DECREF(fresh);
            return -1;
        }
        mine = fresh;
        Py_DECREF(fresh); /* (the dict holds it) */
    }
    Py_INCREF(mine);
    int r = -1;
    if (PyAnySet_Check(mine)) {
        Py_ssize_t n = PyList_GET_SIZE(uds);
        r = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *ud = PyList_GET_ITEM(uds, i);
            int overflow = 0;
            if (PyLong_CheckExact(ud)) {
                (void)PyLong_AsLongAndOverflow(ud, &overflow);
            }
            if (overflow) {
                continue; /* a receive slot's (``SLOT_TAG``): never recorded (migration) */
            }
            if (PySet_Add(mine, ud) < 0) {
                r = -1;
                break;
            }
        }
    }
    else {
        PyObject *res = PyObject_CallMethod(mine, "update", "O", uds);
        r = res == NULL ? -1 : 0;
        Py_XDECREF(res);
    }
    if (r == 0) {
        Py_ssize_t size = PyObject_Size(mine), tsize = PyObject_Size(table);
        if (size < 0 || tsize < 0) {
            r = -1;
        }
        else if (size > 64 + 4 * tsize) {
            PyObject *res = PyObject_CallMethodOneArg(mine, s_intersection_update, table);
            r = res == NULL ? -1 : 0;
            Py_XDECREF(res);
        }
    }
    Py_DECREF(mine);
    return r;
}

/* Deferral.take_burst(ts) */
PyObject *
deferral_take_burst(PyObject *self, PyObject *ts)
{
    if (!g_deferral_ok || !kind_fast(&k_deferral, Py_TYPE(self))) {
        return PyObject_CallFunctionObjArgs(py_take_burst, self, ts, NULL);
    }
    PyObject *uns = slot_borrow(&k_deferral, self, D_UNSUBMITTED);
    PyObject *lock = slot_borrow(&k_deferral, self, D_LOCK);
    PyObject *backlog = slot_borrow(&k_deferral, self, D_BACKLOG);
    PyObject *migration = slot_borrow(&k_deferral, self, D_MIGRATION);
    PyObject *ring = slot_borrow(&k_deferral, self, D_RING);
    PyObject *table = slot_borrow(&k_deferral, self, D_TABLE);
    PyObject *enters = slot_borrow(&k_deferral, self, D_ENTERS);
    if (uns == NULL || !PyList_CheckExact(uns) || lock == NULL || backlog == NULL ||
        migration == NULL || ring == NULL || table == NULL || enters == NULL ||
        !PyLong_CheckExact(enters) || !kind_fast(&k_backlog, Py_TYPE(backlog)) ||
        !kind_fast(&k_migration, Py_TYPE(migration)) || g_publish_descr == NULL ||
        _PyType_Lookup(Py_TYPE(ring), s_publish) != g_publish_descr ||
        _PyType_Lookup(Py_TYPE(migration), s_own_locked) != py_own_locked ||
        _PyType_Lookup(Py_TYPE(self), s_hint_locked) != g_hint_descr) {
        return PyObject_CallFunctionObjArgs(py_take_burst, self, ts, NULL);
    }
    if (PyList_GET_SIZE(uns) == 0) {
        return PyLong_FromLong(0);
    }
    Py_INCREF(uns);
    Py_INCREF(lock);
    Py_INCREF(ring);
    Py_INCREF(migration);
    Py_INCREF(table);
    PyObject *result = NULL;
    if (fio_acquire(lock) < 0) {
        goto done;
    }
    /* (the slot may have been rebound meanwhile: read again under the lock) */
    PyObject *cur = slot_borrow(&k_deferral, self, D_UNSUBMITTED);
    int stuck;
    if (cur != uns || PyList_GET_SIZE(uns) == 0) {
        result = PyLong_FromLong(0);
        goto unlock;
    }
    PyObject *backlog_now = slot_borrow(&k_deferral, self, D_BACKLOG);
    PyObject *st = backlog_now == NULL ? NULL : slot_borrow(&k_backlog, backlog_now, 0);
    if (st == NULL) {
        PyErr_SetString(PyExc_AttributeError, "stuck");
        goto unlock;
    }
    stuck = PyObject_IsTrue(st);
    if (stuck != 0) {
        if (stuck > 0) {
            result = PyLong_FromLong(0);
        }
        goto unlock;
    }
    PyObject *pending = ring_publish(ring, NULL);
    if (pending == NULL) {
        goto unlock;
    }
    if (own(migration, ts, uns, table) < 0) {
        Py_DECREF(pending);
        goto unlock;
    }
    if (PyList_SetSlice(uns, 0, PyList_GET_SIZE(uns), NULL) < 0 || hint(self) < 0) {
        Py_DECREF(pending);
        goto unlock;
    }
    PyObject *more = PyNumber_Add(slot_borrow(&k_deferral, self, D_ENTERS), fr_one);
    if (more == NULL) {
        Py_DECREF(pending);
        goto unlock;
    }
    set(&k_deferral, 1, self, D_ENTERS, more);
    result = pending;
unlock:
    fio_release(lock);
done:
    Py_DECREF(uns);
    Py_DECREF(lock);
    Py_DECREF(ring);
    Py_DECREF(migration);
    Py_DECREF(table);
    return result;
}

static PyMethodDef deferral_defs[] = {
    {"take_burst", deferral_take_burst, METH_O,
     "take_burst(ts)\n--\n\nA leader takes the deferred burst over (C accelerator)."},
    {"hint_locked", deferral_hint_locked, METH_NOARGS,
     "hint_locked()\n--\n\nKeep IdleWork.deferred in step (C accelerator)."},
    {NULL, NULL, 0, NULL}};

PyObject *
configure_deferral(PyObject *args)
{
    const char *what;
    if (s_deferred == NULL) {
        s_deferred = PyUnicode_InternFromString("deferred");
        s_intersection_update = PyUnicode_InternFromString("intersection_update");
        s_publish = PyUnicode_InternFromString("publish");
        s_own_locked = PyUnicode_InternFromString("own_locked");
        s_hint_locked = PyUnicode_InternFromString("hint_locked");
        if (s_deferred == NULL || s_intersection_update == NULL || s_publish == NULL ||
            s_own_locked == NULL || s_hint_locked == NULL) {
            return NULL;
        }
    }
    PyTypeObject *tp, *backlog, *migration;
    PyObject *py, *deferring, *idle;
    if (!PyArg_ParseTuple(args, "sO!O!O!O!O!O:configure_ring", &what, &PyType_Type, &tp,
                          &PyType_Type, &backlog, &PyType_Type, &migration, &PyDict_Type,
                          &py, &PyDict_Type, &deferring, &idle)) {
        return NULL;
    }
    if (g_deferral_ok) {
        PyErr_SetString(PyExc_RuntimeError, "configured once");
        return NULL;
    }
    PyObject *tb = PyDict_GetItemString(py, "take_burst");
    PyObject *hl = PyDict_GetItemString(py, "hint_locked");
    if (tb == NULL || hl == NULL) {
        PyErr_SetString(PyExc_KeyError, "take_burst, hint_locked");
        return NULL;
    }
    ref(&py_take_burst, tb);
    ref(&py_hint_locked, hl);
    ref(&g_deferring, deferring);
    ref(&fr_idle_work, idle);
    if (kind_init(&k_deferral, tp, DEFERRAL_NAMES) < 0 ||
        kind_init(&k_backlog, backlog, BACKLOG_NAMES) < 0 ||
        kind_init(&k_migration, migration, MIGRATION_NAMES) < 0) {
        return NULL;
    }
    PyObject *own = _PyType_Lookup(migration, s_own_locked);
    if (own == NULL) {
        PyErr_SetString(PyExc_TypeError, "Migration.own_locked");
        return NULL;
    }
    ref(&py_own_locked, own);
    PyObject *d = fr_descriptors(tp, deferral_defs);
    if (d == NULL) {
        return NULL;
    }
    ref(&g_hint_descr, PyDict_GetItemString(d, "hint_locked"));
    g_deferral_ok = 1;
    return d;
}
