"""Descriptor users: a close from another thread never lets a fast path use a reused fd.

Purpose: :class:`FdUsers`, the count of a file object's *unregistered* uses of its descriptor
(the sockets' immediate fast path, ``_sockets.Socket.start_read``/``start_write``; any try-first
path that makes a syscall without registering a request), and the close deferred to the last
of them.

The race it closes: a fast path fetches the descriptor (``fd``, or a socket object whose C
method reads ``sock_fd`` after releasing the GIL), another thread closes the file object (its
last handle) and a third opens something that gets the same descriptor number; the fast path's
syscall then reads or writes the wrong file and reports its bytes as success. Windows keeps a
reference to the file object for the duration of the call; so does this:

- a fast path counts itself in (``users.append(None)``) *before* it checks ``file.closing``,
  and out (``users.pop()``) after its last use of the descriptor, then, if ``file.closing``,
  calls :meth:`FdUsers.left`;
- the file object's release of its descriptor (``_release_fd``, under LOCK, once no request is
  pending) calls :meth:`FdUsers.defer_locked` first: with a user counted in, the release is
  kept for the last user's :meth:`left` instead of done now.

Why no lock on the fast path: ``list.append`` and ``list.pop`` are each one atomic step (under
the GIL, and under the per-object lock of free-threaded builds), so the count is never torn by
two fast paths on two threads (``+= 1`` on an attribute would be three steps). The ordering
argument, with every step sequentially consistent: close sets ``closing`` then reads the count
(under LOCK); a fast path counts in then reads ``closing``. Either the close sees the user
(and defers: the user, reading ``closing`` after counting out, sees it and releases in
:meth:`left`, under LOCK, if it is the last) or the user sees ``closing`` (and goes no
further than counting out, then :meth:`left`, which releases if the close deferred). A close
that saw no user released at once, and no user that counted in after it uses the descriptor.
Cost on the fast path: two list calls and one attribute test (~15 bytecodes), no lock.

The sockets' C path (``_fastsock.c``) keeps the same protocol with the same atomic steps: it
counts in with ``PyList_Append`` on the very list (an exact :class:`FdUsers`, checked) before it
reads ``closing``, out by shrinking the list by its last item, then calls :meth:`left` when
closing. It makes its syscall with the GIL held, so no other thread runs between its fetch of
the descriptor and the syscall; the count still matters, because it may call Python code (the
readiness poll, which releases the GIL) after counting in.
"""

from __future__ import annotations

from collections.abc import Callable

from .._kernel._dispatcher import acquire_lock as _acquire
from .._kernel._dispatcher import release_lock as _release

__all__ = ["ONE_USER", "FdUsers"]

#: What a user adds to count itself in: ``users += ONE_USER`` - an operator, with no
#: eval-breaker check after it (a Ctrl-C cannot land between the count and the flag the caller
#: stores next, as after ``append()``'s return), and no count at all when it raises (a
#: MemoryError: the caller's ``finally`` then pops nothing - another user's entry once).
ONE_USER = (None,)


class FdUsers(list[None]):
    """The unregistered users of one file object's descriptor (module docstring): one ``None``
    per user in the list; ``release`` is the descriptor's release deferred to the last one."""

    __slots__ = ("release",)

    def __init__(self) -> None:
        super().__init__()
        self.release: Callable[[], None] | None = None

    def defer_locked(self, release: Callable[[], None]) -> bool:
        """The file object releases its descriptor (caller holds LOCK): True if a user is
        counted in, ``release`` then being left to the last one (:meth:`left`)."""
        if not self:
            return False
        self.release = release
        return True

    def left(self) -> None:
        """A user counted out and saw its file object closing: release the descriptor if the
        close deferred it to the last user and this was the last one."""
        _acquire()
        try:
            release = self.release
            if release is None or self:
                return
            self.release = None
            release()
        finally:
            _release()
