/* winaio._io._fastio: the alias layer's event hot shapes in C (fastevent, 2026-12-06 night;
 * split out of ``_fastevent.c`` by tools, 2026-12-06; ``_fastevent.h``: the shared data).
 *
 * ``winaio.win32``'s SetEvent / ResetEvent / WaitForSingleObject(Ex) (``win32._sync``): their
 * hot shape - a plain int handle whose table entry grants the access right
 * (EVENT_MODIFY_STATE, SYNCHRONIZE) to an exact ``Event``, INFINITE or 0 ms - straight to the
 * cores ``set_core`` (``_fastevent.c``) and ``wait_core`` (``_fastevent_wait.c``); ResetEvent's
 * state write is made here under LOCK.
 *
 * Invariants:
 * - every other call (another handle, access right or object type, a finite timeout, another
 *   argument count, the module switch off) runs the Python function before anything is
 *   touched; so does a core's "not mine";
 * - the Event is held by a new reference taken from the handle table's entry: a CloseHandle
 *   while LOCK is awaited must not free it;
 * - a Win32Error from a Python follow-up goes to the Python ``fail`` and WAIT_FAILED, as the
 *   Python function does;
 * - ``configure_event_win32`` runs once, after ``configure_event``, and owns the data below. */
#include "_fastevent.h"
#include "_fastwin32.h"

static PyObject *g_entries, *g_py_set_event, *g_py_reset_event, *g_py_wfso, *g_py_wfso_ex;
static PyObject *g_fail, *g_w32error, *g_wait_failed;
static unsigned long g_modify_state, g_synchronize;
static int g_fe_win32;


/* The exact Event behind the plain int handle ``h`` granting ``access`` (a new reference), or
 * NULL with no error (the Python function decides). */
