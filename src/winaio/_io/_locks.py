"""Byte-range locks: LockFile(Ex)/UnlockFile(Ex) with Windows semantics, mirrored to other
processes through Linux open-file-description (OFD) locks.

Windows semantics (FsRtl; [W:k32/file.c:test_LockFile], [MS:LockFileEx], [MS:UnlockFileEx]):
- A lock belongs to a file object (duplicated handles share it) and covers [offset,
  offset + length); a zero-length lock is a point that conflicts with the ranges containing it.
- An exclusive lock conflicts with every overlapping lock, the file object's own included; a
  shared lock conflicts only with exclusive locks of other file objects (a file object may
  take a shared lock inside its own exclusive one, not the reverse).
  Locks do not merge: UnlockFile(Ex) must name an existing lock exactly (else ERROR_NOT_LOCKED);
  with a shared and an exclusive lock on the same range the exclusive one goes first.
- A request that conflicts fails with ERROR_LOCK_VIOLATION under LOCKFILE_FAIL_IMMEDIATELY;
  otherwise it waits: on an overlapped handle it pends (ERROR_IO_PENDING) and completes through
  the OVERLAPPED (event, port, thread-exit rule) once granted, in request order, or
  ERROR_OPERATION_ABORTED when cancelled; closing the last handle releases the file object's
  locks.

Linux mapping: the table above is process-wide (one ``_LockedFile`` per device and inode). Every
granted non-empty lock is also taken as an OFD lock on the file object's descriptor (F_RDLCK for
shared, F_WRLCK for exclusive; the descriptor's OFD lock set is recomputed as the union, the
strongest kind per byte), so other processes' OFD and fcntl locks see it. A conflict with
another process's lock is a conflict too; such a waiting request is retried every 20 ms
(Linux has no wake-up for it). Documented deviation: Linux locks are advisory - ReadFile and
WriteFile do not fail ERROR_LOCK_VIOLATION on a region another file object locked.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import os
import struct
import threading
from dataclasses import dataclass

from ..codes import NtStatus, WinError, ntstatus_to_winerror
from ..errors import IoError, Win32Error
from ._backend import OpKind
from ._files import FileObject
from ._ops import Operation
from ._overlapped import Overlapped
from ._sync import run_sync

__all__ = [
    "MAX_RANGE",
    "LockFileOp",
    "lock_file",
    "lock_request",
    "release_all",
    "unlock_file",
    "unlock_range",
]

MAX_RANGE = 1 << 64
_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_NOT_GRANTED = int(NtStatus.STATUS_LOCK_NOT_GRANTED)
_NOT_LOCKED = int(NtStatus.STATUS_RANGE_NOT_LOCKED)
_CANCELLED = int(NtStatus.STATUS_CANCELLED)
_F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)
_FLOCK = struct.Struct("hhqqi")  # struct flock: l_type, l_whence, l_start, l_len, l_pid
_RETRY = 0.02

_lock = threading.RLock()


@dataclass(eq=False)
class _Range:
    owner: FileObject
    start: int
    length: int
    exclusive: bool

    def overlaps(self, start: int, length: int) -> bool:
        if not self.length and not length:
            return False
        if not self.length:
            return start <= self.start < start + length
        if not length:
            return self.start <= start < self.start + self.length
        return start < self.start + self.length and self.start < start + length


class _LockedFile:
    """The locks and the waiting requests of one file (device, inode)."""

    def __init__(self, key: tuple[int, int]) -> None:
        self.key = key
        self.ranges: list[_Range] = []
        self.waiters: list[LockFileOp] = []

    def conflicts(self, owner: FileObject, start: int, length: int, exclusive: bool) -> bool:
        for held in self.ranges:
            if not held.overlaps(start, length):
                continue
            if exclusive or (held.exclusive and held.owner is not owner):
                return True
        return False


_FILES: dict[tuple[int, int], _LockedFile] = {}


def _node(file: FileObject) -> _LockedFile:
    st = os.fstat(file.fd)
    key = (st.st_dev, st.st_ino)
    node = _FILES.get(key)
    if node is None:
        node = _FILES[key] = _LockedFile(key)
    return node


def _ofd(fd: int, kind: int, start: int, length: int) -> bool:
    """One OFD lock request; False when another process holds a conflicting lock."""
    if start >= 1 << 63:
        return True  # beyond off_t: no other process can lock it either
    length = min(length, (1 << 63) - start)
    try:
        fcntl.fcntl(fd, _F_OFD_SETLK, _FLOCK.pack(kind, os.SEEK_SET, start, length, 0))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        if exc.errno not in (errno.EINVAL, errno.ENOLCK, errno.EBADF):
            raise
    return True


def _sync_ofd(node: _LockedFile, owner: FileObject, start: int, end: int) -> None:
    """Make ``owner``'s OFD locks in [start, end) the union of its table locks there."""
    mine = [r for r in node.ranges if r.owner is owner and r.length]
    cuts = sorted({start, end, *(r.start for r in mine), *(r.start + r.length for r in mine)})
    for lo, hi in itertools.pairwise(cuts):
        if lo < start or hi > end or lo >= hi:
            continue
        cover = [r for r in mine if r.start <= lo and hi <= r.start + r.length]
        kind = fcntl.F_UNLCK
        if cover:
            kind = fcntl.F_WRLCK if any(r.exclusive for r in cover) else fcntl.F_RDLCK
        _ofd(owner.fd, kind, lo, hi - lo)


