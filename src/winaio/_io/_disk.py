"""Regular files: CreateFile semantics on Linux, and their read/write requests.

Facts encoded here (win32-async-spec §4.1, §4.4):
- An overlapped handle takes its offset from the OVERLAPPED and never uses nor moves the file
  pointer (#55); a synchronous handle reads at the file pointer (or at the OVERLAPPED's offset)
  and moves it.
- FILE_FLAG_NO_BUFFERING is O_DIRECT: offsets, sizes and buffer addresses must be multiples of
  the logical block size (4096 works everywhere here); violations fail at once with
  ERROR_INVALID_PARAMETER rather than reaching the kernel.
- CreateFile dispositions and their errors: CREATE_NEW on an existing file ->
  ERROR_FILE_EXISTS; OPEN_EXISTING/TRUNCATE_EXISTING on a missing one -> ERROR_FILE_NOT_FOUND;
  CREATE_ALWAYS/OPEN_ALWAYS on an existing one succeed and report ERROR_ALREADY_EXISTS.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
from collections.abc import Sequence
from typing import Any, Final, TypeVar

from .._kernel import _threads
from .._kernel._dispatcher import LOCK, wake_waiters
from .._kernel._objects import Event
from .._kernel._threads import current_thread_state
from ..codes import WinError
from ..errors import Win32Error
from . import _accel, _issue
from ._dispatch import notify_locked
from ._fd_users import FdUsers
from ._files import FileObject
from ._interrupts import cut_at_entry, interrupt
from ._issue import submit_pending_file
from ._ops import CompletionRoutine, FileReadOp, FileWriteOp, Operation, pinned_read
from ._overlapped import STATUS_PENDING, Overlapped
from ._port import CompletionPacket as _Packet
from ._port import CompletionPort
from ._requests import RequestMethods, as_buffers, read_file_after

try:
    from . import _fastio
except ImportError:  # not built (no C compiler at install time): the Python methods run
    _fastio = None  # type: ignore[assignment]

__all__ = [
    "CREATE_ALWAYS",
    "CREATE_NEW",
    "OPEN_ALWAYS",
    "OPEN_EXISTING",
    "TRUNCATE_EXISTING",
    "DiskFile",
    "errno_to_winerror",
    "open_file",
]

CREATE_NEW = 1
CREATE_ALWAYS = 2
OPEN_EXISTING = 3
OPEN_ALWAYS = 4
TRUNCATE_EXISTING = 5

_ALIGN = 4096
_ALIGN_MASK = _ALIGN - 1
#: Offsets are 64-bit signed (LARGE_INTEGER, off_t): 2**63 and above do not exist.
_MAX_OFFSET = 1 << 63
_from_buffer = ctypes.c_char.from_buffer
_addressof = ctypes.addressof
_RWF_NOWAIT = getattr(os, "RWF_NOWAIT", 0)
_preadv = os.preadv
_starmap = itertools.starmap  # (a syscall whose count an interrupt cannot drop)
_new_packet = tuple.__new__
#: ``read_now``: tried without blocking, the data is not there yet.
WOULD_BLOCK: Final = -1
_F = TypeVar("_F")
#: What ``read_now`` turns into "not applicable" (the general path then reports it).
_REFUSED = (OSError, TypeError, ValueError, BufferError, OverflowError, AttributeError)
_ERRNO_WIN: dict[int, int] = {
    errno.ENOENT: WinError.ERROR_FILE_NOT_FOUND,
    errno.ENOTDIR: WinError.ERROR_PATH_NOT_FOUND,
    errno.EEXIST: WinError.ERROR_FILE_EXISTS,
    errno.EACCES: WinError.ERROR_ACCESS_DENIED,
    errno.EPERM: WinError.ERROR_ACCESS_DENIED,
    errno.EISDIR: WinError.ERROR_ACCESS_DENIED,
    errno.EROFS: WinError.ERROR_ACCESS_DENIED,
    errno.EMFILE: WinError.ERROR_TOO_MANY_OPEN_FILES,
    errno.ENFILE: WinError.ERROR_TOO_MANY_OPEN_FILES,
    errno.EINVAL: WinError.ERROR_INVALID_PARAMETER,
    errno.ENAMETOOLONG: WinError.ERROR_INVALID_NAME,
}


def errno_to_winerror(err: int) -> int:
    """Map an errno from open()/lseek() to the Win32 error CreateFile & co. report."""
    return int(_ERRNO_WIN.get(err, WinError.ERROR_GEN_FAILURE))


def _notified_again(file: DiskFile, ov: Overlapped, n: int, packet: Any) -> None:
    """An interrupt cut ``read_now``'s notification (LOCK held): the walk again (idempotent),
    the packet posted if it was not made yet, else its waiters released again (idempotent)."""
    event = ov.event
    try:
        if event is not None:
            if event._waiters:
                wake_waiters(event)
        elif not file.skip_set_event and file._waiters:
            wake_waiters(file)
        if not ov.skip_port:
            port = file.port
            if port is not None and not file.skip_port_on_success and not port.closed:
                if packet is None:
                    port._post_locked(file.key, ov, 0, n)
                else:
                    port._posted_locked()
    except BaseException as again:
        if not interrupt(again):
            raise


class DiskFile(RequestMethods, FileObject):
    """A regular file (positioned I/O)."""

    __slots__ = ("cached_reads", "fd_users")

    def __init__(self, fd: int, **kwargs: Any) -> None:
        #: The unregistered uses of the descriptor right now (``_fd_users``): the general
        #: path's first attempt (``FileReadOp.try_now``) and a synchronous handle's I/O
        #: (``_files.run_sync``). ``read_now`` needs none: it reads under LOCK.
        self.fd_users = FdUsers()
        super().__init__(fd, **kwargs)
        #: The page-cache fast path (``read_now``) applies: overlapped, buffered, readable
        #: (``open_file``), RWF_NOWAIT, and not closing (:meth:`close` clears it).
        self.cached_reads = bool(_RWF_NOWAIT) and self.overlapped and not self.direct

    def close(self) -> None:
        """Close the file object (``FileObject.close``); the cached-read fast path stops first,
        so that :meth:`read_now` tests one flag rather than two."""
        self.cached_reads = False
        super().close()

    def _release_fd(self) -> None:
        # Under LOCK (or from __del__: no user then). A user of the descriptor right now
        # releases it when it is done (``_fd_users``).
        if not self.fd_users.defer_locked(self._release_now):
            FileObject._release_fd(self)

    def _release_now(self) -> None:
        FileObject._release_fd(self)

    def start_read(
        self,
        buffer: Any,
        overlapped: Overlapped,
        *,
        size: int | None = None,
        routine: CompletionRoutine | None = None,
    ) -> bool:
        """ReadFile(Ex) (see :meth:`RequestMethods.start_read`).

        The hot case - one buffer, no ``size``, on a cached-reads handle - goes straight to
        :meth:`read_now`, whose syscall checks the buffer: buffer normalisation only happens
        when the fast path did not finish the read.
        """
        if size is None and overlapped is not None and self.cached_reads:
            status = self.read_now((buffer,), overlapped, routine)
            if status == 0:
                return True
            return _start_read_after(self, buffer, overlapped, routine, status)
        elif size is None and overlapped is not None and self.direct and routine is None:
            # The O_DIRECT hot case: a whole aligned buffer always pends (no cached attempt).
            # Pin it once (the anchor holds its export until the CQE; the SQE reuses its
            # address), check it, build the request slot by slot and issue it in one LOCK
            # round trip. Anything unusual takes the general path, which reports it.
            cls = buffer.__class__
            if cls is memoryview or cls is bytearray:
                try:
                    anchor = _from_buffer(buffer)  # writable, contiguous, not empty, or it raises
                except (TypeError, ValueError, BufferError):
                    anchor = None
                if anchor is not None:
                    n = buffer.nbytes if cls is memoryview else len(buffer)
                    address = _addressof(anchor)
                    offset = overlapped.offset
                    if (
                        n == len(buffer)  # bytes: not a wider format nor several dimensions
                        and n
                        and 0 <= offset < _MAX_OFFSET
                        and not (address | n | offset) & _ALIGN_MASK
                        and self.readable
                    ):
                        view = buffer if cls is memoryview else memoryview(buffer)
                        submit_pending_file(
                            pinned_read(self, overlapped, view, offset, anchor, address, n)
                        )
                        return False
        return RequestMethods.start_read(self, buffer, overlapped, size=size, routine=routine)

    def read_op(
        self,
        buffers: Sequence[memoryview],
        overlapped: Overlapped,
        routine: CompletionRoutine | None = None,
        tried: bool = False,
    ) -> Operation:
        """The request object for ReadFile/ReadFileScatter/ReadFileEx."""
        if not self.readable:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, "handle opened without read access")
        offset = overlapped.offset
        if self.direct or not 0 <= offset < _MAX_OFFSET:
            self._check_direct(buffers, offset)
        return FileReadOp(self, overlapped, buffers, offset, routine, tried)

    def read_now(
        self,
        buffers: Sequence[Any],
        overlapped: Overlapped,
        routine: CompletionRoutine | None,
    ) -> int | None:
        """The page-cache fast path of an overlapped ReadFile (Windows' fast I/O read).

        Finishes the read inside the call without building a request object, with exactly the
        effects of ``_files.start`` + ``deliver`` for an immediate success, and returns 0.
        Returns :data:`WOULD_BLOCK` when the data is not cached (or at EOF: Win8+ pends, spec
        §4.4), None when the fast path does not apply (the request object path then handles
        it, including every error case).

        ``buffers`` are whatever the caller has: the syscall is made first and is the check.
        ``preadv`` takes any writable C-contiguous buffer as its bytes (what ``as_buffers``
        would make of it); a read-only, non-contiguous or non-buffer object, a bad offset
        (negative: EINVAL; too large: OverflowError) or any other error returns None before
        anything was touched, and the general path reports it exactly as it would have. The
        issue-time reset (§4.2 step 2: E reset, F cleared, Internal = STATUS_PENDING) and the
        completion are then applied together under the lock: nobody can tell them apart from a
        reset immediately followed by the completion, and a request that would block has
        touched nothing (``_files.start`` resets when it issues it).
        """
        if not self.cached_reads:  # (cleared by close(): no ``closing`` test needed)
            return None
        if routine is not None and (self.port is not None or not callable(routine)):
            return None  # APC I/O on a port-bound handle, a routine that cannot be called:
            # the general path reports it
        offset = overlapped.offset
        if offset < 0:
            return None  # preadv2 reads at the file pointer at -1: the general path refuses it
        issuer = None if routine is None else current_thread_state()  # (may take LOCK)
        # The descriptor is fetched and read under LOCK, which every release of it holds
        # (``FileObject._release_fd``): a close racing from another thread cannot let a
        # reopened file take its number under this read. The syscall never waits (a page-cache
        # hit or EAGAIN), and the completion needs the same hold right after it: no extra lock
        # round trip (``fd_users``, the general path's way, measured ~1.2K instructions here).
        with LOCK:
            n = 0
            try:
                # (the count stored by the loop with no eval-breaker check after the syscall:
                # an interrupt cannot drop it, docs/design.md "The syscall's own return")
                for n in _starmap(_preadv, ((self.fd, buffers, offset, _RWF_NOWAIT),)):  # noqa: B007
                    break
            except BlockingIOError:
                return WOULD_BLOCK
            except _REFUSED:
                return None  # the request object path reports it (or EOPNOTSUPP: it retries)
            if not n:
                return WOULD_BLOCK  # at EOF (or a zero-byte read: the request object succeeds it)
            if issuer is not None:
                # ReadFileEx: the OVERLAPPED's event is ignored (spec §5, as ``_requests.issue``
                # does) and the routine is queued to the issuing thread.
                overlapped.event = None
                overlapped.skip_port = False
                self._signaled = False  # §4.2 step 2, applied with the completion (above)
                try:
                    notify_locked(self, overlapped, None, False, routine, issuer, 0, n, True)
                except BaseException as exc:  # (Ctrl-C at its entry: the data is read)
                    if interrupt(exc) and cut_at_entry(exc, notify_locked):
                        notify_locked(self, overlapped, None, False, routine, issuer, 0, n, True)
                    raise
                return 0
            # ``_dispatch.notify_locked`` for an immediate success without a routine, inlined
            # with the port's ``_post_locked`` (the hot path of cached reads through a port:
            # measured in docs/design.md "Cached reads"): IOSB, then E or F, then the packet
            # (spec §1.5, §6.2).
            overlapped.information = n
            overlapped.status = 0
            event = overlapped.event
            try:
                if event is not None:
                    self._signaled = False
                    event._signaled = True
                    if event._waiters:
                        wake_waiters(event)
                elif self.skip_set_event:
                    self._signaled = False
                else:
                    self._signaled = True
                    if self._waiters:
                        wake_waiters(self)
                if not overlapped.skip_port:
                    port = self.port
                    if port is not None and not self.skip_port_on_success and not port.closed:
                        packet = _new_packet(_Packet, (self.key, overlapped, 0, n))
                        port._packets.append(packet)
                        if port._getters or port._waiters:
                            port._posted_locked()
            except BaseException as exc:  # (Ctrl-C) the notification finished first (review8)
                if interrupt(exc):
                    _notified_again(self, overlapped, n, locals().get("packet"))
                raise
        return 0

    def write_op(
        self,
        buffers: Sequence[memoryview],
        overlapped: Overlapped,
        routine: CompletionRoutine | None = None,
    ) -> Operation:
        """The request object for WriteFile/WriteFileGather/WriteFileEx."""
        if not self.writable:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, "handle opened without write access")
        offset = overlapped.offset
        if self.direct or not 0 <= offset < _MAX_OFFSET:
            self._check_direct(buffers, offset)
        return FileWriteOp(self, overlapped, buffers, offset, routine)

    def _check_direct(self, buffers: Sequence[memoryview], offset: int) -> None:
        if offset < 0:
            raise Win32Error(WinError.ERROR_NEGATIVE_SEEK, f"offset {offset}")
        if offset >= _MAX_OFFSET:  # a negative LARGE_INTEGER on Windows: STATUS_INVALID_PARAMETER
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"offset {offset}")
        if not self.direct:
            return
        for buf in buffers:
            if len(buf) % _ALIGN or _address(buf) % _ALIGN:
                raise Win32Error(
                    WinError.ERROR_INVALID_PARAMETER, "unaligned buffer for FILE_FLAG_NO_BUFFERING"
                )
        if offset % _ALIGN:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"unaligned offset {offset}")

    def size(self) -> int:
        """GetFileSizeEx."""
        return os.fstat(self.fd).st_size

    def seek(self, distance: int, whence: int) -> int:
        """SetFilePointerEx: move the file pointer of this handle's file object.

        Raises:
            Win32Error: ERROR_NEGATIVE_SEEK before the start of the file.
        """
        base = {0: 0, 1: self.position, 2: self.size()}.get(whence)
        if base is None:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"move method {whence}")
        target = base + distance
        if target < 0:
            raise Win32Error(WinError.ERROR_NEGATIVE_SEEK)
        self.position = target
        return target

    def flush(self) -> None:
        """FlushFileBuffers."""
        os.fsync(self.fd)


def _start_read_after(
    file: DiskFile,
    buffer: Any,
    overlapped: Overlapped,
    routine: CompletionRoutine | None,
    status: int | None,
) -> bool:
    """``start_read``'s hot case once ``read_now`` did not finish the read (``status``: None or
    WOULD_BLOCK): the request object path. Shared with the C accelerator's ``start_read``."""
    views = as_buffers(buffer, None, True)
    status = read_file_after(file, views, overlapped, routine, status)[0]
    return status != STATUS_PENDING


