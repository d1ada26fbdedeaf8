"""review7's adversarial review of the C accelerator's completion and wait side
(``_fastdeliver.c``, ``_fastpost.c``, ``_fastprocess.c``, ``_fastreap.c``, ``_fastdefer.c``,
``_fastlead.c``, ``_fastport.c``; 2026-12-05): one test per finding, each failing before its
fix, on both implementations where both take the path.

- An interrupt (a signal handler's KeyboardInterrupt) lands at the entry of the first Python
  function a C path calls after the signal arrived: in the completion funnel that is most
  often ``wake_waiters`` (an event's, a file's, a port's direct waiters). The C funnel kept the
  interrupt and wrote the rest of the request, but the waiters of the object whose walk was
  cut stayed asleep on a signaled object, for ever. The kernel layer's rule (``_objects``:
  the walk is finished first, it is idempotent) now holds in the funnel too, in C
  (``fio_wake``) and in Python (``_dispatch``). Simulated where the signal would land: a
  profile hook raising at the function's entry (``_entry_interrupt``).
- The same for every other Python call the C funnel makes once the request's state is
  written: a GQCS waiter's ``parker.release()`` (a ``RingParker``'s is Python: the waiter slept
  for ever on the packet handed to it), ``_queue_routine`` (the APC was never queued),
  ``_release_fd`` (a closing file's descriptor never closed), a port's ``_posted_locked``
  (``_fastio.c``'s cached read). A signal is raised once, at the first check after it came:
  the call is made again (``fio_again``), and a held port's other waiters are still released.
  With that, one signal arriving while the C funnel runs loses no effect.
- ``Deferral.take_burst`` in C called its own C ``publish`` and did ``own_locked`` and
  ``hint_locked`` inline, bypassing a ring, migration or deferral class that redefines them
  (creview's low-harm item): such a shape goes to the Python method now.
- The reaper module's ``deliver``/``report`` (``_fastreap.c``) and ``deliver_batch``
  (``_fastprocess.c``) were called as borrowed references out of the module's namespace:
  held for their call now; pinned by a name rebound during its own call.
- The sockets' immediate path in C: once the syscall took (or sent) the data, a contended
  LOCK's wait cut by a signal handler lost the completion (the bytes nowhere); the wait now
  goes on and the interrupt is raised after the completion is written. Its ``wake_waiters``
  and ``_post_locked`` calls are made again after an interrupt at their entry.
- The sockets' pended receive in C: an interrupt at ``_submit_locked``'s entry left the RECV
  prepared and never submitted (no owner, no watch: the receive never completed); it is
  made again (it recounts from the kernel's SQ head).
- Failed allocations (``_testcapi.set_nomemory`` sweeps): ``_release_locked`` in C popped a
  GQCS waiter before what may fail, leaving it out of the port and asleep; now it is popped
  last, without an allocation.
- CPython 3.12/3.13: the module is built, linked, loaded and run by each other CPython
  installed (the older check only compiled it).
"""

from __future__ import annotations

import gc
import glob
import os
import select
import shlex
import shutil
import signal as signal_mod
import socket
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from winaio._backends import uring
from winaio._backends.uring import fastpend
from winaio._backends.uring import reaper as reaper_mod
from winaio._backends.uring.deferral import Deferral
from winaio._backends.uring.migration import Migration
from winaio._backends.uring.ring import BackendRing
from winaio._backends.uring.submission import Submission
from winaio._io import _dispatch
from winaio._io._files import FileObject
from winaio._io._ops import Operation
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._io._sockets import sockets_accelerator_available
from winaio._io._stream_ops import StreamReadOp
from winaio._kernel import _dispatcher
from winaio._kernel._dispatcher import ThreadState, WaitBlock
from winaio._kernel._objects import Event
from winaio._kernel._threads import current_thread_state
from winaio.codes import WaitCode
from winaio.testing import (
    PyParker,
    accelerator_for_test,
    close_files,
    file_request,
    nomem_sweep,
    null_file,
    port_getter,
    require_c_path,
    wait_until,
    waiting_on,
)

