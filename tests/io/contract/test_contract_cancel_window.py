"""Backend contract: a cancel that comes before the request reaches its backend.

``_files`` registers a request (CancelIoEx can see it, and asks the backend to cancel it once it
is marked submitted) before it hands it to the backend. A cancel in between finds no token in
the backend: unless the backend looks at ``cancel_requested`` when the request arrives, a STREAM
request then waits for its data (for ever, on a quiet peer) although CancelIoEx said yes.

The interleaving is forced, not raced: the backend's ``submit`` is wrapped so that the cancel
runs just before the real one, as another thread's CancelIoEx would in that window. Each kind
of STREAM request that takes the backends' general path is covered (reads and writes on pipes
and sockets, the socket's partial send, AcceptEx); on each backend the request completes once,
cancelled, without touching the data, and leaves nothing in the backend.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from winaio._io._files import request_cancel
from winaio._io._ops import Operation
from winaio._io._overlapped import Overlapped
from winaio._io._sockets import Socket
from winaio._kernel._objects import Event
from winaio._kernel._wait import wait_for_one
from winaio.codes import NtStatus, WaitCode

CANCELLED = int(NtStatus.STATUS_CANCELLED)
WAIT_OBJECT_0 = int(WaitCode.WAIT_OBJECT_0)
LONG = 5.0


def _cancel_before_submit(io: Any, monkeypatch: pytest.MonkeyPatch) -> list[Operation]:
    """Make every request handed to ``io.backend`` be cancelled just before it gets there;
    returns the list of the requests it saw."""
    seen: list[Operation] = []
    real_submit: Callable[[Operation], None] = io.backend.submit

    def cancel_first(op: Operation) -> None:
        seen.append(op)
        assert request_cancel(op)  # CancelIoEx says yes: the request must end cancelled
        real_submit(op)

    monkeypatch.setattr(io.backend, "submit", cancel_first)
    return seen


def _settled(io: Any) -> None:
    io.wait_until(lambda: io.backend.statistics().in_flight == 0, "the backend forgets it")
    lines = getattr(io.backend, "_streams", None)
    if lines is not None:  # io_uring: no line left behind
        assert not lines.lines


@pytest.mark.parametrize("channel", ["pipe", "socketpair"])
def test_a_read_cancelled_before_the_backend_completes_cancelled(
    io: Any, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, writer = io.pipe() if channel == "pipe" else io.socketpair()
    seen = _cancel_before_submit(io, monkeypatch)
    req = io.read(reader, 16)
    assert req.pending and seen == [req.op]
    assert req.wait() == (CANCELLED, 0)
    assert req.op.calls == 1 and req.op.alive_at_complete is True
    _settled(io)
    monkeypatch.undo()
    io.write(writer, b"after").wait()
    later = io.read(reader, 16)  # the cancelled read took nothing
    assert later.wait()[1] == 5 and later.buffer[:5] == b"after"


@pytest.mark.parametrize("channel", ["pipe", "socketpair"])
def test_a_write_cancelled_before_the_backend_completes_cancelled(
    io: Any, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _reader, writer = io.pipe() if channel == "pipe" else io.socketpair()
    io.fill(writer)  # nobody reads: the write would wait for ever
    seen = _cancel_before_submit(io, monkeypatch)
    req = io.write(writer, b"x" * 64)
    assert req.pending and seen == [req.op]
    assert req.wait() == (CANCELLED, 0)
    assert req.op.calls == 1 and req.op.alive_at_complete is True
    _settled(io)


def test_an_accept_cancelled_before_the_backend_completes_cancelled(
    io: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = io.listener()
    seen = _cancel_before_submit(io, monkeypatch)
    req, _target = io.accept(listener)
    assert req.pending and seen == [req.op]
    assert req.wait() == (CANCELLED, 0)
    assert req.op.calls == 1
    _settled(io)
    monkeypatch.undo()
    again, accepted = io.accept(listener)  # the listener is still usable
    client = io.sock(socket.create_connection(listener.sock.getsockname()))
    assert again.wait()[0] == 0
    assert accepted.sock.getpeername() == client.sock.getsockname()


def test_a_partial_send_cancelled_before_the_backend_completes_cancelled(
    io: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The socket's immediate path: the send finds no room, and the request is registered and
    # handed to the backend without a second attempt (``_files.submit_tried``).
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    sock = io.adopt(Socket(a.fileno(), overlapped=True, sock=a, backend=io.backend))
    io.sock(b)
    io.fill(sock)
    seen = _cancel_before_submit(io, monkeypatch)
    event = Event(manual_reset=True)
    ov = Overlapped(0, event)
    assert sock.start_write(b"y" * 64, ov) is False
    assert len(seen) == 1
    assert wait_for_one(event, LONG, False) == WAIT_OBJECT_0, "the cancelled send still waits"
    assert (ov.status, ov.information) == (CANCELLED, 0)
    assert sock.pending_requests == 0
    _settled(io)
