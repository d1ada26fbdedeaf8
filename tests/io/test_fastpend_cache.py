"""What the C pended receive remembers between calls, or skips, on a receive slot's arm
(``_io/_fastpend*.c``, ``_fastio.c``; pend, session 13), and that it is never stale:

- The calling thread's ThreadState (``fio_thread_state_seen``): remembered with the version
  of the thread's state dict. A changed entry (another ThreadState put there) is the one the
  next receive's slot holds as its issuer, and the first one again once it is put back; each
  thread arms with its own.
- The line key (``fd + fd``) and its lookup: skipped while the backend's lines are empty. A
  line of another socket there: the key looked up, the slot armed in C; a line that comes
  while the lock is waited for (the lines were empty before it): the Python step 2
  (``Receives._arm_slot``) arms the slot, as the reference does.

Each receive completes with the peer's bytes (nothing left half done).
"""

from __future__ import annotations

import ctypes
import socket
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from winaio._backends import uring
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._io._sockets import Socket
from winaio._kernel._dispatcher import ThreadState
from winaio._kernel._threads import current_thread_state
from winaio.testing import HookedLock, python_frames, slots_for_test

try:
    from winaio._io import _fastio
except ImportError:  # (not built: slots_for_test("c") skips, or fails under REQUIRE_ACCEL)
    _fastio = None  # type: ignore[assignment]

OK, REASON = uring.probe_backend()
pytestmark = pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}")

#: ``_fastio.c``'s key of the remembered ThreadState in the thread's state dict.
TS_KEY = "winaio._io._fastio.thread_state"
LONG = 5.0


def _thread_dict() -> dict[str, Any]:
    """The calling thread's state dict (``PyThreadState_GetDict``), where the C paths
    remember the thread's ThreadState."""
    get = ctypes.pythonapi.PyThreadState_GetDict
    get.restype = ctypes.py_object
    get.argtypes = []
    incref = ctypes.pythonapi.Py_IncRef
    incref.restype = None
    incref.argtypes = [ctypes.py_object]
    d: dict[str, Any] = get()
    # (ctypes takes a py_object result as a new reference; this one is borrowed: without
    # this, the thread's state dict would be freed under the thread)
    incref(d)
    return d


@pytest.fixture
def c_slot_socket(
    armed_uring: Any, socket_pair: Callable[..., tuple[Socket, socket.socket]]
) -> Iterator[tuple[Socket, socket.socket, CompletionPort]]:
    """A winaio socket bound to a port (key 7) on an io_uring backend, with the C slot on."""
    with slots_for_test("c"):
        s, peer = socket_pair(armed_uring)
        port = CompletionPort()
        s.associate(port, 7)
        try:
            yield s, peer, port
        finally:
            port.close()


def _receive(s: Socket, peer: socket.socket, port: CompletionPort, data: bytes = b"hello") -> Any:
    """A receive that pends (nothing sent yet) and arms the socket's slot; the slot's issuer
    as armed; then the peer's bytes and the receive's packet."""
    buf, ov = bytearray(32), Overlapped(0)
    assert not s.start_read(buf, ov)
    slot = s._rslot
    assert type(slot) is _fastio.ReceiveSlot and slot.state == _fastio.SLOT_ARMED
    issuer = slot.issuer
    peer.sendall(data)
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is ov
    assert ov.information == len(data) and bytes(buf[: len(data)]) == data
    return issuer


def test_the_remembered_thread_state_follows_the_threads_state_dict(
    c_slot_socket: tuple[Socket, socket.socket, CompletionPort],
) -> None:
    """The issuer of a C arm is the ThreadState in the thread's state dict: remembered while
    the dict is unchanged, the new one once the entry changes, the first one once it is put
    back (a cache that trusted a stale entry fails here)."""
    s, peer, port = c_slot_socket
    ts = current_thread_state()
    assert _receive(s, peer, port) is ts
    tdict = _thread_dict()
    assert tdict.get(TS_KEY) is ts  # (remembered there by the first C call)
    assert _receive(s, peer, port) is ts
    other = ThreadState(ts.ident, ts.tid)
    tdict[TS_KEY] = other
    try:
        assert _receive(s, peer, port) is other
        assert _receive(s, peer, port) is other
    finally:
        tdict[TS_KEY] = ts
    assert _receive(s, peer, port) is ts
    del tdict[TS_KEY]  # (forgotten: found again through ``_tls.ts`` and remembered)
    assert _receive(s, peer, port) is ts
    assert tdict.get(TS_KEY) is ts


