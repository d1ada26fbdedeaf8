/* Shared by the kernel's events and single waits in C (fastevent, 2026-12-06 night; split by
 * concept by tools, 2026-12-06): ``_fastevent.c`` (the Event object's ``set``, the data below
 * and the configuration that owns them, the module's switches), ``_fastevent_wait.c`` (the
 * single wait: ``_wait.wait_for_one``'s hot shape, the parking, the abandon) and
 * ``_fastevent_win32.c`` (the alias layer's SetEvent / ResetEvent / WaitForSingleObject(Ex)
 * hot shapes, straight to the two cores). Not a public interface; ``_fastevent.c`` says what
 * they replace and why.
 *
 * Invariants of the split:
 * - every kind and datum declared here is set once by ``configure_event`` before any of the C
 *   functions or the method is handed out, and never changed afterwards (the two switches
 *   excepted, read once per call);
 * - ``set_core`` runs only on an object of the exact configured Event type whose kind is fast
 *   (its callers check); ``wait_core`` checks that itself. Every slot read through ``SLOT`` is
 *   then at a known offset (a value may still be unset: NULL, checked);
 * - both cores touch nothing before deciding a shape is theirs: "not mine" (-2 / NOT_MINE)
 *   means LOCK released and nothing written; the caller then runs the Python function, the
 *   reference and the fallback.
 */
#ifndef WINAIO_FASTEVENT_H
#define WINAIO_FASTEVENT_H

#include "_fastio.h"

/* CPython 3.11/3.12's _thread.lock (as ``_fastcommon.c``): a parker of that exact layout
 * (checked once by ``configure_event``) is parked on and given its token here directly. */
typedef struct {
    PyObject_HEAD
    PyThread_type_lock lock_lock;
    PyObject *in_weakreflist;
    char locked;
} fe_lockobject;
extern int g_direct; /* the layout is that one */
/* Set's wake-up made after LOCK, without the GIL (``event_wake_without_gil``; on by default). */
extern int g_nogil_wake;
/* The C functions run their hot shapes (``event_set_enabled``; else the Python ones). */
extern int g_fe_enabled;

enum { EV_SIGNALED, EV_MANUAL, EV_WAITERS };
enum { T_SPECIAL, T_TERMINATING, T_LISTENER, T_ON_BLOCK, T_PARKER, T_WAIT, T_WAKE_PENDING,
       T_AWAKE };
enum { W_THREAD, W_OBJECTS, W_WAIT_ALL, W_ALERTABLE, W_DETACH, W_RESULT, W_DATA };

/* Event, ThreadState (two kinds: a kind holds at most MAX_NAMES slots; ``k_fts_apc`` has
 * ``apcs``), WaitBlock. */
extern kind_t k_fev, k_fts, k_fts_apc, k_fwb;
extern PyTypeObject *g_ev_type, *g_ts_type, *g_wb_type, *g_parker_type;
extern PyObject *g_ev_lock, *g_ev_tls, *g_acquire;
extern PyObject *g_py_set, *g_py_wait_for_one, *g_abandon, *g_check_terminating, *g_finish;
extern PyObject *g_terminated, *g_io_completion, *g_timeout_code, *g_zero_code;
extern PyObject *s_fts;

#define SLOT(k, obj, i) (*(PyObject **)((char *)(obj) + (k)->offsets[i]))
/* A wait the C does not make: the caller runs the Python function (nothing was touched). */
#define NOT_MINE Py_NotImplemented

/* Truth of a borrowed slot value: 1, 0, or -1 (unset, or its truth raised: cleared). */
int fe_truth(PyObject *v);

/* ``Event.set`` on an exact Event (``_fastevent.c``): the previous state (1 or 0), -1 with an
 * error, or -2 when the shape is not handled (nothing touched: the Python method decides). */
int set_core(PyObject *ev);

/* ``wait_for_one(ev, timeout, alertable)``, INFINITE (``poll`` 0) or a zero timeout
 * (``_fastevent_wait.c``): the wait code (a new reference), NULL with an error, or NOT_MINE
 * (borrowed, nothing touched: the Python function decides). */
PyObject *wait_core(PyObject *ev, int poll, PyObject *alertable);

/* ``_wait.wait_for_one(obj, timeout, alertable)`` (``_fastevent_wait.c``; made a function of
 * ``winaio._kernel._wait`` by ``configure_event``). */
PyObject *fe_wait_for_one(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

#endif
