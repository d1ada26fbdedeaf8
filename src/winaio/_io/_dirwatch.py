"""Directory handles and ReadDirectoryChangesW on inotify: change records as
FILE_NOTIFY_INFORMATION, delivered through events, completion routines and completion ports.

Facts encoded here ([W:k32/change.c:test_readdirectorychanges, _null, _filedir, _cr],
[MS:ReadDirectoryChangesW], [MS:FILE_NOTIFY_INFORMATION]):
- The first ReadDirectoryChangesW on a handle fixes its watch for the handle's life: the filter,
  whether the subtree is watched, and the size of the buffer Windows keeps for changes that
  happen while no request is pending. Later calls' filter and subtree flag are ignored.
- A request completes as soon as a change is there: with the records that fit its buffer
  (InternalHigh = the end of the last record's name, records DWORD-aligned and chained by
  NextEntryOffset, names relative to the watched directory with ``\\`` separators, UTF-16LE).
  Changes that happened while no request was pending are delivered as one block by the next
  request. If that block (or even the first record) does not fit the request's buffer and the
  handle's buffer (the smaller), or changes buffered meanwhile outgrew the handle's buffer, or
  the kernel's own queue overflowed (IN_Q_OVERFLOW), the request completes with
  STATUS_NOTIFY_ENUM_DIR and 0 bytes: "enumerate the directory yourself". STATUS_NOTIFY_ENUM_DIR
  is a success-class status: GetQueuedCompletionStatus/GetOverlappedResult return TRUE with 0
  bytes; the Win32 error of OVERLAPPED.Internal is ERROR_NOTIFY_ENUM_DIR.
- Actions: creation -> FILE_ACTION_ADDED, deletion -> REMOVED, a rename inside the watched tree
  -> RENAMED_OLD_NAME then RENAMED_NEW_NAME in one completion, a move out -> REMOVED, a move in
  -> ADDED, content/attribute/time changes -> MODIFIED (filtered by FILE_NOTIFY_CHANGE_*).
- Closing the directory handle completes pending requests with STATUS_NOTIFY_CLEANUP.

Linux mapping: one inotify instance per directory handle (non-blocking, polled by the backend
like any stream: a request is a STREAM operation on the inotify descriptor, so both backends
run it unchanged). Watching a subtree adds a watch per subdirectory, also for subdirectories
created or moved in later; the entries of a subdirectory created before its watch existed are
reported as ADDED once (a documented deviation: inotify is not recursive). A rename is inotify's
MOVED_FROM/MOVED_TO pair, which a read can split: a MOVED_FROM that ends a read waits up to 50 ms
for its MOVED_TO before it counts as a move out.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._kernel._dispatcher import LOCK, DispatcherObject, ThreadState, wake_waiters
from ..codes import NtStatus, WinError
from ..errors import Win32Error
from ._files import FileObject
from ._issue import start
from ._ops import CompletionRoutine, Operation
from ._overlapped import Overlapped

__all__ = [
    "FILE_ACTION_ADDED",
    "FILE_ACTION_MODIFIED",
    "FILE_ACTION_REMOVED",
    "FILE_ACTION_RENAMED_NEW_NAME",
    "FILE_ACTION_RENAMED_OLD_NAME",
    "NOTIFY_FILTER_ALL",
    "ChangeNotification",
    "DirectoryChange",
    "DirectoryFile",
    "encode_records",
    "find_first_change",
    "open_directory",
    "parse_records",
]

FILE_ACTION_ADDED = 1
FILE_ACTION_REMOVED = 2
FILE_ACTION_MODIFIED = 3
FILE_ACTION_RENAMED_OLD_NAME = 4
FILE_ACTION_RENAMED_NEW_NAME = 5

_FILE_NAME, _DIR_NAME, _ATTRIBUTES, _SIZE = 0x1, 0x2, 0x4, 0x8
_LAST_WRITE, _LAST_ACCESS, _CREATION, _SECURITY = 0x10, 0x20, 0x40, 0x100
NOTIFY_FILTER_ALL = 0x17F
_NAMES = _FILE_NAME | _DIR_NAME

_IN_ACCESS, _IN_MODIFY, _IN_ATTRIB = 0x1, 0x2, 0x4
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_Q_OVERFLOW, _IN_IGNORED, _IN_ONLYDIR, _IN_ISDIR = 0x4000, 0x8000, 0x01000000, 0x40000000
_IN_NONBLOCK, _IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
_EVENT = struct.Struct("iIII")

_SUCCESS = int(NtStatus.STATUS_SUCCESS)
_ENUM_DIR = int(NtStatus.STATUS_NOTIFY_ENUM_DIR)
_CLEANUP = int(NtStatus.STATUS_NOTIFY_CLEANUP)
_CANCELLED = int(NtStatus.STATUS_CANCELLED)
#: How long a MOVED_FROM that ends a read waits for its MOVED_TO (seconds).
_PAIR_WAIT = 0.05

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


@dataclass(frozen=True, slots=True)
class DirectoryChange:
    """One FILE_NOTIFY_INFORMATION record: a FILE_ACTION_* and a name relative to the watched
    directory (``\\`` separators)."""

    action: int
    name: str


def _record_size(name: str) -> int:
    return 12 + len(name.encode("utf-16-le"))


def encode_records(changes: Sequence[DirectoryChange]) -> bytes:
    """FILE_NOTIFY_INFORMATION records, DWORD-aligned and chained (the last one unpadded)."""
    out = bytearray()
    for index, change in enumerate(changes):
        name = change.name.encode("utf-16-le")
        size = 12 + len(name)
        last = index == len(changes) - 1
        step = 0 if last else (size + 3) & ~3
        out += struct.pack("<III", step, change.action, len(name)) + name
        if not last:
            out += bytes(step - size)
    return bytes(out)


def parse_records(buffer: Any, length: int) -> list[DirectoryChange]:
    """Decode the FILE_NOTIFY_INFORMATION chain in the first ``length`` bytes of ``buffer``."""
    view = memoryview(buffer).cast("B")[:length]
    changes: list[DirectoryChange] = []
    offset = 0
    while length:
        step, action, size = struct.unpack_from("<III", view, offset)
        name = bytes(view[offset + 12 : offset + 12 + size]).decode("utf-16-le")
        changes.append(DirectoryChange(action, name))
        if not step:
            break
        offset += step
    return changes


def _action_filter(action: int, is_dir: bool) -> int:
    """The FILE_NOTIFY_CHANGE_* bits that report a naming action on a file or directory."""
    return _DIR_NAME if is_dir else _FILE_NAME


class _Watch:
    """The inotify side of one directory handle (module docstring). Guarded by ``lock``."""

    def __init__(self, path: str, subtree: bool, notify_filter: int, capacity: int) -> None:
        self.lock = threading.Lock()
        self.path = path
        self.subtree = subtree
        self.filter = notify_filter
        self.capacity = capacity
        self.fd = _check(_libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        self.wds: dict[int, str] = {}
        self.records: list[DirectoryChange] = []
        self.overflow = False
        self.synthesized: set[str] = set()
        try:
            self._add(path, "")
            if subtree:
                self._add_tree("", synthesize=False)
        except OSError:
            os.close(self.fd)
            raise

    # -------------------------------------------------------------- watches
    def _mask(self) -> int:
        mask = _IN_CREATE | _IN_DELETE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_ONLYDIR
        if self.filter & (_SIZE | _LAST_WRITE):
            mask |= _IN_MODIFY
        if self.filter & (_ATTRIBUTES | _SECURITY | _CREATION | _LAST_WRITE | _LAST_ACCESS):
            mask |= _IN_ATTRIB
        if self.filter & _LAST_ACCESS:
            mask |= _IN_ACCESS
        return mask

    def _add(self, full: str, relative: str) -> None:
        wd = _check(_libc.inotify_add_watch(self.fd, os.fsencode(full), self._mask()))
        self.wds[wd] = relative

    def _add_tree(self, relative: str, synthesize: bool) -> None:
        """Watch every subdirectory below ``relative``; report what exists when asked."""
        base = os.path.join(self.path, *relative.split("\\")) if relative else self.path
        try:
            entries = list(os.scandir(base))
        except OSError:
            return
        for entry in entries:
            name = f"{relative}\\{entry.name}" if relative else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if synthesize:
                self._report(FILE_ACTION_ADDED, name, is_dir)
                self.synthesized.add(name)
            if is_dir:
                try:
                    self._add(entry.path, name)
                except OSError:
                    continue
                self._add_tree(name, synthesize)

    def _rename_tree(self, old: str, new: str) -> None:
        for wd, relative in list(self.wds.items()):
            if relative == old or relative.startswith(old + "\\"):
                self.wds[wd] = new + relative[len(old) :]

    def _drop_tree(self, relative: str) -> None:
        for wd, path in list(self.wds.items()):
            if path == relative or path.startswith(relative + "\\"):
                _libc.inotify_rm_watch(self.fd, wd)
                self.wds.pop(wd, None)

    # -------------------------------------------------------------- events
    def _report(self, action: int, name: str, is_dir: bool) -> None:
        if action == FILE_ACTION_MODIFIED or self.filter & _action_filter(action, is_dir):
            self.records.append(DirectoryChange(action, name))

    def drain(self) -> None:
        """Read every queued inotify event into ``records`` (non-blocking, except that a
        MOVED_FROM ending what was read waits up to ``_PAIR_WAIT`` for its MOVED_TO)."""
        moved_from = self._parse(self._read_queued(), None)
        # The kernel queues a rename's MOVED_FROM and MOVED_TO one after the other, and a read
        # can fall between them: an unpaired MOVED_FROM at the end of a read is a rename whose
        # other half is a moment away, or a move out of the tree. Wait briefly for the rest (as
        # watchdog does) before reporting it removed.
        while moved_from is not None and self._wait_readable(_PAIR_WAIT):
            data = self._read_queued()
            if not data:
                break
            moved_from = self._parse(data, moved_from)
        if moved_from is not None:  # nothing followed: the entry left the tree
            self._moved_out(*moved_from[1:])

    def _read_queued(self) -> bytes:
        """Everything the inotify descriptor has now (whole events: the kernel never splits
        one across reads)."""
        data = bytearray()
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                break
            if not chunk:
                break
            data += chunk
        return bytes(data)

    def _wait_readable(self, timeout: float) -> bool:
        """More events arrive within ``timeout`` seconds."""
        if self.fd < 0:
            return False
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        return bool(poller.poll(int(timeout * 1000)))

    def _parse(
        self, data: bytes, moved_from: tuple[int, str, bool] | None
    ) -> tuple[int, str, bool] | None:
        """Turn inotify events into records. ``moved_from`` is a MOVED_FROM (cookie, name,
        is_dir) still waiting for its MOVED_TO; the one still waiting at the end is returned."""
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, cookie, size = _EVENT.unpack_from(data, offset)
            raw = bytes(data[offset + _EVENT.size : offset + _EVENT.size + size])
            offset += _EVENT.size + size
            if mask & _IN_Q_OVERFLOW:
                self.overflow = True
                continue
            if mask & _IN_IGNORED:
                self.wds.pop(wd, None)
                continue
            parent = self.wds.get(wd)
            if parent is None:
                continue
            leaf = os.fsdecode(raw.rstrip(b"\0"))
            if not leaf:
                continue  # the watched directory itself (its entry in the parent reports it)
            name = f"{parent}\\{leaf}" if parent else leaf
            is_dir = bool(mask & _IN_ISDIR)
            if moved_from is not None and not (mask & _IN_MOVED_TO and cookie == moved_from[0]):
                self._moved_out(*moved_from[1:])
                moved_from = None
            if mask & _IN_CREATE:
                if name in self.synthesized:
                    self.synthesized.discard(name)  # already reported by the subtree scan
                    continue
                self._report(FILE_ACTION_ADDED, name, is_dir)
                if is_dir and self.subtree:
                    self._watch_new_dir(name)
            elif mask & _IN_DELETE:
                self._report(FILE_ACTION_REMOVED, name, is_dir)
            elif mask & _IN_MOVED_FROM:
                moved_from = (cookie, name, is_dir)
            elif mask & _IN_MOVED_TO:
                if moved_from is not None:
                    old = moved_from[1]
                    moved_from = None
                    self._report(FILE_ACTION_RENAMED_OLD_NAME, old, is_dir)
                    self._report(FILE_ACTION_RENAMED_NEW_NAME, name, is_dir)
                    if is_dir and self.subtree:
                        self._rename_tree(old, name)
                else:
                    self._report(FILE_ACTION_ADDED, name, is_dir)
                    if is_dir and self.subtree:
                        self._watch_new_dir(name, synthesize=False)
            elif mask & (_IN_MODIFY | _IN_ATTRIB) or (mask & _IN_ACCESS and not is_dir):
                # (listing a directory - our own subtree scans included - is no change)
                self._report(FILE_ACTION_MODIFIED, name, is_dir)
        return moved_from

    def _moved_out(self, name: str, is_dir: bool) -> None:
        self._report(FILE_ACTION_REMOVED, name, is_dir)
        if is_dir and self.subtree:
            self._drop_tree(name)

    def _watch_new_dir(self, name: str, synthesize: bool = True) -> None:
        full = os.path.join(self.path, *name.split("\\"))
        try:
            self._add(full, name)
        except OSError:
            return
        self._add_tree(name, synthesize)

    # -------------------------------------------------------------- requests
    def take(self, limit: int, fresh: bool) -> tuple[int, bytes] | None:
        """The outcome of one request now: (status, records bytes) or None (nothing yet).

        ``fresh``: the request was just issued, so everything queued was buffered while no
        request was pending: it is delivered whole or, when it does not fit, lost
        (STATUS_NOTIFY_ENUM_DIR). Changes that arrive while the request pends fill it in order;
        the ones that do not fit stay buffered for the next request (within the handle's
        buffer size).
        """
        with self.lock:
            self.drain()
            if self.overflow:
                self.overflow = False
                self.records.clear()
                self.synthesized.clear()
                return _ENUM_DIR, b""
            records = self.records
            if not records:
                return None
            if fresh and _total(records) > limit:
                # Changes buffered while no request was pending go to the request as one
                # block: they must all fit (its buffer and the handle's), else they are lost.
                records.clear()
                return _ENUM_DIR, b""
            size = 0
            count = 0
            for change in records:
                step = _record_size(change.name)
                if size + step > limit:
                    break
                size = (size + step + 3) & ~3
                count += 1
            if not count:
                records.clear()
                return _ENUM_DIR, b""
            taken, rest = records[:count], records[count:]
            if _total(rest) > self.capacity:
                rest = []
                self.overflow = True  # the next request learns that changes were lost
            self.records = rest
            return _SUCCESS, encode_records(taken)

    def close(self) -> None:
        with self.lock:
            fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


def _total(records: Sequence[DirectoryChange]) -> int:
    size = 0
    for change in records:
        size = (size + _record_size(change.name) + 3) & ~3
    return size


class ReadChangesOp(Operation):
    """ReadDirectoryChangesW: a STREAM request polling the handle's inotify descriptor."""

    __slots__ = ("buffer", "fresh", "limit", "watch")
    poll_events = select.POLLIN

    def __init__(
        self,
        directory: DirectoryFile,
        overlapped: Overlapped,
        buffer: memoryview | None,
        watch: _Watch,
        routine: CompletionRoutine | None,
    ) -> None:
        super().__init__(directory, overlapped, routine)
        self.buffer = buffer
        self.watch = watch
        self.limit = min(watch.capacity, len(buffer) if buffer is not None else 0)
        self.fresh = True

    @property
    def fd(self) -> int:
        return self.watch.fd

    def try_now(self) -> tuple[int, int] | None:
        fresh, self.fresh = self.fresh, False
        result = self.watch.take(self.limit, fresh)
        if result is None:
            return None
        status, records = result
        if records:
            assert self.buffer is not None
            self.buffer[: len(records)] = records
        return status, len(records)

    def complete(self, status: int, information: int) -> None:
        # The handle's cleanup ends pending requests with STATUS_NOTIFY_CLEANUP, not a cancel.
        if status == _CANCELLED and self.file.closing:
            status = _CLEANUP
        super().complete(status, information)