# ---------------------------------------------------------------------- the C accelerator
# ``_fastio`` (optional, built from _fastio.c when a C compiler is there) replaces
# ``read_now`` and ``start_read``'s hot case by method descriptors with exactly the same
# effects; the Python methods stay the reference and take every shape the C code does not
# handle. WINAIO_PURE_PYTHON=1 in the environment keeps the Python methods (docs/design.md
# "Cached reads").
_PY_METHODS = (DiskFile.read_now, DiskFile.start_read)
_C_METHODS: tuple[Any, Any] | None = None
#: The C code takes LOCK without calling its methods (CPython 3.11/3.12's lock layout).
C_LOCK_DIRECT = False
if _fastio is not None:
    _read_now_c, _start_read_c, C_LOCK_DIRECT = _fastio.configure(
        DiskFile,
        Overlapped,
        CompletionPort,
        Event,
        _Packet,
        LOCK,
        wake_waiters,
        DiskFile.read_now,
        DiskFile.start_read,
        _start_read_after,
        _REFUSED,
        WOULD_BLOCK,
    )
    _C_METHODS = (_read_now_c, _start_read_c)
    # The O_DIRECT hot case of the C ``start_read`` (``_fastdirect.c``): ``pinned_read`` and
    # ``submit_pending_file`` in C, the backend's ``submit`` called as in Python.
    _fastio.configure_direct(
        DiskFile,
        FileReadOp,
        LOCK,
        submit_pending_file,
        _issue._hand_to_backend,
        _issue._handed_again,
        _threads._tls,
        current_thread_state,
        STATUS_PENDING,
        _ALIGN,
    )


