"""The output side of one server connection (``Link``'s base): writes and back-pressure.

Purpose: what a ``Link`` (``_link``) writes and how fast. Its writes are batched while a
wake-up dispatches (``_batch``: every bind_ack, fault and inline reply of the batch in one
``write``, the "all ready PDUs in one batch" rule), else written at once; an [out] pipe's
chunks pushed from other threads (``send_part``) reach the loop through the server's inbox;
the transport's write buffer (``pause_writing``/``resume_writing``) and a streamed [in]
pipe's backlog (``pause_reading``/``resume_reading``) push back on their producers.

Invariants: nothing is written once ``closed``; a part pushed from another thread counts in
``_in_transit`` until the loop has taken it, and a pusher waits (``wait_writable``) once more
than ``_PARTS_HIGH`` octets are in transit, so a starved loop cannot let it run ahead; when
the connection is lost, every waiting pusher is released (``release_pushers``) and never
blocked again (``send_part`` reads ``closed`` under ``_parts_lock``). Loop thread only, but
``send_part`` and ``wait_writable``, which any thread may call.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final

from .._connection import ServerConnection
from ._call import ServerCall
from ._interface import Registration

if TYPE_CHECKING:
    from ._server import Server

__all__ = ["LinkOutput"]

_PARTS_HIGH: Final = 1 << 20  # octets pushed from other threads before a pusher waits for the loop


class LinkOutput:
    """Writes and back-pressure of one connection (module docstring); ``Link``'s base."""

    #: The connection's calls and its ServerConnection (``Link``'s): a pushed part is sent
    #: only while its call is still there.
    calls: dict[int, ServerCall]
    conn: ServerConnection[Registration]

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: Any = None
        self.closed = False
        self._batch: list[bytes] | None = None
        self._writable: threading.Event | None = None  # made clear at the first pause_writing
        # Parts pushed from other threads that the loop has not taken yet: a pusher waits on
        # _parts_taken past _PARTS_HIGH octets, so a starved loop cannot let it run ahead.
        self._in_transit = 0
        self._parts_lock = threading.Lock()
        self._parts_taken = threading.Event()
        self._parts_taken.set()
        self._drains: list[Any] = []  # futures of PipeOut.drain() waiting on the loop
        self._read_pauses = 0
        #: The engine's loop thread (links are made by its listeners).
        self.loop_thread = server.engine.thread_id

    # -- writes (loop thread) --------------------------------------------------------------------

    def _write(self, out: list[bytes]) -> None:
        if not self.closed:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            self.server.stats.pkts_out += len(out)

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        batch = self._batch
        if batch is not None:
            batch.append(data)
        elif not self.closed:
            self.transport.write(data)
            self.server.stats.pkts_out += 1

    # -- parts pushed from any thread --------------------------------------------------------------

    def send_part(self, call: ServerCall, data: bytes) -> None:
        """Send part of a call's response now (a pushed [out] pipe chunk); any thread."""
        if threading.get_ident() == self.loop_thread:
            self._send_part(call, data)
        elif not self.closed:  # else the connection is gone: nothing to send it on
            with self._parts_lock:
                self._in_transit += len(data)
                if self._in_transit > _PARTS_HIGH and not self.closed:
                    self._parts_taken.clear()
            self.server.inbox.push(self._take_part, call, data)

    def _take_part(self, call: ServerCall, data: bytes) -> None:
        try:
            self._send_part(call, data)
        finally:
            with self._parts_lock:
                self._in_transit -= len(data)
                if self._in_transit <= _PARTS_HIGH:
                    self._parts_taken.set()

    def _send_part(self, call: ServerCall, data: bytes) -> None:
        if self.calls.get(call.call_id) is call:  # else orphaned or disconnected: dropped
            self._emit(self.conn.send_response_part(call.call_id, data))

    # -- back-pressure ---------------------------------------------------------------------------

    def pause_writing(self) -> None:
        """The transport's write buffer went above its high-water mark (asyncio protocol)."""
        if self._writable is None:
            self._writable = threading.Event()
        else:
            self._writable.clear()

    def resume_writing(self) -> None:
        """The write buffer drained below the low-water mark (or the connection closed)."""
        if self._writable is not None:
            self._writable.set()
        drains, self._drains = self._drains, []
        for future in drains:
            if not future.done():
                future.set_result(None)

    def wait_writable(self) -> None:
        """Block a pushing thread (not the loop's) while the write buffer is too full."""
        if threading.get_ident() != self.loop_thread:
            self._parts_taken.wait()  # the loop has taken (nearly) all we pushed...
            writable = self._writable  # ...so its write buffer's state is current
            if writable is not None:
                writable.wait()

    async def drained(self) -> None:
        """On the loop: until the write buffer is below the high-water mark."""
        writable = self._writable
        if writable is not None and not writable.is_set() and not self.closed:
            future = self.server.engine.create_future()
            self._drains.append(future)
            await future

    def pause_reading(self) -> None:
        """Stop reading: a streamed [in] pipe holds too many chunks (loop thread)."""
        self._read_pauses += 1
        if self._read_pauses == 1 and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_pauses:
            self._read_pauses -= 1
            if not self._read_pauses and not self.closed:
                self.transport.resume_reading()

    def release_pushers(self) -> None:
        """The connection is gone: pushes waiting for the buffer to drain or for the loop to
        take their parts give up (loop thread, ``connection_lost``, once ``closed``)."""
        self.resume_writing()
        with self._parts_lock:  # (send_part reads `closed` under it: no clear after this)
            self._parts_taken.set()
