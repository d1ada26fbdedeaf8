/* winaio._io._fastio (part): the completion side of the C receive slot (cslot, 2026-12-06;
 * docs/plans/receive-slot.md §3, steps 4-5).
 *
 * What it replaces, for the C ``ReceiveSlot`` only (exact type):
 * - ``Reaper._reap_slot``'s plain case, for a batch made only of plain slot CQEs (each one's
 *   user_data tagged and not in the in-flight table, its slot ARMED at that generation, data
 *   in it, the reaper not closing, no migration): REAPED under one hold of the backend's lock
 *   (``res`` stored, ``armed`` - 1, ``done`` + 1) and appended to ``finished``
 *   (``dn_slot_batch``). Any other batch goes whole to the Python ``process`` before anything
 *   is touched; so does a batch in which a demoter reached a slot between the check and the
 *   lock (found under the lock, before anything is written: no hand-off list to allocate,
 *   whose failure would lose that CQE; the Python ``_reap_slot`` settles the demotion).
 * - ``_dispatch._deliver_slot_locked`` and ``_slot_done_locked`` (``dn_deliver_slot``, called
 *   by ``dn_deliver_batch`` under LOCK for a slot item): the IOSB, F unless
 *   FILE_SKIP_SET_EVENT_ON_HANDLE (``wake_waiters`` if waiters), the packet through the
 *   batch's held ports, then ``stream_in`` - 1, IDLE, ``gen`` + 1, the references moved to the
 *   batch's drops (released after LOCK), and a closing file's ``_release_fd`` (Python, last).
 *   A slot demoted while REAPED hands its request back to the caller, delivered as any.
 *
 * Invariants: as the C funnel's (``_fastdone.c``): Python is called last in each step
 * (``wake_waiters``, ``_release_fd``, a port's own ``_post_locked``), an interrupt at its entry
 * is kept and the delivery goes on so that the slot's state is written whole before it
 * propagates; an Exception stops this slot's delivery and is returned to the batch's errors.
 * Between the reaper's check and its writes no Python code runs but a contended lock's wait
 * and a collection in ``finished``'s growth (which let a demoter in: every slot is checked
 * again under the lock, and the batch written whole or not at all).
 */
#include "_fastdone.h"
#include "_fastslot.h"

_Static_assert(sizeof(unsigned long) == sizeof(uint64_t), "LP64: a user_data in an unsigned long");

/* ------------------------------------------------------------------ delivery */

int
dn_deliver_slot(PyObject *item, held_t *h, slot_drops_t *drops, PyObject **op_out,
                PyObject **info_out)
{
    ReceiveSlotObject *s = (ReceiveSlotObject *)item;
    *op_out = *info_out = NULL;
    if (s->state != SLOT_REAPED) {
        return 0; /* delivered already (``ReaperCuts.deliver_rest``) */
    }
    PyObject *info = PyLong_FromLong(s->res);
    if (info == NULL) {
        return -1; /* (nothing written: the slot stays REAPED) */
    }
    if (s->op != NULL && s->op != Py_None) {
        /* demoted while REAPED: its request is the completion (the caller delivers it) */
        *op_out = Py_NewRef(s->op);
        *info_out = info;
        s->state = SLOT_IDLE;
        s->gen = (s->gen + 1) & SLOT_GEN_MASK;
        slot_release_refs(s, drops);
        return 0;
    }
    s->state = SLOT_DELIVERING; /* from here its notification steps are never made twice */
    PyObject *et = NULL, *ev = NULL, *etb = NULL; /* an interrupt, raised at the end */
    PyObject *file = Py_NewRef(s->file), *ov = Py_NewRef(s->overlapped);
    int r, ffast = kind_fast(&d_file, Py_TYPE(file));
    int vfast = kind_fast(&d_ov, Py_TYPE(ov));
    if (set(&d_ov, vfast, ov, OV_INFORMATION, Py_NewRef(info)) < 0 ||
        set(&d_ov, vfast, ov, OV_STATUS, Py_NewRef(d_success)) < 0) {
        goto out;
    }
    if ((r = truth(&d_file, ffast, file, FI_SKIP_SET)) < 0) {
        goto out;
    }
    if (!r) {
        if (set(&d_file, ffast, file, FI_SIGNALED, Py_NewRef(Py_True)) < 0 ||
            (r = truth(&d_file, ffast, file, FI_WAITERS)) < 0) {
            goto out;
        }
        if (r && call_step(fio_wake(d_wake_waiters, file), &et, &ev, &etb) < 0) {
            goto out;
        }
    }
    PyObject *port = get(&d_file, ffast, file, FI_PORT);
    if (port == NULL) {
        goto out;
    }
    r = port == Py_None ? 0 : dn_post(port, file, ffast, ov, d_success, info, h);
    Py_DECREF(port);
    if (r < 0 && call_step(NULL, &et, &ev, &etb) < 0) {
        goto out;
    }
    /* ``_slot_done_locked`` */
    if (decrement(&d_file, ffast, file, FI_IN) < 0 && call_step(NULL, &et, &ev, &etb) < 0) {
        goto out;
    }
    s->state = SLOT_IDLE;
    s->gen = (s->gen + 1) & SLOT_GEN_MASK;
    slot_release_refs(s, drops);
    if ((r = truth(&d_file, ffast, file, FI_CLOSING)) > 0) {
        PyObject *pending = get(&d_file, ffast, file, FI_PENDING);
        r = pending == NULL ? -1 : PyObject_IsTrue(pending);
        Py_XDECREF(pending);
        if (r == 0) {
            PyObject *args[1] = {file};
            if (call_step(fio_again(NULL, ds_release_fd, args, 1), &et, &ev, &etb) < 0) {
                goto out;
            }
        }
    }
    if (r < 0) {
        call_step(NULL, &et, &ev, &etb);
    }
out:
    Py_DECREF(info);
    Py_DECREF(file);
    Py_DECREF(ov);
    if (et != NULL) {
        /* an interrupt: it wins over an Exception that stopped the delivery after it */
        PyErr_Restore(et, ev, etb);
        return -1;
    }
    return PyErr_Occurred() ? -1 : 1;
}

