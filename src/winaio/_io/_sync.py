"""A request on a synchronous handle: issued, then waited for by its caller (spec §4.1).

Purpose: :func:`run_sync`, the synchronous handle's request - a disk read or write run right
there, anything else issued with the overlapped protocol's steps (``_issue``: registered under
LOCK, tried, else handed to the backend) on an OVERLAPPED private to the call and waited for,
non-alertably or alertably (Winsock's blocking calls), which CancelSynchronousIo can end
(``_cancel``).

Invariants (``_issue``'s, plus): a synchronous call never posts to the handle's completion port
(no ApcContext); its request is the thread's ``_SYNC_KEY`` extension while it runs (what
CancelSynchronousIo cancels) and never after; an interrupt (Ctrl-C) leaves no request
registered that nobody waits for: one that pended is cancelled and waited for, one whose
attempt moved data goes on, anything else is forgotten (:func:`_sync_cut`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._kernel._dispatcher import LOCK, wake_waiters
from .._kernel._objects import Event
from .._kernel._threads import current_thread_state
from .._kernel._wait import wait_for_one
from ..codes import WaitCode, WinError
from ..errors import Win32Error
from ._backend import OpKind
from ._cancel import _SYNC_KEY
from ._fd_users import ONE_USER
from ._files import request_cancel
from ._interrupts import carried, interrupt
from ._issue import queued_behind_locked, register_locked, send_claim_of, submit
from ._overlapped import STATUS_PENDING, is_error

if TYPE_CHECKING:
    from ._ops import Operation

__all__ = ["run_sync"]

_WAIT_IO_COMPLETION = int(WaitCode.WAIT_IO_COMPLETION)
_map = map  # (a call whose result an interrupt cannot drop: ``run_sync``'s claim)
_BLOCKING = (True,)


def run_sync(op: Operation, alertable: bool = False) -> tuple[int, int]:
    """A request on a synchronous handle: block (non-alertably) until it is done (spec §4.1).
    ``alertable``: APCs queued to the caller run while it waits, which then goes on (Winsock's
    blocking calls [W:ws2_32/sock.c:test_accept, test_select]).

    Returns (status, information); ``op.overlapped`` (private to the call, the caller copies it
    to the user's OVERLAPPED) holds the same. CancelSynchronousIo can end the wait of a request
    that pends (ERROR_OPERATION_ABORTED).
    """
    file = op.file
    ov = op.overlapped
    if op.kind is OpKind.FILE:
        # Disk reads/writes are not interruptible anyway: do them right here. Not registered:
        # counted among the descriptor's users (``_fd_users``, a DiskFile's) before ``closing``
        # is read, so a close from another thread meanwhile defers its release to us.
        users = getattr(file, "fd_users", None)
        counted = False
        try:
            if users is not None:
                users += ONE_USER  # (no check after an operator: ``counted`` is exact)
                counted = True
            if file.closing:
                raise Win32Error(WinError.ERROR_INVALID_HANDLE, "the file is closed")
            status, information = op.run_blocking()
        finally:
            if counted and users is not None:
                try:
                    users.pop()
                finally:  # (each step in its own ``finally``: a cut at pop's return)
                    if file.closing:
                        users.left()
        ov.status, ov.information = status, information
        op.done = True
        return status, information
    ts = current_thread_state()
    # A synchronous call passes no ApcContext: it never posts to the handle's completion port
    # (connect/send/recv on a port-bound socket [W:ws2_32/sock.c:test_connect_completion_port]).
    op.skip_port = True
    op.sync_done = Event(manual_reset=True)
    ts.extensions[_SYNC_KEY] = op
    # A send is issued under its socket's send claim, as in ``start``: no send from another
    # thread can slip its bytes between a fast-path send's parts.
    claim = send_claim_of(op)
    taken = pended = False
    result = None
    try:
        try:
            if claim is not None:
                # (the acquire's result stored with no check after the call, as the sockets'
                # fast path does: a Ctrl-C at ``claim.acquire()``'s return left it taken)
                for taken in _map(claim.acquire, _BLOCKING):  # noqa: B007
                    break
            with LOCK:
                ov.status = STATUS_PENDING
                # Every request clears the file object first; a request that then fails at
                # once leaves it nonsignaled [W:k32/pipe.c:test_DisconnectNamedPipe]
                # [W:nt/pipe.c:test_cancelsynchronousio]. Completion (``deliver``) signals it.
                file._signaled = False
                register_locked(op)
                # Nor may it overtake an earlier pending request in its direction (#66).
                queued = queued_behind_locked(op)
            result = None if queued else op.try_now()
            if result is None:
                submit(op)
            else:  # (done under the claim, as ``start`` delivers: a cut after it loses nothing)
                _sync_finished(op, result)
        except BaseException as exc:
            # A Ctrl-C once registered: the request is not left registered (it queued every
            # later request of its direction behind it, #66); one whose attempt moved data
            # goes on with it (``_interrupts.carry``); one ``submit`` took pends (below).
            pended = op.submitted
            _sync_cut(op, result, exc)
            raise
        finally:
            if taken:
                claim.release()  # type: ignore[union-attr]
        if result is None:
            pended = True
            while wait_for_one(op.sync_done, None, alertable) == _WAIT_IO_COMPLETION:
                pass
            return ov.status, ov.information
        return result
    except BaseException as exc:
        # A Ctrl-C once it pended: cancelled and waited for (``RequestMethods._wait``'s rule:
        # it would read into a buffer nobody reads, later requests queued behind it, #66).
        if pended and interrupt(exc):
            request_cancel(op)  # (False: done, or cancelled already)
            wait_for_one(op.sync_done, None, False)
        raise
    finally:
        ts.extensions.pop(_SYNC_KEY, None)


def _sync_finished(op: Operation, result: tuple[int, int]) -> None:
    """A synchronous request finished inside its attempt with ``result``: its IOSB written, it
    is forgotten, its file object signaled (a success) and its waiters woken."""
    op.overlapped.status, op.overlapped.information = result
    file = op.file
    with LOCK:
        op.done = True
        file._forget_locked(op)
        if not is_error(result[0]) and not file.skip_set_event:
            file._signaled = True
            if file._waiters:
                wake_waiters(file)


def _sync_cut(op: Operation, result: tuple[int, int] | None, exc: BaseException) -> None:
    """An interrupt ``exc`` (Ctrl-C) cut :func:`run_sync` once ``op`` may be registered (its
    attempt returned ``result``, or carried one out: data moved). A request ``submit`` took is
    the backend's (``submit`` finishes itself). Else: data moved and the rest pends (a partial
    send, an accept waiting for its first data) - it is submitted and goes on, in order, with
    nobody waiting for it; otherwise it is finished - its result, or none (nothing moved: as if
    never issued) - and forgotten. Each step is idempotent (``_forget_locked``, the walk of a
    signaled file object's waiters), so a cut inside :func:`_sync_finished` is finished too.
    An Exception (a bug) is not an interrupt: nothing is done."""
    if not interrupt(exc):
        return
    tried = carried(exc)
    try:
        if op.submitted:
            return
        if tried is not None:
            result = tried[0]
            if result is None:
                if op.registered:
                    submit(op)
                return
        file = op.file
        with LOCK:
            op.done = True
            file._forget_locked(op)
            if result is not None and not is_error(result[0]) and not file.skip_set_event:
                file._signaled = True
            if file._signaled and file._waiters:
                wake_waiters(file)
    except BaseException as again:  # (a second interrupt: the first one goes on)
        if not interrupt(again):
            raise
