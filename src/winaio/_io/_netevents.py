"""Socket modes and network events: FIONBIO, SO_RCVTIMEO/SO_SNDTIMEO, WSAEventSelect and select.

Facts encoded here ([MS:WSAEventSelect], [MS:WSAEnumNetworkEvents], [MS:select],
[MS:ioctlsocket], [W:ws2_32/sock.c:test_events, test_select, test_ioctlsocket]):
- A non-blocking socket (FIONBIO, or WSAEventSelect, which sets it) fails a call that would wait
  with WSAEWOULDBLOCK; WSAEventSelect(s, NULL/0, 0) cancels the association but the socket stays
  non-blocking. SO_RCVTIMEO / SO_SNDTIMEO bound blocking calls (WSAETIMEDOUT).
- WSAEventSelect records FD_* network events and sets the event object; a recorded event is not
  recorded again until its re-enabling call: FD_READ/FD_OOB by a receive, FD_ACCEPT by an
  accept, FD_WRITE by a send that failed with WSAEWOULDBLOCK; FD_CONNECT and FD_CLOSE happen
  once. WSAEnumNetworkEvents returns and clears the record (and resets the event given to it).
- select: read set = data, a pending connection, or the peer's close; write set = a datagram
  socket, or a connected one with room; except set = out-of-band data or a failed non-blocking
  connect. It waits alertably (APCs run, the wait goes on) up to the time-out and returns the
  number of ready sockets; a socket closed while selected ends the wait.

One reactor thread (``winaio-netevents``) watches the descriptors with epoll (one-shot, re-armed
after each report) and only records events and sets kernel events: no user code runs there.
Documented deviation: only the synchronous calls (send/recv/accept/connect, WSARecv/WSASend
without an OVERLAPPED) re-enable events; overlapped requests on an event-select socket do not.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .._kernel._objects import Event
from .._kernel._wait import wait_for_one
from ..codes import NtStatus, WaitCode, WinError
from ..errors import Win32Error
from ._files import FileObject, request_cancel
from ._ops import Operation
from ._stream_ops import RESET_SOCKETS, ConnectOp
from ._sync import run_sync

__all__ = [
    "FD_ACCEPT",
    "FD_CLOSE",
    "FD_CONNECT",
    "FD_OOB",
    "FD_READ",
    "FD_WRITE",
    "SELECT_CLOSED",
    "NetworkEvents",
    "SocketMode",
    "event_select",
    "inherit_modes",
    "mode_of",
    "run_socket_call",
    "select_sockets",
    "take_network_events",
]

FD_READ, FD_WRITE, FD_OOB, FD_ACCEPT, FD_CONNECT, FD_CLOSE = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_BITS = (FD_READ, FD_WRITE, FD_OOB, FD_ACCEPT, FD_CONNECT, FD_CLOSE)
_EPOLL_ONESHOT = getattr(select, "EPOLLONESHOT", 1 << 30)
_ALL_EVENTS = select.POLLIN | select.POLLOUT | select.POLLPRI | getattr(select, "POLLRDHUP", 0x2000)
_WSAECONNRESET, _WSAECONNABORTED = 10054, 10053
_ERRNO_WSA = {111: 10061, 104: 10054, 110: 10060, 113: 10065, 101: 10051}
_CANT_WAIT = int(NtStatus.STATUS_CANT_WAIT)
_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_CANCELLED = int(NtStatus.STATUS_CANCELLED)
_TIMEOUT = int(NtStatus.STATUS_IO_TIMEOUT)
_WAIT_IO_COMPLETION = int(WaitCode.WAIT_IO_COMPLETION)
_SHUT_DOWN = int(NtStatus.STATUS_PIPE_BROKEN)  # -> ERROR_BROKEN_PIPE -> WSAESHUTDOWN


@dataclass
class NetworkEvents:
    """WSANETWORKEVENTS: the recorded FD_* bits and one error code per bit position."""

    bits: int = 0
    errors: list[int] = field(default_factory=lambda: [0] * 10)


class SocketMode:
    """Per-socket Winsock state (``FileObject.winsock``)."""

    __slots__ = (
        "accepting",
        "armed",
        "connected_by_ex",
        "connected_seen",
        "event",
        "interest",
        "lock",
        "nonblocking",
        "options",
        "peer",
        "rcvtimeo",
        "record",
        "reported",
        "shut_rd",
        "sndtimeo",
    )  # fmt: skip

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.nonblocking = False
        #: Connected by ConnectEx and not yet SO_UPDATE_CONNECT_CONTEXT'ed: connect() then
        #: answers WSAEINVAL, not WSAEISCONN [W:ws2_32/sock.c:test_connect].
        self.connected_by_ex = False
        #: shutdown(SD_RECEIVE/SD_BOTH) happened: new receives fail WSAESHUTDOWN, pending ones
        #: go on [W:ws2_32/sock.c:test_shutdown].
        self.shut_rd = False
        #: The peer's address when the socket was first shut down: Windows keeps answering
        #: getpeername with it once both sides have shut down, Linux forgets it.
        self.peer: Any = None
        self.rcvtimeo: float | None = None
        self.sndtimeo: float | None = None
        self.event: Event | None = None
        self.interest = 0  # the FD_* bits asked for
        self.armed = 0  # the bits that may be recorded now
        #: Bits recorded and not re-enabled since: a new WSAEventSelect does not re-arm them
        #: [W:ws2_32/sock.c:test_WSAEnumNetworkEvents].
        self.reported = 0
        self.record = NetworkEvents()
        self.connected_seen = False
        #: The AcceptEx request accepting into this socket, while it pends.
        self.accepting: Operation | None = None
        #: Options recorded rather than applied (SO_EXCLUSIVEADDRUSE...), and set buffer sizes.
        self.options: dict[tuple[int, int], object] = {}

    def reenable(self, poll_events: int, would_block: bool, file: FileObject) -> None:
        """A synchronous call re-enables its events (module docstring)."""
        if self.event is None:
            return
        with self.lock:
            if poll_events & select.POLLIN:
                self.armed |= self.interest & (FD_READ | FD_OOB | FD_ACCEPT)
                self.reported &= ~(FD_READ | FD_OOB | FD_ACCEPT)
            if poll_events & select.POLLOUT and would_block:
                self.armed |= self.interest & FD_WRITE
                self.reported &= ~FD_WRITE
        _REACTOR.arm(file)


def mode_of(file: FileObject) -> SocketMode:
    """The socket's mode record (created on first use)."""
    mode = file.winsock
    if mode is None:
        mode = file.winsock = SocketMode()
        file.add_close_hook(lambda: _REACTOR.forget(file))
    assert isinstance(mode, SocketMode)
    return mode


