/* winaio._io._fastio (part): the ReceiveSlot and SlotTable types (cslot, 2026-12-06).
 *
 * One ReceiveSlot per socket holds the current incarnation of its pended receive in C fields
 * (docs/plans/receive-slot.md §2); one SlotTable per io_uring backend holds the slots by
 * index and counts the incarnations in the kernel. This file is the data only: every field is
 * a member Python reads and writes (the Python twins' attribute names, so the reference
 * functions of ``_io/_slot.py`` and ``uring/slots.py`` run on either class), the buffer's
 * pin/unpin, ``pending()``, and the GC's traverse/clear. The transitions are made by those
 * Python functions and, for the hot shapes only, by the C paths (``_fastslot.h``).
 *
 * Invariants: see ``_fastslot.h``. A slot is GC-tracked: the socket -> slot -> socket cycle
 * exists while an incarnation is out (the SlotTable keeps both reachable), and a backend
 * dropped without ``close()`` must not leak it. ``tp_clear`` releases the buffer's export too.
 */
#include "_fastslot.h"

/* ------------------------------------------------------------------ ReceiveSlot */

int
slot_pin(ReceiveSlotObject *s)
{
    if (s->buf.obj != NULL) {
        PyErr_SetString(PyExc_ValueError, "the slot's buffer is pinned already");
        return -1;
    }
    if (s->view == NULL) {
        PyErr_SetString(PyExc_AttributeError, "view");
        return -1;
    }
    Py_buffer b;
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    if (Py_IS_TYPE(s->view, &PyByteArray_Type)) {
        /* An exact bytearray (the sockets' C receive pins it itself): its export made as
         * 3.11's ``bytearray_getbuffer`` makes it for PyBUF_WRITABLE (``PyBuffer_FillInfo``:
         * the whole bytes, writable, 1-D, no shape; the export counted, so that it cannot be
         * resized), without the generic call (~100 instructions of a pended receive's; pend,
         * session 13). ``slot_unpin``'s ``PyBuffer_Release`` undoes it as any export. */
        memset(&b, 0, sizeof(b));
        b.obj = Py_NewRef(s->view);
        b.buf = PyByteArray_AS_STRING(s->view);
        b.len = PyByteArray_GET_SIZE(s->view);
        b.itemsize = 1;
        b.ndim = 1;
        ((PyByteArrayObject *)s->view)->ob_exports++;
        s->buf = b;
        s->addr = b.buf;
        s->nbytes = b.len;
        return 0;
    }
#endif
    if (PyMemoryView_Check(s->view)) {
        /* The object under the memoryview, exported whole (what the twin's anchor, a new
         * memoryview of ``view``, keeps exported), when the view's bytes lie in it. */
        PyMemoryViewObject *mv = (PyMemoryViewObject *)s->view;
        Py_buffer *vb = &mv->view;
        if (mv->flags & _Py_MEMORYVIEW_RELEASED) {
            PyErr_SetString(PyExc_ValueError, "operation forbidden on released memoryview object");
            return -1;
        }
        if (vb->readonly || !PyBuffer_IsContiguous(vb, 'C')) {
            PyErr_SetString(PyExc_BufferError, "the view is not a writable contiguous buffer");
            return -1;
        }
        PyObject *base = mv->mbuf->master.obj;
        if (base != NULL && PyObject_GetBuffer(base, &b, PyBUF_WRITABLE) == 0) {
            char *at = vb->buf;
            if (at >= (char *)b.buf && at + vb->len <= (char *)b.buf + b.len) {
                s->buf = b;
                s->addr = at;
                s->nbytes = vb->len;
                return 0;
            }
            PyBuffer_Release(&b);
        }
        PyErr_Clear(); /* (no such object: the view itself, below) */
    }
    /* (PyBUF_WRITABLE alone: a C-contiguous export whose ``len`` is the whole buffer; a
     * read-only or strided buffer raises BufferError/TypeError and nothing is pinned) */
    if (PyObject_GetBuffer(s->view, &b, PyBUF_WRITABLE) < 0) {
        return -1;
    }
    s->buf = b;
    s->addr = b.buf;
    s->nbytes = b.len;
    return 0;
}

void
slot_unpin(ReceiveSlotObject *s)
{
    if (s->buf.obj != NULL) {
        Py_buffer b = s->buf;
        memset(&s->buf, 0, sizeof(s->buf)); /* (unpinned before the release runs any code) */
        s->addr = NULL;
        s->nbytes = 0;
        PyBuffer_Release(&b);
    }
}

