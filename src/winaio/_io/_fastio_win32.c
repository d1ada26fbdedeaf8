/* winaio._io._fastio, the alias layer's part: the hot shapes of ``winaio.win32.ReadFile`` and
 * ``GetQueuedCompletionStatusEx`` in C, so that the alias layer keeps its cost beside the
 * accelerated core's (docs/design.md "Cached reads"). Same rules as ``_fastio.c``: the Python
 * functions are the reference; every shape not handled here goes to them before anything was
 * touched, and every result not handled here to their Python continuations. */
#include "_fastio.h"
#include "_fastwin32.h"

/* ------------------------------------------------------------------ winaio.win32.ReadFile */

/* The alias layer's ReadFile for its hot shape on a cached-reads DiskFile (one whole bytearray or
 * memoryview, a win32 OVERLAPPED without hEvent whose offset is a plain DWORD under 1 GiB, as the
 * Python ReadFile inlines it); every other call goes to the Python ReadFile before anything was
 * touched, and a read that did not finish inside the call to its Python continuation. */
static kind_t k_wov;
static PyObject *g_handle_entry;    /* win32._base.handle_entry: handle -> (object, access) */
static PyObject *g_py_read_file;    /* win32.ReadFile, the Python reference */
static PyObject *g_read_file_after; /* (hFile, lpBuffer, n, lpCount, lpOverlapped, fast) */
static PyObject *s_value;
static int g_enabled = 1;           /* _disk.use_accelerator */

static const char *const WOV_NAMES[] = {"hEvent", "Offset", "OffsetHigh", NULL};
enum { W_HEVENT, W_OFFSET, W_OFFSET_HIGH };

/* lpBuffer is one whole bytearray or memoryview of nNumberOfBytesToRead bytes: 1, 0 or -1 */
static int
whole_buffer(PyObject *buf, PyObject *size)
{
    if (!PyLong_CheckExact(size)) {
        return 0;
    }
    Py_ssize_t len;
    if (PyByteArray_CheckExact(buf)) {
        len = PyByteArray_GET_SIZE(buf);
    }
    else if (PyMemoryView_Check(buf) && Py_IS_TYPE(buf, &PyMemoryView_Type)) {
        PyMemoryViewObject *m = (PyMemoryViewObject *)buf;
        if ((m->flags & _Py_MEMORYVIEW_RELEASED) || (m->mbuf->flags & _Py_MANAGED_BUFFER_RELEASED)) {
            return 0; /* the Python ReadFile reports it (ERROR_INVALID_USER_BUFFER) */
        }
        len = m->view.len; /* nbytes */
    }
    else {
        return 0;
    }
    int overflow;
    long long n = PyLong_AsLongLongAndOverflow(size, &overflow);
    return !overflow && n == (long long)len;
}