def run_socket_call(op: Operation) -> tuple[int, int]:
    """A plain (non-overlapped) Winsock call on a socket with modes: ``run_sync`` (alertable)
    with the non-blocking mode (STATUS_CANT_WAIT -> WSAEWOULDBLOCK instead of waiting; a
    connect goes on in the background), SO_RCVTIMEO/SO_SNDTIMEO (STATUS_IO_TIMEOUT ->
    WSAETIMEDOUT) and the re-enabling of network events (module docstring)."""
    file = op.file
    mode = mode_of(file)
    if mode.shut_rd and op.poll_events & select.POLLIN:
        return _SHUT_DOWN, 0  # a receive after shutdown(SD_RECEIVE): WSAESHUTDOWN
    if mode.nonblocking:
        if file.closing:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the socket is closed")
        result = op.try_now()
        would_block = result is None
        if result is None:
            if isinstance(op, ConnectOp):
                mode.connected_seen = False  # FD_CONNECT is reported when it finishes
            sent = getattr(op, "sent", 0)
            # A stream send Linux took in part reports that part (Windows would have buffered
            # all of it); WSAEWOULDBLOCK would hide bytes that are on their way.
            result = (_SUCCESS, sent) if sent else (_CANT_WAIT, 0)
        mode.reenable(op.poll_events, would_block, file)
        return result
    timeout = mode.rcvtimeo if op.poll_events & select.POLLIN else mode.sndtimeo
    timer = None
    fired = threading.Event()
    if timeout:

        def expire() -> None:
            fired.set()
            request_cancel(op)

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
    try:
        status, information = run_sync(op, True)
    finally:
        if timer is not None:
            timer.cancel()
    if status == _CANCELLED and fired.is_set():
        status = _TIMEOUT
    mode.reenable(op.poll_events, False, file)
    return status, information


def _socket_error(sock: socket.socket) -> int:
    try:
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    except OSError:
        return 0
    return _ERRNO_WSA.get(err, 10000 + err if err else 0)


def _listening(sock: socket.socket) -> bool:
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        return False


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


def _can_send(sock: socket.socket) -> bool:
    """FD_WRITE's condition besides room: a connected stream socket, or a bound datagram one."""
    if sock.type == socket.SOCK_STREAM:
        return _connected(sock)
    try:
        name = sock.getsockname()
    except OSError:
        return False
    return not isinstance(name, tuple) or name[1] != 0


def _readable_state(sock: socket.socket) -> tuple[bool, bool]:
    """(data waiting, the peer closed) without consuming anything."""
    try:
        peek = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False, False
    except OSError:
        return False, True
    return bool(peek), not peek and sock.type == socket.SOCK_STREAM


