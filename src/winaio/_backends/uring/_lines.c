/* winaio._backends.uring._lines: the optional C accelerator of the direct heads' completion.
 *
 * What it replaces: the loop of ``StreamLines.service_direct`` (streams.py), run by the
 * reaper for every batch of CQEs that brings data to STREAM heads whose own request (a RECV)
 * was in the kernel - at C=64, one per echo of a socket server. For each (line, res, ud) of
 * ``heads``: a plain head (alone in its line, direct, the line not busy, its class mapping a
 * CQE as StreamReadOp does) is taken out of its line (poll_ud 0, not direct, nothing kept),
 * the emptied line leaves ``lines`` (to ``spare`` if there is room) and (op, SUCCESS, res) is
 * appended to ``finished``; any other line is returned in ``slow`` as (line, res), for the
 * Python ``service``. All of it in one hold of the backend's lock, as the Python loop.
 *
 * Invariants (the pure-Python loop stays the reference and the fallback, selected by
 * ``streams.use_accelerator``; tests run the socket paths against both):
 * - containers that are not exactly a dict / lists (a subclass could run Python code) are
 *   left to the Python loop: NotImplemented, before anything is touched;
 * - the same lock, taken and released the same way (its ``acquire``/``release`` methods: a
 *   contended acquire waits with the GIL released and may raise, as in Python, before
 *   anything was touched);
 * - between acquire and release no Python code runs (attribute access on slotted objects,
 *   dict, list and deque operations, no __del__ of anything that could run: references to
 *   ``op`` move into ``finished``, a line's ``keep`` (a ctypes anchor) is dropped as in
 *   Python), so no other thread sees a half-serviced batch, exactly as the lock guarantees;
 * - an error (MemoryError, a line that is not what the reaper put there) releases the lock
 *   and propagates with what was done so far kept, as the Python loop would.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *zero;
static PyObject *s_ops, *s_direct, *s_busy, *s_from_cqe, *s_poll_ud, *s_keep, *s_key,
    *s_acquire, *s_release, *s_popleft;

/* One head: returns 1 if taken (appended to finished), 0 if slow, -1 on error. */
static int
service_one(PyObject *line, PyObject *res, PyObject *lines, PyObject *spare,
            Py_ssize_t spare_max, PyObject *finished, PyObject *read_from_cqe,
            PyObject *success)
{
    int plain = 0;
    PyObject *ops = PyObject_GetAttr(line, s_ops);
    if (ops == NULL) {
        return -1;
    }
    Py_ssize_t n = PyObject_Size(ops);
    if (n < 0) {
        goto error;
    }
    if (n == 1) {
        PyObject *direct = PyObject_GetAttr(line, s_direct);
        if (direct == NULL) {
            goto error;
        }
        int is_direct = PyObject_IsTrue(direct);
        Py_DECREF(direct);
        if (is_direct < 0) {
            goto error;
        }
        if (is_direct) {
            PyObject *busy = PyObject_GetAttr(line, s_busy);
            if (busy == NULL) {
                goto error;
            }
            int is_busy = PyObject_IsTrue(busy);
            Py_DECREF(busy);
            if (is_busy < 0) {
                goto error;
            }
            if (!is_busy) {
                PyObject *head = PySequence_GetItem(ops, 0);
                if (head == NULL) {
                    goto error;
                }
                PyObject *mapper = PyObject_GetAttr((PyObject *)Py_TYPE(head), s_from_cqe);
                Py_DECREF(head);
                if (mapper == NULL) {
                    goto error;
                }
                plain = mapper == read_from_cqe;
                Py_DECREF(mapper);
            }
        }
    }
    if (!plain) {
        Py_DECREF(ops);
        return 0;
    }
    PyObject *op = PyObject_CallMethodNoArgs(ops, s_popleft);
    Py_DECREF(ops);
    ops = NULL;
    if (op == NULL) {
        return -1;
    }
    if (PyObject_SetAttr(line, s_poll_ud, zero) < 0
        || PyObject_SetAttr(line, s_direct, Py_False) < 0
        || PyObject_SetAttr(line, s_keep, Py_None) < 0) {
        Py_DECREF(op);
        return -1;
    }
    PyObject *key = PyObject_GetAttr(line, s_key);
    if (key == NULL) {
        Py_DECREF(op);
        return -1;
    }
    PyObject *current = PyDict_GetItemWithError(lines, key); /* borrowed */
    if (current == NULL && PyErr_Occurred()) {
        Py_DECREF(key);
        Py_DECREF(op);
        return -1;
    }
    if (current == line) {
        if (PyDict_DelItem(lines, key) < 0
            || (PyList_GET_SIZE(spare) < spare_max && PyList_Append(spare, line) < 0)) {
            Py_DECREF(key);
            Py_DECREF(op);
            return -1;
        }
    }
    Py_DECREF(key);
    PyObject *entry = PyTuple_Pack(3, op, success, res);
    Py_DECREF(op);
    if (entry == NULL) {
        return -1;
    }
    int rc = PyList_Append(finished, entry);
    Py_DECREF(entry);
    return rc < 0 ? -1 : 1;
error:
    Py_XDECREF(ops);
    return -1;
}