static PyObject *
hot_event(PyObject *h, unsigned long access)
{
    if (!PyLong_CheckExact(h)) {
        return NULL;
    }
    PyObject *entry = PyDict_GetItemWithError(g_entries, h); /* borrowed */
    if (entry == NULL || !PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *obj = PyTuple_GET_ITEM(entry, 0), *granted = PyTuple_GET_ITEM(entry, 1);
    if (!Py_IS_TYPE(obj, g_ev_type) || !PyLong_CheckExact(granted) ||
        !(PyLong_AsUnsignedLongMask(granted) & access) || !kind_fast(&k_fev, g_ev_type)) {
        PyErr_Clear();
        return NULL;
    }
    return Py_NewRef(obj); /* (a CloseHandle while LOCK is awaited must not free it) */
}

/* SetEvent(hEvent) */
static PyObject *
fe_SetEvent(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *ev;
    if (!g_fe_enabled || nargs != 1 || (ev = hot_event(args[0], g_modify_state)) == NULL) {
        return PyObject_Vectorcall(g_py_set_event, args, (size_t)nargs, NULL);
    }
    int r = set_core(ev);
    if (r == -2) {
        PyObject *p = PyObject_CallOneArg(g_py_set, ev);
        r = p == NULL ? -1 : 0;
        Py_XDECREF(p);
    }
    Py_DECREF(ev);
    return r < 0 ? NULL : Py_NewRef(Py_True);
}

/* ResetEvent(hEvent) */
static PyObject *
fe_ResetEvent(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *ev;
    if (!g_fe_enabled || nargs != 1 || (ev = hot_event(args[0], g_modify_state)) == NULL) {
        return PyObject_Vectorcall(g_py_reset_event, args, (size_t)nargs, NULL);
    }
    if (fio_acquire(g_ev_lock) < 0) {
        Py_DECREF(ev);
        return NULL;
    }
    kind_put(&k_fev, ev, EV_SIGNALED, Py_NewRef(Py_False));
    fio_release(g_ev_lock);
    Py_DECREF(ev);
    return Py_NewRef(Py_True);
}

/* The wait code ``r`` of a WaitForSingleObject(Ex) call (stolen), or the Python function's
 * handling of a Win32Error: ``fail(exc)`` and WAIT_FAILED. */
static PyObject *
wait_result(PyObject *r)
{
    if (r != NULL || !PyErr_ExceptionMatches(g_w32error)) {
        return r;
    }
    PyObject *f = fio_call_fail(g_fail, NULL);
    if (f == NULL) {
        return NULL;
    }
    Py_DECREF(f);
    return Py_NewRef(g_wait_failed);
}

/* INFINITE -> 0, 0 ms -> 1, anything else -> -1 (the Python function). */
static int
ms_timeout(PyObject *ms)
{
    if (!PyLong_CheckExact(ms)) {
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(ms, &overflow);
    return overflow ? -1 : v == 0xFFFFFFFFLL ? 0 : v == 0 ? 1 : -1;
}

static PyObject *
wfso(PyObject *const *args, Py_ssize_t nargs, PyObject *alertable, PyObject *py)
{
    int poll = ms_timeout(args[1]);
    PyObject *ev;
    if (poll < 0 || (ev = hot_event(args[0], g_synchronize)) == NULL) {
        return PyObject_Vectorcall(py, args, (size_t)nargs, NULL);
    }
    PyObject *r = wait_core(ev, poll, alertable);
    Py_DECREF(ev);
    if (r == NOT_MINE) {
        return PyObject_Vectorcall(py, args, (size_t)nargs, NULL);
    }
    return wait_result(r);
}

/* WaitForSingleObject(hHandle, dwMilliseconds) */
static PyObject *
fe_WaitForSingleObject(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!g_fe_enabled || nargs != 2) {
        return PyObject_Vectorcall(g_py_wfso, args, (size_t)nargs, NULL);
    }
    return wfso(args, nargs, Py_False, g_py_wfso);
}

/* WaitForSingleObjectEx(hHandle, dwMilliseconds, bAlertable) */
static PyObject *
fe_WaitForSingleObjectEx(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (!g_fe_enabled || nargs != 3 || (!PyBool_Check(args[2]) && !PyLong_CheckExact(args[2]))) {
        return PyObject_Vectorcall(g_py_wfso_ex, args, (size_t)nargs, NULL);
    }
    return wfso(args, nargs, args[2], g_py_wfso_ex);
}

static PyMethodDef alias_defs[] = {
    {"SetEvent", (PyCFunction)(void (*)(void))fe_SetEvent, METH_FASTCALL,
     "SetEvent(hEvent)\n--\n\n[MS:SetEvent] -> core ``Event.set`` (the C accelerator of the\n"
     "Python function's hot shape; every other call runs the Python function)."},
    {"ResetEvent", (PyCFunction)(void (*)(void))fe_ResetEvent, METH_FASTCALL,
     "ResetEvent(hEvent)\n--\n\n[MS:ResetEvent] -> core ``Event.reset`` (the C accelerator of\n"
     "the Python function's hot shape; every other call runs the Python function)."},
    {"WaitForSingleObject", (PyCFunction)(void (*)(void))fe_WaitForSingleObject, METH_FASTCALL,
     "WaitForSingleObject(hHandle, dwMilliseconds)\n--\n\n[MS:WaitForSingleObject] -> core\n"
     "``wait`` (the C accelerator of the Python function's hot shape: an Event, INFINITE or\n"
     "0 ms; every other call runs the Python function)."},
    {"WaitForSingleObjectEx", (PyCFunction)(void (*)(void))fe_WaitForSingleObjectEx,
     METH_FASTCALL,
     "WaitForSingleObjectEx(hHandle, dwMilliseconds, bAlertable)\n--\n\n"
     "[MS:WaitForSingleObjectEx] -> core ``wait`` (the C accelerator of the Python function's\n"
     "hot shape: an Event, INFINITE or 0 ms; every other call runs the Python function)."},
    {NULL, NULL, 0, NULL}};

/* configure_event_win32(handle entries, SetEvent, ResetEvent, WaitForSingleObject,
 *                       WaitForSingleObjectEx, fail, Win32Error, WAIT_FAILED,
 *                       EVENT_MODIFY_STATE, SYNCHRONIZE) -> (the four C functions) */
PyObject *
configure_event_win32(PyObject *module, PyObject *args)
{
    PyObject *entries, *se, *re, *w, *wx, *fail, *err, *failed;
    unsigned long modify, sync;
    if (!PyArg_ParseTuple(args, "O!OOOOOOO!kk:configure_event_win32", &PyDict_Type, &entries, &se,
                          &re, &w, &wx, &fail, &err, &PyLong_Type, &failed, &modify, &sync)) {
        return NULL;
    }
    if (g_ev_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_event() first");
        return NULL;
    }
    if (g_fe_win32) {
        PyErr_SetString(PyExc_RuntimeError, "configure_event_win32() is called once");
        return NULL;
    }
    g_entries = Py_NewRef(entries);
    g_py_set_event = Py_NewRef(se);
    g_py_reset_event = Py_NewRef(re);
    g_py_wfso = Py_NewRef(w);
    g_py_wfso_ex = Py_NewRef(wx);
    g_fail = Py_NewRef(fail);
    g_w32error = Py_NewRef(err);
    g_wait_failed = Py_NewRef(failed);
    g_modify_state = modify;
    g_synchronize = sync;
    g_fe_win32 = 1;
    PyObject *name = PyUnicode_FromString("winaio.win32");
    if (name == NULL) {
        return NULL;
    }
    PyObject *out = PyTuple_New(4);
    for (int i = 0; out != NULL && i < 4; i++) {
        PyObject *f = PyCFunction_NewEx(&alias_defs[i], NULL, name);
        if (f == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, i, f);
    }
    Py_DECREF(name);
    return out;
}