class _Reactor:
    """The epoll thread recording network events (module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[int, FileObject] = {}
        self._epoll: select.epoll | None = None
        self._wake = -1

    def _ensure(self) -> select.epoll:
        if self._epoll is None:
            self._epoll = select.epoll()
            self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._epoll.register(self._wake, select.EPOLLIN)
            threading.Thread(target=self._run, name="winaio-netevents", daemon=True).start()
        return self._epoll

    def arm(self, file: FileObject) -> None:
        """(Re)compute ``file``'s epoll interest from its armed bits."""
        mode = file.winsock
        sock = file.sock
        if not isinstance(mode, SocketMode) or sock is None or file.fd < 0:
            return
        with self._lock:
            epoll = self._ensure()
            armed = mode.armed if mode.event is not None else 0
            if mode.connected_seen:
                armed &= ~FD_CONNECT
            mask = 0
            if armed & (FD_READ | FD_ACCEPT | FD_CLOSE):
                mask |= select.EPOLLIN | select.EPOLLRDHUP
            if armed & (FD_WRITE | FD_CONNECT):
                mask |= select.EPOLLOUT
            if armed & FD_OOB:
                mask |= select.EPOLLPRI
            fd = file.fd
            known = fd in self._files
            if not mask:
                if known:
                    del self._files[fd]
                    try:
                        epoll.unregister(fd)
                    except OSError:
                        pass
                return
            self._files[fd] = file
            try:
                if known:
                    epoll.modify(fd, mask | _EPOLL_ONESHOT)
                else:
                    epoll.register(fd, mask | _EPOLL_ONESHOT)
            except OSError:
                self._files.pop(fd, None)

    def forget(self, file: FileObject) -> None:
        """The socket closed: stop watching it (its descriptor may already be gone)."""
        with self._lock:
            for fd in [fd for fd, f in self._files.items() if f is file]:
                del self._files[fd]
                if self._epoll is not None:
                    try:
                        self._epoll.unregister(fd)
                    except OSError:
                        pass

    def _run(self) -> None:
        assert self._epoll is not None
        while True:
            for fd, mask in self._epoll.poll():
                if fd == self._wake:
                    try:
                        os.read(self._wake, 8)
                    except OSError:
                        pass
                    continue
                with self._lock:
                    file = self._files.get(fd)
                # A wake-up that records nothing (an unconnected socket's EPOLLHUP, data while
                # FD_READ waits for its re-enabling receive) parks the socket until the next
                # call re-arms it, instead of spinning on a level-triggered condition.
                if file is not None and self._report(file, mask):
                    self.arm(file)

    def report_now(self, file: FileObject, mask: int) -> None:
        """Record what ``mask`` (poll bits, the same values as epoll's) shows, in the caller."""
        self._report(file, mask)

    def _report(self, file: FileObject, mask: int) -> int:
        mode = file.winsock
        sock = file.sock
        if not isinstance(mode, SocketMode) or sock is None:
            return 0
        with mode.lock:
            found = 0
            errors: dict[int, int] = {}
            armed = mode.armed
            if mask & select.EPOLLOUT and not mode.connected_seen and armed & FD_CONNECT:
                error = _socket_error(sock)
                if error or _connected(sock):
                    found |= FD_CONNECT
                    errors[FD_CONNECT] = error
                    mode.connected_seen = True
            if mask & select.EPOLLOUT and armed & FD_WRITE and _can_send(sock):
                found |= FD_WRITE
            if mask & select.EPOLLPRI and armed & FD_OOB:
                found |= FD_OOB
            if mask & (select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR):
                if armed & FD_ACCEPT and _listening(sock):
                    found |= FD_ACCEPT
                else:
                    data, closed = _readable_state(sock)
                    if data and armed & FD_READ:
                        found |= FD_READ
                    if (
                        (closed or mask & select.EPOLLERR)
                        and armed & FD_CLOSE
                        and (mode.connected_seen or _connected(sock) or mask & select.EPOLLERR)
                    ):
                        found |= FD_CLOSE
                        errors[FD_CLOSE] = _socket_error(sock) if mask & select.EPOLLERR else 0
            if not found:
                return 0
            mode.armed &= ~found
            mode.reported |= found
            mode.record.bits |= found
            for bit, error in errors.items():
                mode.record.errors[_BITS.index(bit) if bit in _BITS else 0] = error
            event = mode.event
        if event is not None:
            event.set()
        return found


_REACTOR = _Reactor()