def test_each_thread_arms_with_its_own_thread_state(
    c_slot_socket: tuple[Socket, socket.socket, CompletionPort],
) -> None:
    """Receives armed by turns on two threads: each slot incarnation's issuer is the arming
    thread's own ThreadState (the remembered one is per thread)."""
    s, peer, port = c_slot_socket
    mine = current_thread_state()
    got: list[tuple[Any, Any]] = []

    def other() -> None:
        got.append((_receive(s, peer, port), current_thread_state()))

    for _ in range(3):
        assert _receive(s, peer, port) is mine
        t = threading.Thread(target=other)
        t.start()
        t.join(LONG)
        assert not t.is_alive()
    assert len(got) == 3
    assert all(issuer is theirs and theirs is not mine for issuer, theirs in got)


def test_a_line_of_another_socket_is_looked_up_and_the_slot_armed_in_c(
    c_slot_socket: tuple[Socket, socket.socket, CompletionPort],
) -> None:
    """With a line in the backend's lines (an odd key: no socket's), the C arm makes the
    socket's key and looks it up: not there, the slot is armed in C (no Python step 2)."""
    s, peer, port = c_slot_socket
    _receive(s, peer, port)  # (warm: the slot made, this thread leading the ring)
    b: Any = s.backend
    lines = b._streams.lines
    with b._lock:
        lines[2 * s.fd + 1] = object()
    try:
        names = python_frames(partial(_receive, s, peer, port))
    finally:
        with b._lock:
            del lines[2 * s.fd + 1]
    assert "_arm_slot" not in names and "pend_receive" not in names


class _LineOnAcquire(HookedLock):
    """The receive side's lock: its first acquire puts a line (an odd key: no socket's) into
    the backend's lines, as another thread would while the lock was waited for."""

    def __init__(self, lines: dict[int, object], key: int) -> None:
        super().__init__()  # (``lock``: the caller puts the backend's own there)
        self.lines, self.key, self.done = lines, key, False

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self.lock.acquire(blocking, timeout)
        if not self.done:
            self.done = True
            self.lines[self.key] = object()
        return got


def test_a_line_that_comes_while_the_lock_is_waited_for_takes_the_python_step_2(
    c_slot_socket: tuple[Socket, socket.socket, CompletionPort],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lines empty when the C arm looked (no key made), a line there under the lock:
    the C arm does not guess - the Python step 2 (``Receives._arm_slot``) looks for the
    socket's line, finds none and arms the slot; the receive completes."""
    s, peer, port = c_slot_socket
    _receive(s, peer, port)
    b: Any = s.backend
    lines = b._streams.lines
    assert not lines
    key = 2 * s.fd + 1
    real = b._receives._lock
    hooked = _LineOnAcquire(lines, key)
    hooked.lock = real  # (the backend's own lock, behind the hook)
    monkeypatch.setattr(b._receives, "_lock", hooked)
    try:
        names = python_frames(partial(_receive, s, peer, port))
    finally:
        monkeypatch.setattr(b._receives, "_lock", real)
        with real:
            lines.pop(key, None)
    assert hooked.done and "_arm_slot" in names
    assert "_arm_slot" not in python_frames(partial(_receive, s, peer, port))


def test_a_class_modified_after_many_c_arms_takes_the_python_method(
    c_slot_socket: tuple[Socket, socket.socket, CompletionPort],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The classes on the way are remembered once checked (their version tags): a method
    patched on one of them afterwards (the ring's ``prep_recv``) is seen at the next receive,
    which the Python reference makes (it calls the patched method); the patch undone, the C
    arm again."""
    s, peer, port = c_slot_socket
    for _ in range(3):
        _receive(s, peer, port)  # (the classes remembered)
    b: Any = s.backend
    ring_class = type(b._ring)
    calls: list[int] = []
    prep = ring_class.prep_recv

    def patched(self: Any, *args: Any) -> Any:
        calls.append(args[0])
        return prep(self, *args)

    monkeypatch.setattr(ring_class, "prep_recv", patched)
    _receive(s, peer, port)
    assert calls == [s.fd]
    monkeypatch.undo()
    assert "_arm_slot" not in python_frames(partial(_receive, s, peer, port))
    assert calls == [s.fd]