/* ------------------------------------------------------------------ the reaper's batch */

/* The slot of a plain CQE ``cqe`` (its user_data tagged, not in ``table``, its slot the C type
 * ARMED at that generation, a positive result that fits the field): borrowed, else NULL
 * (no error: the Python method). ``*res`` is the byte count. */
static ReceiveSlotObject *
plain_slot(PyObject *cqe, PyObject *table, PyObject *items, uint32_t *index_out, uint32_t *gen,
           int32_t *res)
{
    if (!PyTuple_CheckExact(cqe) || PyTuple_GET_SIZE(cqe) != 3) {
        return NULL;
    }
    PyObject *ud_o = PyTuple_GET_ITEM(cqe, 0), *res_o = PyTuple_GET_ITEM(cqe, 1);
    if (!PyLong_CheckExact(ud_o) || !PyLong_CheckExact(res_o) || _PyLong_Sign(res_o) <= 0) {
        return NULL;
    }
    /* (``unsigned long``: 64 bits on LP64, read digit by digit; CPython 3.11's ``unsigned
     * long long`` conversion of a 3-digit int goes through ``_PyLong_AsByteArray``, ~10x the
     * instructions: deliver, 2026-12-06) */
    unsigned long long ud = PyLong_AsUnsignedLong(ud_o);
    long r = PyLong_AsLong(res_o);
    if (PyErr_Occurred() || !(ud & SLOT_TAG_BIT) || r > INT32_MAX) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *entry = PyDict_GetItemWithError(table, ud_o); /* (a demoted incarnation's) */
    if (entry != NULL || PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    Py_ssize_t index = (Py_ssize_t)(ud & 0xffffffffu);
    if (index >= PyList_GET_SIZE(items)) {
        return NULL;
    }
    PyObject *slot = PyList_GET_ITEM(items, index);
    *gen = (uint32_t)(ud >> 32) & SLOT_GEN_MASK;
    if (!ReceiveSlot_CheckExact(slot) || ((ReceiveSlotObject *)slot)->gen != *gen ||
        ((ReceiveSlotObject *)slot)->state != SLOT_ARMED) {
        return NULL;
    }
    *res = (int32_t)r;
    *index_out = (uint32_t)index;
    return (ReceiveSlotObject *)slot;
}

/* A checked CQE: its slot's index, the incarnation's generation, the byte count. */
typedef struct {
    uint32_t index, gen;
    int32_t res;
} slot_cqe_t;
#define SLOT_BATCH_INLINE 64

/* ``None`` from the finished list's tail: ``k`` placeholders dropped (no allocation). */
static void
drop_tail(PyObject *list, Py_ssize_t k)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    for (Py_ssize_t i = n - k; i < n; i++) {
        Py_DECREF(PyList_GET_ITEM(list, i));
    }
    Py_SET_SIZE(list, n - k);
}