def event_select(file: FileObject, event: Event | None, interest: int) -> None:
    """WSAEventSelect: associate ``event`` with the FD_* bits of ``interest`` (0 / None cancels);
    the socket becomes non-blocking."""
    mode = mode_of(file)
    with mode.lock:
        mode.nonblocking = True
        mode.event = event if interest else None
        mode.interest = interest if event is not None else 0
        mode.armed = mode.interest & ~mode.reported
        mode.record = NetworkEvents()
        sock = file.sock
        if sock is not None and _connected(sock):
            mode.connected_seen = True
    # What already holds is recorded before the call returns (a writable socket's FD_WRITE,
    # a pending connection's FD_ACCEPT...), not whenever the reactor thread gets to it.
    if mode.armed and file.fd >= 0:
        poller = select.poll()
        poller.register(file.fd, _ALL_EVENTS)
        events = poller.poll(0)
        if events:
            _REACTOR.report_now(file, events[0][1])
    _REACTOR.arm(file)


def inherit_modes(listener: FileObject, accepted: FileObject) -> None:
    """accept(): the new socket takes the listener's Winsock state - blocking mode, time-outs,
    recorded options (buffer sizes...), the WSAEventSelect association [MS:accept] - as Linux
    sockets take its kernel options [W:ws2_32/sock.c:test_accept_inheritance]."""
    source = listener.winsock
    if not isinstance(source, SocketMode):
        return
    mode = mode_of(accepted)
    mode.nonblocking = source.nonblocking
    mode.rcvtimeo, mode.sndtimeo = source.rcvtimeo, source.sndtimeo
    mode.options.update(source.options)
    if source.event is not None:
        event_select(accepted, source.event, source.interest)


def take_network_events(file: FileObject, reset: Event | None) -> NetworkEvents:
    """WSAEnumNetworkEvents: the record so far, cleared; ``reset`` is reset first."""
    mode = mode_of(file)
    if reset is not None:
        reset.reset()
    with mode.lock:
        record, mode.record = mode.record, NetworkEvents()
    return record


#: select's bit for a socket closed while selected (AFD_POLL_CLOSE).
SELECT_CLOSED = 8


def _ready(file: FileObject, want: int) -> int:
    """select's view of one socket: READ 1, WRITE 2, EXCEPT 4 bits; SELECT_CLOSED once it is
    closed."""
    sock = file.sock
    if sock is None or file.fd < 0 or file.closing:
        return SELECT_CLOSED
    poller = select.poll()
    poller.register(file.fd, select.POLLIN | select.POLLOUT | select.POLLPRI)
    events = poller.poll(0)
    mask = events[0][1] if events else 0
    stream = sock.type == socket.SOCK_STREAM
    found = 0
    # Readable: data, a connection to accept, the peer's close or a reset (all POLLIN); Linux's
    # POLLHUP alone is a socket that never connected, in no set on Windows
    # [W:ws2_32/sock.c:test_select].
    if want & 1 and (mask & select.POLLIN or (mask & select.POLLERR and not stream)):
        found |= 1
    # Writable: a datagram socket, bound or not; a stream socket connected with room, or reset
    # (a send fails at once rather than blocking, [W:ws2_32/sock.c:test_tcp_reset]); a
    # never-connected stream socket's POLLOUT does not count.
    if (
        want & 2
        and mask & select.POLLOUT
        and (not stream or _connected(sock) or file in RESET_SOCKETS)
    ):
        found |= 2
    # Exceptional: out-of-band data, unless SO_OOBINLINE makes it plain data (Linux still
    # reports POLLPRI), or an error (SO_ERROR is left for the caller).
    if (
        want & 4
        and mask & (select.POLLPRI | select.POLLERR)
        and (mask & select.POLLERR or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE))
    ):
        found |= 4
    return found


def select_sockets(wants: dict[FileObject, int], timeout: float | None) -> dict[FileObject, int]:
    """select: wait until one socket is ready (bits: 1 read, 2 write, 4 except, SELECT_CLOSED)
    or the time-out; returns the ready ones. The wait is alertable: APCs queued to the caller
    run while it waits (it then goes on waiting), none when a socket is ready at once
    [W:ws2_32/sock.c:test_select]."""
    ready = {f: bits for f, want in wants.items() if (bits := _ready(f, want))}
    if ready or timeout == 0:
        return ready
    waker = Event(manual_reset=True)
    stop = threading.Event()

    def watch() -> None:
        poller = select.poll()
        for f, want in wants.items():
            mask = (select.POLLIN if want & 1 else 0) | (select.POLLOUT if want & 2 else 0)
            if f.fd >= 0:
                poller.register(f.fd, mask | select.POLLPRI)
        while not stop.is_set():
            if any(_ready(f, want) for f, want in wants.items()):
                waker.set()
                return
            if poller.poll(20):
                stop.wait(0.005)  # readiness select does not count (unconnected POLLOUT)

    watcher = threading.Thread(target=watch, name="winaio-select", daemon=True)
    watcher.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if wait_for_one(waker, left, True) != _WAIT_IO_COMPLETION:
                break
    finally:
        stop.set()
        watcher.join()
    return {f: bits for f, want in wants.items() if (bits := _ready(f, want))}
