"""A blocked wait ended by an exception: Ctrl-C (a signal handler's KeyboardInterrupt, raised
in the main thread while it blocks in GetQueuedCompletionStatus or a wait), on both backends.

The exception propagates, and the wait is over: it must not stay registered. Before the fix a
GQCS interrupted this way left its wait block on the port's waiter stack, and the next packet
was handed to it - to nobody: lost; an interrupted wait on an auto-reset event consumed the
next SetEvent the same way. Pinned here:

- an interrupted GQCS leaves no waiter behind, counts its thread as running again, and the
  next packets all reach the next GQCS (also when the thread led the io_uring ring while it
  blocked: its pending receive still completes to the port);
- packets handed to the waiter at the very instant of the interrupt go back to the head of
  the queue (a parker that posts, then raises, makes that instant deterministic);
- an interrupted wait on an auto-reset event does not swallow the next SetEvent.

The interrupt is a SIGUSR1 handler raising a BaseException (what KeyboardInterrupt is), sent
to the main thread (where CPython runs signal handlers) once it blocks.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

import winaio
import winaio.testing as wt
from winaio._io._streams import Socket
from winaio._kernel._dispatcher import LOCK
from winaio._kernel._threads import current_thread_state
from winaio.codes import NtStatus

LONG = 5.0
SUCCESS = int(NtStatus.STATUS_SUCCESS)


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt (a BaseException raised by a signal handler)."""


@pytest.fixture
def interrupt() -> Iterator[Callable[[], threading.Thread]]:
    """``interrupt()``: once the calling (main) thread blocks in a winaio wait, raise
    :class:`Interrupted` in it from a signal handler. Returns the helper thread (join it)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, handler)
    me = current_thread_state()
    main = threading.main_thread().ident
    assert main is not None

    def start() -> threading.Thread:
        def kick() -> None:
            wt.wait_until(lambda: me.wait is not None, LONG, "the main thread blocks")
            signal.pthread_kill(main, signal.SIGUSR1)

        t = threading.Thread(target=kick)
        t.start()
        return t

    try:
        yield start
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.fixture(params=["io_uring", "threads"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    with wt.backend_for_test(request.param) as name:
        yield name


def test_an_interrupted_gqcs_leaves_no_waiter_to_swallow_the_next_packet(
    interrupt: Callable[[], threading.Thread],
) -> None:
    port = winaio.CompletionPort()
    kicker = interrupt()
    with pytest.raises(Interrupted):
        port.get(None)
    kicker.join()
    me = current_thread_state()
    assert me.wait is None and port.running_threads == 1
    port.post(1, "a")
    port.post(2, "b")
    got = [port.get(LONG), port.get(LONG)]
    assert [p.key if p else None for p in got] == ["a", "b"]
    port.close()


def test_an_interrupted_event_wait_does_not_swallow_the_next_set(
    interrupt: Callable[[], threading.Thread],
) -> None:
    ev = winaio.Event()  # auto-reset: one waiter consumes one SetEvent
    kicker = interrupt()
    with pytest.raises(Interrupted):
        winaio.wait(ev, None)
    kicker.join()
    assert ev.waiter_count == 0 and current_thread_state().wait is None
    ev.set()
    assert winaio.wait(ev, 0).code == 0


def test_an_interrupted_gqcs_that_led_the_ring_still_gets_its_receive(
    backend: str, interrupt: Callable[[], threading.Thread]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname(), timeout=LONG)
        sock, _ = listener.accept()
    sock.setblocking(False)
    s = Socket(sock.fileno(), overlapped=True, sock=sock)
    port = winaio.CompletionPort()
    try:
        s.associate(port, "s")
        buf = bytearray(8)
        assert s.start_read(buf, winaio.Overlapped(0)) is False
        kicker = interrupt()
        with pytest.raises(Interrupted):
            port.get(None)  # io_uring: this thread waits in the kernel on the ring
        kicker.join()
        peer.sendall(b"data")
        packet = port.get(LONG)
        assert packet is not None and (packet.key, packet.status) == ("s", SUCCESS)
        assert bytes(buf[: packet.bytes_transferred]) == b"data"[: packet.bytes_transferred]
        assert port.get(0) is None
    finally:
        s.close()
        peer.close()
        port.close()


class _PostThenRaise:
    """A parker whose blocking acquire first lets a packet be handed to the waiting thread
    (posted to its port), then raises: the interrupt lands after the hand-off."""

    def __init__(self, lock: Any, port: winaio.CompletionPort) -> None:
        self.lock = lock
        self.port = port
        self.armed = True

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if blocking and self.armed:
            self.armed = False
            self.port.post(7, "handed")
            raise Interrupted
        return bool(self.lock.acquire(blocking, timeout))

    def release(self) -> None:
        self.lock.release()


def test_packets_handed_at_the_instant_of_the_interrupt_go_back_to_the_queue() -> None:
    port = winaio.CompletionPort()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ts = current_thread_state()
            original = ts.parker
            with LOCK:  # in none of its waits: the parker may be replaced
                ts.parker = _PostThenRaise(original, port)
            try:
                with pytest.raises(Interrupted):
                    port.get(None)
            finally:
                with LOCK:
                    ts.parker = original
            assert ts.wait is None and not ts.wake_pending
            assert port.queued == 1 and port.running_threads == 1
            packet = port.get(0)
            assert packet is not None and (packet.key, packet.bytes_transferred) == ("handed", 7)
            assert port.get(0) is None  # the parker is locked again: a timeout, not a token
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(LONG)
    assert not t.is_alive()
    if errors:
        raise errors[0]
    port.close()