C_DONE = reaper_mod._C_DONE
WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)
OK, REASON = uring.probe_backend()
_NOT_313 = sys.version_info < (3, 13)  # (3.13+: the C paths build and hand over)


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt (a BaseException raised by a signal handler)."""


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted


def _require_c() -> None:
    require_c_path(C_DONE is not None)


@contextmanager
def _entry_interrupt(func: Callable[..., Any]) -> Iterator[list[int]]:
    """The next call of the Python function ``func`` on this thread raises
    :class:`Interrupted` at its entry, before its first statement: where a signal handler
    raises when the signal arrived while C code ran (the first eval-breaker check after it is
    the entry of the next Python function called). Yields the list of hits."""
    code = func.__code__
    hits: list[int] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is code and not hits:
            hits.append(1)
            raise Interrupted  # (the interpreter unsets the hook then)

    sys.setprofile(profile)
    try:
        yield hits
    finally:
        sys.setprofile(None)


@pytest.fixture
def null_fd() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_RDONLY)
    yield fd
    os.close(fd)


# ---------------------------------------------------------------------- wake_waiters' entry


def _deliverers() -> dict[str, Callable[[Operation], Any]]:
    out: dict[str, Callable[[Operation], Any]] = {
        "python-deliver": lambda op: _dispatch.deliver(op, 0, 7),
        "python-batch": lambda op: _dispatch.py_deliver_batch([(op, 0, 7)]),
    }
    if C_DONE is not None:
        out["c-deliver"] = lambda op: C_DONE[3](op, 0, 7)
        out["c-batch"] = lambda op: C_DONE[0]([(op, 0, 7)])
    return out


@pytest.mark.parametrize("how", ["python-deliver", "python-batch", "c-deliver", "c-batch"])
@pytest.mark.parametrize("target", ["event", "file", "port"])
def test_an_interrupt_at_wake_waiters_entry_leaves_no_waiter_asleep(
    how: str, target: str, null_fd: int
) -> None:
    """The completion's event (or its file object, or its port's direct waiter: a
    WaitForSingleObject on the port) is signaled and another thread waits on it; the interrupt
    lands at ``wake_waiters``' entry. Before the fix the waiter stayed asleep on a signaled
    object (the C funnel went on and raised at the end; the Python funnel raised at once)."""
    if how.startswith("c"):
        _require_c()
    issuer = ThreadState(3000, 3000)
    file = null_file(null_fd)
    port = CompletionPort(4)
    event = Event(True, False) if target == "event" else None
    if target == "port":
        file.port, file.key = port, "k"
    waited: Any = {"event": event, "file": file, "port": port}[target]
    waiter, wb = waiting_on(waited, 3001)
    op = file_request(file, event, issuer)
    try:
        with _entry_interrupt(_dispatcher.wake_waiters) as hits, pytest.raises(Interrupted):
            _deliverers()[how](op)
        assert hits == [1]
        assert op.done and op.overlapped.information == 7
        # the walk finished: the waiter is satisfied and holds its wake-up token
        assert wb.result == WAIT_OBJECT_0
        assert waiter.wake_pending and not waiter.parker.locked()  # type: ignore[attr-defined]
        if target == "port":
            assert [p.overlapped for p in port._packets] == [op.overlapped]
    finally:
        close_files([file])  # (closed here: its finalizer must not close a reused number)


# ---------------------------------------------------------------------- take_burst's shapes


class _RingPublish(BackendRing):
    """A ring class whose ``publish`` is its own (a test's stand-in, a subclass)."""

    __slots__ = ()
    calls: ClassVar[list[str]] = []

    def publish(self) -> int:
        self.calls.append("publish")
        return super().publish()


class _MigrationOwn(Migration):
    __slots__ = ()
    calls: ClassVar[list[str]] = []

    def own_locked(self, ts: ThreadState, uds: Any, table: Any) -> None:
        self.calls.append("own_locked")
        super().own_locked(ts, uds, table)


class _DeferralHint(Deferral):
    __slots__ = ()
    calls: ClassVar[list[str]] = []

    def hint_locked(self) -> None:
        self.calls.append("hint_locked")
        super().hint_locked()


@pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}")
@pytest.mark.parametrize("impl", ["python", "c"])
@pytest.mark.parametrize(
    "cls", [_RingPublish, _MigrationOwn, _DeferralHint], ids=["publish", "own", "hint"]
)
def test_take_burst_calls_the_methods_a_subclass_redefines(impl: str, cls: Any) -> None:
    """``Deferral.take_burst`` calls ``self._ring.publish()``, ``self._migration.own_locked``
    and ``self.hint_locked()``: the C method called its own C ``publish`` and did the other
    two inline, whatever the classes redefined (kind_t checks the slots only): a ring,
    migration or deferral class with its own method was bypassed. Now such a shape goes to
    the Python method, before anything is touched."""
    if impl == "c":
        _require_c()
    b = uring.IoUringBackend()
    try:
        with accelerator_for_test(impl):
            parts = {_RingPublish: b._ring, _MigrationOwn: b._migration, _DeferralHint: b._deferral}
            obj = parts[cls]
            base = type(obj)
            cls.calls.clear()
            obj.__class__ = cls
            try:
                d = b._deferral
                ts = current_thread_state()
                with b._lock:
                    d.unsubmitted.append(0x7FFF0001)  # a burst the owner deferred
                taken = d.take_burst(ts)
            finally:
                obj.__class__ = base
            expected = {"_RingPublish": "publish", "_MigrationOwn": "own_locked",
                        "_DeferralHint": "hint_locked"}[cls.__name__]  # fmt: skip
            assert cls.calls == [expected]
            assert taken == 0 and not d.unsubmitted and d.enters == 1 and not d.hinted
            with b._lock:
                assert 0x7FFF0001 in b._migration.owned.pop(ts)
    finally:
        b.close()


