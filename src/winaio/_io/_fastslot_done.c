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
 * - ``Reaper.reap``'s own batch when every CQE in the CQ ring is such a plain slot CQE
 *   (``dn_slot_reap``, from the C ``Reaper.reap`` under cq_lock; deliver, 2026-12-06): the
 *   CQEs read in place - no CQE tuples, no list, no ``_batch_locked`` frame - checked, REAPED
 *   as above, the CQ head moved past them once the slots are written (every allocation made
 *   before: nothing fails in between), then ``self.deliver``. Anything else, or a failed
 *   allocation, leaves the ring untouched for the general path (``ring.reap``,
 *   ``_batch_locked``).
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
/* (the ring's CQ words, ``dn_slot_reap``; its ``is_true`` - NULL an AttributeError - renamed
 * away from the funnel's) */
#define is_true ring_is_true
#include "_fastring.h"
#undef is_true
#include "_fastslot.h"

_Static_assert(sizeof(unsigned long) == sizeof(uint64_t),
               "LP64: a user_data fits an unsigned long");

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

/* The reaper's parts a slot batch reads, as ``process`` reads them: not closing, no
 * migration in progress, the exact C types (borrowed). */
typedef struct {
    PyObject *table;    /* the in-flight table */
    SlotTableObject *t; /* the slot table */
    PyObject *lock;     /* the STREAM lines' lock (the backend's) */
} slot_ctx_t;

/* 1 when the reaper ``self`` is in the state a batch of slots may be reaped in (``x`` set), 0
 * when the Python method must run (no error). */
static int
slot_ctx(PyObject *self, slot_ctx_t *x)
{
    if (!d_configured || !kind_fast(&d_reaper, Py_TYPE(self))) {
        return 0;
    }
    PyObject *table = *(PyObject **)((char *)self + d_reaper.offsets[RE_TABLE]);
    PyObject *migration = *(PyObject **)((char *)self + d_reaper.offsets[RE_MIGRATION]);
    PyObject *streams = *(PyObject **)((char *)self + d_reaper.offsets[RE_STREAMS]);
    PyObject *slots = *(PyObject **)((char *)self + d_reaper.offsets[RE_SLOTS]);
    PyObject *closing = *(PyObject **)((char *)self + d_reaper.offsets[RE_CLOSING]);
    if (table == NULL || !Py_IS_TYPE(table, d_inflight_type) || migration == NULL ||
        streams == NULL || slots == NULL || closing != Py_False ||
        !kind_fast(&d_migration, Py_TYPE(migration))) {
        return 0;
    }
    PyObject *migrating = *(PyObject **)((char *)migration + d_migration.offsets[MI_MIGRATING]);
    if (migrating == NULL || !PyAnySet_CheckExact(migrating) || PySet_GET_SIZE(migrating) ||
        !SlotTable_CheckExact(slots)) {
        return 0;
    }
    SlotTableObject *t = (SlotTableObject *)slots;
    if (t->items == NULL || !PyList_CheckExact(t->items) ||
        !kind_fast(&d_lines, Py_TYPE(streams))) {
        return 0;
    }
    PyObject *lock = *(PyObject **)((char *)streams + d_lines.offsets[SL_LOCK]);
    if (lock == NULL) {
        return 0;
    }
    x->table = table;
    x->t = t;
    x->lock = lock;
    return 1;
}

/* A checked CQE: its slot's index, the incarnation's generation, the byte count. */
typedef struct {
    uint32_t index, gen;
    int32_t res;
} slot_cqe_t;
#define SLOT_BATCH_INLINE 64

/* A batch's kept CQEs: in the caller's ``small`` (SLOT_BATCH_INLINE of them) when they fit,
 * else on the heap (NULL when that fails); ``kept_drop`` gives back what ``kept_take`` took. */
static inline slot_cqe_t *
kept_take(slot_cqe_t *small, Py_ssize_t n)
{
    return n <= SLOT_BATCH_INLINE ? small : PyMem_Malloc((size_t)n * sizeof *small);
}

