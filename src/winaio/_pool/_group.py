"""Cleanup groups (CreateThreadpoolCleanupGroup; win32-async-spec §9).

Facts encoded here [W:nt/threadpool.c:test_tp_group_wait, test_tp_group_cancel]
[W:dlls/ntdll/threadpool.c:TpReleaseCleanupGroupMembers]:
- An object created with an environment naming the group is a member until it is closed (a
  one-shot callback: until its callback has run).
- ``close_members(cancel_pending, cleanup_context)``: every member stops producing callbacks
  (timers stop, waits unregister); with ``cancel_pending`` the queued callbacks are dropped;
  then, member by member, the caller waits for its *running* callbacks (disassociated ones
  included), calls the member's cancel callback ``cancel_callback(context, cleanup_context)`` in
  the calling thread - only when cancelling, once per member, and only for members the
  application had not closed itself - and releases the member (it is closed afterwards).
- A member closed by its own callback while ``close_members`` waits gets no cancel callback.

Invariant: membership changes happen under the dispatcher lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._kernel._dispatcher import LOCK
from ..codes import WinError
from ..errors import Win32Error
from ._objects import report_callback_error

if TYPE_CHECKING:
    from ._objects import PoolObject

__all__ = ["CleanupGroup"]


class CleanupGroup:
    """A set of pool objects released together (TP_CLEANUP_GROUP)."""

    __slots__ = ("_closed", "_members")

    def __init__(self) -> None:
        self._members: dict[PoolObject, None] = {}
        self._closed = False

    @property
    def members(self) -> int:
        """How many objects belong to the group now."""
        return len(self._members)

    def _add(self, obj: PoolObject) -> None:
        with LOCK:
            if self._closed:
                raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the cleanup group is closed")
            self._members[obj] = None

    def _discard(self, obj: PoolObject) -> None:
        with LOCK:
            self._members.pop(obj, None)

    def close_members(self, cancel_pending: bool = False, cleanup_context: Any = None) -> None:
        """CloseThreadpoolCleanupGroupMembers (module docstring).

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if the group is closed.
        """
        with LOCK:
            if self._closed:
                raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the cleanup group is closed")
            members = list(self._members)
            self._members.clear()
        for obj in members:
            if not obj._closed:
                obj._shutdown()
        if cancel_pending:
            with LOCK:
                for obj in members:
                    obj._cancel_pending_locked()
        for obj in members:
            obj._wait_idle(True)
            with LOCK:
                was_open = not obj._closed
                release = obj._mark_closed_locked()
            if release:
                obj.pool.close()
            cancel = obj._cancel_callback
            if was_open and cancel_pending and cancel is not None:
                try:
                    cancel(obj.context, cleanup_context)
                except Exception:
                    report_callback_error()

    def close(self) -> None:
        """CloseThreadpoolCleanupGroup: no object may join it any more.

        Raises:
            Win32Error: ERROR_INVALID_HANDLE if already closed.
        """
        with LOCK:
            if self._closed:
                raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the cleanup group is closed")
            self._closed = True

    def __enter__(self) -> CleanupGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_members()
        self.close()
