/* Posting to a completion port for the completion side in C (cdone, 2026-12-05):
 * ``CompletionPort._post_locked`` (the packet handed straight to the most recent GQCS waiter,
 * or queued), ``_posted_locked``, ``release_held_locked`` and ``_release_locked`` (LIFO
 * hand-off under the concurrency limit, ``end_wait``), with exactly their effects; a port of
 * another class, or whose methods were replaced, has its Python methods called. Used by
 * ``_fastdeliver.c``; see ``_fastdone.c`` for the invariants. */
#include "_fastdone.h"

/* ------------------------------------------------------------------ the completion port */

/* ``_take(packets, count)``: a new list. */
static PyObject *
take(PyObject *packets, PyObject *count_obj)
{
    Py_ssize_t n = PyObject_Length(packets);
    if (n < 0) {
        return NULL;
    }
    Py_ssize_t count = PyNumber_AsSsize_t(count_obj, PyExc_OverflowError);
    if (count == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n <= count) {
        PyObject *taken = PySequence_List(packets);
        if (taken == NULL) {
            return NULL;
        }
        PyObject *r = deque_call0(packets, d_deque_clear, ds_clear);
        if (r == NULL) {
            Py_DECREF(taken);
            return NULL;
        }
        Py_DECREF(r);
        return taken;
    }
    PyObject *taken = PyList_New(count);
    if (taken == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *p = deque_call0(packets, d_deque_popleft, ds_popleft);
        if (p == NULL) {
            /* (a deque of n > count packets: not reached) */
            Py_DECREF(taken);
            return NULL;
        }
        PyList_SET_ITEM(taken, i, p);
    }
    return taken;
}

/* ``list.pop()`` of an exact list of ``n`` items whose last one the caller holds a reference
 * to: the list keeps its allocation (no failure; review7). */
static void
pop_last(PyObject *list, Py_ssize_t n)
{
    PyObject *last = PyList_GET_ITEM(list, n - 1);
    Py_SET_SIZE(list, n - 1);
    Py_DECREF(last);
}

/* ``CompletionPort._release_locked``: LIFO hand-off to the GQCS waiters under the concurrency
 * limit; each waiter's ``end_wait`` (its parker's release, a call) after its state. */