static inline void
kept_drop(slot_cqe_t *kept, slot_cqe_t *small)
{
    if (kept != small) {
        PyMem_Free(kept);
    }
}

/* 1 when the CQE (``ud``, ``res``; ``ud_o`` its int, or NULL) is a plain slot CQE - its
 * user_data tagged and not in the in-flight table, its slot the C type ARMED at that
 * generation, a positive result that fits the field - with ``*out`` set; else 0 (no error:
 * the Python method). The table is looked in only when it holds something: an empty one
 * holds no demoted incarnation (no int made for the key). */
static int
plain_cqe(slot_ctx_t *x, uint64_t ud, long long res, PyObject *ud_o, slot_cqe_t *out)
{
    if (!(ud & SLOT_TAG_BIT) || res <= 0 || res > INT32_MAX) {
        return 0;
    }
    if (PyDict_GET_SIZE(x->table) > 0) {
        PyObject *key = ud_o != NULL ? Py_NewRef(ud_o) : PyLong_FromUnsignedLong((unsigned long)ud);
        PyObject *entry = key == NULL ? NULL : PyDict_GetItemWithError(x->table, key);
        Py_XDECREF(key);
        if (entry != NULL || PyErr_Occurred()) { /* (a demoted incarnation's) */
            PyErr_Clear();
            return 0;
        }
    }
    PyObject *items = x->t->items;
    Py_ssize_t index = (Py_ssize_t)(ud & 0xffffffffu);
    if (index >= PyList_GET_SIZE(items)) {
        return 0;
    }
    PyObject *slot = PyList_GET_ITEM(items, index);
    uint32_t gen = (uint32_t)(ud >> 32) & SLOT_GEN_MASK;
    if (!ReceiveSlot_CheckExact(slot) || ((ReceiveSlotObject *)slot)->gen != gen ||
        ((ReceiveSlotObject *)slot)->state != SLOT_ARMED) {
        return 0;
    }
    *out = (slot_cqe_t){(uint32_t)index, gen, (int32_t)res};
    return 1;
}

/* The slot of a plain CQE tuple ``cqe`` (``plain_cqe``): 1 with ``*out`` set, else 0. */
static int
plain_slot(slot_ctx_t *x, PyObject *cqe, slot_cqe_t *out)
{
    if (!PyTuple_CheckExact(cqe) || PyTuple_GET_SIZE(cqe) != 3) {
        return 0;
    }
    PyObject *ud_o = PyTuple_GET_ITEM(cqe, 0), *res_o = PyTuple_GET_ITEM(cqe, 1);
    if (!PyLong_CheckExact(ud_o) || !PyLong_CheckExact(res_o) || _PyLong_Sign(res_o) <= 0) {
        return 0;
    }
    /* (``unsigned long``: 64 bits on LP64, read digit by digit; CPython 3.11's ``unsigned
     * long long`` conversion of a 3-digit int goes through ``_PyLong_AsByteArray``, ~10x the
     * instructions: deliver, 2026-12-06) */
    unsigned long ud = PyLong_AsUnsignedLong(ud_o);
    long r = PyLong_AsLong(res_o);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return plain_cqe(x, (uint64_t)ud, (long long)r, ud_o, out);
}

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

/* The checked batch REAPED under one hold of the lock, each slot put at ``finished[start +
 * i]`` (whose entries are None placeholders, or NULL in a new list): 1 when written, 0 when a
 * demoter came in (nothing written). A contended wait cut by an interrupt is kept in
 * ``*et..`` (the first one) and the wait goes on. Under the lock no Python code runs and
 * nothing is allocated. The wait (and the caller's allocations: a collection) may have let a
 * demoter in: every slot is checked again, read afresh from ``items`` (an index in flight is
 * never reused), and the batch is written whole or not at all. A slot whose demoter made step
 * 1 only (DEMOTING_K at the CQE's generation: its step 2 waits for this lock) is reaped with
 * its request: REAPED with ``op`` set, the state a demotion made after the reap gives, whose
 * delivery is the request's (its step 2 then finds nothing to do). One whose demoter made both
 * steps is a request in the table (IDLE at the next generation): not plain. With ``recheck``,
 * called under the lock before anything is written: 0 from it is "not written" too (the
 * caller's own state, read again after the wait). */