class LockFileOp(Operation):
    """LockFileEx's request: LOCAL, granted in-process (retried for other processes' locks)."""

    __slots__ = ("exclusive", "fail_immediately", "length", "start")
    kind = OpKind.LOCAL

    def __init__(
        self,
        file: FileObject,
        overlapped: Overlapped,
        start: int,
        length: int,
        *,
        exclusive: bool,
        fail_immediately: bool,
    ) -> None:
        super().__init__(file, overlapped)
        self.start = start
        self.length = length
        self.exclusive = exclusive
        self.fail_immediately = fail_immediately

    def _grant_locked(self, node: _LockedFile) -> bool:
        file = self.file
        if node.conflicts(file, self.start, self.length, self.exclusive):
            return False
        if self.length:
            kind = fcntl.F_WRLCK if self.exclusive else fcntl.F_RDLCK
            held = [r for r in node.ranges if r.owner is file and r.length and r.exclusive]
            inside_own = any(r.overlaps(self.start, self.length) for r in held)
            if not inside_own and not _ofd(file.fd, kind, self.start, self.length):
                return False  # another process holds a conflicting lock
        node.ranges.append(_Range(file, self.start, self.length, self.exclusive))
        if self.length:
            _sync_ofd(node, file, self.start, self.start + self.length)
        return True

    def try_now(self) -> tuple[int, int] | None:
        with _lock:
            node = _node(self.file)
            file = self.file
            if self._grant_locked(node):
                file.add_close_hook(_ReleaseOnClose(file))
                return _SUCCESS, 0
            if self.fail_immediately:
                return _NOT_GRANTED, 0
            node.waiters.append(self)
            _RETRIER.wake()
        return None

    def cancel_local(self) -> None:
        with _lock:
            for node in _FILES.values():
                if self in node.waiters:
                    node.waiters.remove(self)
        self.complete(_CANCELLED, 0)


def _grant_waiters_locked(node: _LockedFile) -> list[LockFileOp]:
    granted = []
    for op in list(node.waiters):
        if op.done or op.cancel_requested:
            continue
        if op._grant_locked(node):  # each waiter is checked against the granted locks only
            node.waiters.remove(op)
            op.file.add_close_hook(_ReleaseOnClose(op.file))
            granted.append(op)
    return granted


def unlock_range(file: FileObject, start: int, length: int) -> int:
    """UnlockFile(Ex): remove the lock exactly matching [start, start + length); an exclusive
    one before a shared one. Returns STATUS_SUCCESS or STATUS_RANGE_NOT_LOCKED."""
    with _lock:
        node = _node(file)
        matches = [
            r for r in node.ranges if r.owner is file and r.start == start and r.length == length
        ]
        if not matches:
            return _NOT_LOCKED
        victim = next((r for r in matches if r.exclusive), matches[0])
        node.ranges.remove(victim)
        if length:
            _sync_ofd(node, file, start, start + length)
        granted = _grant_waiters_locked(node)
    for op in granted:
        op.complete(_SUCCESS, 0)
    return _SUCCESS


