"""A pended socket receive into a bytearray on the sockets' C path (``_fastsock.c``
``sock_pend`` -> ``_fastpend.c`` ``fio_pend_bytearray``; trim, 2026-12-06): the C slot arms on
the bytearray itself (no memoryview per receive: ~760 of the ~13.4K instructions of a C=64
echo), every other path gets the memoryview the Python ``Socket.start_read`` makes. The Python
method is the reference: the same receives, IOSBs, packets and buffer rules on every
combination of the sockets' implementation and the receive slots' mode.

``# spec: win32 #54`` (at completion Internal/InternalHigh written, the packet queued);
``# spec: win32 #66`` (one receive after the other, in order).
"""

from __future__ import annotations

import socket
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import winaio
import winaio.testing as wt
from winaio._io import _slot
from winaio._io._overlapped import Overlapped
from winaio._io._sockets import Socket

LONG = 10.0

#: (the sockets' implementation, the receive slots' mode)
COMBOS = [("c", "c"), ("c", "py"), ("c", "off"), ("python", "py"), ("python", "off")]


@pytest.fixture(params=COMBOS, ids=["-".join(c) for c in COMBOS])
def combo(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    impl, slots = request.param
    with wt.accelerator_for_test(impl), wt.slots_for_test(slots):
        yield impl, slots


@pytest.fixture
def pair(combo: tuple[str, str]) -> Iterator[tuple[Socket, socket.socket, Any]]:
    port = winaio.CompletionPort()
    f, peer = wt.connected_pair(None, port)
    try:
        yield f, peer, port
    finally:
        f.close()
        peer.close()
        port.close()


def _pend_twice(f: Socket, peer: socket.socket, port: Any) -> tuple[bytearray, Overlapped]:
    """A first receive that pends (its miss arms the readiness hint), completed; then the
    second, which pends through ``sock_pend`` (the shape under test). Returns its buffer and
    OVERLAPPED, pending."""
    first, ov1 = bytearray(8), Overlapped()
    assert f.start_read(first, ov1) is False
    peer.send(b"one")
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is ov1 and first[:3] == b"one"
    buf, ov = bytearray(8), Overlapped()
    assert f.start_read(buf, ov) is False
    return buf, ov


def test_a_pended_receive_into_a_bytearray_completes_alike_everywhere(
    pair: tuple[Socket, socket.socket, Any], combo: tuple[str, str]
) -> None:
    """# spec: win32 #54. The bytearray cannot be resized while its receive pends (it is
    exported: a receive's memory stays put) and can be after the packet; the IOSB and the
    packet are the Python method's. The C slot holds the bytearray itself (no memoryview
    made), every other combination a whole memoryview of it."""
    f, peer, port = pair
    buf, ov = _pend_twice(f, peer, port)
    rslot = f._rslot
    if combo == ("c", "c"):
        assert rslot is not None and rslot.view is buf
    elif rslot is not None and rslot.state != _slot.IDLE:
        view = rslot.view
        assert view.__class__ is memoryview and view.obj is buf and view.nbytes == 8
    else:
        (op,) = f._pending
        (view,) = op.buffers
        assert view.__class__ is memoryview and view.obj is buf and op.nbytes == 8
    view = op = rslot = None  # (the test's own references: no export of its own)
    with pytest.raises(BufferError):
        buf.extend(b"x")
    peer.send(b"abcdefghij")
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is ov and packet.key == 7
    assert (packet.status, packet.bytes_transferred) == (0, 8)
    assert (ov.status, ov.information) == (0, 8) and buf == bytearray(b"abcdefgh")
    assert f.pending_requests == 0 and f.stream_in == 0
    buf.extend(b"x")  # (no export left)
    assert f.start_read(buf, ov) is True and buf[:2] == b"ij"


def test_a_demoted_bytearray_slot_becomes_a_request_on_a_memoryview(
    pair: tuple[Socket, socket.socket, Any], combo: tuple[str, str]
) -> None:
    """# spec: win32 #66. A slot armed on a bytearray and demoted (``_slot.demote``: what
    CancelIoEx, close, ``pending_ops()`` and a receive queued behind do) gives the request the
    Python caller would have made: one whole memoryview of the bytearray (a request's buffers
    are memoryviews: ``ring.recv`` reads ``nbytes``); it completes with the data."""
    f, peer, port = pair
    buf, ov = _pend_twice(f, peer, port)
    _slot.demote(f)
    (op,) = f._pending
    (view,) = op.buffers
    assert view.__class__ is memoryview and view.obj is buf and view.nbytes == 8
    view = op = None  # (the test's own references: no export of its own)
    peer.send(b"demoted")
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is ov
    assert packet.bytes_transferred == 7 and buf[:7] == b"demoted"
    assert f.pending_requests == 0 and f.stream_in == 0
    buf.extend(b"x")


def test_a_bytearray_receive_whose_issuer_exits_is_resubmitted_and_delivered(
    pair: tuple[Socket, socket.socket, Any], combo: tuple[str, str]
) -> None:
    """Port-bound, so it survives its issuer (spec §8): its RECV dies with the thread that
    submitted it and is resubmitted as a request (``Migration.died``: on a memoryview of the
    bytearray); the data is delivered once."""
    f, peer, port = pair
    first, ov1 = bytearray(8), Overlapped()
    assert f.start_read(first, ov1) is False
    peer.send(b"one")
    assert port.get(LONG) is not None
    buf, ov = bytearray(8), Overlapped()
    pended: list[bool] = []
    t = threading.Thread(target=lambda: pended.append(f.start_read(buf, ov)))
    t.start()
    t.join()
    assert pended == [False]
    peer.send(b"after")
    packet = port.get(LONG)
    assert packet is not None and packet.overlapped is ov
    assert (packet.status, packet.bytes_transferred) == (0, 5) and buf[:5] == b"after"
    assert port.get(0.05) is None
    wt.wait_until(lambda: f.pending_requests == 0, LONG, "nothing pending")
    buf.extend(b"x")


_NOMEM = textwrap.dedent(
    """
import os, sys, _testcapi
from winaio._io import _accel
_accel.use(True)
_accel.use_slots(sys.argv[2])
from winaio._backends import uring
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio.testing import connected_pair, receive_settled

b = uring.IoUringBackend()
port = CompletionPort()
s, peer = connected_pair(b, port)
bad = set()
buf, ov = bytearray(8), Overlapped(0)  # (warm: the readiness hint armed, the ring owned)
assert s.start_read(buf, ov) is False
peer.sendall(b"w")
assert port.get(5.0) is not None
for k in range(int(sys.argv[1])):
    buf, ov = bytearray(8), Overlapped(0)
    s._recv_misses = 5  # (past _ASK_RUN: pends without asking, through sock_pend)
    raised = None
    _testcapi.set_nomemory(k, k + 1)
    try:
        s.start_read(buf, ov)
    except MemoryError as exc:
        raised = exc
    finally:
        _testcapi.remove_mem_hooks()
    bad.update(receive_settled(s, peer, port, ov, buf, raised, b._lock))
print(sorted(bad))
os._exit(0)
    """
)


@pytest.mark.parametrize("slots", ["c", "off"])
def test_a_failed_allocation_in_a_bytearray_receive_leaves_it_whole(slots: str) -> None:
    """Every allocation of a pended receive into a bytearray on the C path made to fail in
    turn (a child under the debug allocator): the C slot's arm (``c``) and the request path's
    memoryview (``off``): no lock left held; either the receive pends, counted once, and
    completes with the peer's bytes, or the MemoryError went out with nothing pending and the
    bytearray free (no export left); no stray packet."""
    wt.nomem_sweep(_NOMEM, "150", slots)