def accelerator_available() -> bool:
    """The C accelerator (``winaio._io._fastio``) was built and imported."""
    return _C_METHODS is not None


def accelerated() -> bool:
    """The cached-read fast path runs in C right now."""
    return _C_METHODS is not None and DiskFile.__dict__["read_now"] is _C_METHODS[0]


def _install(on: bool) -> None:
    c = _C_METHODS or (None, None)
    _accel.install_methods(
        DiskFile, {"read_now": (c[0], _PY_METHODS[0]), "start_read": (c[1], _PY_METHODS[1])}, on
    )
    if _fastio is not None:
        _fastio.set_enabled(on)  # the alias layer's ReadFile (``alias_read_file``)


def use_accelerator(on: bool) -> bool:
    """Run every accelerated path (this module's cached reads, and every other module's
    registered with ``_accel``) in C (``on``, when built) or in Python; returns whether the C
    path was in use before. Not for use while other threads read (tests, benchmarks)."""
    return _accel.use(on)


def alias_read_file(read_file: _F, overlapped: type, handle_entry: Any, after: Any) -> _F:
    """``winaio.win32.ReadFile`` with its hot shape in C when the accelerator is built (the
    Python function ``read_file`` then runs every other call, and every call while
    :func:`use_accelerator` is off); else ``read_file`` itself. ``after(hFile, lpBuffer,
    nNumberOfBytesToRead, lpNumberOfBytesRead, lpOverlapped, fast)`` is the Python function's
    continuation once ``read_now`` did not finish the read."""
    if _C_METHODS is None:  # (not built)
        return read_file
    c_read_file: _F = _fastio.configure_alias(overlapped, handle_entry, read_file, after)
    return c_read_file