@dataclass(frozen=True)
class _ReleaseOnClose:
    """The close hook of a file object holding locks (equal per file: added once)."""

    file: FileObject

    def __call__(self) -> None:
        release_all(self.file)


def release_all(file: FileObject) -> None:
    """The file object's last handle closed: its locks go, waiters may now be granted."""
    granted: list[LockFileOp] = []
    with _lock:
        if file.fd >= 0:
            _ofd(file.fd, fcntl.F_UNLCK, 0, 1 << 63)
        for node in list(_FILES.values()):
            before = len(node.ranges)
            node.ranges = [r for r in node.ranges if r.owner is not file]
            if len(node.ranges) != before:
                granted += _grant_waiters_locked(node)
            if not node.ranges and not node.waiters:
                del _FILES[node.key]
    for op in granted:
        op.complete(_SUCCESS, 0)


class _Retrier:
    """Retries waiting requests every 20 ms while any waits (other processes' locks wake
    nobody here)."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._wakeup = threading.Event()

    def wake(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="winaio-lock-retry", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wakeup.wait(_RETRY)
            granted: list[LockFileOp] = []
            with _lock:
                busy = False
                for node in list(_FILES.values()):
                    granted += _grant_waiters_locked(node)
                    busy = busy or bool(node.waiters)
                if not busy:
                    self._thread = None
            for op in granted:
                op.complete(_SUCCESS, 0)
            if not busy:
                return


_RETRIER = _Retrier()


def _check_range(start: int, length: int) -> None:
    if start < 0 or length < 0 or start + length > MAX_RANGE:
        raise Win32Error(WinError.ERROR_INVALID_LOCK_RANGE, f"[{start}, +{length})")


def _lockable(file: FileObject) -> None:
    if not file.seekable:
        raise Win32Error(WinError.ERROR_INVALID_FUNCTION, "byte-range locks need a disk file")
    if not (file.readable or file.writable):
        raise Win32Error(WinError.ERROR_ACCESS_DENIED, "the handle has no read or write access")


def lock_request(
    file: FileObject,
    overlapped: Overlapped,
    length: int,
    *,
    exclusive: bool,
    fail_immediately: bool,
) -> LockFileOp:
    """LockFileEx's request for [overlapped.offset, + length) (module docstring).

    Raises:
        Win32Error: ERROR_INVALID_FUNCTION (not a disk file), ERROR_ACCESS_DENIED (no read or
            write access), ERROR_INVALID_LOCK_RANGE (past 2**64).
    """
    _lockable(file)
    _check_range(overlapped.offset, length)
    return LockFileOp(
        file,
        overlapped,
        overlapped.offset,
        length,
        exclusive=exclusive,
        fail_immediately=fail_immediately,
    )


def lock_file(
    file: FileObject, offset: int, length: int, *, exclusive: bool = True, wait: bool = True
) -> None:
    """Lock [offset, offset + length), waiting (non-alertably) unless ``wait`` is False.

    Raises:
        IoError: ERROR_LOCK_VIOLATION when ``wait`` is False and the range is locked.
        Win32Error: see :func:`lock_request`.
    """
    op = lock_request(
        file, Overlapped(offset), length, exclusive=exclusive, fail_immediately=not wait
    )
    status, _ = run_sync(op)
    if status:
        raise IoError(ntstatus_to_winerror(status), 0)


def unlock_file(file: FileObject, offset: int, length: int) -> None:
    """UnlockFile(Ex): remove the lock on exactly [offset, offset + length).

    Raises:
        Win32Error: ERROR_NOT_LOCKED (no such lock), ERROR_INVALID_FUNCTION, ERROR_ACCESS_DENIED.
    """
    _lockable(file)
    _check_range(offset, length)
    if unlock_range(file, offset, length):
        raise Win32Error(WinError.ERROR_NOT_LOCKED, f"no lock on [{offset}, +{length})")