PyDoc_STRVAR(service_direct_doc,
"service_direct(lock, lines, spare, spare_max, heads, finished, read_from_cqe, success)\n"
"--\n\n"
"StreamLines.service_direct's loop (module docstring): returns the [(line, res)] that need\n"
"the Python service(), or NotImplemented (nothing done) when lines, spare, heads or finished\n"
"is not exactly a dict / list: the caller runs its Python loop.");

static PyObject *
service_direct(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "service_direct() takes 8 arguments");
        return NULL;
    }
    PyObject *lock = args[0], *lines = args[1], *spare = args[2], *heads = args[4],
             *finished = args[5], *read_from_cqe = args[6], *success = args[7];
    Py_ssize_t spare_max = PyLong_AsSsize_t(args[3]);
    if (spare_max == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!PyDict_CheckExact(lines) || !PyList_CheckExact(spare) || !PyList_CheckExact(heads)
        || !PyList_CheckExact(finished)) {
        /* A subclass may run Python code in its methods (tests wrap ``spare`` to interrupt an
         * append): the caller's Python loop handles it, nothing touched here. */
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *slow = PyList_New(0);
    if (slow == NULL) {
        return NULL;
    }
    PyObject *r = PyObject_CallMethodNoArgs(lock, s_acquire);
    if (r == NULL) {
        Py_DECREF(slow);
        return NULL;
    }
    Py_DECREF(r);
    int failed = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(heads); i++) {
        PyObject *head = PyList_GET_ITEM(heads, i);
        if (!PyTuple_CheckExact(head) || PyTuple_GET_SIZE(head) != 3) {
            PyErr_SetString(PyExc_TypeError, "service_direct(): heads of (line, res, ud)");
            failed = 1;
            break;
        }
        PyObject *line = PyTuple_GET_ITEM(head, 0), *res = PyTuple_GET_ITEM(head, 1);
        int rc = service_one(line, res, lines, spare, spare_max, finished, read_from_cqe,
                             success);
        if (rc < 0) {
            failed = 1;
            break;
        }
        if (rc == 0) {
            PyObject *pair = PyTuple_Pack(2, line, res);
            if (pair == NULL || PyList_Append(slow, pair) < 0) {
                Py_XDECREF(pair);
                failed = 1;
                break;
            }
            Py_DECREF(pair);
        }
    }
    /* Released whatever happened (the Python loop's ``finally``), the error kept. */
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    r = PyObject_CallMethodNoArgs(lock, s_release);
    if (r == NULL) {
        Py_XDECREF(exc_type);
        Py_XDECREF(exc_value);
        Py_XDECREF(exc_tb);
        Py_DECREF(slow);
        return NULL;
    }
    Py_DECREF(r);
    PyErr_Restore(exc_type, exc_value, exc_tb);
    if (failed) {
        Py_DECREF(slow);
        return NULL;
    }
    return slow;
}

static PyMethodDef methods[] = {
    {"service_direct", (PyCFunction)(void (*)(void))service_direct, METH_FASTCALL,
     service_direct_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "winaio._backends.uring._lines",
    "The optional C accelerator of StreamLines.service_direct (see the C source).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__lines(void)
{
#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_ops, "ops");
    INTERN(s_direct, "direct");
    INTERN(s_busy, "busy");
    INTERN(s_from_cqe, "from_cqe");
    INTERN(s_poll_ud, "poll_ud");
    INTERN(s_keep, "keep");
    INTERN(s_key, "key");
    INTERN(s_acquire, "acquire");
    INTERN(s_release, "release");
    INTERN(s_popleft, "popleft");
#undef INTERN
    if ((zero = PyLong_FromLong(0)) == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
