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
"""

from __future__ import annotations

import ctypes
import socket
from typing import Any

from bench_procs import announce, listener
from raw_uring import _CQE, _SQE, _U32, COOP, RawRing

IORING_OP_POLL_ADD = 6
IORING_OP_RECV = 27
IORING_RECVSEND_POLL_FIRST = 1
POLLIN = 1
LISTENER = 0  # user_data of the listener's poll; a connection's is its fd (never 0 here)
SIZE = 65536


def serve_raw_uring(coop: bool = False) -> None:
    """The echo loop; ``coop``: on a ring set up with COOP_TASKRUN|TASKRUN_FLAG (the
    ``raw_uring@coop`` ceiling: the same loop, task work without the IPI; every wait is an
    io_uring_enter(GETEVENTS) of the submitting thread, which runs it)."""
    lsock = listener()
    lsock.setblocking(False)
    ring = RawRing(1024, COOP if coop else 0)
    pack_sqe, unpack_cqe, pack_u32, unpack_u32 = (
        _SQE.pack_into, _CQE.unpack_from, _U32.pack_into, _U32.unpack_from
    )  # fmt: skip
    sqes, sq_map, cq_map = ring.sqe_map, ring.sq_map, ring.cq_map
    sq_mask, cq_mask = ring.sq_mask, ring.cq_mask
    sq_tail_off, cq_head_off, cq_tail_off = ring.sq_tail_off, ring.cq_head_off, ring.cq_tail_off
    cqes_off = ring.cqes_off
    enter = ring.enter
    lfd = lsock.fileno()
    #: fd -> (socket, its buffer, the buffer's address, the buffer's anchor)
    conns: dict[int, tuple[socket.socket, memoryview, int, Any]] = {}
    tail = ring.sq_tail
    pack_sqe(sqes, (tail & sq_mask) * 64, IORING_OP_POLL_ADD, 0, 0, lfd, 0, 0, 0, POLLIN,
             LISTENER)  # fmt: skip
    tail += 1
    pack_u32(sq_map, sq_tail_off, tail & 0xFFFFFFFF)
    to_submit = 1
    head = unpack_u32(cq_map, cq_head_off)[0]
    announce(lsock.getsockname()[1])
    while True:
        enter(to_submit, 1)
        to_submit = 0
        cq_tail = unpack_u32(cq_map, cq_tail_off)[0]
        while head != cq_tail:
            fd, res, _flags = unpack_cqe(cq_map, cqes_off + (head & cq_mask) * 16)
            head = (head + 1) & 0xFFFFFFFF
            if fd == LISTENER:
                while True:
                    try:
                        conn, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    buf = bytearray(SIZE)
                    anchor = ctypes.c_char.from_buffer(buf)
                    cfd = conn.fileno()
                    conns[cfd] = (conn, memoryview(buf), ctypes.addressof(anchor), anchor)
                    pack_sqe(sqes, (tail & sq_mask) * 64, IORING_OP_RECV, 0,
                             IORING_RECVSEND_POLL_FIRST, cfd, 0, conns[cfd][2], SIZE, 0,
                             cfd)  # fmt: skip
                    tail += 1
                    to_submit += 1
                pack_sqe(sqes, (tail & sq_mask) * 64, IORING_OP_POLL_ADD, 0, 0, lfd, 0, 0, 0,
                         POLLIN, LISTENER)  # fmt: skip
                tail += 1
                to_submit += 1
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