static PyObject *
read_file(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !g_enabled) {
        return PyObject_Vectorcall(g_py_read_file, args, (size_t)nargs, NULL);
    }
    PyObject *hfile = args[0], *buffer = args[1], *size = args[2], *count = args[3], *ov = args[4];
    PyObject *file = NULL, *status = NULL;
    if (!whole_buffer(buffer, size) || !PyObject_TypeCheck(ov, k_wov.base)) {
        goto python;
    }
    /* (``file`` held: a concurrent CloseHandle may drop the table's reference) */
    int hot = fio_handle_object(g_handle_entry, hfile, g_disk_type, &file);
    if (hot <= 0) {
        if (hot < 0) {
            return NULL; /* (a KeyboardInterrupt in a handle's __hash__...) as in Python */
        }
        goto python;
    }
    if (!kind_fast(&k_file, Py_TYPE(file))) {
        goto python;
    }
    int r = cached_reads(file);
    if (r < 0) {
        goto error;
    }
    if (!r) {
        goto python;
    }
    int wfast = kind_fast(&k_wov, Py_TYPE(ov));
    int ofast = kind_fast(&k_ov, Py_TYPE(ov));
    if ((r = truth(&k_wov, wfast, ov, W_HEVENT)) != 0) {
        if (r < 0) {
            goto error;
        }
        goto python;
    }
    PyObject *low = get(&k_wov, wfast, ov, W_OFFSET);
    if (low == NULL) {
        goto error;
    }
    PyObject *high = get(&k_wov, wfast, ov, W_OFFSET_HIGH);
    if (high == NULL) {
        Py_DECREF(low);
        goto error;
    }
    int overflow = 0;
    int plain = PyLong_CheckExact(low) && PyLong_CheckExact(high) && _PyLong_Sign(high) == 0 &&
                _PyLong_Sign(low) >= 0 && PyLong_AsLongLongAndOverflow(low, &overflow) <= 0x3FFFFFFF &&
                !overflow;
    Py_DECREF(high);
    if (!plain) {
        Py_DECREF(low);
        goto python; /* issue_offset's general case, or its errors: nothing touched yet */
    }
    /* lpOverlapped.offset = low; .event = None; .skip_port = False (ReadFile's hot shape) */
    if (set(&k_ov, ofast, ov, O_OFFSET, low) < 0 ||
        set(&k_ov, ofast, ov, O_EVENT, Py_NewRef(Py_None)) < 0 ||
        set(&k_ov, ofast, ov, O_SKIP_PORT, Py_NewRef(Py_False)) < 0) {
        goto error;
    }
    status = fast_read(file, buffer, ov);
    if (status == Py_NotImplemented) {
        PyObject *buffers = PyTuple_Pack(1, buffer);
        status = buffers == NULL ? NULL : py_read_now(file, buffers, ov, Py_None);
        Py_XDECREF(buffers);
    }
    Py_CLEAR(file);
    if (status == NULL) {
        goto error;
    }
    if (PyLong_CheckExact(status) && _PyLong_Sign(status) == 0) {
        Py_DECREF(status);
        if (count != Py_None) {
            PyObject *info = get(&k_ov, ofast, ov, O_INFORMATION);
            if (info == NULL) {
                return NULL;
            }
            int rc = PyObject_SetAttr(count, s_value, info);
            Py_DECREF(info);
            if (rc < 0) {
                return NULL;
            }
        }
        Py_RETURN_TRUE;
    }
    {
        PyObject *after[6] = {hfile, buffer, size, count, ov, status};
        PyObject *res = PyObject_Vectorcall(g_read_file_after, after, 6, NULL);
        Py_DECREF(status);
        return res;
    }

python:
    Py_XDECREF(file);
    return PyObject_Vectorcall(g_py_read_file, args, (size_t)nargs, NULL);
error:
    Py_XDECREF(file);
    return NULL;
}

static PyMethodDef read_file_def = {
    "ReadFile", (PyCFunction)(void (*)(void))read_file, METH_FASTCALL,
    "ReadFile(hFile, lpBuffer, nNumberOfBytesToRead, lpNumberOfBytesRead, lpOverlapped)\n--\n\n"
    "[MS:ReadFile] -> core ``read_file`` (the C accelerator of the Python function's hot shape;\n"
    "every other call runs the Python function)."};

