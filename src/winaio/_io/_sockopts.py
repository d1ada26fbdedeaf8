"""Socket options with Winsock's numbering (setsockopt/getsockopt, ioctlsocket's FIONBIO/FIONREAD).

Facts encoded here ([MS:setsockopt], [MS:getsockopt], [MS:SOL_SOCKET Socket Options],
[MS:ioctlsocket], [W:ws2_32/sock.c:test_set_getsockopt, test_so_reuseaddr, test_ioctlsocket]):
- SOL_SOCKET is 0xFFFF and the SO_* names have Winsock values (SO_REUSEADDR 4, SO_RCVBUF
  0x1002...); the Linux SOL_SOCKET value (1, which ``winaio.win32.SOL_SOCKET`` exports) is
  accepted as the same level. IPPROTO_TCP/TCP_NODELAY are the same on both systems.
- An unknown option is WSAENOPROTOOPT; an unknown level WSAEINVAL; an option value shorter than
  the option (or none) WSAEFAULT. getsockopt writes the value's size back (4 for DWORD/BOOL
  options, 4 for LINGER - two u_shorts).
- SO_RCVBUF/SO_SNDBUF read back what was set (Linux doubles the kernel value); SO_RCVTIMEO/
  SO_SNDTIMEO are DWORD milliseconds (0 = none) bounding blocking calls; SO_EXCLUSIVEADDRUSE is
  recorded (and refused together with SO_REUSEADDR: WSAEINVAL); SO_UPDATE_ACCEPT_CONTEXT and
  SO_UPDATE_CONNECT_CONTEXT are accepted no-ops (Linux sockets already carry that state);
  SO_ERROR, SO_TYPE and SO_ACCEPTCONN are read-only.
- FIONBIO sets the non-blocking mode; turning it off while WSAEventSelect is active fails with
  WSAEINVAL. FIONREAD is the number of bytes a receive would return now.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
from typing import Any

from ..errors import Win32Error
from ._fd_users import ONE_USER
from ._files import FileObject
from ._netevents import mode_of

__all__ = [
    "SOL_SOCKET_WIN",
    "bytes_readable",
    "get_option",
    "set_nonblocking",
    "set_option",
]

SOL_SOCKET_WIN = 0xFFFF
_SOL_LEVELS = (SOL_SOCKET_WIN, socket.SOL_SOCKET)
WSAEFAULT, WSAEINVAL, WSAENOPROTOOPT = 10014, 10022, 10042

SO_DEBUG = 0x0001
SO_ACCEPTCONN = 0x0002
SO_REUSEADDR = 0x0004
SO_KEEPALIVE = 0x0008
SO_DONTROUTE = 0x0010
SO_BROADCAST = 0x0020
SO_LINGER = 0x0080
SO_OOBINLINE = 0x0100
SO_DONTLINGER = ~SO_LINGER & 0xFFFFFFFF
SO_EXCLUSIVEADDRUSE = ~SO_REUSEADDR & 0xFFFFFFFF
SO_SNDBUF = 0x1001
SO_RCVBUF = 0x1002
SO_SNDTIMEO = 0x1005
SO_RCVTIMEO = 0x1006
SO_ERROR = 0x1007
SO_TYPE = 0x1008
SO_UPDATE_ACCEPT_CONTEXT = 0x700B
SO_UPDATE_CONNECT_CONTEXT = 0x7010
TCP_NODELAY = 0x0001

#: Winsock BOOL options that map one-to-one onto a Linux SOL_SOCKET option.
_BOOL_OPTIONS = {
    SO_DEBUG: socket.SO_DEBUG,
    SO_REUSEADDR: socket.SO_REUSEADDR,
    SO_KEEPALIVE: socket.SO_KEEPALIVE,
    SO_DONTROUTE: socket.SO_DONTROUTE,
    SO_BROADCAST: socket.SO_BROADCAST,
    SO_OOBINLINE: socket.SO_OOBINLINE,
}
_READ_ONLY = (SO_ERROR, SO_TYPE, SO_ACCEPTCONN)
_NO_OPS = (SO_UPDATE_ACCEPT_CONTEXT, SO_UPDATE_CONNECT_CONTEXT)
_ERRNO_WSA = {111: 10061, 104: 10054, 110: 10060, 113: 10065, 101: 10051, 103: 10053, 32: 10058}


def _sock(file: FileObject) -> socket.socket:
    sock = file.sock
    if sock is None or file.closing:
        raise Win32Error(10038, "not a socket (WSAENOTSOCK)")
    return sock


def _int_value(value: Any, size: int, need: int) -> int:
    if value is None or size < need:
        raise Win32Error(WSAEFAULT, f"option value of {size} bytes, {need} needed")
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)[:4].ljust(4, b"\0")
        return int(struct.unpack("<i", raw)[0])
    return int(value)


def set_option(file: FileObject, level: int, name: int, value: Any, size: int = 4) -> None:
    """setsockopt with Winsock numbering (module docstring). ``value``: an int (BOOL/DWORD),
    its little-endian bytes, or ``(l_onoff, l_linger)`` for SO_LINGER.

    Raises:
        Win32Error: WSAENOTSOCK, WSAEFAULT, WSAEINVAL or WSAENOPROTOOPT.
    """
    sock = _sock(file)
    mode = mode_of(file)
    name &= 0xFFFFFFFF  # (int)~SO_LINGER and friends, however they are spelled
    if level == socket.IPPROTO_TCP:
        if name != TCP_NODELAY:
            raise Win32Error(WSAENOPROTOOPT, f"IPPROTO_TCP option {name:#x}")
        if sock.type != socket.SOCK_STREAM:
            raise Win32Error(WSAENOPROTOOPT, "TCP_NODELAY on a datagram socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if _int_value(value, size, 1)
                        else 0)  # fmt: skip
        return
    if level not in _SOL_LEVELS:
        raise Win32Error(WSAEINVAL, f"level {level:#x}")
    if name in _NO_OPS:
        if name == SO_UPDATE_CONNECT_CONTEXT:
            mode_of(file).connected_by_ex = False
        return
    if name in _READ_ONLY:
        raise Win32Error(WSAENOPROTOOPT, f"SOL_SOCKET option {name:#x} is read-only")
    if name == SO_LINGER:
        if value is None or size < 4:
            raise Win32Error(WSAEFAULT, "LINGER is 4 bytes")
        onoff, seconds = (value.l_onoff, value.l_linger) if hasattr(value, "l_onoff") else value
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1 if onoff else 0, int(seconds)))  # fmt: skip
        return
    number = _int_value(value, size, 1 if name in _BOOL_OPTIONS or name in (
        SO_DONTLINGER, SO_EXCLUSIVEADDRUSE) else 4)  # fmt: skip
    if name in _BOOL_OPTIONS:
        if name == SO_REUSEADDR and number and mode.options.get((level, SO_EXCLUSIVEADDRUSE)):
            raise Win32Error(WSAEINVAL, "SO_REUSEADDR with SO_EXCLUSIVEADDRUSE")
        sock.setsockopt(socket.SOL_SOCKET, _BOOL_OPTIONS[name], 1 if number else 0)
    elif name == SO_EXCLUSIVEADDRUSE:
        if number and sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR):
            raise Win32Error(WSAEINVAL, "SO_EXCLUSIVEADDRUSE with SO_REUSEADDR")
        mode.options[(SOL_SOCKET_WIN, SO_EXCLUSIVEADDRUSE)] = 1 if number else 0
    elif name == SO_DONTLINGER:
        linger = struct.unpack("ii", sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 0 if number else 1, linger[1]))  # fmt: skip
    elif name in (SO_SNDBUF, SO_RCVBUF):
        linux = socket.SO_SNDBUF if name == SO_SNDBUF else socket.SO_RCVBUF
        if number > 0:
            sock.setsockopt(socket.SOL_SOCKET, linux, number)
        mode.options[(SOL_SOCKET_WIN, name)] = number & 0xFFFFFFFF
    elif name in (SO_SNDTIMEO, SO_RCVTIMEO):
        timeout = (number & 0xFFFFFFFF) / 1000.0 or None
        if name == SO_SNDTIMEO:
            mode.sndtimeo = timeout
        else:
            mode.rcvtimeo = timeout
        mode.options[(SOL_SOCKET_WIN, name)] = number & 0xFFFFFFFF
    else:
        raise Win32Error(WSAENOPROTOOPT, f"SOL_SOCKET option {name:#x}")


def get_option(file: FileObject, level: int, name: int) -> Any:
    """getsockopt with Winsock numbering: an int, or ``(l_onoff, l_linger)`` for SO_LINGER.

    Raises:
        Win32Error: WSAENOTSOCK, WSAEINVAL or WSAENOPROTOOPT.
    """
    sock = _sock(file)
    mode = mode_of(file)
    name &= 0xFFFFFFFF
    if level == socket.IPPROTO_TCP:
        if name != TCP_NODELAY or sock.type != socket.SOCK_STREAM:
            raise Win32Error(WSAENOPROTOOPT, f"IPPROTO_TCP option {name:#x}")
        return 1 if sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) else 0
    if level not in _SOL_LEVELS:
        raise Win32Error(WSAEINVAL, f"level {level:#x}")
    if name in _BOOL_OPTIONS:
        return 1 if sock.getsockopt(socket.SOL_SOCKET, _BOOL_OPTIONS[name]) else 0
    if name in (SO_LINGER, SO_DONTLINGER):
        if sock.type != socket.SOCK_STREAM:
            # [W:ws2_32/sock.c:test_extendedSocketOptions]
            raise Win32Error(WSAENOPROTOOPT, "SO_LINGER is for connection-oriented sockets")
        onoff, seconds = struct.unpack(
            "ii", sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
        )
        if name == SO_DONTLINGER:
            return 0 if onoff else 1
        return (1 if onoff else 0, seconds)
    if name == SO_ACCEPTCONN:
        return 1 if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) else 0
    if name == SO_TYPE:
        return int(sock.type)
    if name == SO_ERROR:
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return _ERRNO_WSA.get(err, 10000 + err if err else 0)
    if name in (SO_SNDBUF, SO_RCVBUF):
        recorded = mode.options.get((SOL_SOCKET_WIN, name))
        if recorded is not None:
            return recorded
        linux = socket.SO_SNDBUF if name == SO_SNDBUF else socket.SO_RCVBUF
        return sock.getsockopt(socket.SOL_SOCKET, linux) // 2
    if name in (SO_SNDTIMEO, SO_RCVTIMEO, SO_EXCLUSIVEADDRUSE):
        return mode.options.get((SOL_SOCKET_WIN, name), 0)
    raise Win32Error(WSAENOPROTOOPT, f"SOL_SOCKET option {name:#x}")


def set_nonblocking(file: FileObject, nonblocking: bool) -> None:
    """ioctlsocket(FIONBIO).

    Raises:
        Win32Error: WSAEINVAL to turn it off while WSAEventSelect is active [MS:ioctlsocket].
    """
    _sock(file)
    mode = mode_of(file)
    if not nonblocking and mode.event is not None:
        raise Win32Error(WSAEINVAL, "WSAEventSelect keeps the socket non-blocking")
    mode.nonblocking = nonblocking


def bytes_readable(file: FileObject) -> int:
    """ioctlsocket(FIONREAD): bytes a receive would return now (0 on a listening socket)."""
    _sock(file)
    # The descriptor is used without a request: counted among its users first, so that a
    # close from another thread cannot let a reopened file's count be read (``_fd_users``).
    users = getattr(file, "fd_users", None)
    if users is None:  # (every Socket has them; a bare FileObject with a socket does not)
        return _fionread(file.fd)
    counted = False
    try:
        users += ONE_USER  # (an operator: no check before ``counted``; ``_fd_users``)
        counted = True
        if file.closing:
            raise Win32Error(10038, "not a socket (WSAENOTSOCK)")  # closed meanwhile: _sock's
        return _fionread(file.fd)
    finally:
        if counted:
            try:
                users.pop()
            finally:  # (each step in its own ``finally``: a cut at pop's return)
                if file.closing:
                    users.left()


def _fionread(fd: int) -> int:
    try:
        raw = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", raw)[0])
