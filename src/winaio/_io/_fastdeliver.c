/* The delivery funnel in C (cdone, 2026-12-05): ``_dispatch.deliver_batch`` and
 * ``_dispatch.deliver`` (as the io_uring reaper calls them) with ``FileObject._forget_locked``,
 * with exactly their effects, in the Python order (spec section 1.5: IOSB, E or F, the APC or
 * the packet, the bookkeeping, the synchronous event). Interrupts and errors: see
 * ``_fastdone.c``. */
#include "_fastdone.h"

/* ------------------------------------------------------------------ FileObject._forget_locked */

/* What ``op.kind is STREAM`` and ``op.poll_events & POLLIN`` say for a request class whose
 * instances have no ``__dict__`` and whose two attributes are plain class values (so that
 * ``class_attr`` reads them from the type): remembered with the type's version tag, which
 * any change of the class or a base replaces (rslot: two type lookups per delivery). */
static struct {
    PyTypeObject *type; /* (compared only) */
    unsigned int tag;
    int stream, in;
} g_op_kind[2]; /* (two: receives and sends pended on the same sockets alternate) */
static int g_op_kind_next;

/* 1 (STREAM; ``*in``: POLLIN), 0 (not STREAM) or -1 with an error. */
static int
op_stream_kind(PyObject *op, int *in)
{
    PyTypeObject *tp = Py_TYPE(op);
    int tagged = (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) != 0;
    for (int i = 0; tagged && i < 2; i++) {
        if (tp == g_op_kind[i].type && tp->tp_version_tag == g_op_kind[i].tag) {
            *in = g_op_kind[i].in;
            return g_op_kind[i].stream;
        }
    }
    PyObject *kind = class_attr(op, ds_kind);
    if (kind == NULL) {
        return -1;
    }
    int stream = kind == d_stream_kind;
    Py_DECREF(kind);
    long events = 0;
    if (stream) {
        PyObject *ev = class_attr(op, ds_poll_events);
        if (ev == NULL) {
            return -1;
        }
        events = PyLong_AsLong(ev);
        Py_DECREF(ev);
        if (events == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    *in = (events & d_pollin) != 0;
    /* remembered only when both came from the type itself (class_attr's first case) */
    PyObject *k = tagged && tp->tp_dictoffset == 0 ? _PyType_Lookup(tp, ds_kind) : NULL;
    PyObject *e = k != NULL ? _PyType_Lookup(tp, ds_poll_events) : NULL;
    if (k != NULL && Py_TYPE(k)->tp_descr_get == NULL &&
        (!stream || (e != NULL && Py_TYPE(e)->tp_descr_get == NULL))) {
        int i = g_op_kind_next;
        g_op_kind_next = !i;
        g_op_kind[i].type = tp;
        g_op_kind[i].tag = tp->tp_version_tag;
        g_op_kind[i].stream = stream;
        g_op_kind[i].in = *in;
    }
    return stream;
}

/* ``file._forget_locked(op)`` (the op is registered); ``*release`` is set (a new reference
 * to the file) when the descriptor must be released once the state is written. */
static int
forget_locked(PyObject *file, int ffast, PyObject *op, int ofast, PyObject **release)
{
    if (!has_method(Py_TYPE(file), ds_forget, d_py_forget)) {
        PyObject *r = call_method(file, ds_forget, &op, 1);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
        return 0;
    }
    int r = truth(&d_op, ofast, op, OP_REGISTERED);
    if (r <= 0) {
        return r;
    }
    if (set(&d_op, ofast, op, OP_REGISTERED, Py_NewRef(Py_False)) < 0) {
        return -1;
    }
    PyObject *pending = get(&d_file, ffast, file, FI_PENDING);
    if (pending == NULL) {
        return -1;
    }
    int ok;
    if (PyDict_CheckExact(pending)) {
        ok = PyDict_DelItem(pending, op);
        if (ok < 0 && PyErr_ExceptionMatches(PyExc_KeyError)) {
            PyErr_Clear();
            ok = 0;
        }
    }
    else {
        PyObject *args[2] = {op, Py_None};
        PyObject *res = call_method(pending, ds_pop, args, 2);
        ok = res == NULL ? -1 : 0;
        Py_XDECREF(res);
    }
    if (ok < 0) {
        Py_DECREF(pending);
        return -1;
    }
    int in = 0;
    int stream = op_stream_kind(op, &in);
    if (stream < 0) {
        Py_DECREF(pending);
        return -1;
    }
    if (stream) {
        int rc = in ? decrement(&d_file, ffast, file, FI_IN)
                    : decrement(&d_file2, kind_fast(&d_file2, Py_TYPE(file)), file, FI2_OUT);
        if (rc < 0) {
            Py_DECREF(pending);
            return -1;
        }
    }
    PyObject *issuer = get(&d_op2, kind_fast(&d_op2, Py_TYPE(op)), op, OP2_ISSUER);
    if (issuer == NULL) {
        Py_DECREF(pending);
        return -1;
    }
    PyObject *ext = get(&d_ts, kind_fast(&d_ts, Py_TYPE(issuer)), issuer, TS_EXTENSIONS);
    Py_DECREF(issuer);
    if (ext == NULL) {
        Py_DECREF(pending);
        return -1;
    }
    PyObject *ops;
    if (PyDict_CheckExact(ext)) {
        ops = PyDict_GetItemWithError(ext, d_io_key);
        Py_XINCREF(ops);
    }
    else {
        PyObject *args[1] = {d_io_key};
        ops = call_method(ext, ds_get, args, 1);
        if (ops == Py_None) {
            Py_CLEAR(ops);
        }
    }
    Py_DECREF(ext);
    if (ops == NULL && PyErr_Occurred()) {
        Py_DECREF(pending);
        return -1;
    }
    if (ops != NULL && ops != Py_None) {
        if (PyDict_CheckExact(ops)) {
            ok = PyDict_DelItem(ops, op);
            if (ok < 0 && PyErr_ExceptionMatches(PyExc_KeyError)) {
                PyErr_Clear();
                ok = 0;
            }
        }
        else {
            PyObject *args[2] = {op, Py_None};
            PyObject *res = call_method(ops, ds_pop, args, 2);
            ok = res == NULL ? -1 : 0;
            Py_XDECREF(res);
        }
        Py_DECREF(ops);
        if (ok < 0) {
            Py_DECREF(pending);
            return -1;
        }
    }
    else {
        Py_XDECREF(ops);
    }
    r = truth(&d_file, ffast, file, FI_CLOSING);
    if (r > 0) {
        Py_ssize_t left = PyObject_Length(pending);
        if (left < 0) {
            r = -1;
        }
        else if (left == 0) {
            *release = Py_NewRef(file);
        }
    }
    Py_DECREF(pending);
    return r < 0 ? -1 : 0;
}


/* ------------------------------------------------------------------ deliver_batch */

/* One request (``deliver``, or ``deliver_batch``'s loop body when ``h`` holds the batch's
 * ports), in the Python order: 1 delivered, 0 delivered already, or -1 with an error. */
static int
deliver_one(PyObject *op, PyObject *status, PyObject *information, held_t *h, int immediate)
{
    int ofast = kind_fast(&d_op, Py_TYPE(op));
    int r = truth(&d_op, ofast, op, OP_DONE);
    if (r != 0) {
        return r < 0 ? -1 : 0;
    }
    if (set(&d_op, ofast, op, OP_DONE, Py_NewRef(Py_True)) < 0) {
        return -1;
    }
    PyObject *et = NULL, *ev = NULL, *etb = NULL; /* an interrupt, raised at the end */
    PyObject *file = NULL, *ov = NULL, *event = NULL, *routine = NULL, *sync = NULL,
             *release = NULL;
    int ffast = 0;
    if ((file = get(&d_op, ofast, op, OP_FILE)) == NULL ||
        (ov = get(&d_op, ofast, op, OP_OV)) == NULL) {
        goto out;
    }
    int vfast = kind_fast(&d_ov, Py_TYPE(ov));
    if (set(&d_ov, vfast, ov, OV_INFORMATION, Py_NewRef(information)) < 0 ||
        set(&d_ov, vfast, ov, OV_STATUS, Py_NewRef(status)) < 0) {
        goto out;
    }
    ffast = kind_fast(&d_file, Py_TYPE(file));
    if ((event = get(&d_op, ofast, op, OP_EVENT)) == NULL) {
        goto out;
    }
    PyObject *wake = NULL; /* borrowed */
    if (event != Py_None) {
        int efast = kind_fast(&d_event, Py_TYPE(event));
        if (set(&d_event, efast, event, EV_SIGNALED, Py_NewRef(Py_True)) < 0 ||
            (r = truth(&d_event, efast, event, EV_WAITERS)) < 0) {
            goto out;
        }
        if (r) {
            wake = event;
        }
    }
    else {
        if ((r = truth(&d_file, ffast, file, FI_SKIP_SET)) < 0) {
            goto out;
        }
        if (!r) {
            if (set(&d_file, ffast, file, FI_SIGNALED, Py_NewRef(Py_True)) < 0 ||
                (r = truth(&d_file, ffast, file, FI_WAITERS)) < 0) {
                goto out;
            }
            if (r) {
                wake = file;
            }
        }
    }
    if (wake != NULL &&
        call_step(fio_wake(d_wake_waiters, wake), &et, &ev, &etb) < 0) {
        goto out;
    }
    if ((routine = get(&d_op, ofast, op, OP_ROUTINE)) == NULL) {
        goto out;
    }
    if (routine != Py_None) {
        PyObject *issuer = get(&d_op2, kind_fast(&d_op2, Py_TYPE(op)), op, OP2_ISSUER);
        if (issuer == NULL) {
            goto out;
        }
        PyObject *args[5] = {issuer, routine, status, information, ov};
        r = call_step(fio_again(d_queue_routine, NULL, args, 5), &et, &ev, &etb);
        Py_DECREF(issuer);
        if (r < 0) {
            goto out;
        }
    }
    else {
        if ((r = truth(&d_op, ofast, op, OP_SKIP_PORT)) < 0) {
            goto out;
        }
        if (!r) {
            PyObject *port = get(&d_file, ffast, file, FI_PORT);
            if (port == NULL) {
                goto out;
            }
            if (port == Py_None) {
                r = 0;
            }
            else if (h != NULL) {
                r = dn_post(port, file, ffast, ov, status, information, h);
            }
            else {
                /* no packet for an immediate success with SKIP_COMPLETION_PORT_ON_SUCCESS */
                r = immediate ? PyObject_RichCompareBool(status, g_zero, Py_EQ) : 0;
                if (r > 0) {
                    r = truth(&d_file2, kind_fast(&d_file2, Py_TYPE(file)), file,
                              FI2_SKIP_SUCCESS);
                }
                if (r == 0) {
                    PyObject *key = get(&d_file, ffast, file, FI_KEY);
                    r = key == NULL ? -1 : dn_post_locked(port, key, ov, status, information);
                }
                else if (r > 0) {
                    r = 0;
                }
            }
            Py_DECREF(port);
            if (r < 0 && call_step(NULL, &et, &ev, &etb) < 0) {
                goto out;
            }
        }
    }
    if ((r = truth(&d_op, ofast, op, OP_REGISTERED)) < 0) {
        goto out;
    }
    if (r) {
        if (forget_locked(file, ffast, op, ofast, &release) < 0 &&
            call_step(NULL, &et, &ev, &etb) < 0) {
            goto out;
        }
        if (release != NULL) {
            /* the closing file's descriptor (``_release_fd``: subclasses override it) */
            PyObject *args[1] = {release};
            PyObject *res = fio_again(NULL, ds_release_fd, args, 1);
            if (call_step(res, &et, &ev, &etb) < 0) {
                goto out;
            }
        }
    }
    if ((sync = get(&d_op, ofast, op, OP_SYNC)) == NULL) {
        goto out;
    }
    if (sync != Py_None) {
        int efast = kind_fast(&d_event, Py_TYPE(sync));
        if (set(&d_event, efast, sync, EV_SIGNALED, Py_NewRef(Py_True)) < 0 ||
            (r = truth(&d_event, efast, sync, EV_WAITERS)) < 0) {
            goto out;
        }
        if (r && call_step(fio_wake(d_wake_waiters, sync), &et, &ev, &etb) < 0) {
            goto out;
        }
    }
out:
    Py_XDECREF(file);
    Py_XDECREF(ov);
    Py_XDECREF(event);
    Py_XDECREF(routine);
    Py_XDECREF(sync);
    Py_XDECREF(release);
    if (et != NULL) {
        /* an interrupt: it wins over an Exception that stopped the delivery after it */
        PyErr_Restore(et, ev, etb);
        return -1;
    }
    return PyErr_Occurred() ? -1 : 1;
}

/* deliver_batch(batch) -> list of the exceptions raised (``_dispatch.deliver_batch``). */
PyObject *
dn_deliver_batch(PyObject *module, PyObject *batch)
{
    if (!PyList_CheckExact(batch)) {
        return PyObject_CallOneArg(d_py_deliver_batch, batch);
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(batch); i++) {
        PyObject *item = PyList_GET_ITEM(batch, i);
        if ((!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3) &&
            !ReceiveSlot_CheckExact(item)) {
            /* (a Python receive slot, ``_io._slot``: the whole batch to the Python function) */
            return PyObject_CallOneArg(d_py_deliver_batch, batch);
        }
    }
    PyObject *errors = PyList_New(0);
    if (errors == NULL) {
        return NULL;
    }
    held_t h;
    h.n = 0;
    h.more = NULL;
    slot_drops_t drops; /* the receive slots' references, released once LOCK is */
    slot_drops_init(&drops);
    if (fio_acquire(d_lock) < 0) {
        Py_DECREF(errors);
        return NULL;
    }
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    /* (a call made for one request may run code that changes the list: indexed each time) */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(batch); i++) {
        PyObject *item = Py_NewRef(PyList_GET_ITEM(batch, i));
        int r = -1;
        if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) == 3) {
            r = deliver_one(PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1),
                            PyTuple_GET_ITEM(item, 2), &h, 0);
        }
        else if (ReceiveSlot_CheckExact(item)) {
            /* a REAPED receive slot (``_dispatch._deliver_slot_locked``): its own steps, or
             * its demoted request's */
            PyObject *op, *info;
            r = dn_deliver_slot(item, &h, &drops, &op, &info);
            if (op != NULL) {
                r = deliver_one(op, d_success, info, &h, 0);
                Py_DECREF(op);
                Py_DECREF(info);
            }
            else if (r < 0 && ((ReceiveSlotObject *)item)->state == SLOT_REAPED) {
                /* Nothing written (its byte count's int could not be made): no completion
                 * of it is made, so it must not be reported and dropped as a bug's. The
                 * batch stops here as for an interrupt: the caller's ``cuts.deliver_rest``
                 * delivers this slot (still REAPED) and the rest, then the error goes on. */
                PyErr_Fetch(&et, &ev, &etb);
                Py_DECREF(item);
                break;
            }
        }
        else {
            PyErr_SetString(PyExc_TypeError, "a batch item is (op, status, information)");
        }
        Py_DECREF(item);
        if (r < 0) {
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                PyErr_Fetch(&et, &ev, &etb); /* a BaseException: the batch stops */
                break;
            }
            /* a bug: collected, and the rest of the batch is still delivered */
            PyObject *t, *v, *tb;
            PyErr_Fetch(&t, &v, &tb);
            PyErr_NormalizeException(&t, &v, &tb);
            if (tb != NULL) {
                PyException_SetTraceback(v, tb);
            }
            int a = PyList_Append(errors, v);
            Py_XDECREF(t);
            Py_XDECREF(v);
            Py_XDECREF(tb);
            if (a < 0) {
                PyErr_Fetch(&et, &ev, &etb);
                break;
            }
        }
    }
    if (dn_held_release(&h) < 0) {
        if (et == NULL) {
            PyErr_Fetch(&et, &ev, &etb);
        }
        else {
            PyErr_Clear();
        }
    }
    fio_release(d_lock);
    slot_drops_release(&drops);
    if (et != NULL) {
        Py_DECREF(errors);
        PyErr_Restore(et, ev, etb);
        return NULL;
    }
    return errors;
}


/* deliver(op, status, information, immediate=False) -> bool (``_dispatch.deliver``). */
PyObject *
dn_deliver(PyObject *module, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 3 || nargs > 4 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        return PyObject_Vectorcall(d_py_deliver, args, nargsf, kwnames);
    }
    int immediate = nargs == 4 ? PyObject_IsTrue(args[3]) : 0;
    if (immediate < 0) {
        return NULL;
    }
    if (fio_acquire(d_lock) < 0) {
        return NULL;
    }
    int r = deliver_one(args[0], args[1], args[2], NULL, immediate);
    fio_release(d_lock);
    if (r < 0) {
        return NULL;
    }
    return Py_NewRef(r ? Py_True : Py_False);
}
