"""The Python floor of a completion-model echo server: a minimal ctypes io_uring echo loop.

``bench_sockets.py``'s ``raw_uring`` row (issue 9, "Sockets"). It imports nothing from winaio
(``raw_uring.RawRing``, the files' raw loop, is the ring): it is what winaio's overlapped
sockets + completion port server would cost with none of the Win32 model - no request object,
no registration, no IOSB, no port, no LIFO waiter, no lock - only what every
completion-model server must do per echo, in Python:

- every connection has one RECV in the kernel (IORING_OP_RECV into its own buffer, with
  IORING_RECVSEND_POLL_FIRST: the data is usually not there yet, as in winaio's pended receive);
- one ``io_uring_enter(to_submit, 1, GETEVENTS)`` submits every re-arm of the last batch and
  waits for at least one completion;
- each CQE of a batch: ``send`` the bytes at once (non-blocking; what does not fit waits in a
  blocking ``sendall``, never seen with 64-byte echoes), then prep the connection's next RECV;
- the listener has a one-shot POLL_ADD; its CQE accepts every waiting client and arms their
  RECVs.

The same loop shape as winaio's C=64 server (receive pended in the kernel, send inside the
call, one wait per batch), so its CPU per echo is the floor that winaio's Python path sits on;
against asyncio's Protocol echo it says whether any pure-Python completion-model server can
reach asyncio's rate (``docs/design.md``, "Where a socket echo server's CPU goes").

The readiness variants (mshot; ``sock_anchors.SERVE``, both on a COOP_TASKRUN ring, the same
Python shape otherwise) ask what the kernel side of a pended receive costs without one RECV
(and its poll arming) per echo - receive-slot.md §5, "Poll once, receive in C":
``raw_uring@mpoll`` keeps one multishot POLL_ADD per connection and receives in Python on each
POLLIN; ``raw_uring@mrecv`` keeps one multishot RECV per connection, receiving into a
provided-buffer ring, and copies each receive out into the connection's buffer. The measured
answer is in ``docs/design.md`` ("The kernel side of a pended receive", mshot).

``raw_uring@bsend`` (c64) asks what the batch's sends cost when they are SQEs too: the
``raw_uring@coop`` loop with each echo's ``send`` replaced by an IORING_OP_SEND SQE (linked to
the connection's RECV re-arm, its CQE skipped on success), so the whole batch's sends and
re-arms go to the kernel in the one ``io_uring_enter`` that then waits: one syscall per batch,
none per echo. The measured answer is in ``docs/design.md`` ("Batched sends", c64).
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import mmap
import socket
import struct
from collections.abc import Callable
from typing import Any

from bench_procs import announce, listener
from raw_uring import _CQE, _SQE, _U32, COOP, RawRing

IORING_OP_POLL_ADD = 6
IORING_OP_RECV = 27
IORING_RECVSEND_POLL_FIRST = 1
POLLIN = 1
#: io_uring_setup flags of ``raw_uring@defer`` (6.1): task work only in GETEVENTS waits.
IORING_SETUP_SINGLE_ISSUER = 1 << 12
IORING_SETUP_DEFER_TASKRUN = 1 << 13
DEFER = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN
LISTENER = 0  # user_data of the listener's poll; a connection's is its fd (never 0 here)
SIZE = 65536


def _ring_locals(ring: RawRing, sqe: struct.Struct) -> tuple[Any, ...]:
    """The locals every loop below reads the ring through (hoisted once: a ceiling pays no
    attribute lookup per event; the loops themselves stay inline, no call per event): the
    packers (``sqe``'s for the SQEs), the three maps, the masks, the offsets, ``enter``."""
    return (
        sqe.pack_into, _CQE.unpack_from, _U32.pack_into, _U32.unpack_from,
        ring.sqe_map, ring.sq_map, ring.cq_map, ring.sq_mask, ring.cq_mask,
        ring.sq_tail_off, ring.cq_head_off, ring.cq_tail_off, ring.cqes_off, ring.enter,
    )  # fmt: skip


def _listen(flags: int, sqe: struct.Struct, *extra: int) -> tuple[Any, ...]:
    """Every loop's start: the listener (non-blocking), a ring set up with ``flags``, its
    locals (:func:`_ring_locals`, ``sqe``'s packer), the listener's one-shot POLL_ADD
    prepared and published (``extra``: ``sqe``'s fields after the 40 bytes of ``_SQE``), the
    port announced to the harness. Returns ``(lsock, ring, locals, tail, head)``: the SQ tail
    after the poll (one SQE to submit), the CQ head."""
    lsock = listener()
    lsock.setblocking(False)
    ring = RawRing(1024, flags)
    names = _ring_locals(ring, sqe)
    tail = _arm_listener(sqe.pack_into, ring.sqe_map, ring.sq_tail, ring.sq_mask, lsock, extra)
    _U32.pack_into(ring.sq_map, ring.sq_tail_off, tail & 0xFFFFFFFF)
    head = _U32.unpack_from(ring.cq_map, ring.cq_head_off)[0]
    announce(lsock.getsockname()[1])
    return lsock, ring, names, tail, head


def _arm_listener(
    pack_sqe: Any, sqes: Any, tail: int, sq_mask: int, lsock: socket.socket, extra: tuple[int, ...]
) -> int:
    """Write the listener's one-shot POLL_ADD (user_data ``LISTENER``) at ``tail``; returns
    the tail after it."""
    pack_sqe(sqes, (tail & sq_mask) * 64, IORING_OP_POLL_ADD, 0, 0, lsock.fileno(), 0, 0, 0,
             POLLIN, LISTENER, *extra)  # fmt: skip
    return tail + 1


def _accepted(
    lsock: socket.socket,
    arm: Callable[[socket.socket], tuple[int, ...]],
    pack_sqe: Any,
    sqes: Any,
    tail: int,
    sq_mask: int,
    *extra: int,
) -> int:
    """The listener's CQE (once per wave of connections, never per echo: a call is fine):
    accept every waiting client, write each one's first SQE (its fields: ``arm(conn)``, which
    records the connection), then the listener's POLL_ADD again. Returns the SQ tail after
    them (the caller counts ``tail - before`` to submit)."""
    for conn in _accept_all(lsock):
        pack_sqe(sqes, (tail & sq_mask) * 64, *arm(conn))
        tail += 1
    return _arm_listener(pack_sqe, sqes, tail, sq_mask, lsock, extra)


def serve_raw_uring(coop: bool = False, defer: bool = False) -> None:
    """The echo loop; ``coop``: on a ring set up with COOP_TASKRUN|TASKRUN_FLAG (the
    ``raw_uring@coop`` ceiling: the same loop, task work without the IPI; every wait is an
    io_uring_enter(GETEVENTS) of the submitting thread, which runs it); ``defer``
    (``raw_uring@defer``, c64): DEFER_TASKRUN|SINGLE_ISSUER instead, the receives' task work
    run only inside the thread's io_uring_enter(GETEVENTS), never on the way back from its
    ``send`` calls (a ring only one thread may submit to and wait on: not winaio's model,
    where any thread waits; measured to know what it would be worth)."""
    lsock, _ring, names, tail, head = _listen(DEFER if defer else COOP if coop else 0, _SQE)
    (pack_sqe, unpack_cqe, pack_u32, unpack_u32, sqes, sq_map, cq_map, sq_mask, cq_mask,
     sq_tail_off, cq_head_off, cq_tail_off, cqes_off, enter) = names  # fmt: skip
    #: fd -> (socket, its buffer, the buffer's address, the buffer's anchor)
    conns: dict[int, tuple[socket.socket, memoryview, int, Any]] = {}

    def arm(conn: socket.socket) -> tuple[int, ...]:  # a new connection's first RECV
        buf = bytearray(SIZE)
        anchor = ctypes.c_char.from_buffer(buf)
        cfd = conn.fileno()
        conns[cfd] = (conn, memoryview(buf), ctypes.addressof(anchor), anchor)
        return (IORING_OP_RECV, 0, IORING_RECVSEND_POLL_FIRST, cfd, 0, conns[cfd][2], SIZE, 0,
                cfd)  # fmt: skip

    to_submit = 1
    while True:
        enter(to_submit, 1)
        to_submit = 0
        cq_tail = unpack_u32(cq_map, cq_tail_off)[0]
        while head != cq_tail:
            fd, res, _flags = unpack_cqe(cq_map, cqes_off + (head & cq_mask) * 16)
            head = (head + 1) & 0xFFFFFFFF
            if fd == LISTENER:
                before, tail = tail, _accepted(lsock, arm, pack_sqe, sqes, tail, sq_mask)
                to_submit += tail - before
                continue
            conn, view, address, _ = conns[fd]
            if res <= 0:  # the client is gone (0: closed; < 0: reset)
                del conns[fd]
                conn.close()
                continue
            try:
                n = conn.send(view[:res])
                if n < res:
                    conn.setblocking(True)
                    conn.sendall(view[n:res])
                    conn.setblocking(False)
            except OSError:
                del conns[fd]
                conn.close()
                continue
            pack_sqe(sqes, (tail & sq_mask) * 64, IORING_OP_RECV, 0, IORING_RECVSEND_POLL_FIRST,
                     fd, 0, address, SIZE, 0, fd)  # fmt: skip
            tail += 1
            to_submit += 1
        pack_u32(cq_map, cq_head_off, head)
        if to_submit:
            pack_u32(sq_map, sq_tail_off, tail & 0xFFFFFFFF)


# -- the readiness variants (mshot): what a pended receive costs without a RECV per echo ---------

IORING_OP_POLL_REMOVE = 7
IORING_OP_ASYNC_CANCEL = 14
IORING_POLL_ADD_MULTI = 1  # POLL_ADD's sqe->len: stay armed, one CQE per wake-up
IORING_RECV_MULTISHOT = 2  # RECV's sqe->ioprio: stay armed, one CQE per receive
IOSQE_BUFFER_SELECT = 1 << 5  # take the buffer from the group in sqe->buf_group
IORING_CQE_F_BUFFER = 1  # the CQE names a provided buffer: its id in flags >> 16
IORING_CQE_F_MORE = 2  # the multishot request is still armed after this CQE
IORING_CQE_BUFFER_SHIFT = 16
IORING_REGISTER_PBUF_RING = 22  # 5.19
#: user_data bit of a cancel's own CQE (POLL_REMOVE / ASYNC_CANCEL): ignored.
CANCEL_TAG = 1 << 62
#: The SQE's first 42 bytes: the 40 of ``_SQE`` and ``buf_group`` (0 unless a buffer is
#: selected: POLL_ADD and the cancels reject a non-zero ``buf_index``).
_SQE_BG = struct.Struct("<BBHiQQIIQH")
_BUF = struct.Struct("<QIH")  # struct io_uring_buf: addr, len, bid (its resv: the ring's tail)
BUF_ENTRY = 16  # sizeof(struct io_uring_buf)
_U16 = struct.Struct("<H")
_BUF_REG = struct.Struct("<QIHH24x")  # struct io_uring_buf_reg: ring_addr, entries, bgid, flags
BGID = 7
NBUF = 512  # provided buffers (a power of two): 8 per connection at C=64
BUF_SIZE = 4096
RING_TAIL = 14  # offset of the buffer ring's tail (the first entry's resv)


def _accept_all(lsock: socket.socket) -> list[socket.socket]:
    out = []
    while True:
        try:
            conn, _ = lsock.accept()
        except BlockingIOError:
            return out
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        out.append(conn)


def _send_all(send: Any, conn: socket.socket, data: memoryview) -> None:
    """``send`` at once; what does not fit waits in a blocking ``sendall`` (never seen with
    64-byte echoes: as ``serve_raw_uring``)."""
    n = send(data)
    if n < len(data):
        conn.setblocking(True)
        conn.sendall(data[n:])
        conn.setblocking(False)


def _echo(recv_into: Any, send: Any, conn: socket.socket, view: memoryview) -> int:
    """One wake-up's echo: ``recv_into``, ``send``, again while the buffer came back full (the
    multishot poll is edge-triggered: data left in the socket brings no new CQE). Returns the
    last count: > 0 echoed, -1 nothing there (a spurious wake-up: the last receive took the
    data), 0 closed, reset or failed."""
    size = len(view)
    while True:
        try:
            n: int = recv_into(view)
            if n <= 0:
                return 0
            _send_all(send, conn, view[:n])
        except BlockingIOError:
            return -1
        except OSError:
            return 0
        if n < size:
            return n


def serve_raw_uring_mpoll() -> None:
    """``raw_uring@mpoll``: one multishot POLL_ADD (IORING_POLL_ADD_MULTI) per connection, kept
    armed; each POLLIN CQE: ``recv_into`` the connection's buffer in Python (EAGAIN: a spurious
    wake-up, nothing to do), ``send`` it back; a CQE without IORING_CQE_F_MORE (the kernel ended
    the poll) re-arms it. No SQE per echo: the ring is only waited on (receive-slot.md §5, "Poll
    once, receive in C", with the receive in Python). On a COOP_TASKRUN ring, as
    ``raw_uring@coop``. A connection's user_data is its serial number (an fd can be reused
    before its poll's removal completes); a closed connection's poll is removed by user_data
    (POLL_REMOVE), since the poll holds the file open."""
    lsock, _ring, names, tail, head = _listen(COOP, _SQE)
    (pack_sqe, unpack_cqe, pack_u32, unpack_u32, sqes, sq_map, cq_map, sq_mask, cq_mask,
     sq_tail_off, cq_head_off, cq_tail_off, cqes_off, enter) = names  # fmt: skip
    #: serial -> (socket, its buffer, its recv_into, its send, its fd)
    conns: dict[int, tuple[socket.socket, memoryview, Any, Any, int]] = {}
    serials = itertools.count(LISTENER + 1)

    def arm(conn: socket.socket) -> tuple[int, ...]:  # a new connection's multishot poll
        serial = next(serials)
        view = memoryview(bytearray(SIZE))
        conns[serial] = (conn, view, conn.recv_into, conn.send, conn.fileno())
        return (IORING_OP_POLL_ADD, 0, 0, conn.fileno(), 0, 0, IORING_POLL_ADD_MULTI, POLLIN,
                serial)  # fmt: skip

    to_submit = 1
    while True:
        enter(to_submit, 1)
        to_submit = 0
        cq_tail = unpack_u32(cq_map, cq_tail_off)[0]
        while head != cq_tail:
            ud, res, flags = unpack_cqe(cq_map, cqes_off + (head & cq_mask) * 16)
            head = (head + 1) & 0xFFFFFFFF
            if ud == LISTENER:
                before, tail = tail, _accepted(lsock, arm, pack_sqe, sqes, tail, sq_mask)
                to_submit += tail - before
                continue
            entry = conns.get(ud)
            if entry is None:  # a removed poll's last CQE, or a cancel's own
                continue
            conn, view, recv_into, send, fd = entry
            armed = flags & IORING_CQE_F_MORE
            n = -1
            if res > 0:  # the poll mask (a negative res: the poll failed, no event)
                n = _echo(recv_into, send, conn, view)
            if n == 0:  # closed, reset or failed: remove the poll, then the socket
                del conns[ud]
                if armed:
                    pack_sqe(sqes, (tail & sq_mask) * 64, IORING_OP_POLL_REMOVE, 0, 0, -1, 0,
                             ud, 0, 0, ud | CANCEL_TAG)  # fmt: skip
                    tail += 1
                    to_submit += 1
                conn.close()
            elif not armed:  # the kernel ended the poll (e.g. a full CQ ring): arm it again
                pack_sqe(sqes, (tail & sq_mask) * 64, IORING_OP_POLL_ADD, 0, 0, fd, 0, 0,
                         IORING_POLL_ADD_MULTI, POLLIN, ud)  # fmt: skip
                tail += 1
                to_submit += 1
        pack_u32(cq_map, cq_head_off, head)
        if to_submit:
            pack_u32(sq_map, sq_tail_off, tail & 0xFFFFFFFF)


class BufferRing:
    """A provided-buffer ring (IORING_REGISTER_PBUF_RING, 5.19): ``NBUF`` buffers of
    ``BUF_SIZE`` bytes in group ``BGID``, all given to the kernel. A buffer the kernel filled is
    given back by :meth:`give` (the entry written at the tail), the tail published by
    :meth:`publish` once per batch (x86-64 TSO: the entry's stores are seen first)."""

    def __init__(self, ring: RawRing) -> None:
        self.entries = mmap.mmap(-1, NBUF * BUF_ENTRY)  # page-aligned, as the kernel wants
        self.pool = mmap.mmap(-1, NBUF * BUF_SIZE)
        self.view = memoryview(self.pool)
        self._anchors = (
            ctypes.c_char.from_buffer(self.entries),
            ctypes.c_char.from_buffer(self.pool),
        )
        ring_addr, self.base = (ctypes.addressof(a) for a in self._anchors)
        for bid in range(NBUF):
            _BUF.pack_into(self.entries, bid * BUF_ENTRY, self.base + bid * BUF_SIZE, BUF_SIZE, bid)
        self.tail = NBUF
        self.publish()
        reg = ctypes.create_string_buffer(_BUF_REG.pack(ring_addr, NBUF, BGID, 0))
        ring.register(IORING_REGISTER_PBUF_RING, reg, 1)

    def give(self, bid: int) -> None:
        _BUF.pack_into(
            self.entries,
            (self.tail & (NBUF - 1)) * BUF_ENTRY,
            self.base + bid * BUF_SIZE,
            BUF_SIZE,
            bid,
        )
        self.tail += 1

    def publish(self) -> None:
        _U16.pack_into(self.entries, RING_TAIL, self.tail & 0xFFFF)


def serve_raw_uring_mrecv() -> None:
    """``raw_uring@mrecv``: one multishot RECV (IORING_RECV_MULTISHOT, IOSQE_BUFFER_SELECT) per
    connection, kept armed, receiving into buffers the kernel takes from a provided-buffer ring;
    each CQE: copy the bytes out into the connection's own buffer (what a Win32 receive into
    the caller's buffer would do), give the buffer back, ``send``; a CQE without
    IORING_CQE_F_MORE re-arms the RECV (-ENOBUFS: the ring ran dry; the buffers given back in
    this batch are published before the next enter). The kernel's receive stays in task work
    (as ``raw_uring@coop``'s), but its poll is armed once per connection, not once per echo,
    and no SQE is written per echo. On a COOP_TASKRUN ring. A closed connection's RECV ends by
    itself (0 / an error, no F_MORE); one closed after a failed send is cancelled."""
    lsock, ring, names, tail, head = _listen(COOP, _SQE_BG, 0)
    bufs = BufferRing(ring)
    pool, give = bufs.view, bufs.give
    (pack_sqe, unpack_cqe, pack_u32, unpack_u32, sqes, sq_map, cq_map, sq_mask, cq_mask,
     sq_tail_off, cq_head_off, cq_tail_off, cqes_off, enter) = names  # fmt: skip
    #: serial -> (socket, its buffer, its send, its fd)
    conns: dict[int, tuple[socket.socket, memoryview, Any, int]] = {}
    serials = itertools.count(LISTENER + 1)

    def arm(conn: socket.socket) -> tuple[int, ...]:  # a new connection's multishot RECV
        serial = next(serials)
        view = memoryview(bytearray(BUF_SIZE))
        conns[serial] = (conn, view, conn.send, conn.fileno())
        return (IORING_OP_RECV, IOSQE_BUFFER_SELECT, IORING_RECV_MULTISHOT, conn.fileno(), 0,
                0, 0, 0, serial, BGID)  # fmt: skip

    to_submit = 1
    while True:
        enter(to_submit, 1)
        to_submit = 0
        given = bufs.tail
        cq_tail = unpack_u32(cq_map, cq_tail_off)[0]
        while head != cq_tail:
            ud, res, flags = unpack_cqe(cq_map, cqes_off + (head & cq_mask) * 16)
            head = (head + 1) & 0xFFFFFFFF
            if ud == LISTENER:
                before, tail = tail, _accepted(lsock, arm, pack_sqe, sqes, tail, sq_mask, 0)
                to_submit += tail - before
                continue
            entry = conns.get(ud)
            if res > 0:
                bid = flags >> IORING_CQE_BUFFER_SHIFT
                if entry is not None:
                    conn, view, send, fd = entry
                    start = bid * BUF_SIZE
                    view[:res] = pool[start : start + res]
                    give(bid)
                    try:
                        _send_all(send, conn, view[:res])
                        res = 1
                    except OSError:
                        res = 0
                else:  # a cancelled RECV's last data: the connection is gone
                    give(bid)
                    continue
            elif entry is None:  # a cancel's own CQE, or a cancelled RECV's end
                continue
            armed = flags & IORING_CQE_F_MORE
            conn, view, send, fd = entry
            if res == 0 or (res < 0 and res != -errno.ENOBUFS):  # closed, reset or failed
                del conns[ud]
                if armed:
                    pack_sqe(sqes, (tail & sq_mask) * 64, IORING_OP_ASYNC_CANCEL, 0, 0, -1, 0,
                             ud, 0, 0, ud | CANCEL_TAG, 0)  # fmt: skip
                    tail += 1
                    to_submit += 1
                conn.close()
            elif not armed:  # ended by the kernel (-ENOBUFS, a full CQ ring): arm it again
                pack_sqe(sqes, (tail & sq_mask) * 64, IORING_OP_RECV, IOSQE_BUFFER_SELECT,
                         IORING_RECV_MULTISHOT, fd, 0, 0, 0, 0, ud, BGID)  # fmt: skip
                tail += 1
                to_submit += 1
        pack_u32(cq_map, cq_head_off, head)
        if bufs.tail != given:
            bufs.publish()
        if to_submit:
            pack_u32(sq_map, sq_tail_off, tail & 0xFFFFFFFF)


# -- the batched sends (c64): every send of a batch in the batch's one io_uring_enter -----------

IORING_OP_SEND = 26
IOSQE_IO_LINK = 1 << 2  # the next SQE starts once this one completed (cancelled if it failed)
IOSQE_CQE_SKIP_SUCCESS = 1 << 6  # 5.17: no CQE when the request succeeds
#: The SEND's msg_flags: MSG_WAITALL makes io_uring retry a partial send until every byte went
#: (io_net_retry: a stream socket), so the linked RECV never starts on a half-sent buffer;
#: MSG_NOSIGNAL: a reset peer is an error, not SIGPIPE.
SEND_FLAGS = socket.MSG_WAITALL | socket.MSG_NOSIGNAL
#: user_data bit of a SEND (its CQE comes only when it failed).
SEND_TAG = 1 << 61


def serve_raw_uring_bsend(flush: int = 0, skip: bool = True) -> None:
    """``raw_uring@bsend``: the ``raw_uring@coop`` loop (one RECV with POLL_FIRST per echo, on a
    COOP_TASKRUN ring) whose sends are SQEs: each receive CQE writes a SEND of the received
    bytes from the connection's buffer (IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS, MSG_WAITALL)
    followed by the RECV re-arm into the same buffer, which the link starts only once the SEND
    completed (the buffer is the kernel's until then, as a pended WSASend's); the next
    ``io_uring_enter(to_submit, 1, GETEVENTS)`` submits every SEND and RECV of the batch (the
    SENDs issued inline, in order) and waits. A successful SEND posts no CQE; a failed one
    posts its error (SEND_TAG) and cancels its RECV (-ECANCELED): the connection is closed on
    whichever comes first. User data is the connection's serial (an fd can be reused before a
    cancelled request's CQE comes).

    ``flush`` > 0 (``raw_uring@bsendN``): every ``flush`` echoes of a batch, the SQEs written so
    far are submitted at once (``io_uring_enter(to_submit, 0)``, no wait): the client gets its
    first replies while the server still works through the batch, as with a send per echo, for
    one syscall per ``flush`` echoes. ``skip`` False (``raw_uring@bsendc``): every SEND posts
    its CQE (reaped and dropped), as a WSASend that returned WSA_IO_PENDING must complete
    through the port: the Win32-shaped form of the same batching."""
    lsock, _ring, names, tail, head = _listen(COOP, _SQE)
    (pack_sqe, unpack_cqe, pack_u32, unpack_u32, sqes, sq_map, cq_map, sq_mask, cq_mask,
     sq_tail_off, cq_head_off, cq_tail_off, cqes_off, enter) = names  # fmt: skip
    #: serial -> (socket, its fd, its buffer's address, the buffer's anchor)
    conns: dict[int, tuple[socket.socket, int, int, Any]] = {}
    serials = itertools.count(LISTENER + 1)
    linked = IOSQE_IO_LINK | (IOSQE_CQE_SKIP_SUCCESS if skip else 0)
    flush2 = 2 * flush if flush > 0 else -1  # SQEs per flush (a SEND and a RECV per echo)

    def arm(conn: socket.socket) -> tuple[int, ...]:  # a new connection's first RECV
        serial = next(serials)
        buf = bytearray(SIZE)
        anchor = ctypes.c_char.from_buffer(buf)
        address = ctypes.addressof(anchor)
        conns[serial] = (conn, conn.fileno(), address, anchor)
        return (IORING_OP_RECV, 0, IORING_RECVSEND_POLL_FIRST, conn.fileno(), 0, address, SIZE,
                0, serial)  # fmt: skip

    to_submit = 1
    while True:
        enter(to_submit, 1)
        to_submit = 0
        cq_tail = unpack_u32(cq_map, cq_tail_off)[0]
        while head != cq_tail:
            ud, res, _flags = unpack_cqe(cq_map, cqes_off + (head & cq_mask) * 16)
            head = (head + 1) & 0xFFFFFFFF
            if ud == LISTENER:
                before, tail = tail, _accepted(lsock, arm, pack_sqe, sqes, tail, sq_mask)
                to_submit += tail - before
                continue
            entry = conns.get(ud & ~SEND_TAG)
            if entry is None:  # the other CQE of a failed SEND's pair: already closed
                continue
            if res > 0 and ud & SEND_TAG:  # a SEND's success (``skip`` False): nothing to do
                continue
            if res <= 0:  # closed (0), reset, a failed SEND or its cancelled RECV
                del conns[ud & ~SEND_TAG]
                entry[0].close()
                continue
            _, fd, address, _ = entry
            pack_sqe(sqes, (tail & sq_mask) * 64, IORING_OP_SEND, linked, 0, fd, 0, address,
                     res, SEND_FLAGS, ud | SEND_TAG)  # fmt: skip
            tail += 1
            pack_sqe(sqes, (tail & sq_mask) * 64, IORING_OP_RECV, 0, IORING_RECVSEND_POLL_FIRST,
                     fd, 0, address, SIZE, 0, ud)  # fmt: skip
            tail += 1
            to_submit += 2
            if to_submit == flush2:
                pack_u32(sq_map, sq_tail_off, tail & 0xFFFFFFFF)
                enter(to_submit, 0)
                to_submit = 0
        pack_u32(cq_map, cq_head_off, head)
        if to_submit:
            pack_u32(sq_map, sq_tail_off, tail & 0xFFFFFFFF)