class DirectoryFile(FileObject):
    """A directory opened with FILE_FLAG_BACKUP_SEMANTICS: a target for change watches."""

    __slots__ = ("watch",)
    type_name = "File"

    def __init__(self, fd: int, path: str, *, overlapped: bool) -> None:
        super().__init__(fd, overlapped=overlapped, path=path)
        self.watch: _Watch | None = None

    def read_changes_op(
        self,
        buffer: memoryview | None,
        overlapped: Overlapped,
        *,
        subtree: bool,
        notify_filter: int,
        routine: CompletionRoutine | None = None,
    ) -> Operation:
        """ReadDirectoryChangesW's request; the first call fixes the watch (module docstring).

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER (empty or unknown filter bits),
                ERROR_ACCESS_DENIED (handle without FILE_LIST_DIRECTORY), ERROR_INVALID_HANDLE
                (closed), or the inotify failure (ERROR_TOO_MANY_OPEN_FILES...).
        """
        if not notify_filter or notify_filter & ~NOTIFY_FILTER_ALL:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"filter 0x{notify_filter:X}")
        if not self.readable:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, "handle lacks FILE_LIST_DIRECTORY")
        if self.closing:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the directory handle is closed")
        watch = self.watch
        if watch is None:
            size = len(buffer) if buffer is not None else 0
            try:
                watch = self.watch = _Watch(self.path or ".", subtree, notify_filter, size)
            except OSError as exc:
                code = WinError.ERROR_TOO_MANY_OPEN_FILES
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOSPC):
                    code = WinError.ERROR_ACCESS_DENIED
                raise Win32Error(code, f"inotify: {exc.strerror}") from None
        return ReadChangesOp(self, overlapped, buffer, watch, routine)

    def _release_fd(self) -> None:
        watch = self.watch
        if watch is not None:
            watch.close()
        super()._release_fd()


