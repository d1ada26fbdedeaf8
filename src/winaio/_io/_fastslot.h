/* The per-socket reusable receive in C (cslot, 2026-12-06; docs/plans/receive-slot.md §2):
 * the ``ReceiveSlot`` and ``SlotTable`` types (``_fastslot.c``), shared with the C hot paths
 * that arm a slot (``_fastpend*.c``) and reap and deliver one (``_fastprocess.c``,
 * ``_fastdeliver.c``, ``_fastreap.c``). Not a public interface.
 *
 * The Python twins (``winaio._io._slot.ReceiveSlot``, ``_backends/uring/slots.SlotTable``)
 * have the same attribute names and are the reference: every transition's logic lives in
 * Python functions that use only those attributes, so they run on either class; the C hot
 * paths accept only these exact types and hand anything else to them.
 *
 * Invariants:
 * - ``file``, ``overlapped``, ``issuer``, ``view``, ``ud``, ``op`` are strong references (None
 *   or NULL when unset: a NULL reads as AttributeError, as an unset ``__slots__`` entry);
 *   ``table`` is strong too (the SlotTable holds the slot in ``items``: a cycle the GC sees).
 * - ``buf`` pins the view's memory while ``buf.obj`` is not NULL, from ``pin()`` to
 *   ``unpin()``: a writable export of the object under the memoryview (a bytearray cannot
 *   resize), as the Python twin's ctypes anchor holds a memoryview of it - the caller's view
 *   itself may be released meanwhile, the memory stays (the kernel's write lands there) -
 *   or, for a view with no such object, an export of the view. The SQE's address and length
 *   are ``addr`` and ``nbytes`` (the view's, read at ``pin()``).
 * - ``state`` is one of SLOT_* below; ``gen`` uses 31 bits; ``index`` is UINT32_MAX until the
 *   slot has one in its table.
 */
#ifndef WINAIO_FASTSLOT_H
#define WINAIO_FASTSLOT_H

#include "_fastio.h"

#include <stdint.h>

/* The states (the Python twin's constants have the same values; a test checks it). */
enum {
    SLOT_IDLE = 0,
    SLOT_ARMING = 1,
    SLOT_ARMED = 2,
    SLOT_REAPED = 3,
    SLOT_DELIVERING = 4,
    SLOT_DEMOTING_A = 5,
    SLOT_DEMOTING_K = 6,
    SLOT_DEAD = 7,
};

#define SLOT_NO_INDEX UINT32_MAX
#define SLOT_GEN_MASK 0x7fffffffu
#define SLOT_TAG_BIT ((uint64_t)1 << 63)

typedef struct {
    PyObject_HEAD
    uint32_t index;        /* in the backend's SlotTable; SLOT_NO_INDEX until it has one */
    uint32_t gen;          /* incarnation number (31 bits); += 1 when an incarnation ends */
    uint8_t state;         /* SLOT_* */
    uint8_t eligible_mode; /* the notification mode's snapshot (phase 2) */
    int32_t res;           /* the CQE's byte count while REAPED */
    PyObject *file;        /* strong while not IDLE */
    PyObject *overlapped;  /* strong while not IDLE */
    PyObject *issuer;      /* the issuer's ThreadState, strong while not IDLE */
    PyObject *view;        /* the caller's memoryview, strong while not IDLE */
    PyObject *ud;          /* the incarnation's user_data as an int */
    PyObject *op;          /* the demoted request of this incarnation, or None */
    PyObject *table;       /* the SlotTable */
    Py_buffer buf;         /* the pin while ``buf.obj`` is not NULL: an export of the view's
                            * base object (or of ``view`` itself, when it has none) */
    char *addr;            /* the view's memory (the RECV's address), pinned by ``buf`` */
    Py_ssize_t nbytes;     /* its length */
    PyObject *weakrefs;
} ReceiveSlotObject;

typedef struct {
    PyObject_HEAD
    PyObject *items;       /* list of slots by index (entries never move) */
    PyObject *free;        /* list of free indices */
    Py_ssize_t armed;      /* incarnations in the kernel, not reaped or demoted */
    Py_ssize_t submitted;  /* RECVs made by slots (statistics, the drain check) */
    Py_ssize_t done;       /* of which reaped */
    Py_ssize_t cancelled;  /* of which cancelled */
} SlotTableObject;

extern PyTypeObject ReceiveSlot_Type, SlotTable_Type;

#define ReceiveSlot_CheckExact(o) Py_IS_TYPE((o), &ReceiveSlot_Type)
#define SlotTable_CheckExact(o) Py_IS_TYPE((o), &SlotTable_Type)

/* The slot's user_data for its current incarnation (``SLOT_TAG | gen << 32 | index``). */
static inline uint64_t
slot_user_data(const ReceiveSlotObject *s)
{
    return SLOT_TAG_BIT | ((uint64_t)(s->gen & SLOT_GEN_MASK) << 32) | s->index;
}

/* A new IDLE slot of ``table`` (``ReceiveSlot(table)``): a new reference, or NULL. */
PyObject *slot_create(PyObject *table);

/* Pins ``s->view``'s memory (a writable C-contiguous export into ``s->buf``): 0, or -1 with
 * an error (nothing pinned). Already pinned: ValueError. */
int slot_pin(ReceiveSlotObject *s);
/* Releases the export, if any. May run code (a buffer's release): call it outside the locks. */
void slot_unpin(ReceiveSlotObject *s);

/* An ended incarnation's references and export, released once the locks are (a DECREF or a
 * buffer's release can run code): ``file``, ``overlapped``, ``issuer``, ``view``, ``op``,
 * ``ud`` (the Python twin's ``release_refs`` order) and ``buf``. */
typedef struct {
    PyObject *refs[6];
    Py_buffer buf;
} slot_drop_t;

/* The drops of a batch: a few inline, more in a heap array. */
#define SLOT_DROPS_INLINE 8
typedef struct {
    slot_drop_t inline_[SLOT_DROPS_INLINE];
    slot_drop_t *more;
    Py_ssize_t n, cap;
} slot_drops_t;

static inline void
slot_drops_init(slot_drops_t *d)
{
    d->more = NULL;
    d->n = d->cap = 0;
}

/* ``release_refs``: the slot lets its objects go (None in their place, ``res`` 0, the export
 * moved out) into ``d``; released by ``slot_drops_release``. Never fails: when no room can be
 * allocated, the references are released at once (under the caller's lock: rare). */
void slot_release_refs(ReceiveSlotObject *s, slot_drops_t *d);
/* Releases every drop (no lock held). */
void slot_drops_release(slot_drops_t *d);

/* ``Reaper.process`` for a batch of plain slot CQEs only (``_fastslot_done.c``; also the QD1
 * path's one slot CQE): None, Py_NotImplemented (not such a batch, or the completion side is
 * not configured: nothing touched) or NULL with an error. */
PyObject *dn_slot_batch(PyObject *reaper, PyObject *cqes, PyObject *finished);

/* Adds the two types to the module (``PyInit__fastio``): 0, or -1 with an error. */
int fastslot_add_types(PyObject *module);

#endif
