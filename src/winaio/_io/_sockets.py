"""Sockets as file objects (win32-async-spec §10): ``Socket`` (WSASocket / socket()) and its
immediate fast path, ``create_socket``.

Facts encoded here:
- Sockets are file objects: ReadFile/WriteFile, ports, CancelIoEx, the completion modes and
  the §8 thread-exit rule all apply [W:ws/afd.c]. A graceful close reads as 0 bytes (success);
  a reset connection completes with STATUS_CONNECTION_RESET (GQCS: ERROR_NETNAME_DELETED).
- AcceptEx accepts *into* a socket created beforehand; ConnectEx needs a bound socket
  (WSAEINVAL otherwise) [MS:ConnectEx].

The sockets' immediate fast path (``Socket.start_read``/``start_write``, which the
WSARecv/WSASend/ReadFile/WriteFile aliases call for their hot shape): most receives and sends
on a busy connection finish inside the call (AFD's immediate completion), so the common shape
- one whole byte buffer, no flags, no completion routine, an overlapped socket with nothing
pending in that direction (spec #66: a request never overtakes an earlier pending one) and no
Winsock state in the way (SD_RECEIVE) - makes the syscall first, with exactly the effects of
``_files.start`` + ``deliver`` for an immediate result, and builds the request object only when
it would block (then registered and handed to the backend without a second attempt,
``_files.submit_tried``). An immediate success notifies under one LOCK round trip
(``_dispatch.notify_success``): the event or the file object, then the port packet unless
FILE_SKIP_COMPLETION_PORT_ON_SUCCESS or ``hEvent|1``; with nothing to signal or post (skip
modes, no event) it takes no lock at all. An immediate failure raises with no notification and
Internal left STATUS_PENDING, the reset/shut-down socket state applying as in ``try_now``
(``read_failed``, ``stream_end``, ``write_failed``).

A receive that would block costs more than one that finishes: CPython raises BlockingIOError,
formatting its strerror text through the locale (callgrind: ~7K instructions against ~1.2K for a
64-byte recv_into that succeeds, ~1K for a ``poll(0)`` that finds nothing). A socket whose last
fast-path receive would have blocked - a server waiting for its client's next message, nearly
every receive of a busy echo server - asks ``poll(0)`` first (``Socket._recv_ready``): nothing
there, and the request pends without the attempt; something there (data, the end of the
stream, an error: POLLIN, POLLHUP and POLLERR all say "ready"), and the receive is tried, the
socket going back to trying first. A poll that finds nothing and the attempt that would block
tell the same thing at the same moment, so the result (and what a racing sender sees) is the
same either way. After ``_ASK_RUN`` receives in a row that pended, the socket stops asking: the
poll costs a syscall (~0.4 us of kernel time per echo of a busy C=64 echo server, measured with
perf, plus ~1K instructions) and, on such a socket, nearly always finds nothing. Its receives
then pend at once, one in ``_ASK_EVERY + 1`` asking again, so that a socket whose data comes to
be there before its receives (a server busy between two requests) goes back to trying first.
A receive that pends while data is there is still exact: its RECV finds the data at once
(IORING_RECVSEND_POLL_FIRST polls before it sleeps), the completion comes through the port.

A fast-path request is never registered, so a close() from another thread cannot wait for it
as it waits for pending requests; instead the fast path counts itself among the descriptor's
users (``Socket.fd_users``, ``_fd_users``) before it reads ``closing``, and a close meanwhile
leaves the descriptor open until the last user is done with it (Windows keeps a reference to
the file object for the duration of the call). Without it, a descriptor number closed between
the fetch and the syscall and reused by another thread's open would be read or written as
this socket (``tests/io/test_socket_fd_reuse.py``).

The C accelerator (``_fastsock.c``, installed on Socket by :func:`_install` through
``_accel.register``) runs both immediate paths with the same effects in the same order: every
other shape goes to these Python methods before anything is touched, and everything past the
syscall other than an immediate success goes to the module's continuations
(``_closed_error``, ``_recv_blocked``, ``_recv_failed``, ``_recv_end``, ``_send_failed``,
``_send_rest``, in ``_sock_after``), shared with the Python methods so that the two cannot
drift; an immediate success that has something to signal or post runs
``_dispatch.notify_success``'s steps in C (the port's ``_post_locked`` called).
``tests/io/test_fastsock.py`` compares the two.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .._kernel._dispatcher import LOCK, wake_waiters
from .._kernel._objects import Event
from ..codes import WinError
from ..errors import Win32Error
from . import _accel
from ._dispatch import notify_success
from ._fd_users import ONE_USER, FdUsers
from ._files import FileObject
from ._interrupts import cut_at_entry, interrupt
from ._issue import start, submit_receive
from ._netevents import SocketMode
from ._ops import CompletionRoutine, Operation
from ._overlapped import STATUS_PENDING, Overlapped
from ._slot import IDLE, died_locked
from ._sock_after import (
    _closed_error,
    _left,
    _recv_blocked,
    _recv_end,
    _recv_failed,
    _send_failed,
    _send_rest,
)
from ._stream_ops import (
    AcceptOp,
    ConnectOp,
    StreamReadOp,
    StreamWriteOp,
)
from ._winsock_ext import accept_ex

try:
    from . import _fastio
except ImportError:  # not built: the Python methods run
    _fastio = None  # type: ignore[assignment]

from ._streams import StreamFile

__all__ = ["Socket", "create_socket"]

_WSAENOTSOCK = 10038
_MSG_NOSIGNAL = int(socket.MSG_NOSIGNAL)  # a plain int: IntFlag arithmetic costs ~1 us
_NOSIGNAL = (_MSG_NOSIGNAL,)  # (``send``'s flags, as ``map``'s second iterable)
_map = map  # (a syscall whose count an interrupt cannot drop: ``start_read``)
_NOWAIT = (False,)  # (``acquire``'s argument, as ``map``'s iterable)
#: A socket whose last ``_ASK_RUN`` receives (or more) all pended stops asking ``poll(0)``
#: first: its receives pend at once, and one in ``_ASK_EVERY + 1`` asks again (module
#: docstring).
_ASK_RUN = 4
_ASK_EVERY = 15


class Socket(StreamFile):
    """A socket as a file object (WSASocket / socket())."""

    __slots__ = ("_pend", "_recv_misses", "_recv_poller", "_recv_ready", "fd_users")

    def __init__(self, fd: int, **kwargs: Any) -> None:
        #: The fast paths using the descriptor now (``_fd_users``): set before anything can
        #: close it (``_release_fd`` reads it).
        self.fd_users = FdUsers()
        super().__init__(fd, **kwargs)
        #: How a receive of the fast path pends (``_files.submit_receive``'s contract): the
        #: backend's one-call ``pend_receive`` where it has one (io_uring), else
        #: ``submit_receive``. The backend's bound method, never one of this socket's: no
        #: reference cycle keeps a socket nobody holds from closing.
        self._pend: Callable[[FileObject, Overlapped, memoryview], None] = (
            getattr(self.backend, "pend_receive", None) or submit_receive
        )
        self.send_claim = threading.Lock()  # ``_files.start``; the fast path of start_write
        #: The fast path's readiness check (module docstring): a ``select.poll`` on this
        #: socket, made at its first receive that would block; ``_recv_ready`` is its ``poll``
        #: while the last receive of the fast path found nothing, else None.
        self._recv_poller: select.poll | None = None
        self._recv_ready: Callable[[int], list[tuple[int, int]]] | None = None
        #: Receives in a row that pended since the last one that found data.
        self._recv_misses = 0

    def start_read(
        self,
        buffer: Any,
        overlapped: Overlapped,
        *,
        size: int | None = None,
        routine: CompletionRoutine | None = None,
    ) -> bool:
        """ReadFile/WSARecv (see :meth:`RequestMethods.start_read`). The hot shape - one whole
        writable byte buffer, no completion routine, nothing pending in this direction -
        takes the immediate fast path (module docstring).

        Raises:
            IoError: the receive failed at once (no notification; Internal is STATUS_PENDING).
            Win32Error: ERROR_INVALID_HANDLE if the socket is closed.
        """
        cls = buffer.__class__
        try:
            hot = cls is bytearray or (
                cls is memoryview
                and not buffer.readonly
                and buffer.c_contiguous
                and buffer.ndim == 1
                and buffer.format == "B"
            )
        except ValueError:  # a released memoryview: the general path reports it
            hot = False
        if (
            hot
            and size is None
            and routine is None
            and overlapped is not None
            and not self.stream_in  # an earlier receive pends: it goes first (#66)
            and self.overlapped
            and len(buffer)  # zero-byte reads wait for data: the request object does that
            and (self.winsock is None or not self.winsock.shut_rd)  # WSAESHUTDOWN, likewise
        ):
            closed = self.closing  # (a local: the attribute is read again below)
            if closed:  # as ``_files.start``: before any effect
                raise _closed_error()
            # §4.2 step 2: reset E, clear F, Internal = STATUS_PENDING; plain stores, as in
            # ``_files.start``.
            event = overlapped.event
            if event is not None:
                event._signaled = False
            self._signaled = False
            overlapped.status = STATUS_PENDING
            ready = self._recv_ready
            if ready is not None:
                # Its last receive found nothing: after a run of receives that found nothing,
                # pend without asking (module docstring). The descriptor is not used here:
                # ``submit_receive`` registers the request under LOCK, or fails if a close
                # came meanwhile.
                misses = self._recv_misses
                if misses >= _ASK_RUN and misses & _ASK_EVERY:
                    self._recv_misses = misses + 1
                    self._pend(
                        self, overlapped, buffer if cls is memoryview else memoryview(buffer)
                    )
                    return False
            # The descriptor is used from here on: counted in before ``closing`` is read again,
            # a close from another thread meanwhile leaves it open until this call is done
            # with it (``_fd_users``).
            # (Counted in inside the ``try`` by an operator, then the flag the ``finally``
            # tests, with no check between: a Ctrl-C at ``append``'s return left the count up
            # for ever; a MemoryError at the count-in counts nothing, and the ``finally`` then
            # pops nothing - another thread's entry once. ``_fd_users.ONE_USER``.)
            users = self.fd_users
            counted = False
            try:
                users += ONE_USER
                counted = True
                if self.closing:  # closed meanwhile
                    raise _closed_error()
                sock = self.sock
                assert sock is not None
                if ready is not None:
                    # Its last receive found nothing: ask before trying.
                    try:
                        waiting = not ready(0)
                    except RuntimeError:  # another thread polls this socket at this moment
                        waiting = False
                    if waiting:
                        self._recv_misses += 1
                        self._pend(
                            self, overlapped, buffer if cls is memoryview else memoryview(buffer)
                        )
                        return False
                    self._recv_ready = None  # data flows: try first again
                    self._recv_misses = 0
                n = 0
                try:
                    # The count stored by the loop, with no eval-breaker check after the syscall
                    # (``n = sock.recv_into(buffer)`` checked for signals after the call's
                    # return: a Ctrl-C there dropped the count of bytes the socket gave up).
                    # From here on no call comes before the notification (its entry: below).
                    for n in _map(sock.recv_into, (buffer,)):  # noqa: B007
                        break
                except BlockingIOError:
                    return _recv_blocked(
                        self, overlapped, buffer if cls is memoryview else memoryview(buffer)
                    )
                except OSError as exc:
                    _recv_failed(self, exc.errno or 0)
                if not n:
                    _recv_end(self)  # a graceful close, or a reset that stays reset
                if (
                    event is None
                    and self.skip_set_event
                    and (overlapped.skip_port or self.skip_port_on_success or self.port is None)
                ):
                    overlapped.information = n  # nothing to signal or post: the IOSB alone
                    overlapped.status = 0
                else:
                    try:
                        notify_success(self, overlapped, event, n)
                    except BaseException as exc:  # (Ctrl-C at its entry: the data is taken)
                        if interrupt(exc) and cut_at_entry(exc, notify_success):
                            notify_success(self, overlapped, event, n)
                        raise
                return True
            finally:
                if counted:
                    try:
                        users.pop()
                    finally:
                        if self.closing:
                            _left(users)
        return StreamFile.start_read(self, buffer, overlapped, size=size, routine=routine)

    def start_write(
        self,
        data: Any,
        overlapped: Overlapped,
        *,
        size: int | None = None,
        routine: CompletionRoutine | None = None,
    ) -> bool:
        """WriteFile/WSASend (see :meth:`RequestMethods.start_write`). The hot shape - one
        whole byte buffer, no completion routine, nothing pending in this direction - takes
        the immediate fast path (module docstring); a send the socket takes in part pends with
        the rest.

        Raises:
            IoError: the send failed at once (no notification; Internal is STATUS_PENDING).
            Win32Error: ERROR_INVALID_HANDLE if the socket is closed.
        """
        cls = data.__class__
        try:
            hot = (
                cls is bytes
                or cls is bytearray
                or (
                    cls is memoryview
                    and data.c_contiguous
                    and data.ndim == 1
                    and data.format == "B"
                )
            )
        except ValueError:  # a released memoryview: the general path reports it
            hot = False
        if (
            hot
            and size is None
            and routine is None
            and overlapped is not None
            and not self.stream_out  # an earlier send pends: it goes first (#66)
            and self.overlapped
            and (nbytes := len(data))  # a zero-byte send "never blocks": the request decides
            # Another thread is issuing a send: wait for it in the general path. Held until a
            # partial send's remainder is registered, so no send can come between its parts.
            and (claim := self.send_claim) is not None
        ):
            users = self.fd_users  # counted in as in start_read (``_fd_users``)
            taken = counted = False
            try:
                # The claim's ``acquire(False)`` through a loop, as the syscall below: its
                # result stored with no check after the call (a Ctrl-C at the return of
                # ``claim.acquire(False)`` in the condition left the claim taken for ever, every
                # later send of the socket waiting for it in the general path).
                for taken in _map(claim.acquire, _NOWAIT):  # noqa: B007
                    break
                if not taken:
                    return StreamFile.start_write(
                        self, data, overlapped, size=size, routine=routine
                    )
                users += ONE_USER
                counted = True
                if self.closing:  # closed since the test above: as ``_files.start``
                    raise _closed_error()
                # Registered by a general-path send while we took the claim: it goes first.
                if not self.stream_out:
                    sock = self.sock
                    assert sock is not None
                    event = overlapped.event  # §4.2 step 2, as in start_read
                    if event is not None:
                        event._signaled = False
                    self._signaled = False
                    overlapped.status = STATUS_PENDING
                    n = 0
                    try:
                        # (the count stored with no check after the syscall, as in start_read)
                        for n in _map(sock.send, (data,), _NOSIGNAL):  # noqa: B007
                            break
                    except BlockingIOError:
                        n = 0
                    except OSError as exc:
                        _send_failed(self, exc.errno or 0)
                    if n < nbytes:
                        # The socket buffer is full: the rest waits for room (a request object)
                        # registered before the claim is released.
                        try:
                            return _send_rest(self, overlapped, data, n, nbytes)
                        except BaseException as exc:  # (Ctrl-C at its entry: n bytes sent)
                            if interrupt(exc) and cut_at_entry(exc, _send_rest):
                                _send_rest(self, overlapped, data, n, nbytes)
                            raise
                    if (
                        event is None
                        and self.skip_set_event
                        and (overlapped.skip_port or self.skip_port_on_success or self.port is None)
                    ):
                        overlapped.information = n  # nothing to signal or post: the IOSB alone
                        overlapped.status = 0
                    else:
                        try:
                            notify_success(self, overlapped, event, n)
                        except BaseException as exc:  # (Ctrl-C at its entry: data sent)
                            if interrupt(exc) and cut_at_entry(exc, notify_success):
                                notify_success(self, overlapped, event, n)
                            raise
                    return True
            finally:
                if taken:  # (each step made whatever a Ctrl-C cuts)
                    try:
                        if counted:
                            users.pop()
                    finally:
                        try:
                            claim.release()
                        finally:
                            if self.closing:
                                _left(users)
        return StreamFile.start_write(self, data, overlapped, size=size, routine=routine)

    def start_accept(
        self,
        accept_socket: Socket,
        overlapped: Overlapped,
        buffer: Any = None,
        *,
        receive_size: int | None = None,
        address_sizes: tuple[int, int] | None = None,
    ) -> bool:
        """AcceptEx: accept the next connection on this listening socket *into*
        ``accept_socket`` (created beforehand, neither bound nor connected) [MS:AcceptEx].

        Like :meth:`start_read`, the request finishes inside the call (True: a client was
        waiting, and its first data when some is asked for) or pends (False), and its end is
        reported through the OVERLAPPED's channels: its event or this socket's file object,
        the completion port this (listening) socket is associated with (the packet carries its
        key), never a completion routine. ``overlapped.information`` is the count of data
        bytes received. Then ``accept_socket`` is the connection
        (``getpeername``/``getsockname``); closing either socket aborts a pending accept
        (ERROR_OPERATION_ABORTED).

        Args:
            buffer: a writable byte buffer: its first ``receive_size`` bytes receive the first
                data the client sends, and the request then completes only when data comes
                (0 bytes if the client closes without sending). None: complete at the
                connection.
            receive_size: default all of ``buffer`` (less the address areas); 0: complete at
                the connection.
            address_sizes: (local, remote): AcceptEx's address areas after the data, filled
                at the connection in its layout (``win32.GetAcceptExSockaddrs`` reads them).
                AcceptEx's rules apply: a remote area (at least the address size + 16 bytes,
                or the request fails with ERROR_INSUFFICIENT_BUFFER once a client is there,
                without accepting it); a local area of 0 is skipped.

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER without an OVERLAPPED; ERROR_INVALID_HANDLE
                when either socket is closed; WSAENOTSOCK (10038) when ``accept_socket`` is
                not a socket; WSAEINVAL (10022) when this socket is not listening, or
                ``accept_socket`` is not a fresh stream socket (bound, connected, UDP, or
                being accepted into already); WSAEFAULT (10014) for a buffer that is not a
                writable byte buffer or is smaller than ``receive_size`` plus the areas, a
                negative size, address areas without a buffer or without a remote area.
            IoError: the accept failed at once (no notification).
        """
        if overlapped is None:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "AcceptEx needs an OVERLAPPED")
        if not isinstance(accept_socket, Socket):
            raise Win32Error(_WSAENOTSOCK, f"{accept_socket!r} is not a socket")
        self._sock()
        accept_socket._sock()
        if address_sizes is None:
            op = accept_ex(self, accept_socket, overlapped, buffer, receive_size, 0, 0, areas=False)
        else:
            local, remote = address_sizes
            op = accept_ex(self, accept_socket, overlapped, buffer, receive_size, local, remote)
        return start(op) != STATUS_PENDING

    def _release_fd(self) -> None:
        # Under LOCK (or from __del__: no user then). A fast path using the descriptor right
        # now releases it when it is done (``_fd_users``). Its receive slot (``_slot``, idle:
        # nothing is pending) dies with it.
        slot = self._rslot
        if slot is not None and slot.state == IDLE:
            died_locked(slot)
        if not self.fd_users.defer_locked(self._release_now):
            FileObject._release_fd(self)

    def _release_now(self) -> None:
        FileObject._release_fd(self)

    def _sock(self) -> socket.socket:
        sock = self.sock
        if sock is None or self.closing:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the socket is closed")
        return sock

    def recv_op(
        self,
        buffers: Sequence[memoryview],
        overlapped: Overlapped,
        flags: int = 0,
        routine: CompletionRoutine | None = None,
    ) -> Operation:
        """WSARecv."""
        return StreamReadOp(self, overlapped, buffers, routine, flags)

    def send_op(
        self,
        buffers: Sequence[memoryview],
        overlapped: Overlapped,
        flags: int = 0,
        routine: CompletionRoutine | None = None,
    ) -> Operation:
        """WSASend."""
        return StreamWriteOp(self, overlapped, buffers, routine, flags)

    def accept_op(
        self, accept_socket: Socket, overlapped: Overlapped, receive: memoryview | None
    ) -> Operation:
        """AcceptEx into ``accept_socket`` (created beforehand, not connected)."""
        accept_socket._sock()
        return AcceptOp(self, accept_socket, overlapped, receive)

    def connect_op(
        self, address: Any, overlapped: Overlapped, send: memoryview | None
    ) -> Operation:
        """ConnectEx.

        Raises:
            Win32Error: WSAEINVAL (10022) if the socket is not bound [MS:ConnectEx].
        """
        sock = self._sock()
        try:
            name = sock.getsockname()
        except OSError:
            name = None
        if not name or (isinstance(name, tuple) and name[1] == 0):
            raise Win32Error(10022, "ConnectEx needs a bound socket (WSAEINVAL)")
        return ConnectOp(self, overlapped, address, send)

    # Plain socket calls (blocking semantics are the caller's business: they are immediate on
    # a listening/bound socket).
    def bind(self, address: Any) -> None:
        """bind()."""
        self._sock().bind(address)

    def listen(self, backlog: int) -> None:
        """listen()."""
        self._sock().listen(backlog)

    def getsockname(self) -> Any:
        """getsockname()."""
        return self._sock().getsockname()

    def getpeername(self) -> Any:
        """getpeername()."""
        return self._sock().getpeername()

    def shutdown(self, how: int) -> None:
        """shutdown()."""
        self._sock().shutdown(how)


def create_socket(
    family: int = socket.AF_INET,
    type: int = socket.SOCK_STREAM,
    proto: int = 0,
    *,
    overlapped: bool = True,
) -> Socket:
    """socket() / WSASocket(WSA_FLAG_OVERLAPPED): a non-blocking socket as a file object.

    Raises:
        Win32Error: the Winsock-style error for bad family/type (WSAEAFNOSUPPORT...).
    """
    try:
        sock = socket.socket(family, type, proto)
    except OSError as exc:
        raise Win32Error(10047 if exc.errno == 97 else 10022, str(exc)) from None
    sock.setblocking(False)
    if family in (socket.AF_INET, socket.AF_INET6) and type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Socket(sock.fileno(), overlapped=overlapped, sock=sock)


# ---------------------------------------------------------------------- the C accelerator
# ``_fastio`` (``_fastsock.c``) replaces ``Socket.start_read``/``start_write`` by method
# descriptors running their immediate paths in C with the same effects; the Python methods stay
# the reference and take every other shape (``_accel.use`` switches both, docs/design.md).
_PY_SOCKET_METHODS = (Socket.start_read, Socket.start_write)
_C_SOCKET_METHODS: tuple[Any, Any] | None = None
if _fastio is not None:
    _probe = socket.socket()
    try:
        _C_SOCKET_METHODS = _fastio.configure_sockets(
            Socket,
            FdUsers,
            Event,
            Overlapped,
            socket.socket,
            _probe,
            threading.Lock(),
            Socket.start_read,
            Socket.start_write,
            _closed_error,
            _recv_blocked,
            _recv_failed,
            _recv_end,
            _send_failed,
            _send_rest,
            STATUS_PENDING,
            _ASK_RUN,
            _ASK_EVERY,
            LOCK,
            wake_waiters,
            SocketMode,
        )
    except NotImplementedError:  # another CPython layout: the Python methods run
        pass
    finally:
        _probe.close()


def sockets_accelerator_available() -> bool:
    """The sockets' C path was built and configured (this CPython's layouts are known)."""
    return _C_SOCKET_METHODS is not None


def sockets_accelerated() -> bool:
    """The sockets' immediate paths run in C right now."""
    return _C_SOCKET_METHODS is not None and Socket.__dict__["start_read"] is _C_SOCKET_METHODS[0]


def _install(on: bool) -> None:
    c, py = _C_SOCKET_METHODS or (None, None), _PY_SOCKET_METHODS
    _accel.install_methods(Socket, {"start_read": (c[0], py[0]), "start_write": (c[1], py[1])}, on)


_accel.register(_install)
