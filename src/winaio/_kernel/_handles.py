"""The process handle table and the object namespace (win32-async-spec §1.1, §2.3 "Named objects").

Facts encoded here:
- Handles are process-local integers, multiples of 4; the low 2 bits are ignored on lookup, so
  ``h|1``, ``h|2``, ``h|3`` name the same object as ``h`` [W:k32/sync.c:test_WaitForSingleObject]
  (this is what makes the ``hEvent|1`` trick of overlapped I/O legal).
- Pseudo handles: GetCurrentProcess() = -1 (== INVALID_HANDLE_VALUE), GetCurrentThread() = -2.
  They are resolved by the caller's context and never stored in the table.
- A handle carries an access mask; waiting needs SYNCHRONIZE, else ERROR_ACCESS_DENIED.
- Named objects: creating an existing name opens the existing object (the caller reports
  ERROR_ALREADY_EXISTS); names are case-sensitive; a name held by another object type ->
  ERROR_INVALID_HANDLE; Open* of an unknown name -> ERROR_FILE_NOT_FOUND, of an empty name ->
  ERROR_INVALID_PARAMETER. A name lives as long as its object: once the last handle is closed
  (and no Python reference remains) Open* fails with ERROR_FILE_NOT_FOUND
  [W:k32/sync.c:test_temporary_objects].

Values are never reused (a counter), so a stale handle can never silently reach a newer object.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from ..codes import Access, WinError
from ..errors import Win32Error
from ._dispatcher import DispatcherObject, ThreadState
from ._threads import current_thread_state

__all__ = [
    "CURRENT_PROCESS",
    "CURRENT_THREAD",
    "HANDLE_TABLE",
    "NAMESPACE",
    "HandleTable",
    "Namespace",
    "ProcessObject",
]

CURRENT_PROCESS = -1
CURRENT_THREAD = -2
_FULL_ACCESS = int(Access.ALL_ACCESS) | int(Access.GENERIC_ALL)

T = TypeVar("T")


class ProcessObject(DispatcherObject):
    """The current process: signaled only at process exit, i.e. never for its own threads."""

    __slots__ = ()
    type_name = "Process"

    def _is_signaled_for(self, ts: ThreadState) -> bool:
        return False


_PROCESS = ProcessObject()


def _normalize(handle: int | None) -> int:
    if handle is None:
        return 0
    try:
        handle = int(handle)
    except (TypeError, ValueError):  # not a handle at all: as invalid as a closed one
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"invalid handle {handle!r}") from None
    if handle >= 1 << 63:  # an unsigned 64-bit spelling of a negative pseudo handle
        handle -= 1 << 64
    return handle


class HandleTable:
    """int handle -> (object, access mask). Lookups are lock-free dict reads under the GIL."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[Any, int]] = {}
        #: id(object) -> open handles; objects stay alive through their entries, so ids are stable.
        self._counts: dict[int, int] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def insert(self, obj: Any, access: int = _FULL_ACCESS) -> int:
        """Create a new handle to ``obj``."""
        with self._lock:
            handle = next(self._counter) << 2
            self._entries[handle] = (obj, int(access))
            key = id(obj)
            self._counts[key] = self._counts.get(key, 0) + 1
        return handle

    def handle_count(self, obj: Any) -> int:
        """How many open handles refer to ``obj``."""
        return self._counts.get(id(obj), 0)

    def resolve(self, handle: int | None, *, pseudo: bool = True) -> tuple[Any, int]:
        """The (object, access) behind ``handle``.

        Args:
            pseudo: accept GetCurrentProcess()/GetCurrentThread() pseudo handles.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE for NULL, closed, unknown or (when ``pseudo`` is
                False) pseudo handles.
        """
        if type(handle) is int and handle > 0:  # the hot path: a plain positive handle
            entry = self._entries.get(handle & ~3)
            if entry is not None:
                return entry
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"invalid handle {handle!r}")
        value = _normalize(handle)
        if value > 0:
            entry = self._entries.get(value & ~3)
            if entry is not None:
                return entry
        elif pseudo and value == CURRENT_THREAD:
            return current_thread_state().thread, _FULL_ACCESS
        elif pseudo and value == CURRENT_PROCESS:
            return _PROCESS, _FULL_ACCESS
        raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"invalid handle {handle!r}")

    def get(
        self,
        handle: int | None,
        kind: type[T] | tuple[type[T], ...],
        access: int = 0,
        *,
        pseudo: bool = True,
    ) -> T:
        """The object behind ``handle``, checked to be a ``kind`` and to grant ``access``.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE (bad handle or wrong object type),
                ERROR_ACCESS_DENIED (missing access right).
        """
        if type(handle) is int and handle > 0 and not access:  # the hot path
            entry = self._entries.get(handle & ~3)
            if entry is not None and isinstance(entry[0], kind):
                return entry[0]
        obj, granted = self.resolve(handle, pseudo=pseudo)
        if not isinstance(obj, kind):
            raise Win32Error(
                WinError.ERROR_INVALID_HANDLE,
                f"handle {handle!r} is a {type(obj).__name__}, not the expected object type",
            )
        if access and (granted & access) != access:
            raise Win32Error(WinError.ERROR_ACCESS_DENIED, f"handle {handle!r} lacks 0x{access:X}")
        return obj

    def close(self, handle: int | None) -> Any:
        """CloseHandle. Returns the object the handle referred to.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if it is not an open handle. Closing a pseudo
                handle is a no-op success, as on Windows.
        """
        value = _normalize(handle)
        if value in (CURRENT_PROCESS, CURRENT_THREAD):
            return None
        with self._lock:
            entry = self._entries.pop(value & ~3, None) if value > 0 else None
            if entry is not None:
                key = id(entry[0])
                remaining = self._counts[key] - 1
                if remaining:
                    self._counts[key] = remaining
                else:
                    del self._counts[key]
        if entry is None:
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"invalid handle {handle!r}")
        obj = entry[0]
        if not remaining:
            # The last handle: files cancel their requests and close, ports close (§6.8, §7).
            last = getattr(obj, "_last_handle_closed", None)
            if last is not None:
                last()
        return obj

    def duplicate(self, handle: int | None, access: int | None, close_source: bool) -> int:
        """DuplicateHandle within this process. ``access`` None = DUPLICATE_SAME_ACCESS."""
        obj, granted = self.resolve(handle)
        new = self.insert(obj, granted if access is None else access)
        if close_source:
            self.close(handle)
        return new

    def handles_of(self, obj: Any) -> list[int]:
        """Every open handle referring to ``obj`` (diagnostics and tests)."""
        with self._lock:
            return [h for h, (o, _) in self._entries.items() if o is obj]

    def __len__(self) -> int:
        return len(self._entries)