def alias_gqcs_ex(
    gqcs_ex: _F,
    overlapped_entry: type,
    ref: type,
    handle_entry: Any,
    after: Any,
    failed: Any,
    win32_error: type[BaseException],
) -> _F:
    """``winaio.win32.GetQueuedCompletionStatusEx`` with its hot shape in C when the
    accelerator is built (as :func:`alias_read_file`; with the ReadFile hot shape it keeps the
    alias layer's cost beside the accelerated core's): ``after(port, code, packets, entries,
    removed)`` is the Python function's continuation once ``get_many`` returned, ``failed(exc,
    removed)`` its handling of a Win32Error from it."""
    if _C_METHODS is None:  # (not built)
        return gqcs_ex
    c_gqcs_ex: _F = _fastio.configure_gqcs(
        gqcs_ex, overlapped_entry, ref, handle_entry, after, failed, win32_error
    )
    return c_gqcs_ex


_accel.register(_install)


def _address(buf: memoryview) -> int:
    # Read-only buffers expose no address through ctypes; the kernel still rejects a misaligned
    # one (EINVAL -> ERROR_INVALID_PARAMETER at completion).
    if buf.readonly or not len(buf):
        return 0
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


def open_file(
    path: str,
    *,
    read: bool,
    write: bool,
    disposition: int,
    overlapped: bool,
    direct: bool = False,
    write_through: bool = False,
) -> tuple[DiskFile, bool]:
    """CreateFile for a regular file. Returns (file object, it already existed).

    Raises:
        Win32Error: ERROR_FILE_NOT_FOUND, ERROR_FILE_EXISTS, ERROR_ACCESS_DENIED,
            ERROR_INVALID_PARAMETER (bad disposition)...
    """
    flags = os.O_CLOEXEC
    flags |= os.O_RDWR if read and write else (os.O_WRONLY if write else os.O_RDONLY)
    if direct:
        flags |= os.O_DIRECT
    if write_through:
        flags |= os.O_DSYNC
    existed = os.path.exists(path)
    if disposition == CREATE_NEW:
        flags |= os.O_CREAT | os.O_EXCL
    elif disposition == CREATE_ALWAYS:
        flags |= os.O_CREAT | os.O_TRUNC
    elif disposition == OPEN_ALWAYS:
        flags |= os.O_CREAT
    elif disposition == TRUNCATE_EXISTING:
        if not existed:
            raise Win32Error(WinError.ERROR_FILE_NOT_FOUND, path)
        if not write:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "TRUNCATE_EXISTING needs write")
        flags |= os.O_TRUNC
    elif disposition != OPEN_EXISTING:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"disposition {disposition}")
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise Win32Error(errno_to_winerror(exc.errno or 0), f"{path}: {exc.strerror}") from None
    file = DiskFile(fd, overlapped=overlapped, direct=direct, seekable=True, path=path)
    file.readable, file.writable = read, write
    file.cached_reads = file.cached_reads and read
    return file, existed
