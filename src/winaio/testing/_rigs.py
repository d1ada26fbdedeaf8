"""The set-up and tear-down of a nomem sweep's child over a backend's O_DIRECT read paths, and
the ring thread held out of a swept call, a connected socket pair.

Purpose: :class:`DiskRig`, what the children of :func:`winaio.testing.nomem_sweep` that sweep
the FILE read's issue and submission (``tests/io/test_fastdirect.py``,
``test_fastdirect_ring.py``, ``test_uring_nomem.py``) each built by hand: a file of random
bytes in the test's directory, opened O_DIRECT on the caller's backend and bound to a port, a
page-aligned buffer, a first read (the thread's state made, its parker bound, the path
warmed), the counters a sweep watches moved past the small ints' cache (each new value an
allocation: :meth:`DiskRig.past_small_ints`), and the tear-down that says what a sweep left
behind (:meth:`DiskRig.close`: a buffer still exported is a leaked pin);
:class:`RingThreadGate`, which holds an io_uring backend's ring thread at the top of its round
while a call is swept (the submit sweeps of ``test_uring_nomem.py``): a CQE or the call wakes
it, and it would reap and deliver meanwhile - the reaper's own cuts are other tests' - or make
the swept allocation itself; :func:`connected_pair`, the loopback TCP pair (a winaio socket and
its plain peer) the socket tests and their children built by hand.

Invariants: the rig takes the backend as an argument (import-linter: only ``winaio._runtime``
knows the backends) and reaches its counters by name; :meth:`DiskRig.close` undoes the
counters' shift before the backend's close (which counts what is still in flight), releases
the rig's own view and collects cycles (a failure's traceback holds the frames that held a
pin) before it closes the buffer; it closes the file, the port and the backend and removes the
file, in that order. The gate holds the ring thread with a flag and a sleep (no lock to
allocate, which would fail meanwhile) and holds no other thread.
"""

from __future__ import annotations

import gc
import mmap
import os
import socket
import tempfile
import threading
import time
from types import TracebackType
from typing import Any

from .._io._disk import DiskFile
from .._io._overlapped import Overlapped
from .._io._port import CompletionPort
from .._io._sockets import Socket

__all__ = ["DiskRig", "RingThreadGate", "connected_pair"]

#: The size of the rig's file (16 blocks) and of its buffer (one block).
FILE_SIZE = 1 << 16
BLOCK = 4096
#: What :meth:`DiskRig.past_small_ints` adds to the counters.
SHIFT = 1 << 32


class DiskRig:
    """A file of :data:`FILE_SIZE` random bytes in ``directory``, opened O_DIRECT on
    ``backend`` (an io_uring backend) as :attr:`disk`, bound to :attr:`port` (key 1); a
    one-block buffer :attr:`memory` and its view :attr:`view`; a first read of it completed.

    Raises:
        OSError: the file system has no O_DIRECT (the caller's test skips before).
    """

    def __init__(self, backend: Any, directory: str) -> None:
        fd, self.path = tempfile.mkstemp(dir=directory)
        try:
            os.write(fd, os.urandom(FILE_SIZE))
        finally:
            os.close(fd)
        self.backend = backend
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECT)
        self.disk = DiskFile(fd, overlapped=True, direct=True, seekable=True, backend=backend)
        self.port = CompletionPort()
        self.disk.associate(self.port, 1)
        self.memory = mmap.mmap(-1, BLOCK)
        self.view = memoryview(self.memory)
        self.disk.start_read(self.view, Overlapped(0))  # (the thread's state made, its parker)
        if self.port.get(5.0) is None:
            raise AssertionError("the rig's first read did not complete")
        self._shifted = False

    def past_small_ints(self) -> None:
        """Move the backend's request counters (the next user_data, the submitted count, the
        SQ side's enters) by :data:`SHIFT`, so that each new value is an allocation a sweep
        makes fail; :meth:`close` moves them back."""
        backend = self.backend
        backend._table.next_ud += SHIFT
        backend._submitted += SHIFT
        backend._sq.enters += SHIFT
        self._shifted = True

    def close(self) -> list[str]:
        """Tear the rig down (module docstring); returns what was left behind: the buffer
        still exported (a pin leaked). The caller drops its own views of :attr:`view` first."""
        bad: list[str] = []
        backend = self.backend
        if self._shifted:
            backend._submitted -= SHIFT  # (its close counts what is still in flight with it)
            backend._sq.enters -= SHIFT
            self._shifted = False
        del self.view
        gc.collect()  # (a failure's traceback in a cycle holds the frames that held the pin)
        try:
            self.memory.close()
        except BufferError:
            bad.append("the buffer left exported (a pin leaked)")
        self.disk.close()
        self.port.close()
        backend.close()
        os.unlink(self.path)
        return bad


class RingThreadGate:
    """While entered (``with gate:``), the ring thread of the io_uring ``backend`` waits at the
    top of its next round (its eventfd read, before it reaps) until the block ends. Installed
    for the process: ``os.eventfd_read`` wrapped (the ring thread reads its eventfd through
    ``os``); every other thread reads as before."""

    def __init__(self, backend: Any) -> None:
        self.open = True
        thread = backend._ring_thread.thread
        eventfd_read = os.eventfd_read

        def gated_read(fd: int) -> int:
            if threading.current_thread() is thread:
                while not self.open:
                    time.sleep(0.0005)
            return eventfd_read(fd)

        os.eventfd_read = gated_read

    def __enter__(self) -> None:
        self.open = False

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.open = True


def connected_pair(
    backend: Any = None,
    port: CompletionPort | None = None,
    key: object = 7,
    timeout: float = 5.0,
) -> tuple[Socket, socket.socket]:
    """A connected loopback TCP pair: an overlapped winaio ``Socket`` (non-blocking) on
    ``backend`` (None: the current one), associated with ``port`` under ``key`` if a port is
    given, and its plain blocking peer (``timeout`` seconds on its calls). The caller closes
    both."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname(), timeout=timeout)
        conn, _ = listener.accept()
    conn.setblocking(False)
    sock = Socket(conn.fileno(), overlapped=True, sock=conn, backend=backend)
    if port is not None:
        sock.associate(port, key)
    return sock, peer