PyObject *
configure_alias(PyObject *module, PyObject *args)
{
    PyTypeObject *wovt;
    PyObject *entry, *py_read_file, *after;
    if (!PyArg_ParseTuple(args, "O!OOO:configure_alias", &PyType_Type, &wovt, &entry,
                          &py_read_file, &after)) {
        return NULL;
    }
    if (!g_configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    if (g_py_read_file != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_alias() is called once");
        return NULL;
    }
    if (!PyType_IsSubtype(wovt, k_ov.base)) {
        PyErr_SetString(PyExc_TypeError, "OVERLAPPED must derive from Overlapped");
        return NULL;
    }
    if (kind_init(&k_wov, wovt, WOV_NAMES) < 0) {
        return NULL;
    }
    s_value = PyUnicode_InternFromString("value");
    if (s_value == NULL) {
        return NULL;
    }
    if (g_handle_entry != NULL && g_handle_entry != entry) {
        PyErr_SetString(PyExc_RuntimeError, "one handle table");
        return NULL;
    }
    if (g_handle_entry == NULL) {
        g_handle_entry = Py_NewRef(entry);
    }
    FIO_KEEP({&g_py_read_file, py_read_file}, {&g_read_file_after, after});
    return fio_win32_function(&read_file_def);
}

PyObject *
fio_win32_function(PyMethodDef *def)
{
    PyObject *name = PyUnicode_FromString("winaio.win32");
    if (name == NULL) {
        return NULL;
    }
    PyObject *f = PyCFunction_NewEx(def, NULL, name);
    Py_DECREF(name);
    return f;
}

PyObject *
set_enabled(PyObject *module, PyObject *flag)
{
    int r = PyObject_IsTrue(flag);
    if (r < 0) {
        return NULL;
    }
    g_enabled = r;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ GetQueuedCompletionStatusEx */

/* The alias layer's GetQueuedCompletionStatusEx for its hot shape (a plain port handle, a list of
 * at least ulCount >= 1 entries, INFINITE, not alertable): ``port.get_many(ulCount, None)`` and
 * the OVERLAPPED_ENTRY copies in C when every entry to fill is exactly an OVERLAPPED_ENTRY and
 * the count a Ref; the Python function runs every other call (nothing taken yet), its
 * continuation every other result (``after``: the copy with its requeue on failure), its error
 * path a Win32Error from get_many (``failed``). */
static kind_t k_entry, k_ref;
static PyObject *g_py_gqcs, *g_gqcs_after, *g_gqcs_failed, *g_win32_error, *s_get_many;

static const char *const ENTRY_NAMES[] = {"lpCompletionKey", "lpOverlapped", "Internal",
                                          "dwNumberOfBytesTransferred", NULL};
static const char *const REF_NAMES[] = {"value", NULL};

static PyObject *
gqcs_ex(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !g_enabled) {
        return PyObject_Vectorcall(g_py_gqcs, args, (size_t)nargs, NULL);
    }
    PyObject *hport = args[0], *entries = args[1], *count = args[2], *removed = args[3];
    PyObject *ms = args[4], *alertable = args[5];
    PyObject *port, *res = NULL;
    if (!PyList_CheckExact(entries) || !PyLong_CheckExact(count) || !PyLong_CheckExact(ms) ||
        !(alertable == Py_False || (PyLong_CheckExact(alertable) && _PyLong_Sign(alertable) == 0))) {
        goto python;
    }
    int overflow;
    long long n = PyLong_AsLongLongAndOverflow(count, &overflow);
    if (overflow || n < 1 || n > PyList_GET_SIZE(entries)) {
        goto python;
    }
    long long timeout = PyLong_AsLongLongAndOverflow(ms, &overflow);
    if (overflow || timeout != 0xFFFFFFFFLL) {
        goto python; /* a finite wait: the Python function (seconds(), its errors) */
    }
    int hot = fio_handle_object(g_handle_entry, hport, k_port.base, &port);
    if (hot <= 0) {
        return hot < 0 ? NULL : PyObject_Vectorcall(g_py_gqcs, args, (size_t)nargs, NULL);
    }
    {
        PyObject *call[3] = {port, count, Py_None};
        res = PyObject_VectorcallMethod(s_get_many, call, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    if (res == NULL) {
        Py_DECREF(port);
        return PyErr_ExceptionMatches(g_win32_error) ? fio_call_fail(g_gqcs_failed, removed)
                                                      : NULL;
    }
    if (!PyTuple_CheckExact(res) || PyTuple_GET_SIZE(res) != 2) {
        goto after; /* (never: get_many returns (code, packets)) */
    }
    PyObject *packets = PyTuple_GET_ITEM(res, 1);
    if (!PyList_CheckExact(packets) || PyList_GET_SIZE(packets) == 0 ||
        PyList_GET_SIZE(packets) > PyList_GET_SIZE(entries) || Py_TYPE(removed) != k_ref.base) {
        goto after;
    }
    Py_ssize_t got = PyList_GET_SIZE(packets);
    for (Py_ssize_t i = 0; i < got; i++) {
        PyObject *p = PyList_GET_ITEM(packets, i);
        if (Py_TYPE(PyList_GET_ITEM(entries, i)) != k_entry.base || !PyTuple_Check(p) ||
            PyTuple_GET_SIZE(p) != 4) {
            goto after;
        }
    }
    if (!kind_fast(&k_entry, k_entry.base) || !kind_fast(&k_ref, k_ref.base)) {
        goto after;
    }
    PyObject *value = PyLong_FromSsize_t(got); /* before any entry is written */
    if (value == NULL) {
        PyErr_Clear(); /* the Python continuation writes them, or puts the packets back */
        goto after;
    }
    for (Py_ssize_t i = 0; i < got; i++) {
        PyObject *p = PyList_GET_ITEM(packets, i);
        PyObject *out = PyList_GET_ITEM(entries, i);
        for (int f = 0; f < 4; f++) {
            set(&k_entry, 1, out, f, Py_NewRef(PyTuple_GET_ITEM(p, f)));
        }
    }
    set(&k_ref, 1, removed, 0, value);
    Py_DECREF(port);
    Py_DECREF(res);
    Py_RETURN_TRUE;

after: {
    PyObject *code = PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 2 ? PyTuple_GET_ITEM(res, 0)
                                                                      : Py_None;
    PyObject *pk = PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 2 ? PyTuple_GET_ITEM(res, 1)
                                                                    : res;
    PyObject *a[5] = {port, code, pk, entries, removed};
    PyObject *r = PyObject_Vectorcall(g_gqcs_after, a, 5, NULL);
    Py_DECREF(port);
    Py_DECREF(res);
    return r;
}
python:
    return PyObject_Vectorcall(g_py_gqcs, args, (size_t)nargs, NULL);
}

static PyMethodDef gqcs_ex_def = {
    "GetQueuedCompletionStatusEx", (PyCFunction)(void (*)(void))gqcs_ex, METH_FASTCALL,
    "GetQueuedCompletionStatusEx(CompletionPort, lpCompletionPortEntries, ulCount,\n"
    "    ulNumEntriesRemoved, dwMilliseconds, fAlertable)\n--\n\n"
    "[MS:GetQueuedCompletionStatusEx] -> core ``CompletionPort.get_many`` (the C accelerator of\n"
    "the Python function's hot shape; every other call runs the Python function)."};

PyObject *
configure_gqcs(PyObject *module, PyObject *args)
{
    PyTypeObject *entryt, *reft;
    PyObject *py, *handle_entry, *after, *failed, *err;
    if (!PyArg_ParseTuple(args, "OO!O!OOOO:configure_gqcs", &py, &PyType_Type, &entryt,
                          &PyType_Type, &reft, &handle_entry, &after, &failed, &err)) {
        return NULL;
    }
    if (!g_configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    if (g_handle_entry != NULL && g_handle_entry != handle_entry) {
        PyErr_SetString(PyExc_RuntimeError, "one handle table");
        return NULL;
    }
    if (g_py_gqcs != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_gqcs() is called once");
        return NULL;
    }
    if (kind_init(&k_entry, entryt, ENTRY_NAMES) < 0 || kind_init(&k_ref, reft, REF_NAMES) < 0) {
        return NULL;
    }
    s_get_many = PyUnicode_InternFromString("get_many");
    if (s_get_many == NULL) {
        return NULL;
    }
    if (g_handle_entry == NULL) {
        g_handle_entry = Py_NewRef(handle_entry);
    }
    FIO_KEEP({&g_py_gqcs, py}, {&g_gqcs_after, after}, {&g_gqcs_failed, failed},
             {&g_win32_error, err});
    return fio_win32_function(&gqcs_ex_def);
}