class Namespace:
    """The object namespace: name -> object, weakly held (an object's name dies with it)."""

    def __init__(self) -> None:
        self._names: dict[str, weakref.ref[DispatcherObject]] = {}
        # Reentrant: a weakref callback (below) can fire from a garbage collection triggered
        # while this lock is held by the same thread.
        self._lock = threading.RLock()

    def create(self, name: str, kind: type[T], factory: Callable[[], T]) -> tuple[T, bool]:
        """Create ``factory()`` under ``name``, or open the live object already named so.

        Returns (object, existed).

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if ``name`` belongs to another object type.
        """
        with self._lock:
            ref = self._names.get(name)
            existing = ref() if ref is not None else None
            if existing is not None:
                if not isinstance(existing, kind):
                    raise Win32Error(
                        WinError.ERROR_INVALID_HANDLE,
                        f"{name!r} names a {existing.type_name}",
                    )
                return existing, True
            obj = factory()
            assert isinstance(obj, DispatcherObject)
            obj.name = name
            self._names[name] = weakref.ref(obj, self._forget(name))
            return obj, False

    def open(self, name: str | None, kind: type[T]) -> T:
        """OpenEvent/OpenMutex/...: the live object named ``name``.

        Raises:
            Win32Error: ERROR_INVALID_PARAMETER for an empty name, ERROR_FILE_NOT_FOUND if no
                live object has it, ERROR_INVALID_HANDLE if it names another object type.
        """
        if not name:
            raise Win32Error(WinError.ERROR_INVALID_PARAMETER, "no object name")
        with self._lock:
            ref = self._names.get(name)
            obj = ref() if ref is not None else None
        if obj is None:
            raise Win32Error(WinError.ERROR_FILE_NOT_FOUND, f"no object named {name!r}")
        if not isinstance(obj, kind):
            raise Win32Error(WinError.ERROR_INVALID_HANDLE, f"{name!r} names a {obj.type_name}")
        return obj

    def _forget(self, name: str) -> Callable[[weakref.ref[DispatcherObject]], None]:
        def callback(dead: weakref.ref[DispatcherObject]) -> None:
            with self._lock:
                if self._names.get(name) is dead:
                    del self._names[name]

        return callback


HANDLE_TABLE = HandleTable()
NAMESPACE = Namespace()