PyObject *
dn_slot_batch(PyObject *self, PyObject *cqes, PyObject *finished)
{
    /* The reaper's state as ``process`` reads it: not closing, no migration in progress. */
    if (!d_configured || !PyList_CheckExact(cqes) || !PyList_CheckExact(finished) ||
        !kind_fast(&d_reaper, Py_TYPE(self))) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *table = *(PyObject **)((char *)self + d_reaper.offsets[RE_TABLE]);
    PyObject *migration = *(PyObject **)((char *)self + d_reaper.offsets[RE_MIGRATION]);
    PyObject *streams = *(PyObject **)((char *)self + d_reaper.offsets[RE_STREAMS]);
    PyObject *slots = *(PyObject **)((char *)self + d_reaper.offsets[RE_SLOTS]);
    PyObject *closing = *(PyObject **)((char *)self + d_reaper.offsets[RE_CLOSING]);
    if (table == NULL || !Py_IS_TYPE(table, d_inflight_type) || migration == NULL ||
        streams == NULL || slots == NULL || closing != Py_False ||
        !kind_fast(&d_migration, Py_TYPE(migration))) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *migrating = *(PyObject **)((char *)migration + d_migration.offsets[MI_MIGRATING]);
    if (migrating == NULL || !PyAnySet_CheckExact(migrating) || PySet_GET_SIZE(migrating)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    Py_ssize_t n = PyList_GET_SIZE(cqes);
    if (n == 0 || !SlotTable_CheckExact(slots)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    SlotTableObject *t = (SlotTableObject *)slots;
    PyObject *items = t->items;
    if (items == NULL || !PyList_CheckExact(items) || !kind_fast(&d_lines, Py_TYPE(streams))) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *lock = *(PyObject **)((char *)streams + d_lines.offsets[SL_LOCK]);
    if (lock == NULL) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    /* The check, touching nothing; each CQE's index, generation and byte count kept for the
     * check under the lock. */
    uint32_t index, gen;
    int32_t res;
    slot_cqe_t small[SLOT_BATCH_INLINE];
    slot_cqe_t *kept = n <= SLOT_BATCH_INLINE ? small : PyMem_Malloc((size_t)n * sizeof *kept);
    if (kept == NULL) {
        PyErr_Clear();
        Py_RETURN_NOTIMPLEMENTED;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        ReceiveSlotObject *s = plain_slot(PyList_GET_ITEM(cqes, i), table, items, &index, &gen, &res);
        if (s == NULL) {
            if (kept != small) {
                PyMem_Free(kept);
            }
            Py_RETURN_NOTIMPLEMENTED;
        }
        kept[i] = (slot_cqe_t){index, gen, res};
    }
    /* Room in ``finished`` first (the only allocations; nothing is touched if one fails: the
     * Python method, which takes the batch whole). */
    Py_ssize_t start = PyList_GET_SIZE(finished);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_Append(finished, Py_None) < 0) {
            PyErr_Clear();
            drop_tail(finished, i);
            if (kept != small) {
                PyMem_Free(kept);
            }
            Py_RETURN_NOTIMPLEMENTED;
        }
    }
    Py_INCREF(lock);
    /* The CQEs are reaped: a contended wait cut by an interrupt is kept and goes on (the
     * interrupt is raised once the batch is in ``finished``: ``cuts.deliver_rest`` delivers it). */
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    while (fio_acquire(lock) < 0) {
        fio_keep_first(NULL, &et, &ev, &etb);
    }
    /* Under the lock: no Python code runs, nothing is allocated. The wait (and the
     * allocations above: a collection) may have let a demoter in: every slot is checked
     * again, read afresh from ``items`` (an index in flight is never reused), and the batch is
     * written whole or not at all. A slot whose demoter made step 1 only (DEMOTING_K at the
     * CQE's generation: its step 2 waits for this lock) is reaped with its request: REAPED
     * with ``op`` set, the state a demotion made after the reap gives, whose delivery is the
     * request's (its step 2 then finds nothing to do). One whose demoter made both steps is
     * a request in the table (IDLE at the next generation): not plain. */
    int all_plain = 1;
    items = t->items;
    for (Py_ssize_t i = 0; all_plain && i < n; i++) {
        PyObject *o = items != NULL && PyList_CheckExact(items) &&
                              (Py_ssize_t)kept[i].index < PyList_GET_SIZE(items)
                          ? PyList_GET_ITEM(items, kept[i].index)
                          : NULL;
        ReceiveSlotObject *s = (ReceiveSlotObject *)o;
        all_plain = o != NULL && ReceiveSlot_CheckExact(o) && s->gen == kept[i].gen &&
                    (s->state == SLOT_ARMED ||
                     (s->state == SLOT_DEMOTING_K && s->op != NULL && s->op != Py_None));
    }
    if (all_plain) {
        for (Py_ssize_t i = 0; i < n; i++) {
            ReceiveSlotObject *s = (ReceiveSlotObject *)PyList_GET_ITEM(items, kept[i].index);
            s->res = kept[i].res;
            s->state = SLOT_REAPED;
            t->armed--;
            t->done++;
            PyObject **at = &PyList_GET_ITEM(finished, start + i);
            Py_DECREF(*at); /* (None) */
            *at = Py_NewRef((PyObject *)s);
        }
    }
    fio_release(lock);
    Py_DECREF(lock);
    if (kept != small) {
        PyMem_Free(kept);
    }
    PyObject *result;
    if (all_plain) {
        result = Py_NewRef(Py_None);
    }
    else {
        /* A demoter made both steps meanwhile (the CQE is its request's, in the table):
         * nothing was written, and the batch goes whole to the Python method, which maps each
         * CQE. No hand-off list: an allocation failing here would lose the demoted CQE,
         * which nobody else holds. */
        drop_tail(finished, n);
        PyObject *a[3] = {self, cqes, finished};
        result = PyObject_Vectorcall(d_py_process, a, 3, NULL);
    }
    if (et != NULL || ev != NULL) {
        Py_CLEAR(result);
        PyErr_Clear();
        PyErr_Restore(et, ev, etb);
    }
    return result;
}