def open_directory(path: str, *, overlapped: bool, readable: bool = True) -> DirectoryFile:
    """CreateFile(directory, ..., FILE_FLAG_BACKUP_SEMANTICS): a handle to watch ``path``.

    Raises:
        Win32Error: ERROR_FILE_NOT_FOUND / ERROR_PATH_NOT_FOUND, ERROR_DIRECTORY (not a
            directory), ERROR_ACCESS_DENIED.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        code = {
            errno.ENOENT: WinError.ERROR_FILE_NOT_FOUND,
            errno.ENOTDIR: WinError.ERROR_DIRECTORY,
        }.get(exc.errno or 0, WinError.ERROR_ACCESS_DENIED)
        raise Win32Error(code, f"{path}: {exc.strerror}") from None
    directory = DirectoryFile(fd, os.path.abspath(path), overlapped=overlapped)
    directory.readable = readable
    directory.writable = False
    return directory


class _NotificationOp(ReadChangesOp):
    """The request behind a change-notification handle: completing signals the handle."""

    __slots__ = ("notification",)

    def __init__(self, notification: ChangeNotification, watch: _Watch) -> None:
        directory = notification.directory
        super().__init__(directory, Overlapped(), notification.buffer, watch, None)
        self.notification = notification

    def complete(self, status: int, information: int) -> None:
        super().complete(status, information)
        if status != _CANCELLED and status != _CLEANUP:
            self.notification.signal()


class ChangeNotification(DispatcherObject):
    """FindFirstChangeNotification's handle: signaled when a change matching the filter
    happened since the last FindNextChangeNotification [W:k32/change.c:test_ffcn]."""

    __slots__ = ("_signaled", "buffer", "directory", "notify_filter", "subtree")
    type_name = "ChangeNotification"

    def __init__(self, path: str, subtree: bool, notify_filter: int) -> None:
        super().__init__()
        self._signaled = False
        self.directory = open_directory(path, overlapped=True)
        self.buffer = memoryview(bytearray(65536))
        self.subtree = subtree
        self.notify_filter = notify_filter
        self.next()

    def _is_signaled_for(self, ts: ThreadState) -> bool:
        return self._signaled

    def signal(self) -> None:
        with LOCK:
            self._signaled = True
            if self._waiters:
                wake_waiters(self)

    def next(self) -> None:
        """FindNextChangeNotification: unsignal and watch for the next change.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE once closed.
        """
        with LOCK:
            self._signaled = False
        if self.directory.pending_requests:
            return  # still watching: the next change signals
        op = self.directory.read_changes_op(
            None, Overlapped(), subtree=self.subtree, notify_filter=self.notify_filter
        )
        assert isinstance(op, ReadChangesOp)
        start(_NotificationOp(self, op.watch))

    def _last_handle_closed(self) -> None:
        self.directory.close()


def find_first_change(path: str, subtree: bool, notify_filter: int) -> ChangeNotification:
    """FindFirstChangeNotification.

    Raises:
        Win32Error: ERROR_INVALID_PARAMETER (filter), ERROR_FILE_NOT_FOUND / ERROR_DIRECTORY.
    """
    if not notify_filter or notify_filter & ~NOTIFY_FILTER_ALL:
        raise Win32Error(WinError.ERROR_INVALID_PARAMETER, f"filter 0x{notify_filter:X}")
    return ChangeNotification(path, subtree, notify_filter)