static int
reap_locked(slot_ctx_t *x, const slot_cqe_t *kept, Py_ssize_t n, PyObject *finished,
            Py_ssize_t start, int (*recheck)(void *), void *arg, PyObject **et, PyObject **ev,
            PyObject **etb)
{
    PyObject *lock = Py_NewRef(x->lock);
    SlotTableObject *t = (SlotTableObject *)Py_NewRef((PyObject *)x->t);
    while (fio_acquire(lock) < 0) {
        fio_keep_first(NULL, et, ev, etb);
    }
    PyObject *items = t->items;
    int all_plain = items != NULL && PyList_CheckExact(items) && (recheck == NULL || recheck(arg));
    for (Py_ssize_t i = 0; all_plain && i < n; i++) {
        PyObject *o = (Py_ssize_t)kept[i].index < PyList_GET_SIZE(items)
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
            Py_XDECREF(*at); /* (None, or NULL) */
            *at = Py_NewRef((PyObject *)s);
        }
    }
    fio_release(lock);
    Py_DECREF(lock);
    Py_DECREF(t);
    return all_plain;
}

PyObject *
dn_slot_batch(PyObject *self, PyObject *cqes, PyObject *finished)
{
    slot_ctx_t x;
    if (!PyList_CheckExact(cqes) || !PyList_CheckExact(finished) || !slot_ctx(self, &x)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    Py_ssize_t n = PyList_GET_SIZE(cqes);
    if (n == 0) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    /* The check, touching nothing; each CQE's index, generation and byte count kept for the
     * check under the lock. */
    slot_cqe_t small[SLOT_BATCH_INLINE];
    slot_cqe_t *kept = kept_take(small, (Py_ssize_t)n);
    if (kept == NULL) {
        PyErr_Clear();
        Py_RETURN_NOTIMPLEMENTED;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!plain_slot(&x, PyList_GET_ITEM(cqes, i), &kept[i])) {
            kept_drop(kept, small);
            Py_RETURN_NOTIMPLEMENTED;
        }
    }
    /* Room in ``finished`` first (the only allocations; nothing is touched if one fails: the
     * Python method, which takes the batch whole). */
    Py_ssize_t start = PyList_GET_SIZE(finished);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_Append(finished, Py_None) < 0) {
            PyErr_Clear();
            drop_tail(finished, i);
            kept_drop(kept, small);
            Py_RETURN_NOTIMPLEMENTED;
        }
    }
    /* The CQEs are reaped: a contended wait cut by an interrupt is kept and goes on (the
     * interrupt is raised once the batch is in ``finished``: ``cuts.deliver_rest`` delivers it). */
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    int all_plain = reap_locked(&x, kept, n, finished, start, NULL, NULL, &et, &ev, &etb);
    kept_drop(kept, small);
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

/* ------------------------------------------------------------------ in place, from the CQ ring */

/* The CQ ring is as it was read (``cq_words``, before the lock's wait): its memory mapped,
 * its head ours (the caller holds cq_lock; a ring closed meanwhile has its views released). */
typedef struct {
    PyObject *ring;
    uint32_t head;
} cq_same_t;

static int
cq_same(void *arg)
{
    cq_same_t *w = arg;
    cq_t c;
    return cq_words(w->ring, &c) && c.head == w->head;
}