void
slot_release_refs(ReceiveSlotObject *s, slot_drops_t *d)
{
    slot_drop_t local, *e = &local;
    if (d->n < SLOT_DROPS_INLINE) {
        e = &d->inline_[d->n++];
    }
    else {
        Py_ssize_t i = d->n - SLOT_DROPS_INLINE;
        if (i >= d->cap) {
            Py_ssize_t cap = d->cap ? 2 * d->cap : 16;
            slot_drop_t *more = PyMem_Realloc(d->more, (size_t)cap * sizeof(slot_drop_t));
            if (more != NULL) {
                d->more = more;
                d->cap = cap;
            }
        }
        if (i < d->cap) {
            e = &d->more[i];
            d->n++;
        }
    }
    PyObject **fields[6] = {&s->file, &s->overlapped, &s->issuer, &s->view, &s->op, &s->ud};
    for (int k = 0; k < 6; k++) {
        e->refs[k] = *fields[k];
        *fields[k] = Py_NewRef(Py_None);
    }
    e->buf = s->buf;
    memset(&s->buf, 0, sizeof(s->buf));
    s->addr = NULL;
    s->nbytes = 0;
    s->res = 0;
    if (e == &local) {
        /* (no room: released now) */
        for (int k = 0; k < 6; k++) {
            Py_XDECREF(local.refs[k]);
        }
        if (local.buf.obj != NULL) {
            PyBuffer_Release(&local.buf);
        }
    }
}

void
slot_drops_release(slot_drops_t *d)
{
    for (Py_ssize_t i = 0; i < d->n; i++) {
        slot_drop_t *e = i < SLOT_DROPS_INLINE ? &d->inline_[i] : &d->more[i - SLOT_DROPS_INLINE];
        if (e->buf.obj != NULL) {
            PyBuffer_Release(&e->buf);
        }
        for (int k = 0; k < 6; k++) {
            Py_XDECREF(e->refs[k]);
        }
    }
    PyMem_Free(d->more);
    slot_drops_init(d);
}

static int
slot_traverse(ReceiveSlotObject *s, visitproc visit, void *arg)
{
    Py_VISIT(s->file);
    Py_VISIT(s->overlapped);
    Py_VISIT(s->issuer);
    Py_VISIT(s->view);
    Py_VISIT(s->ud);
    Py_VISIT(s->op);
    Py_VISIT(s->table);
    Py_VISIT(s->buf.obj);
    return 0;
}

static int
slot_clear(ReceiveSlotObject *s)
{
    slot_unpin(s);
    Py_CLEAR(s->file);
    Py_CLEAR(s->overlapped);
    Py_CLEAR(s->issuer);
    Py_CLEAR(s->view);
    Py_CLEAR(s->ud);
    Py_CLEAR(s->op);
    Py_CLEAR(s->table);
    return 0;
}

static void
slot_dealloc(ReceiveSlotObject *s)
{
    PyObject_GC_UnTrack(s);
    if (s->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)s);
    }
    slot_clear(s);
    Py_TYPE(s)->tp_free(s); /* (a static type: no reference of the instance on it) */
}

PyObject *
slot_create(PyObject *table)
{
    PyTypeObject *tp = &ReceiveSlot_Type;
    ReceiveSlotObject *s = (ReceiveSlotObject *)tp->tp_alloc(tp, 0);
    if (s == NULL) {
        return NULL;
    }
    s->index = SLOT_NO_INDEX;
    s->gen = 0;
    s->state = SLOT_IDLE;
    s->eligible_mode = 0;
    s->res = 0;
    s->file = Py_NewRef(Py_None);
    s->overlapped = Py_NewRef(Py_None);
    s->issuer = Py_NewRef(Py_None);
    s->view = Py_NewRef(Py_None);
    s->ud = Py_NewRef(Py_None);
    s->op = Py_NewRef(Py_None);
    s->table = Py_NewRef(table);
    return (PyObject *)s;
}

static PyObject *
slot_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"table", NULL};
    PyObject *table = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:ReceiveSlot", kwlist, &table)) {
        return NULL;
    }
    return slot_create(table);
}