# ---------------------------------------------------------------------- the reaper's names


class _RebindsItself:
    """A stand-in for the reaper module's ``name`` that puts the real one back during its own
    call (the module then holds the only reference to the real one; this object is freed
    once the call returns) and calls it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.real = getattr(reaper_mod, name)

    def __call__(self, *args: Any) -> Any:
        setattr(reaper_mod, self.name, self.real)
        _RebindsItself.seen.append(self.name)
        return self.real(*args)

    seen: ClassVar[list[str]] = []


@pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}")
@pytest.mark.parametrize("name", ["deliver", "deliver_batch"])
@pytest.mark.usefixtures("slots_off")  # (the request path: receive slots off)
def test_a_reaper_function_rebound_during_its_own_call(
    fast_path_impl: str,
    armed_uring: uring.IoUringBackend,
    parked_port: Callable[[Any], CompletionPort],
    socket_pair: Any,
    name: str,
) -> None:
    """``_fastreap.c`` (the one-CQE path's ``deliver``, an exception's ``report``) and
    ``_fastprocess.c`` (``Reaper.deliver``'s ``deliver_batch``) call the reaper module's
    functions by name, looked up at each call: they were called as borrowed references out of
    the module's namespace. They are held for their call now; a name rebound during its own
    call (the old object's last reference dropped) completes every request, once."""
    b = armed_uring
    port = parked_port(b)
    n = 1 if name == "deliver" else 2  # the one-CQE path, or a batch
    made = []
    for i in range(n):
        s, peer = socket_pair(b)
        s.associate(port, i)
        buf = bytearray(8)
        ov = Overlapped(0)
        assert s.start_read(buf, ov) is False
        made.append((s, peer, buf, ov))
    wait_until(lambda: len(b._table) == n, 5.0, "the RECVs are in the kernel")
    for i, (_, peer, _, _) in enumerate(made):
        peer.sendall(b"data%d" % i)
    wait_until(lambda: b._ring.cq_ready() == n, 5.0, "the RECVs complete")
    _RebindsItself.seen.clear()
    real = getattr(reaper_mod, name)
    setattr(reaper_mod, name, _RebindsItself(name))  # (its only reference: the module's)
    try:
        got = [port.get(5.0) for _ in made]
    finally:
        setattr(reaper_mod, name, real)
    assert _RebindsItself.seen == [name]
    assert sorted(p.key for p in got if p is not None) == list(range(n))
    for i, (s, _, buf, ov) in enumerate(made):
        assert bytes(buf[:5]) == b"data%d" % i and not ov.pending and s.pending_requests == 0
    assert port.get(0) is None


# ---------------------------------------------------------------------- after the syscall


def _blocked_in(ident: int, code: Any) -> bool:
    """The thread ``ident`` sleeps in the kernel (its GIL released) while its innermost
    Python frame runs ``code``: inside a C call made there."""
    frame = sys._current_frames().get(ident)
    if frame is None or frame.f_code is not code or frame.f_lineno == code.co_firstlineno:
        return False  # (at its first line: waiting for the GIL at its entry, not in the call)
    tid = {t.ident: t.native_id for t in threading.enumerate()}.get(ident)
    try:
        with open(f"/proc/self/task/{tid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "S"
    except OSError:
        return False


@pytest.mark.parametrize("direction", ["receive", "send"])
def test_a_contended_lock_interrupted_after_the_syscall_loses_nothing(
    socket_pair: Any, direction: str
) -> None:
    """The sockets' immediate path in C (``_fastsock.c``): the syscall took the data (or
    sent it), then the notification waits for the dispatcher LOCK, which another thread
    holds; a signal arrives meanwhile and its handler raises. The data was lost (a receive's
    bytes gone from the socket, nowhere in the IOSB; a send's bytes on the wire, the caller
    told it failed) - the one interruptible point between the syscall and the IOSB on this
    path. Now the wait for LOCK goes on, the completion is written whole (IOSB, event), and
    the interrupt propagates after it. (The Python method cannot do this: its ``with LOCK``
    is cut where the C acquire is, and an interrupt can land after any call's return.)"""
    require_c_path(sockets_accelerator_available(), "the sockets' C path")
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread")
    with accelerator_for_test("c"):
        f, peer = socket_pair()
        if direction == "receive":
            peer.sendall(b"abcdefgh")
            wait_until(lambda: f.sock.recv(8, socket.MSG_PEEK) == b"abcdefgh", 5.0, "data")
        event = Event(True, False)
        ov = Overlapped(0, event)
        buf = bytearray(16)
        previous = signal_mod.signal(signal_mod.SIGUSR1, _raise_interrupted)
        main = threading.get_ident()
        sent = threading.Event()

        def issue() -> Any:
            if direction == "receive":
                return f.start_read(buf, ov)
            return f.start_write(b"12345678", ov)

        def holder() -> None:
            with _dispatcher.LOCK:
                wait_until(lambda: _blocked_in(main, issue.__code__), 5.0, "the call waits")
                signal_mod.pthread_kill(main, signal_mod.SIGUSR1)
                sent.set()
                time.sleep(0.05)  # (the handler runs; the call must wait on)

        t = threading.Thread(target=holder)
        t.start()
        try:
            with pytest.raises(Interrupted):
                issue()
        finally:
            t.join(5.0)
            signal_mod.signal(signal_mod.SIGUSR1, previous)
        assert sent.is_set()
        # the completion is there, whole: IOSB and event (and no second copy of anything)
        assert ov.status == 0 and ov.information == 8 and event._signaled
        if direction == "receive":
            assert bytes(buf[:8]) == b"abcdefgh"
        else:
            peer.settimeout(5.0)
            assert peer.recv(16) == b"12345678"


def test_a_real_signal_at_the_entry_of_the_ports_post_loses_no_packet(socket_pair: Any) -> None:
    """A real signal, no simulation: it arrives while the sockets' C immediate path waits for
    a contended LOCK (the main thread blocks it, so another thread takes it and the main
    thread's handler runs at its next eval-breaker check): that check is the entry of the
    first Python function the C code calls once it has LOCK, the port's ``_post_locked``.
    The packet was lost (the receive completed, its IOSB written, no packet ever queued for
    the port's waiters). The traceback shows the cut at the entry (``fio_cut_at_entry``):
    the call is made again, then the interrupt goes on."""
    require_c_path(sockets_accelerator_available(), "the sockets' C path")
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread")
    with accelerator_for_test("c"):
        f, peer = socket_pair()
        port = CompletionPort(4)
        f.associate(port, "k")
        peer.sendall(b"abcdefgh")
        wait_until(lambda: f.sock.recv(8, socket.MSG_PEEK) == b"abcdefgh", 5.0, "data")
        ov = Overlapped(0)
        buf = bytearray(16)
        previous = signal_mod.signal(signal_mod.SIGUSR1, _raise_interrupted)
        main = threading.get_ident()

        def issue() -> Any:
            return f.start_read(buf, ov)

        def holder() -> None:
            with _dispatcher.LOCK:
                wait_until(lambda: _blocked_in(main, issue.__code__), 5.0, "the call waits")
                os.kill(os.getpid(), signal_mod.SIGUSR1)  # (taken by a thread that lets it)
                time.sleep(0.05)

        signal_mod.pthread_sigmask(signal_mod.SIG_BLOCK, {signal_mod.SIGUSR1})
        t = threading.Thread(target=holder)
        try:
            t.start()
            with pytest.raises(Interrupted) as info:
                issue()
        finally:
            t.join(5.0)
            signal_mod.pthread_sigmask(signal_mod.SIG_UNBLOCK, {signal_mod.SIGUSR1})
            signal_mod.signal(signal_mod.SIGUSR1, previous)
        # (raised where the handler ran: at the entry of the port's method)
        assert info.traceback[-2].name == "_post_locked", info.traceback
        assert ov.status == 0 and ov.information == 8 and bytes(buf[:8]) == b"abcdefgh"
        packet = port.get(0)
        assert packet is not None and packet.overlapped is ov and packet.key == "k"
        assert port.get(0) is None  # once
        port.close()


@pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}")
@pytest.mark.parametrize("impl", ["python", "c"])
def test_an_interrupt_submitting_a_pended_receive_still_submits_it(
    armed_uring: uring.IoUringBackend, socket_pair: Any, impl: str
) -> None:
    """The sockets' pended receive in C (``_fastpend.c``) registers the request, makes it a
    line's head and prepares its RECV in one go; a thread that does not own the ring then
    submits it at once (``_submit_locked``, a Python method: its entry is where a signal that
    came meanwhile is raised). Cut there, the RECV stayed prepared and unsubmitted: nobody
    submits it (no owner, no watch), the receive never completed, and the socket's close
    waited for it for ever. ``_submit_locked`` is idempotent (it recounts from the kernel's
    SQ head): it is made again before the interrupt goes on, which then leaves a request
    that completes as any pending one; the Python method (``_pend_locked``) does the same.
    (The Python method has other windows before that point: the C path closes them.)"""
    if impl == "c" and not fastpend.FAST:
        if os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0") and _NOT_313:
            pytest.fail("WINAIO_REQUIRE_ACCEL=1 but the C pended receive is not available")
        pytest.skip("the C pended receive does not run on this CPython")
    b = armed_uring
    with accelerator_for_test(impl):
        f, peer = socket_pair(b)
        event = Event(True, False)
        ov = Overlapped(0, event)
        buf = bytearray(16)
        assert b._lead.owner is None  # not this thread's: it submits at once
        with _entry_interrupt(Submission.submit_locked) as hits, pytest.raises(Interrupted):
            f.start_read(buf, ov)  # nothing to read yet: it pends
        assert hits == [1] and ov.pending and f.pending_requests == 1
        peer.sendall(b"hello")
        wait_until(lambda: not ov.pending, 5.0, "the receive completes")
        assert ov.status == 0 and ov.information == 5 and bytes(buf[:5]) == b"hello"
        assert event._signaled and f.pending_requests == 0


@pytest.mark.parametrize("how", ["c-deliver", "c-batch"])
@pytest.mark.parametrize("call", ["parker", "routine", "release_fd"])
def test_an_interrupt_at_a_python_call_of_the_c_funnel_loses_no_effect(
    how: str, call: str, null_fd: int
) -> None:
    """The C funnel (``_fastdeliver.c``, ``_fastpost.c``) calls Python functions last, once
    the request's state is written: a GQCS waiter's ``parker.release()`` (the packet handed to
    it), ``_queue_routine`` (the APC), a closing file's ``_release_fd``. An interrupt at the
    call's entry (where a signal that came while the C code ran is raised) was kept and
    raised at the end, but the call's effect was lost: the waiter slept for ever on the packet
    it was handed, the completion routine never ran, the descriptor was never closed. Now the
    call is made again (``fio_again``: nothing was done at the entry; the handler ran), then
    the interrupt goes on. (The Python funnel can be cut anywhere, not only at the entries of
    its calls: the C path is the one made interrupt-safe.)"""
    _require_c()
    issuer = ThreadState(3100, 3100)
    file = null_file(null_fd)
    port = CompletionPort(4)
    op = file_request(file, None, issuer)
    file.skip_set_event = True  # (no file waiters to wake: the call under test comes first)
    func: Callable[..., Any]
    if call == "parker":
        file.port, file.key = port, "k"
        waiter, wb = port_getter(port, 3101, 4, PyParker())
        func = PyParker.release
    elif call == "routine":
        op.routine = _routine = lambda *args: None
        func = _dispatch._queue_routine
    else:
        file.closing = True
        op.registered = True
        file._pending[op] = None
        func = FileObject._release_fd
    fd = file.fd
    try:
        with _entry_interrupt(func) as hits, pytest.raises(Interrupted):
            _deliverers()[how](op)
        assert hits == [1] and op.done and op.overlapped.information == 7
        if call == "parker":
            assert wb.result == WAIT_OBJECT_0 and [p.overlapped for p in wb.data] == [op.overlapped]
            assert waiter.wake_pending and not waiter.parker.lock.locked()  # type: ignore[attr-defined]
        elif call == "routine":
            assert [routine for routine, _ in issuer.apcs] == [_routine]
        else:
            assert file.fd == -1 and not file._pending
            with pytest.raises(OSError):
                os.fstat(fd)
    finally:
        close_files([file])


# ---------------------------------------------------------------------- the other CPythons

_SMOKE = textwrap.dedent(
    """
    import sys
    from winaio._backends import uring
    from winaio._backends.uring import fastpend
    from winaio._io import _accel
    from winaio._io._overlapped import Overlapped
    from winaio._io._port import CompletionPort
    from winaio._io._sockets import sockets_accelerated
    from winaio.testing import connected_pair

    assert _accel.BUILT, "the module did not import"
    c_paths = sockets_accelerated() and fastpend.FAST
    assert c_paths == (sys.version_info < (3, 13)), c_paths  # 3.13+: builds, falls back
    ok, reason = uring.probe_backend()
    backend = uring.IoUringBackend() if ok else None
    port = CompletionPort()
    s, peer = connected_pair(backend, port)
    for i in range(300):  # pended receives (the first: nothing there yet), immediate sends
        buf, ov = bytearray(16), Overlapped(0)
        if not s.start_read(buf, ov):
            peer.sendall(b"ping%03d" % i)
        packet = port.get(5.0)  # (an immediate success posts its packet too)
        assert packet is not None and packet.key == 7 and packet.overlapped is ov, (i, packet)
        assert ov.information == 7 and bytes(buf[:7]) == b"ping%03d" % i, (i, ov)
        out = Overlapped(0)
        s.start_write(b"pong%03d" % i, out)
        packet = port.get(5.0)
        assert packet is not None and packet.overlapped is out and out.information == 7
        assert peer.recv(16) == b"pong%03d" % i
        if i % 2:
            peer.sendall(b"ping%03d" % (i + 1))  # the next receive finds its data at once
    s.close()
    peer.close()
    port.close()
    if backend is not None:
        backend.close()
    print("ok", c_paths)
    """
)


def _other_cpythons() -> list[Path]:
    """Other CPython 3.12+ interpreters with their headers (pyenv's; CI's machine image has
    3.12 and 3.13 there: no Debian bookworm or PyPI package brings a 3.12's headers)."""
    found = []
    for exe in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3"))):
        root = Path(exe).parents[1]
        if (
            any(root.glob("include/python3.*/Python.h"))
            and Path(exe).resolve() != Path(sys.executable).resolve()
        ):
            found.append(Path(exe))
    return found


@pytest.mark.parametrize("exe", _other_cpythons() or [None], ids=lambda p: p and p.parts[-3])
def test_the_module_builds_imports_and_runs_on_the_other_cpythons(
    exe: Path | None, tmp_path: Path
) -> None:
    """``test_fastpath_review``'s build check compiles with ``-fsyntax-only``: a module that
    compiles but does not link or load (an undefined symbol, a layout assumption that
    crashes at configure time), or whose C paths do not run on 3.12, passed it. Here every
    ``_fast*.c`` is compiled and linked against each other CPython installed, loaded by that
    interpreter from a copy of the package, and a socket echo runs through the C paths (on
    3.12: pended receives, immediate sends, the completion side) or falls back (3.13+)."""
    if exe is None:
        pytest.skip("no other CPython 3.12+ installed (pyenv): nothing to build against")
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    if shutil.which(cc[0]) is None:
        pytest.skip(f"no C compiler ({cc[0]})")
    src = Path(__file__).resolve().parents[2] / "src"
    pkg = tmp_path / "winaio"
    shutil.copytree(src / "winaio", pkg, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    info = subprocess.run(
        [str(exe), "-c", "import sysconfig as s; print(s.get_paths()['include']);"
         "print(s.get_config_var('EXT_SUFFIX'))"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    include, suffix = info[0], info[1]
    io = src / "winaio" / "_io"
    build = subprocess.run(
        [*cc, "-shared", "-fPIC", "-O1", "-Wall", "-Wno-unused-parameter",
         "-Werror=implicit-function-declaration", f"-I{include}", f"-I{io}",
         *map(str, sorted(io.glob("_fast*.c"))), "-o", str(pkg / "_io" / f"_fastio{suffix}")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-4000:]
    env = dict(os.environ, PYTHONPATH=str(tmp_path), WINAIO_PURE_PYTHON="0")
    env.pop("PYTHONHOME", None)
    run = subprocess.run(
        [str(exe), "-X", "faulthandler", "-c", _SMOKE],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.split()[0] == "ok", run.stdout


# ---------------------------------------------------------------------- failed allocations

_NOMEM = textwrap.dedent(
    """
    import os, sys
    from winaio._backends.uring import reaper
    from winaio._io._port import CompletionPort
    from winaio._kernel._dispatcher import ThreadState
    from winaio.testing import call_failing, close_files, file_request, left_behind
    from winaio.testing import null_file, port_getter

    C = reaper._C_DONE
    null = os.open(os.devnull, os.O_RDONLY)

    def world():
        # three requests on files bound to a port with two GQCS waiters (1 packet each)
        issuer, port = ThreadState(5000, 5000), CompletionPort(8)
        waiters = [port_getter(port, 5001 + i) for i in range(2)]
        files, ops = [], []
        for i in range(3):
            f = null_file(null, port, i)
            f.skip_set_event = True
            op = file_request(f, None, issuer)
            op.registered = True
            f._pending[op] = None
            files.append(f)
            ops.append(op)
        return port, waiters, files, ops

    how = sys.argv[1]
    bad = set()
    for k in range(int(sys.argv[2])):
        port, waiters, files, ops = world()
        batch = [(op, 0, 7) for op in ops]

        def deliver_each():
            for op in ops:
                C[3](op, 0, 7)

        # the k-th allocation from here fails
        call_failing(k, C[0], batch) if how == "batch" else call_failing(k, deliver_each)
        bad.update(left_behind(port, getters=[wb for _, wb in waiters]))
        for ts, wb in waiters:
            if wb.result is not None and not ts.wake_pending:
                bad.add("a waiter ended without its token")
        for op in ops:
            if op.done and op.overlapped.status == 0x103:
                bad.add("a request done without its IOSB")
        close_files(files)
    print(sorted(bad))
    """
)


@pytest.mark.parametrize("how", ["batch", "deliver"])
def test_a_failed_allocation_in_the_c_funnel_leaves_no_half_state(how: str) -> None:
    """Every allocation of the C funnel (``_fastdeliver.c``, ``_fastpost.c``) made to fail in
    turn (``_testcapi.set_nomemory``: the k-th allocation from the call on), in a child
    process under the debug allocator: no crash, no lock or port left held, and no GQCS
    waiter popped from its port and left asleep. ``_release_locked`` popped the waiter
    before it made the packets' list and counted its thread as running: a MemoryError there
    left the waiter out of the port, never woken (the Python method has the same order). Now
    what may fail comes first and the waiter is popped without an allocation."""
    _require_c()
    nomem_sweep(_NOMEM, how, "150")


@pytest.mark.parametrize(
    ("impl", "target"),
    # (the Python method's ``_post_locked`` can be cut anywhere in it: only the C path is
    # made safe there)
    [("python", "event"), ("c", "event"), ("c", "port")],
)
def test_an_interrupt_at_a_python_call_of_an_immediate_success_loses_no_effect(
    socket_pair: Any, impl: str, target: str
) -> None:
    """A socket receive that finds its data at once (``_fastsock.c``'s immediate path, the
    Python ``notify_success``): the IOSB is written, then ``wake_waiters`` for the event's
    waiters and the port's ``_post_locked`` are called; an interrupt at the entry of either
    lost its effect (a waiter asleep on a signaled event; the completion packet never
    posted). Now each is made again before the interrupt goes on."""
    if impl == "c":
        require_c_path(sockets_accelerator_available(), "the sockets' C path")
    with accelerator_for_test(impl):
        f, peer = socket_pair()
        port = CompletionPort(4)
        event: Event | None = None
        if target == "event":
            event = Event(True, False)
            waiter, wb = waiting_on(event, 3201)
            func: Callable[..., Any] = _dispatcher.wake_waiters
        else:
            f.associate(port, "k")
            func = CompletionPort._post_locked
        peer.sendall(b"abcdefgh")
        wait_until(lambda: f.sock.recv(8, socket.MSG_PEEK) == b"abcdefgh", 5.0, "data")
        ov = Overlapped(0, event)
        buf = bytearray(16)
        with _entry_interrupt(func) as hits, pytest.raises(Interrupted):
            f.start_read(buf, ov)
        assert hits == [1] and ov.status == 0 and ov.information == 8
        if target == "event":
            assert wb.result == WAIT_OBJECT_0 and waiter.wake_pending
        else:
            packet = port.get(0)
            assert packet is not None and packet.overlapped is ov and packet.key == "k"
        port.close()


@pytest.mark.parametrize("how", ["c-deliver", "c-batch"])
def test_an_interrupt_inside_a_python_call_of_the_c_funnel_is_not_made_twice(
    how: str, null_fd: int
) -> None:
    """The call is made again only when the interrupt cut it at its entry (nothing done):
    one raised inside it (the signal came while it ran: here inside ``_queue_routine``, once
    the APC is queued, at the entry of the ``wake_thread`` it calls for an alertable waiter)
    is not redone - the completion routine is queued once, never twice."""
    _require_c()
    issuer = ThreadState(3300, 3300)
    issuer.wait = WaitBlock(issuer, (), False, True)  # an alertable wait
    file = null_file(null_fd)
    file.skip_set_event = True
    op = file_request(file, None, issuer)
    op.routine = _routine = lambda *args: None
    try:
        with _entry_interrupt(_dispatcher.wake_thread) as hits, pytest.raises(Interrupted):
            _deliverers()[how](op)
        assert hits == [1] and op.done
        assert [routine for routine, _ in issuer.apcs] == [_routine]  # once
    finally:
        close_files([file])


def test_interrupted_c_deliveries_leave_nothing_behind(null_fd: int) -> None:
    """Many C deliveries cut at a Python call's entry (the calls made again, the interrupts
    kept and raised): no reference, object or memory left behind per delivery."""
    _require_c()
    file = null_file(null_fd)
    file.skip_set_event = True
    port = CompletionPort(4)
    file.port, file.key = port, "k"
    issuer = ThreadState(3400, 3400)
    event = Event(True, False)

    def once(i: int) -> None:
        _, wb = port_getter(port, 3401, 4, PyParker())
        _, ev_wb = waiting_on(event, 3402)
        event._signaled = False
        op = file_request(file, event, issuer)
        func = PyParker.release if i % 2 else _dispatcher.wake_waiters
        with _entry_interrupt(func), pytest.raises(Interrupted):
            C_DONE[3](op, 0, 7) if i % 4 < 2 else C_DONE[0]([(op, 0, 7)])  # type: ignore[index]
        assert wb.result == WAIT_OBJECT_0 and ev_wb.result == WAIT_OBJECT_0
        port._running.clear()

    try:
        for i in range(200):  # warm-up: caches, interned names, the profile machinery
            once(i)
        gc.collect()
        objects = len(gc.get_objects())
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            once(i)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert len(gc.get_objects()) - objects < 50
        assert grown < 64 * 1024, grown  # (2000 deliveries: a leak of one object each shows)
    finally:
        close_files([file])


_OP_FIELDS = (
    "file", "overlapped", "event", "skip_port", "routine", "issuer", "done", "submitted",
    "cancel_requested", "token", "sync_done",
)  # fmt: skip


class _Flipping(StreamReadOp):
    """A request class whose ``poll_events`` a test changes between two deliveries."""

    __slots__ = ()


@pytest.mark.parametrize("deliver", ["c", "python"])
def test_a_request_class_changed_between_deliveries_is_read_again(
    deliver: str, null_fd: int
) -> None:
    """``_forget_locked`` counts a STREAM request out of its file's ``stream_in`` (POLLIN) or
    ``stream_out``, as its class says at that moment: a C path that remembers what a class
    says (rslot's cache of ``kind``/``poll_events`` by type version) must read it again once
    the class changed (here a subclass's ``poll_events``, set between two deliveries)."""
    if deliver == "c":
        _require_c()
    fn = (
        (lambda op: C_DONE[3](op, 0, 1))
        if deliver == "c"
        else (lambda op: _dispatch.deliver(op, 0, 1))
    )  # type: ignore[index]
    issuer = ThreadState(3500, 3500)
    file = null_file(null_fd)
    file.skip_set_event = True
    try:
        for events, counter in ((select.POLLIN, "stream_in"), (select.POLLOUT, "stream_out")):
            type.__setattr__(_Flipping, "poll_events", events)
            op = object.__new__(_Flipping)
            base = file_request(file, None, issuer)
            for name in _OP_FIELDS:
                setattr(op, name, getattr(base, name))
            op.registered = True
            file._pending[op] = None
            setattr(file, counter, getattr(file, counter) + 1)
            issuer.extensions.setdefault("io", {})[op] = None
            assert fn(op)
            assert (file.stream_in, file.stream_out) == (0, 0), (events, counter)
    finally:
        type.__delattr__(_Flipping, "poll_events")
        close_files([file])