/* ``Reaper.reap``'s batch under cq_lock (``reaper_reap``) when every CQE in the CQ ring (up to
 * ``max_n``) is a plain slot CQE: read in place - no CQE tuples, no list, no ``_batch_locked``
 * frame - REAPED under one hold of the lock (``reap_locked``), the CQ head moved past them
 * (what ``ring.reap`` does, after the slots are written: nothing fails between the two), then
 * ``self.deliver(finished)`` with ``cuts.deliver_rest`` on an exception (``_batch_locked``'s
 * delivery). Returns the count (a new int); NULL with an error (the batch was taken and its
 * delivery raised, or an interrupt cut the lock's wait: then, when nothing was written, the
 * CQEs stay in the ring for the next reap, as an interrupt before ``ring.reap``); or
 * NotImplemented (a new reference) when the general path must run: nothing touched. */
PyObject *
dn_slot_reap(PyObject *self, PyObject *ring, long long max_n)
{
    slot_ctx_t x;
    cq_t c;
    Py_ssize_t clen;
    const char *cqes;
    if (!slot_ctx(self, &x) || !cq_words(ring, &c) ||
        (cqes = mv_buf(slot_borrow(&k_cqe, ring, 0), &clen)) == NULL) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    uint32_t n = cq_count(&c);
    if ((long long)n > max_n) {
        n = (uint32_t)max_n;
    }
    if (n == 0 || (Py_ssize_t)(((Py_ssize_t)c.mask + 1) * 16) > clen) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    slot_cqe_t small[SLOT_BATCH_INLINE];
    slot_cqe_t *kept = kept_take(small, (Py_ssize_t)n);
    if (kept == NULL) {
        PyErr_Clear();
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *finished = NULL, *head_obj = NULL, *result = NULL;
    for (uint32_t i = 0; i < n; i++) {
        const char *cqe = cqes + (size_t)((c.head + i) & c.mask) * 16;
        uint64_t ud;
        int32_t res;
        memcpy(&ud, cqe, 8);
        memcpy(&res, cqe + 8, 4);
        if (!plain_cqe(&x, ud, res, NULL, &kept[i])) {
            goto not_here;
        }
    }
    /* The allocations first (nothing touched if one fails: the general path). */
    uint32_t head = (c.head + n) & U32;
    if ((finished = PyList_New(n)) == NULL || (head_obj = PyLong_FromUnsignedLong(head)) == NULL) {
        PyErr_Clear();
        goto not_here;
    }
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    cq_same_t same = {ring, c.head};
    if (!reap_locked(&x, kept, n, finished, 0, cq_same, &same, &et, &ev, &etb)) {
        if (et != NULL || ev != NULL) {
            /* (cut in the lock's wait, nothing taken: raised, the CQEs left in the ring) */
            Py_CLEAR(finished);
            Py_CLEAR(head_obj);
            kept_drop(kept, small);
            PyErr_Restore(et, ev, etb);
            return NULL;
        }
        goto not_here;
    }
    /* The CQEs are taken (``ring.reap``'s end: our head, then the kernel's). */
    set(&k_cq, 1, ring, C_HEAD, head_obj);
    head_obj = NULL;
    __atomic_store_n(c.khead, head, __ATOMIC_RELEASE); /* (checked mapped: ``cq_same``) */
    kept_drop(kept, small);
    if (et == NULL && ev == NULL) {
        PyObject *a[2] = {self, finished};
        PyObject *r = PyObject_VectorcallMethod(ds_deliver, a, 2, NULL);
        if (r != NULL) {
            Py_DECREF(r);
            result = PyLong_FromUnsignedLong(n);
        }
        else {
            PyErr_Fetch(&et, &ev, &etb);
        }
    }
    if (result == NULL) {
        /* an interrupt in the wait, or ``deliver`` raised (cut at its entry: none delivered):
         * the rest delivered (``cuts.deliver_rest``, idempotent), then it propagates */
        PyObject *r = dn_cut_call(self, ds_deliver_rest, &finished, 1);
        if (r == NULL) {
            PyErr_Clear(); /* the first error is the one raised */
        }
        Py_XDECREF(r);
        PyErr_Restore(et, ev, etb);
    }
    Py_DECREF(finished);
    return result;

not_here:
    Py_XDECREF(finished);
    Py_XDECREF(head_obj);
    kept_drop(kept, small);
    Py_RETURN_NOTIMPLEMENTED;
}