static PyObject *
slot_pin_meth(ReceiveSlotObject *s, PyObject *unused)
{
    if (slot_pin(s) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
slot_unpin_meth(ReceiveSlotObject *s, PyObject *unused)
{
    slot_unpin(s);
    Py_RETURN_NONE;
}

/* An incarnation is out and no request stands for it (ARMING..DELIVERING without ``op``):
 * ``FileObject.pending_requests`` counts it (a demoted incarnation is counted by its op). */
static inline int
slot_is_pending(const ReceiveSlotObject *s)
{
    return (s->op == NULL || s->op == Py_None) && s->state >= SLOT_ARMING &&
           s->state <= SLOT_DELIVERING;
}

static PyObject *
slot_pending(ReceiveSlotObject *s, PyObject *unused)
{
    return PyLong_FromLong(slot_is_pending(s));
}

static PyObject *
slot_get_address(ReceiveSlotObject *s, void *closure)
{
    return PyLong_FromVoidPtr(s->buf.obj != NULL ? s->addr : NULL);
}

static PyObject *
slot_get_nbytes(ReceiveSlotObject *s, void *closure)
{
    return PyLong_FromSsize_t(s->buf.obj != NULL ? s->nbytes : 0);
}

static PyObject *
slot_get_pinned(ReceiveSlotObject *s, void *closure)
{
    return PyBool_FromLong(s->buf.obj != NULL);
}

static PyObject *
slot_get_user_data(ReceiveSlotObject *s, void *closure)
{
    return PyLong_FromUnsignedLongLong(slot_user_data(s));
}

static PyObject *
slot_repr(ReceiveSlotObject *s)
{
    return PyUnicode_FromFormat("<ReceiveSlot index=%u gen=%u state=%u>", (unsigned)s->index,
                                (unsigned)s->gen, (unsigned)s->state);
}

#define SLOT_OFF(f) offsetof(ReceiveSlotObject, f)

static PyMemberDef slot_members[] = {
    {"index", T_UINT, SLOT_OFF(index), 0, "index in the SlotTable (2**32-1: none yet)"},
    {"gen", T_UINT, SLOT_OFF(gen), 0, "incarnation number (31 bits)"},
    {"state", T_UBYTE, SLOT_OFF(state), 0, "IDLE ARMING ARMED REAPED DELIVERING DEMOTING_A/K DEAD"},
    {"eligible_mode", T_UBYTE, SLOT_OFF(eligible_mode), 0, "notification mode's snapshot"},
    {"res", T_INT, SLOT_OFF(res), 0, "the CQE's byte count while REAPED"},
    {"file", T_OBJECT_EX, SLOT_OFF(file), 0, "the file (strong while not IDLE)"},
    {"overlapped", T_OBJECT_EX, SLOT_OFF(overlapped), 0, "the OVERLAPPED"},
    {"issuer", T_OBJECT_EX, SLOT_OFF(issuer), 0, "the issuer's ThreadState"},
    {"view", T_OBJECT_EX, SLOT_OFF(view), 0, "the caller's memoryview"},
    {"ud", T_OBJECT_EX, SLOT_OFF(ud), 0, "the incarnation's user_data (an int)"},
    {"op", T_OBJECT_EX, SLOT_OFF(op), 0, "the demoted request of this incarnation, or None"},
    {"table", T_OBJECT_EX, SLOT_OFF(table), 0, "the SlotTable"},
    {"__weaklistoffset__", T_PYSSIZET, SLOT_OFF(weakrefs), READONLY, NULL},
    {NULL, 0, 0, 0, NULL}};

static PyMethodDef slot_methods[] = {
    {"pin", (PyCFunction)slot_pin_meth, METH_NOARGS,
     "pin(): export ``view`` (writable, C-contiguous) until unpin(): its memory cannot move"},
    {"unpin", (PyCFunction)slot_unpin_meth, METH_NOARGS, "unpin(): release the export, if any"},
    {"pending", (PyCFunction)slot_pending, METH_NOARGS,
     "pending(): 1 for ARMING/ARMED/REAPED/DELIVERING without op, else 0"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef slot_getset[] = {
    {"address", (getter)slot_get_address, NULL, "the pinned buffer's address (0: none)", NULL},
    {"nbytes", (getter)slot_get_nbytes, NULL, "the pinned buffer's length (0: none)", NULL},
    {"pinned", (getter)slot_get_pinned, NULL, "the buffer is pinned", NULL},
    {"user_data", (getter)slot_get_user_data, NULL,
     "SLOT_TAG | (gen & 0x7fffffff) << 32 | index", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject ReceiveSlot_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "winaio._io._fastio.ReceiveSlot",
    .tp_basicsize = sizeof(ReceiveSlotObject),
    .tp_dealloc = (destructor)slot_dealloc,
    .tp_repr = (reprfunc)slot_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "ReceiveSlot(table=None): a socket's reusable pended receive (C fields).",
    .tp_traverse = (traverseproc)slot_traverse,
    .tp_clear = (inquiry)slot_clear,
    .tp_weaklistoffset = SLOT_OFF(weakrefs),
    .tp_methods = slot_methods,
    .tp_members = slot_members,
    .tp_getset = slot_getset,
    .tp_new = slot_new,
};

/* ------------------------------------------------------------------ SlotTable */

static int
table_traverse(SlotTableObject *t, visitproc visit, void *arg)
{
    Py_VISIT(t->items);
    Py_VISIT(t->free);
    return 0;
}

static int
table_clear(SlotTableObject *t)
{
    Py_CLEAR(t->items);
    Py_CLEAR(t->free);
    return 0;
}

static void
table_dealloc(SlotTableObject *t)
{
    PyObject_GC_UnTrack(t);
    table_clear(t);
    Py_TYPE(t)->tp_free(t);
}

static PyObject *
table_new(PyTypeObject *tp, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "SlotTable() takes no arguments");
        return NULL;
    }
    SlotTableObject *t = (SlotTableObject *)tp->tp_alloc(tp, 0);
    if (t == NULL) {
        return NULL;
    }
    t->items = PyList_New(0);
    t->free = PyList_New(0);
    if (t->items == NULL || t->free == NULL) {
        Py_DECREF(t);
        return NULL;
    }
    return (PyObject *)t;
}

static PyObject *
table_repr(SlotTableObject *t)
{
    return PyUnicode_FromFormat("<SlotTable items=%zd armed=%zd submitted=%zd done=%zd>",
                                t->items != NULL ? PyList_GET_SIZE(t->items) : 0, t->armed,
                                t->submitted, t->done);
}

#define TABLE_OFF(f) offsetof(SlotTableObject, f)

static PyMemberDef table_members[] = {
    {"items", T_OBJECT_EX, TABLE_OFF(items), 0, "the slots by index (entries never move)"},
    {"free", T_OBJECT_EX, TABLE_OFF(free), 0, "free indices"},
    {"armed", T_PYSSIZET, TABLE_OFF(armed), 0, "incarnations in the kernel (part of _in_flight)"},
    {"submitted", T_PYSSIZET, TABLE_OFF(submitted), 0, "RECVs made by slots"},
    {"done", T_PYSSIZET, TABLE_OFF(done), 0, "of which reaped"},
    {"cancelled", T_PYSSIZET, TABLE_OFF(cancelled), 0, "of which cancelled"},
    {NULL, 0, 0, 0, NULL}};

PyTypeObject SlotTable_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "winaio._io._fastio.SlotTable",
    .tp_basicsize = sizeof(SlotTableObject),
    .tp_dealloc = (destructor)table_dealloc,
    .tp_repr = (reprfunc)table_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "SlotTable(): a backend's receive slots by index and their counters.",
    .tp_traverse = (traverseproc)table_traverse,
    .tp_clear = (inquiry)table_clear,
    .tp_members = table_members,
    .tp_new = table_new,
};

/* ------------------------------------------------------------------ module */

int
fastslot_add_types(PyObject *module)
{
    if (PyType_Ready(&ReceiveSlot_Type) < 0 || PyType_Ready(&SlotTable_Type) < 0) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "ReceiveSlot", (PyObject *)&ReceiveSlot_Type) < 0 ||
        PyModule_AddObjectRef(module, "SlotTable", (PyObject *)&SlotTable_Type) < 0) {
        return -1;
    }
    static const struct {
        const char *name;
        int value;
    } states[] = {{"SLOT_IDLE", SLOT_IDLE},
                  {"SLOT_ARMING", SLOT_ARMING},
                  {"SLOT_ARMED", SLOT_ARMED},
                  {"SLOT_REAPED", SLOT_REAPED},
                  {"SLOT_DELIVERING", SLOT_DELIVERING},
                  {"SLOT_DEMOTING_A", SLOT_DEMOTING_A},
                  {"SLOT_DEMOTING_K", SLOT_DEMOTING_K},
                  {"SLOT_DEAD", SLOT_DEAD}};
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        if (PyModule_AddIntConstant(module, states[i].name, states[i].value) < 0) {
            return -1;
        }
    }
    return 0;
}
