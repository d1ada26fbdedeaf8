"""The thread backend's STREAM half: one reactor thread waiting for sockets' and pipes'
readiness on ``epoll`` (``_backends._threads``, whose FILE workers are the other half).

Purpose: :class:`StreamReactor` owns the epoll set, the per-descriptor queues and the command
queue through which other threads reach it, and its thread.

Invariants:

- All reactor state (``_fds``, the epoll registrations) is touched only by the reactor thread:
  other threads :meth:`StreamReactor.post` commands (``add``, ``cancel``, ``stop``) and wake it
  through an eventfd, at most once per batch (``_wake_pending``, under the reactor's lock).
- Requests on one descriptor wait in per-direction FIFO queues and only the head of each
  queue is retried (``op.try_now()``, which never blocks), so two pending reads complete in
  issue order (spec #66).
- Completion goes through the backend's ``complete(op, status, information, cancelled)``
  (``ThreadBackend._finish``: exactly once), never under the reactor's lock; a descriptor's
  registration is dropped before its requests complete (a completion may close it, and its
  number be reused at once).
- A request waiting for readiness is cancelled at once (STATUS_CANCELLED).
"""

from __future__ import annotations

import os
import select
import threading
from collections import deque
from collections.abc import Callable

from .._io._ops import Operation
from ..codes import NtStatus

__all__ = ["StreamReactor"]

_CANCELLED = int(NtStatus.STATUS_CANCELLED)


class _FdQueues:
    __slots__ = ("events", "readers", "writers")

    def __init__(self) -> None:
        self.readers: deque[Operation] = deque()
        self.writers: deque[Operation] = deque()
        self.events = 0


class StreamReactor:
    """The epoll reactor of the thread backend's STREAM requests (module docstring).

    Args:
        complete: ``complete(op, status, information, cancelled)``: the backend's exactly-once
            completion.
        name: the reactor thread's name.
    """

    def __init__(self, complete: Callable[[Operation, int, int, bool], None], name: str) -> None:
        self._complete = complete
        self._lock = threading.Lock()
        self._commands: deque[tuple[str, Operation | None]] = deque()
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._wake_pending = False
        self._epoll = select.epoll()
        self._epoll.register(self._wake_fd, select.EPOLLIN)
        self._fds: dict[int, _FdQueues] = {}
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (after the commands already posted) and release the descriptors."""
        self.post("stop", None)
        self._thread.join(5)
        self._epoll.close()
        os.close(self._wake_fd)

    def post(self, what: str, op: Operation | None) -> None:
        """Queue a command for the reactor thread: ``add`` (wait for ``op``'s readiness),
        ``cancel`` (complete it cancelled if it still waits) or ``stop``; wake the thread
        once per batch of commands. A Ctrl-C here still wakes it (a spare wake-up costs a
        look; a lost one would leave the command waiting)."""
        try:
            with self._lock:
                self._commands.append((what, op))
                if self._wake_pending:
                    return
                self._wake_pending = True
        except BaseException:
            os.eventfd_write(self._wake_fd, 1)
            raise
        os.eventfd_write(self._wake_fd, 1)

    def _loop(self) -> None:
        epoll = self._epoll
        while True:
            for fd, mask in epoll.poll():
                if fd == self._wake_fd:
                    if self._run_commands():
                        return
                else:
                    self._ready(fd, mask)

    def _run_commands(self) -> bool:
        try:
            os.eventfd_read(self._wake_fd)
        except BlockingIOError:
            pass
        with self._lock:
            self._wake_pending = False
            commands = list(self._commands)
            self._commands.clear()
        for what, op in commands:
            if what == "stop":
                return True
            assert op is not None
            if what == "add":
                self._add(op)
            else:
                self._remove(op)
        return False

    def _add(self, op: Operation) -> None:
        if op.cancel_requested:
            # Cancelled between its registration and its arrival here: the "cancel" command
            # ran first and found nothing (the flag is set before it is queued).
            self._complete(op, _CANCELLED, 0, True)
            return
        fd = op.fd
        queues = self._fds.get(fd)
        if queues is None:
            queues = self._fds[fd] = _FdQueues()
        (queues.readers if op.poll_events & select.POLLIN else queues.writers).append(op)
        op.token = fd
        self._update(fd, queues)
        # Data may already be there: epoll is level-triggered, the next poll reports it.

    def _remove(self, op: Operation) -> None:
        fd = op.token
        queues = self._fds.get(fd) if isinstance(fd, int) else None
        if queues is not None:
            for line in (queues.readers, queues.writers):
                try:
                    line.remove(op)
                except ValueError:
                    continue
                self._update(fd, queues)
                self._complete(op, _CANCELLED, 0, True)
                return

    def _update(self, fd: int, queues: _FdQueues) -> None:
        events = (select.EPOLLIN if queues.readers else 0) | (
            select.EPOLLOUT if queues.writers else 0
        )
        if events == queues.events:
            return
        try:
            if not events:
                self._epoll.unregister(fd)
                del self._fds[fd]
            elif not queues.events:
                self._epoll.register(fd, events)
            else:
                self._epoll.modify(fd, events)
        except OSError:
            # The descriptor was closed under us: fail what waits on it.
            self._fds.pop(fd, None)
            for op in [*queues.readers, *queues.writers]:
                self._complete(op, int(NtStatus.STATUS_INVALID_HANDLE), 0, False)
            return
        queues.events = events

    def _ready(self, fd: int, mask: int) -> None:
        queues = self._fds.get(fd)
        if queues is None:
            return
        error = bool(mask & (select.EPOLLERR | select.EPOLLHUP))
        finished: list[tuple[Operation, int, int]] = []
        moved: list[Operation] = []
        for line, flag in ((queues.readers, select.EPOLLIN), (queues.writers, select.EPOLLOUT)):
            if not (mask & flag or error):
                continue
            while line:
                op = line[0]
                result = op.try_now()
                if result is None:
                    if op.fd != fd:  # AcceptEx moved on to its accepted socket
                        moved.append(line.popleft())
                        continue
                    break
                line.popleft()
                finished.append((op, result[0], result[1]))
        # Drop the epoll registration *before* completing: the completion may close the
        # descriptor, and its number could be reused at once by another file.
        self._update(fd, queues)
        for op in moved:
            self._add(op)
        for op, status, information in finished:
            self._complete(op, status, information, False)
