/* winaio._io._fastio: the alias layer's shared C shapes (tidy, 2026-12-06).
 *
 * Purpose: the steps the alias layer's C functions (``_fastio_win32.c``: ReadFile,
 * GetQueuedCompletionStatusEx; ``_fastwsa.c``: WSARecv, WSASend; ``_fastevent_win32.c``:
 * WaitForSingleObject(Ex)) each wrote out again:
 * - ``fio_handle_object``: the object behind a handle through ``win32._base.handle_entry``
 *   (``handle -> (object, granted access)`` or None), when it is exactly of the hot shape's
 *   type;
 * - ``fio_call_fail``: a Win32Error raised by the core call handed to the Python function's
 *   error path (``fail(exc)``, ``failed(exc, extra)``), which sets the thread's last error
 *   and returns the function's failure value, as the Python function does.
 *
 * Invariants (docs/design.md, review7 and cslot): nothing here writes state; the only Python
 * code run is the lookup's ``__hash__``/``__eq__`` of a handle that is not a plain int and the
 * error path, which is the caller's last call. "Not the hot shape" is a 0 with no error set,
 * and the caller then runs the Python function with nothing touched; an error that is not
 * the shape's (a KeyboardInterrupt raised in a handle's ``__hash__``) propagates, as it
 * would from the Python function. No allocation but the lookup's own: a failed one is an
 * error the caller returns. Header-only (static inline), so that each unit keeps its own
 * configuration objects. */
#ifndef WINAIO_FASTWIN32_H
#define WINAIO_FASTWIN32_H

#include <Python.h>

/* The object behind ``handle``: ``lookup(handle)`` (``handle_entry``) is a tuple whose first
 * item is exactly of ``type``: 1 and ``*out`` a new reference to it (held by the caller: a
 * concurrent CloseHandle may drop the table's). 0 with no error when it is not (an unknown
 * handle, another object type, an unhashable handle - a TypeError, which the Python function
 * reports): the Python function decides. -1 with any other error (as in Python). */
static inline int
fio_handle_object(PyObject *lookup, PyObject *handle, PyTypeObject *type, PyObject **out)
{
    *out = NULL;
    PyObject *entry = PyObject_CallOneArg(lookup, handle);
    if (entry == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
            return -1;
        }
        PyErr_Clear();
        return 0;
    }
    PyObject *obj = PyTuple_Check(entry) && PyTuple_GET_SIZE(entry) >= 1
                        ? PyTuple_GET_ITEM(entry, 0)
                        : NULL;
    int hot = obj != NULL && Py_IS_TYPE(obj, type);
    if (hot) {
        *out = Py_NewRef(obj);
    }
    Py_DECREF(entry);
    return hot;
}

/* The Python error path of an alias function for the exception set now (a Win32Error the
 * caller matched): ``fail(exc)`` when ``extra`` is NULL, else ``fail(exc, extra)``, with the
 * exception normalized and its traceback attached; the result (a new reference) or NULL. */
static inline PyObject *
fio_call_fail(PyObject *fail, PyObject *extra)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    PyObject *args[2] = {value, extra};
    PyObject *r = PyObject_Vectorcall(fail, args, extra == NULL ? 1 : 2, NULL);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return r;
}

#endif /* WINAIO_FASTWIN32_H */