static int
release_locked(PyObject *port, int pfast, PyObject **it, PyObject **iv, PyObject **itb)
{
    if (!Py_IS_TYPE(port, d_port_type) || !pfast || !has_method(Py_TYPE(port), ds_release, d_py_release)) {
        PyObject *r = call_method(port, ds_release, NULL, 0);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    int rc = -1;
    PyObject *packets = get(&d_port, 1, port, PO_PACKETS);
    PyObject *getters = get(&d_port, 1, port, PO_GETTERS);
    PyObject *running = get(&d_port, 1, port, PO_RUNNING);
    PyObject *concurrency = get(&d_port, 1, port, PO_CONCURRENCY);
    if (packets == NULL || getters == NULL || running == NULL || concurrency == NULL) {
        goto done;
    }
    for (;;) {
        Py_ssize_t np = PyObject_Length(packets);
        if (np < 0) {
            goto done;
        }
        Py_ssize_t ng = PyObject_Length(getters);
        if (ng < 0) {
            goto done;
        }
        if (np == 0 || ng == 0) {
            break;
        }
        PyObject *nr = PyLong_FromSsize_t(PyObject_Length(running));
        if (nr == NULL) {
            goto done;
        }
        int below = PyObject_RichCompareBool(nr, concurrency, Py_LT);
        Py_DECREF(nr);
        if (below <= 0) {
            if (below < 0) {
                goto done;
            }
            break;
        }
        PyObject *wb;
        /* the common shape: the waiter is popped once everything that may fail is done */
        int exact = PyList_CheckExact(getters) && PySet_CheckExact(running);
        if (exact) {
            wb = Py_NewRef(PyList_GET_ITEM(getters, ng - 1));
        }
        else if (PyList_CheckExact(getters)) {
            wb = Py_NewRef(PyList_GET_ITEM(getters, ng - 1));
            if (PyList_SetSlice(getters, ng - 1, ng, NULL) < 0) {
                Py_DECREF(wb);
                goto done;
            }
        }
        else {
            wb = PyObject_CallMethod(getters, "pop", NULL);
            if (wb == NULL) {
                goto done;
            }
        }
        int wfast = kind_fast(&d_wb, Py_TYPE(wb));
        PyObject *ts = NULL, *count = NULL, *taken = NULL;
        int ok = -1;
        if (exact) {
            /* The thread counted as running and the packets' list made first (what may
             * fail), then the waiter popped without an allocation and its fields written: a
             * failed allocation leaves it waiting, nothing taken (review7; the Python method
             * popped it first and left it asleep for ever, popped, on a MemoryError). */
            if ((count = get(&d_wb, wfast, wb, WB_DATA)) == NULL ||
                (ts = get(&d_wb, wfast, wb, WB_THREAD)) == NULL) {
                goto wb_done;
            }
            int there = PySet_Contains(running, ts);
            if (there < 0 || (!there && PySet_Add(running, ts) < 0)) {
                goto wb_done;
            }
            if ((taken = take(packets, count)) == NULL) {
                if (!there && PySet_Discard(running, ts) < 0) {
                    PyErr_WriteUnraisable(running);
                }
                goto wb_done;
            }
            pop_last(getters, ng);
            set(&d_wb, wfast, wb, WB_DETACH, Py_NewRef(Py_None));
            if (set(&d_wb, wfast, wb, WB_DATA, taken) < 0) {
                goto wb_done;
            }
        }
        else {
            if (set(&d_wb, wfast, wb, WB_DETACH, Py_NewRef(Py_None)) < 0) {
                goto wb_done;
            }
            if ((count = get(&d_wb, wfast, wb, WB_DATA)) == NULL) {
                goto wb_done;
            }
            if ((taken = take(packets, count)) == NULL) {
                goto wb_done;
            }
            if (set(&d_wb, wfast, wb, WB_DATA, taken) < 0) {
                goto wb_done;
            }
            if ((ts = get(&d_wb, wfast, wb, WB_THREAD)) == NULL) {
                goto wb_done;
            }
            if (PySet_CheckExact(running)) {
                if (PySet_Add(running, ts) < 0) {
                    goto wb_done;
                }
            }
            else {
                PyObject *r = PyObject_CallMethod(running, "add", "O", ts);
                if (r == NULL) {
                    goto wb_done;
                }
                Py_DECREF(r);
            }
        }
        /* end_wait(wb, WAIT_OBJECT_0): the result first, then the flag (``Parker``) */
        if (set(&d_wb, wfast, wb, WB_RESULT, Py_NewRef(d_handoff)) < 0) {
            goto wb_done;
        }
        {
            int tfast = kind_fast(&d_ts, Py_TYPE(ts));
            int r = truth(&d_ts, tfast, ts, TS_AWAKE);
            if (r < 0) {
                goto wb_done;
            }
            if (r) {
                if (set(&d_ts, tfast, ts, TS_WAIT, Py_NewRef(Py_None)) < 0) {
                    goto wb_done;
                }
            }
            else {
                if ((r = truth(&d_ts, tfast, ts, TS_WAKE_PENDING)) < 0) {
                    goto wb_done;
                }
                if (!r) {
                    if (set(&d_ts, tfast, ts, TS_WAKE_PENDING, Py_NewRef(Py_True)) < 0) {
                        goto wb_done;
                    }
                    PyObject *parker = get(&d_ts, tfast, ts, TS_PARKER);
                    if (parker == NULL) {
                        goto wb_done;
                    }
                    PyObject *res = fio_again(NULL, ds_release_parker, &parker, 1);
                    Py_DECREF(parker);
                    if (res == NULL) {
                        if (PyErr_ExceptionMatches(PyExc_Exception)) {
                            goto wb_done;
                        }
                        /* an interrupt (the token given by the call made again): kept for
                         * the caller, and the other waiters are released before it goes on */
                        fio_keep_first(NULL, it, iv, itb);
                    }
                    Py_XDECREF(res);
                }
            }
        }
        ok = 0;
    wb_done:
        Py_XDECREF(ts);
        Py_XDECREF(count);
        Py_DECREF(wb);
        if (ok < 0) {
            goto done;
        }
    }
    rc = 0;
done:
    Py_XDECREF(packets);
    Py_XDECREF(getters);
    Py_XDECREF(running);
    Py_XDECREF(concurrency);
    return rc;
}

/* The end of a function that kept an interrupt (``it``..): it is raised (the first error
 * wins: it came first); -1 then, else ``rc``. */
static int
raise_kept(int rc, PyObject *it, PyObject *iv, PyObject *itb)
{
    if (it == NULL && iv == NULL) {
        return rc;
    }
    if (rc < 0) {
        PyErr_Clear();
    }
    PyErr_Restore(it, iv, itb);
    return -1;
}

/* ``port.release_held_locked()``. */
static int
release_held(PyObject *port)
{
    int pfast = kind_fast(&d_port, Py_TYPE(port));
    if (!Py_IS_TYPE(port, d_port_type) || !pfast ||
        !has_method(Py_TYPE(port), ds_release_held, d_py_release_held)) {
        PyObject *r = call_method(port, ds_release_held, NULL, 0);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    set(&d_port, 1, port, PO_HOLDING, Py_NewRef(Py_False));
    PyObject *packets = get(&d_port, 1, port, PO_PACKETS);
    if (packets == NULL) {
        return -1;
    }
    PyObject *it = NULL, *iv = NULL, *itb = NULL; /* an interrupt, raised at the end */
    Py_ssize_t n = PyObject_Length(packets);
    if (n > 0) {
        int r = truth(&d_port, 1, port, PO_GETTERS);
        if (r > 0) {
            r = release_locked(port, 1, &it, &iv, &itb);
        }
        if (r >= 0 && (n = PyObject_Length(packets)) > 0) {
            r = truth(&d_port, 1, port, PO_WAITERS);
            if (r > 0) {
                PyObject *res = fio_wake(d_wake_waiters, port);
                Py_XDECREF(res);
                r = res == NULL ? -1 : 0;
            }
        }
        if (r < 0) {
            n = -1;
        }
    }
    Py_DECREF(packets);
    return raise_kept(n < 0 ? -1 : 0, it, iv, itb);
}


static int
held_add(held_t *h, PyObject *port)
{
    if (h->n < MAX_HELD) {
        h->ports[h->n++] = Py_NewRef(port);
        return 0;
    }
    if (h->more == NULL && (h->more = PyList_New(0)) == NULL) {
        return -1;
    }
    return PyList_Append(h->more, port);
}

/* Release every held port (each one, even if one raises: the first error is kept). */
int
dn_held_release(held_t *h)
{
    int rc = 0;
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    Py_ssize_t extra = h->more == NULL ? 0 : PyList_GET_SIZE(h->more);
    for (Py_ssize_t i = 0; i < h->n + extra; i++) {
        PyObject *port = i < h->n ? h->ports[i] : PyList_GET_ITEM(h->more, i - h->n);
        if (release_held(port) < 0) {
            if (rc == 0) {
                PyErr_Fetch(&et, &ev, &etb);
                rc = -1;
            }
            else {
                PyErr_Clear();
            }
        }
    }
    for (int i = 0; i < h->n; i++) {
        Py_DECREF(h->ports[i]);
    }
    Py_CLEAR(h->more);
    h->n = 0;
    if (rc < 0) {
        PyErr_Restore(et, ev, etb);
    }
    return rc;
}

/* The configured port class's ``_post_locked`` and ``_posted_locked`` are still the references
 * (not replaced): looked up once per version of the class - a version tag changes with any
 * attribute of the class or of a base, and is never reused; CPython's method cache keys on it
 * too - instead of two ``_PyType_Lookup`` a packet (deliver, 2026-12-06). */
static unsigned int g_port_methods_tag;

static inline int
port_methods_ours(PyTypeObject *tp)
{
    if (tp != d_port_type) {
        return 0;
    }
    if ((tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) && tp->tp_version_tag != 0 &&
        tp->tp_version_tag == g_port_methods_tag) {
        return 1;
    }
    if (!has_method(tp, ds_post, d_py_post) || !has_method(tp, ds_posted, d_py_posted)) {
        return 0;
    }
    if (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) { /* (set by the lookups) */
        g_port_methods_tag = tp->tp_version_tag;
    }
    return 1;
}

/* ``len()`` of the port's getters (a list) or packets (a deque): their size, without the
 * sequence protocol, for the exact types. */
static inline Py_ssize_t
size_of(PyObject *o)
{
    if (PyList_CheckExact(o) || Py_IS_TYPE(o, d_deque_type)) {
        return Py_SIZE(o); /* (a deque's length is its ob_size: ``deque_len``) */
    }
    return PyObject_Length(o);
}

/* ``port._posted_locked()`` (a packet was queued and someone waits). */
static int
posted_locked(PyObject *port)
{
    if (!port_methods_ours(Py_TYPE(port)) && !has_method(Py_TYPE(port), ds_posted, d_py_posted)) {
        PyObject *r = call_method(port, ds_posted, NULL, 0);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    int r = truth(&d_port, 1, port, PO_HOLDING);
    if (r != 0) {
        return r < 0 ? -1 : 0;
    }
    if ((r = truth(&d_port, 1, port, PO_GETTERS)) < 0) {
        return -1;
    }
    PyObject *it = NULL, *iv = NULL, *itb = NULL; /* an interrupt, raised at the end */
    if (r && release_locked(port, 1, &it, &iv, &itb) < 0) {
        return raise_kept(-1, it, iv, itb);
    }
    PyObject *packets = get(&d_port, 1, port, PO_PACKETS);
    if (packets == NULL) {
        return raise_kept(-1, it, iv, itb);
    }
    Py_ssize_t n = size_of(packets);
    Py_DECREF(packets);
    if (n <= 0) {
        return raise_kept(n < 0 ? -1 : 0, it, iv, itb);
    }
    if ((r = truth(&d_port, 1, port, PO_WAITERS)) <= 0) {
        return raise_kept(r, it, iv, itb);
    }
    PyObject *res = fio_wake(d_wake_waiters, port);
    Py_XDECREF(res);
    return raise_kept(res == NULL ? -1 : 0, it, iv, itb);
}

/* ``port._post_locked(key, ov, status, information)`` (steals ``key``): the packet handed
 * straight to the most recent GQCS waiter when nothing is queued, the port not held and the
 * concurrency limit allows; else queued, and the waiters released (``_posted_locked``). The
 * waiter's parker is released last. */
int
dn_post_locked(PyObject *port, PyObject *key, PyObject *ov, PyObject *status,
            PyObject *information)
{
    int pfast = kind_fast(&d_port, Py_TYPE(port));
    if (!Py_IS_TYPE(port, d_port_type) || !pfast ||
        (!port_methods_ours(Py_TYPE(port)) && !has_method(Py_TYPE(port), ds_post, d_py_post))) {
        /* (the port's own method: made again when an interrupt cut it at its entry, where
         * nothing was done - review7's rule for the funnel's Python calls) */
        PyObject *args[5] = {port, key, ov, status, information};
        PyObject *res = fio_again(NULL, ds_post, args, 5);
        Py_DECREF(key);
        Py_XDECREF(res);
        return res == NULL ? -1 : 0;
    }
    int r;
    if ((r = truth(&d_port, 1, port, PO_CLOSED)) != 0) {
        Py_DECREF(key);
        return r < 0 ? -1 : 0; /* completions on files of a closed port are dropped (6.8) */
    }
    /* tuple.__new__(CompletionPacket, (key, ov, status, information)) */
    PyObject *packet = d_packet_type->tp_alloc(d_packet_type, 4);
    if (packet == NULL) {
        Py_DECREF(key);
        return -1;
    }
    PyTuple_SET_ITEM(packet, 0, key);
    PyTuple_SET_ITEM(packet, 1, Py_NewRef(ov));
    PyTuple_SET_ITEM(packet, 2, Py_NewRef(status));
    PyTuple_SET_ITEM(packet, 3, Py_NewRef(information));
    int rc = -1;
    PyObject *getters = get(&d_port, 1, port, PO_GETTERS);
    PyObject *packets = get(&d_port, 1, port, PO_PACKETS);
    PyObject *running = NULL, *concurrency = NULL, *wb = NULL, *ts = NULL, *data = NULL;
    if (getters == NULL || packets == NULL) {
        goto done;
    }
    Py_ssize_t ng = size_of(getters);
    Py_ssize_t np = ng > 0 ? size_of(packets) : 0;
    if (ng < 0 || np < 0) {
        goto done;
    }
    if (ng > 0 && np == 0 && PyList_CheckExact(getters)) {
        if ((r = truth(&d_port, 1, port, PO_HOLDING)) < 0) {
            goto done;
        }
        if (!r) {
            running = get(&d_port, 1, port, PO_RUNNING);
            concurrency = get(&d_port, 1, port, PO_CONCURRENCY);
            if (running == NULL || concurrency == NULL) {
                goto done;
            }
            Py_ssize_t nr = PyObject_Length(running);
            if (nr < 0) {
                goto done;
            }
            PyObject *nro = PyLong_FromSsize_t(nr);
            int below = nro == NULL ? -1 : PyObject_RichCompareBool(nro, concurrency, Py_LT);
            Py_XDECREF(nro);
            if (below < 0) {
                goto done;
            }
            if (below) {
                /* Straight to the most recent waiter (what _release_locked would do with
                 * this one packet): the port never becomes signaled. */
                if ((data = PyList_New(1)) == NULL) {
                    goto done;
                }
                PyList_SET_ITEM(data, 0, Py_NewRef(packet));
                wb = Py_NewRef(PyList_GET_ITEM(getters, ng - 1));
                int wfast = kind_fast(&d_wb, Py_TYPE(wb));
                if (PySet_CheckExact(running)) {
                    /* (as ``release_locked``: what may fail first, then the waiter popped
                     * without an allocation: a failed allocation leaves it waiting) */
                    if ((ts = get(&d_wb, wfast, wb, WB_THREAD)) == NULL) {
                        goto done;
                    }
                    int there = PySet_Contains(running, ts);
                    if (there < 0 || (!there && PySet_Add(running, ts) < 0)) {
                        goto done;
                    }
                    pop_last(getters, ng);
                    set(&d_wb, wfast, wb, WB_DETACH, Py_NewRef(Py_None));
                    r = set(&d_wb, wfast, wb, WB_DATA, data);
                    data = NULL;
                    if (r < 0) {
                        goto done;
                    }
                }
                else {
                    if (PyList_SetSlice(getters, ng - 1, ng, NULL) < 0) {
                        goto done;
                    }
                    if (set(&d_wb, wfast, wb, WB_DETACH, Py_NewRef(Py_None)) < 0) {
                        goto done;
                    }
                    r = set(&d_wb, wfast, wb, WB_DATA, data);
                    data = NULL;
                    if (r < 0 || (ts = get(&d_wb, wfast, wb, WB_THREAD)) == NULL) {
                        goto done;
                    }
                    PyObject *added = PyObject_CallMethod(running, "add", "O", ts);
                    if (added == NULL) {
                        goto done;
                    }
                    Py_DECREF(added);
                }
                if (set(&d_wb, wfast, wb, WB_RESULT, Py_NewRef(d_handoff)) < 0) {
                    goto done;
                }
                int tfast = kind_fast(&d_ts, Py_TYPE(ts));
                if ((r = truth(&d_ts, tfast, ts, TS_AWAKE)) < 0) {
                    goto done;
                }
                if (r) {
                    rc = set(&d_ts, tfast, ts, TS_WAIT, Py_NewRef(Py_None));
                    goto done;
                }
                if ((r = truth(&d_ts, tfast, ts, TS_WAKE_PENDING)) != 0) {
                    rc = r < 0 ? -1 : 0;
                    goto done;
                }
                if (set(&d_ts, tfast, ts, TS_WAKE_PENDING, Py_NewRef(Py_True)) < 0) {
                    goto done;
                }
                PyObject *parker = get(&d_ts, tfast, ts, TS_PARKER);
                if (parker == NULL) {
                    goto done;
                }
                PyObject *res = fio_again(NULL, ds_release_parker, &parker, 1);
                Py_DECREF(parker);
                Py_XDECREF(res);
                rc = res == NULL ? -1 : 0;
                goto done;
            }
        }
    }
    if (deque_append(packets, packet) < 0) {
        goto done;
    }
    if (ng > 0) {
        rc = posted_locked(port);
        goto done;
    }
    if ((r = truth(&d_port, 1, port, PO_WAITERS)) < 0) {
        goto done;
    }
    rc = r ? posted_locked(port) : 0;
done:
    Py_XDECREF(data);
    Py_XDECREF(ts);
    Py_XDECREF(wb);
    Py_XDECREF(running);
    Py_XDECREF(concurrency);
    Py_XDECREF(getters);
    Py_XDECREF(packets);
    Py_DECREF(packet);
    return rc;
}

/* ``port._post_locked(file.key, ...)`` while the batch holds the port (``holding``: queued,
 * the waiters released at the end of the batch). */
int
dn_post(PyObject *port, PyObject *file, int ffast, PyObject *ov, PyObject *status,
     PyObject *information, held_t *h)
{
    int pfast = kind_fast(&d_port, Py_TYPE(port));
    int r = truth(&d_port, pfast, port, PO_HOLDING);
    if (r < 0) {
        return -1;
    }
    if (!r) {
        if (held_add(h, port) < 0 ||
            set(&d_port, pfast, port, PO_HOLDING, Py_NewRef(Py_True)) < 0) {
            return -1;
        }
    }
    PyObject *key = get(&d_file, ffast, file, FI_KEY);
    if (key == NULL) {
        return -1;
    }
    return dn_post_locked(port, key, ov, status, information);
}
