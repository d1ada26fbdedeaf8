"""The raw io_uring ABI layer (``winaio._backends.uring.abi``) against the running kernel.

No test sleeps to synchronise: every wait is the ring's own (``wait_cqes`` with a timeout) or a
select() on an eventfd with a timeout, and every wait has a deadline so a bug fails, not hangs.
Every test drains the requests it started before closing its ring (the kernel may touch
buffers until the CQE arrives).
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from winaio._backends.uring import abi
from winaio._backends.uring.abi import support as abi_support
from winaio._backends.uring.abi import syscall as abi_syscall
from winaio._backends.uring.abi.consts import (
    CancelFlags,
    EnterFlags,
    Feature,
    IoringOp,
    PollFlags,
    SetupFlags,
    SqeFlags,
)
from winaio._backends.uring.abi.structs import (
    SockaddrBuffer,
    SockAddress,
    make_iovecs,
    make_msghdr,
    make_sockaddr,
    make_timespec,
    parse_sockaddr,
    pin_readonly,
    pin_writable,
)

PROBE = abi.probe()
pytestmark = pytest.mark.skipif(
    not PROBE.available, reason=f"io_uring not usable here: {PROBE.reason}"
)

DEADLINE = 5.0  # seconds; only reached when something is broken


def wait_for(ring: abi.Ring, n: int, timeout: float = DEADLINE) -> list[abi.Cqe]:
    """Reap until ``n`` CQEs arrived; fail after ``timeout``."""
    got: list[abi.Cqe] = []
    end = time.monotonic() + timeout
    while len(got) < n:
        got += ring.reap(n - len(got))
        if len(got) >= n:
            break
        left = end - time.monotonic()
        assert left > 0, f"only {len(got)} of {n} CQEs after {timeout}s: {got}"
        ring.wait_cqes(1, left)
    return got


def by_user_data(cqes: list[abi.Cqe]) -> dict[int, tuple[int, int]]:
    out = {ud: (res, flags) for ud, res, flags in cqes}
    assert len(out) == len(cqes), f"duplicate user_data in {cqes}"
    return out


@pytest.fixture
def ring() -> Iterator[abi.Ring]:
    with abi.Ring(64) as r:
        yield r


@pytest.fixture
def sockpair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    with a, b:
        yield a, b


# -- probe --------------------------------------------------------------------------------------


def test_probe_reports_core_opcodes_and_features() -> None:
    assert PROBE.available
    assert PROBE.reason.startswith("io_uring available")
    for op in (IoringOp.IORING_OP_NOP, IoringOp.IORING_OP_READ, IoringOp.IORING_OP_WRITE):
        assert op in PROBE.opcodes
    assert PROBE.supports(IoringOp.IORING_OP_NOP, IoringOp.IORING_OP_READ)
    assert not PROBE.supports(250)  # no such opcode
    assert PROBE.features & Feature.IORING_FEAT_NODROP  # 5.5+, and we need >= 5.6 anyway
    assert PROBE.kernel


def _failing_setup(err: int) -> object:
    real = abi_syscall._syscall

    def fake(nr: int, *args: object) -> int:
        if nr == 425:  # io_uring_setup
            ctypes.set_errno(err)
            return -1
        return int(real(nr, *args))

    return fake


@pytest.mark.parametrize(
    ("err", "text"),
    [(errno.ENOSYS, "ENOSYS"), (errno.EPERM, "EPERM"), (errno.EACCES, "EACCES")],
)
def test_probe_turns_setup_refusals_into_reasons(
    monkeypatch: pytest.MonkeyPatch, err: int, text: str
) -> None:
    monkeypatch.setattr(abi_syscall, "_syscall", _failing_setup(err))
    result = abi.probe()
    assert not result.available
    assert text in result.reason
    assert not result.supports(IoringOp.IORING_OP_NOP)


def test_probe_names_the_sysctl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(abi_support, "_read_disabled_sysctl", lambda: 2)
    result = abi.probe()
    assert not result.available
    assert "io_uring_disabled=2" in result.reason
    monkeypatch.setattr(abi_support, "_read_disabled_sysctl", lambda: 1)
    monkeypatch.setattr(abi_syscall, "_syscall", _failing_setup(errno.EPERM))
    assert "io_uring_group" in abi.probe().reason


def test_probe_refuses_weakly_ordered_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(abi_support.platform, "machine", lambda: "aarch64")
    result = abi.probe()
    assert not result.available
    assert "TSO" in result.reason


# -- ring set-up and teardown -------------------------------------------------------------------


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("single_mmap", [None, False])
def test_close_releases_every_fd_and_is_idempotent(single_mmap: bool | None) -> None:
    before = _fds()
    r = abi.Ring(8, _single_mmap=single_mmap)
    assert "io_uring" in os.readlink(f"/proc/self/fd/{r.fd}")
    # The ring fd plus one dup per mapping (Python's mmap dup()s the descriptor).
    assert len(_fds() - before) == (3 if single_mmap is None else 4)
    r.prep_nop(7)
    assert r.submit(1) == 1
    assert r.reap() == [(7, 0, 0)]
    r.close()
    assert _fds() == before
    assert r.fd == -1
    r.close()  # idempotent
    assert _fds() == before
    with pytest.raises(ValueError, match="closed"):
        r.prep_nop(1)
    with pytest.raises(ValueError):
        r.submit()
    with pytest.raises(ValueError):
        r.reap()


def test_context_manager_closes() -> None:
    before = _fds()
    with abi.Ring(4) as r:
        assert r.sq_entries == 4
        assert r.cq_entries == 8  # default: twice the SQ
    assert r.fd == -1
    assert _fds() == before


def test_sizes_are_rounded_and_clamped() -> None:
    with abi.Ring(5, cq_entries=20) as r:
        assert (r.sq_entries, r.cq_entries) == (8, 32)
        assert r.flags & SetupFlags.IORING_SETUP_CQSIZE
    with abi.Ring(1 << 20) as big:  # IORING_SETUP_CLAMP: no EINVAL for a huge request
        assert big.sq_entries <= 32768


def test_unsupported_setup_flags_are_refused() -> None:
    with pytest.raises(ValueError, match="IOPOLL"):
        abi.Ring(8, flags=SetupFlags.IORING_SETUP_IOPOLL)


# -- NOP, batching, SQ full, CQ wrap and overflow ----------------------------------------------


def test_nop_echoes_user_data(ring: abi.Ring) -> None:
    for ud in (0, 1, 0xDEADBEEF, (1 << 64) - 1):
        ring.prep_nop(ud)
        assert ring.submit(1) == 1
        assert ring.reap() == [(ud, 0, 0)]
    assert ring.reap() == []


def test_thousand_nops_in_batches(ring: abi.Ring) -> None:
    seen: list[int] = []
    for base in range(0, 1000, 40):
        for ud in range(base, min(base + 40, 1000)):
            ring.prep_nop(ud)
        ring.submit()
        seen += [ud for ud, res, _ in wait_for(ring, min(40, 1000 - base)) if res == 0]
    assert seen == list(range(1000))  # in order, every one succeeded


def test_sq_full_raises_until_submitted() -> None:
    with abi.Ring(8) as r:
        for ud in range(8):
            r.prep_nop(ud)
        assert r.sq_ready() == 8
        assert r.sq_space_left() == 0
        with pytest.raises(abi.SubmissionQueueFull):
            r.prep_nop(99)
        assert r.submit() == 8
        assert r.sq_space_left() == 8
        r.prep_nop(8)
        r.submit()
        assert [ud for ud, _, _ in wait_for(r, 9)] == list(range(9))


def test_reap_across_the_cq_wrap_and_max_n() -> None:
    with abi.Ring(4, cq_entries=8) as r:
        ud = 0
        for _ in range(10):  # heads 0, 3, 6 (wraps), 1...
            for _ in range(3):
                r.prep_nop(ud)
                ud += 1
            r.submit(3)
            assert r.cq_ready() == 3
            first = r.reap(2)
            assert r.cq_ready() == 1
            assert [c[0] for c in first + r.reap()] == list(range(ud - 3, ud))


def test_cq_overflow_is_flushed_by_reap() -> None:
    with abi.Ring(8, cq_entries=8) as r:
        for batch in range(2):  # 16 completions into an 8-entry CQ
            for i in range(8):
                r.prep_nop(batch * 8 + i)
            assert r.submit() == 8
        assert r.cq_ready() == 8
        assert r.cq_has_overflow()
        got: list[int] = []
        while len(got) < 16:
            batch = r.reap()  # the first takes the full ring, the next flushes the backlog
            assert batch, f"lost completions after {got}"
            got += [ud for ud, _, _ in batch]
        assert got == list(range(16))
        assert not r.cq_has_overflow()


def test_sqe_tail_fields_do_not_leak_into_the_next_use_of_a_slot() -> None:
    with abi.Ring(1) as r:  # one slot: every SQE reuses it
        # An unregistered personality makes any request fail with EINVAL...
        r.prep_sqe(IoringOp.IORING_OP_NOP, -1, 0, 0, 0, 1, personality=0x7FFF)
        r.submit(1)
        assert r.reap() == [(1, -errno.EINVAL, 0)]
        # ...so a NOP that inherited the stale field from the slot would fail too.
        r.prep_nop(2)
        r.submit(1)
        assert r.reap() == [(2, 0, 0)]
        r.prep_read(-1, 0, 0, 0, 3)
        r.submit(1)
        assert r.reap() == [(3, -errno.EBADF, 0)]


def test_peek_cqe_and_cqe_seen(ring: abi.Ring) -> None:
    assert ring.peek_cqe() is None
    ring.prep_nop(1)
    ring.prep_nop(2)
    ring.submit(2)
    assert ring.peek_cqe() == (1, 0, 0)
    assert ring.peek_cqe() == (1, 0, 0)  # peeking does not consume
    ring.cqe_seen()
    assert ring.peek_cqe() == (2, 0, 0)
    ring.cq_advance(1)
    assert ring.cq_ready() == 0


def test_cqe_skip_success_posts_only_failures(ring: abi.Ring) -> None:
    skip = SqeFlags.IOSQE_CQE_SKIP_SUCCESS
    ring.prep_nop(1, skip)
    ring.prep_read(-1, 0, 0, 0, 2, skip)  # EBADF: failures are still posted
    ring.prep_nop(3)
    ring.submit()
    assert by_user_data(wait_for(ring, 2)) == {2: (-errno.EBADF, 0), 3: (0, 0)}


# -- files -------------------------------------------------------------------------------------


def test_write_then_read_at_offsets_and_eof(ring: abi.Ring, tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        a, alen, keep_a = pin_readonly(b"hello world")
        b, blen, keep_b = pin_readonly(b"XYZ")
        ring.prep_write(fd, a, alen, 0, 1)
        ring.prep_write(fd, b, blen, 100, 2)
        ring.submit()
        assert by_user_data(wait_for(ring, 2)) == {1: (11, 0), 2: (3, 0)}
        assert os.pread(fd, 3, 100) == b"XYZ"
        del keep_a, keep_b

        buf = bytearray(8)
        addr, n, keep = pin_writable(buf)
        ring.prep_read(fd, addr, n, 6, 3)  # "world" + 3 NULs of the hole
        ring.submit(1)
        assert ring.reap() == [(3, 8, 0)]
        assert bytes(buf) == b"world\0\0\0"
        ring.prep_read(fd, addr, n, 99, 4)  # short read: 1 NUL + "XYZ"
        ring.prep_read(fd, addr, n, 103, 5)  # at EOF: 0
        ring.submit()
        assert by_user_data(wait_for(ring, 2)) == {4: (4, 0), 5: (0, 0)}
        assert bytes(buf[:4]) == b"\0XYZ"
        del keep
    finally:
        os.close(fd)


def test_read_with_current_position_and_fixed_file(ring: abi.Ring, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abcdefgh")
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = bytearray(3)
        addr, n, _keep = pin_writable(buf)
        ring.register_files([fd])
        ring.prep_read(0, addr, n, 2, 1, SqeFlags.IOSQE_FIXED_FILE)  # fd 0 = table index 0
        ring.submit(1)
        assert ring.reap() == [(1, 3, 0)]
        assert buf == b"cde"
        ring.unregister_files()
        ring.prep_read(fd, addr, n, -1, 2)  # offset -1: the file position, which advances
        ring.prep_read(fd, addr, n, -1, 3, SqeFlags.IOSQE_IO_LINK)
        ring.submit()
        assert by_user_data(wait_for(ring, 2)) == {2: (3, 0), 3: (3, 0)}
        assert buf == b"def" and os.lseek(fd, 0, os.SEEK_CUR) == 6
    finally:
        os.close(fd)


def test_readv_writev(ring: abi.Ring, tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        wv = make_iovecs([b"abc", memoryview(b"--defg--")[2:6], bytearray(b"h")], writable=False)
        ring.prep_writev(fd, wv[0], wv[1], 0, 1)
        ring.submit(1)
        assert ring.reap() == [(1, 8, 0)]
        assert os.pread(fd, 100, 0) == b"abcdefgh"
        bufs = [bytearray(2), bytearray(5)]
        rv = make_iovecs(bufs, writable=True)
        ring.prep_readv(fd, rv[0], rv[1], 1, 2)
        ring.submit(1)
        assert ring.reap() == [(2, 7, 0)]
        assert bufs == [b"bc", b"defgh"]
        with pytest.raises(TypeError):
            make_iovecs([b"read-only"], writable=True)
    finally:
        os.close(fd)


# -- sockets -----------------------------------------------------------------------------------


def test_send_recv_on_a_socketpair(
    ring: abi.Ring, sockpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = sockpair
    data = b"0123456789"
    sources: list[bytes | bytearray | memoryview] = [data, bytearray(data), memoryview(data)[3:7]]
    for i, src in enumerate(sources):
        saddr, slen, skeep = pin_readonly(src)
        buf = bytearray(32)
        raddr, rlen, rkeep = pin_writable(buf)
        ring.prep_recv(b.fileno(), raddr, rlen, 10 + i)
        ring.prep_send(a.fileno(), saddr, slen, 20 + i)
        ring.submit()
        got = by_user_data(wait_for(ring, 2))
        assert got == {10 + i: (slen, 0), 20 + i: (slen, 0)}
        assert bytes(buf[:slen]) == bytes(src)
        del skeep, rkeep
    a.shutdown(socket.SHUT_WR)
    raddr, rlen, _keep = pin_writable(bytearray(4))
    ring.prep_recv(b.fileno(), raddr, rlen, 30)
    ring.submit(1)
    assert ring.reap() == [(30, 0, 0)]  # EOF


def test_sendmsg_recvmsg_with_addresses(ring: abi.Ring) -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
    ):
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        dest = make_sockaddr(socket.AF_INET, b.getsockname())
        send_addr, _, send_keep = make_msghdr([b"head:", b"tail"], writable=False, name=dest)
        source = SockaddrBuffer()
        parts = [bytearray(5), bytearray(10)]
        recv_addr, hdr, recv_keep = make_msghdr(parts, writable=True, name=source)
        ring.prep_recvmsg(b.fileno(), recv_addr, 1)
        ring.prep_sendmsg(a.fileno(), send_addr, 2)
        ring.submit()
        assert by_user_data(wait_for(ring, 2)) == {1: (9, 0), 2: (9, 0)}
        assert parts[0] == b"head:" and parts[1][:4] == b"tail"
        assert source.parse(hdr.msg_namelen) == a.getsockname()
        del send_keep, recv_keep


def test_connect_and_accept_on_loopback(ring: abi.Ring) -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client,
    ):
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        peer = SockaddrBuffer()
        ring.prep_accept(listener.fileno(), peer.addr, peer.len_addr, 1, 0, socket.SOCK_CLOEXEC)
        target = make_sockaddr(socket.AF_INET, listener.getsockname())
        taddr, tlen, _keep = pin_readonly(target)
        ring.prep_connect(client.fileno(), taddr, tlen, 2)
        ring.submit()
        got = by_user_data(wait_for(ring, 2))
        assert got[2] == (0, 0)
        new_fd = got[1][0]
        assert new_fd >= 0
        with socket.socket(fileno=new_fd) as server_side:
            assert peer.parse() == client.getsockname()
            assert server_side.getpeername() == client.getsockname()
            assert os.get_inheritable(new_fd) is False  # SOCK_CLOEXEC reached accept4


@pytest.mark.parametrize(
    ("family", "address"),
    [
        (socket.AF_INET, ("10.1.2.3", 445)),
        (socket.AF_INET6, ("::1", 135, 0, 0)),
        (socket.AF_INET6, ("fe80::1", 80, 5, 2)),
        (socket.AF_UNIX, "/run/winaio.sock"),
        (socket.AF_UNIX, b"\0abstract"),
    ],
)
def test_sockaddr_round_trip(family: int, address: SockAddress) -> None:
    assert parse_sockaddr(make_sockaddr(family, address)) == address


def test_connect_over_af_unix(ring: abi.Ring, tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client,
    ):
        listener.bind(path)
        listener.listen(1)
        addr, n, _keep = pin_readonly(make_sockaddr(socket.AF_UNIX, path))
        ring.prep_connect(client.fileno(), addr, n, 1)
        ring.submit(1)
        assert ring.reap() == [(1, 0, 0)]
        conn, _ = listener.accept()
        conn.close()


# -- poll, timeouts, cancellation, links ---------------------------------------------------------


def test_poll_add_fires_on_eventfd_and_poll_remove(ring: abi.Ring) -> None:
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    try:
        ring.prep_poll_add(efd, select.POLLIN, 1)
        ring.prep_poll_add(efd, select.POLLOUT, 2, 0, PollFlags(0))  # writable at once
        ring.submit()
        assert wait_for(ring, 1) == [(2, select.POLLOUT, 0)]
        assert ring.wait_cqes(1, 0.01) == 0  # nothing written yet: POLLIN still pending
        os.eventfd_write(efd, 1)
        ((ud, res, _),) = wait_for(ring, 1)
        assert ud == 1 and res & select.POLLIN
        os.eventfd_read(efd)
        ring.prep_poll_add(efd, select.POLLIN, 3)
        ring.submit()
        ring.prep_poll_remove(3, 4)
        ring.submit()
        assert by_user_data(wait_for(ring, 2)) == {3: (-errno.ECANCELED, 0), 4: (0, 0)}
    finally:
        os.close(efd)


def test_timeout_gives_etime(ring: abi.Ring) -> None:
    ts = make_timespec(0.02)
    start = time.monotonic()
    ring.prep_timeout(ts, 0, 1)
    ring.submit()
    assert wait_for(ring, 1) == [(1, -errno.ETIME, 0)]
    assert time.monotonic() - start >= 0.015


def test_timeout_with_count_completes_on_other_cqes(ring: abi.Ring) -> None:
    ts = make_timespec(DEADLINE)
    ring.prep_timeout(ts, 2, 1)
    ring.submit()
    ring.prep_nop(2)
    ring.prep_nop(3)
    ring.submit()
    assert by_user_data(wait_for(ring, 3)) == {1: (0, 0), 2: (0, 0), 3: (0, 0)}


def test_timeout_remove(ring: abi.Ring) -> None:
    ts = make_timespec(DEADLINE)
    ring.prep_timeout(ts, 0, 1)
    ring.submit()
    ring.prep_timeout_remove(1, 2)
    ring.submit()
    assert by_user_data(wait_for(ring, 2)) == {1: (-errno.ECANCELED, 0), 2: (0, 0)}


def test_async_cancel_of_a_pending_recv(
    ring: abi.Ring, sockpair: tuple[socket.socket, socket.socket]
) -> None:
    _, b = sockpair
    addr, n, keep = pin_writable(bytearray(16))
    ring.prep_recv(b.fileno(), addr, n, 1)
    ring.submit()
    assert ring.wait_cqes(1, 0.01) == 0  # it really is pending
    ring.prep_cancel(1, 2)
    ring.prep_cancel(12345, 3)  # no such request
    ring.submit()
    got = by_user_data(wait_for(ring, 3))
    assert got == {1: (-errno.ECANCELED, 0), 2: (0, 0), 3: (-errno.ENOENT, 0)}
    del keep  # only now: the victim's CQE has arrived (liburing #733)


def test_cancel_by_fd(ring: abi.Ring, sockpair: tuple[socket.socket, socket.socket]) -> None:
    _, b = sockpair
    addr, n, _keep = pin_writable(bytearray(16))
    ring.prep_recv(b.fileno(), addr, n, 1)
    ring.prep_recv(b.fileno(), addr, n, 2)
    ring.submit()
    ring.prep_cancel_fd(b.fileno(), 3, cancel_flags=CancelFlags.IORING_ASYNC_CANCEL_ALL)
    ring.submit()
    got = by_user_data(wait_for(ring, 3))
    assert got == {1: (-errno.ECANCELED, 0), 2: (-errno.ECANCELED, 0), 3: (2, 0)}


def test_link_timeout_cancels_a_linked_recv(
    ring: abi.Ring, sockpair: tuple[socket.socket, socket.socket]
) -> None:
    _, b = sockpair
    addr, n, _keep = pin_writable(bytearray(16))
    ts = make_timespec(0.02)
    ring.prep_recv(b.fileno(), addr, n, 1, SqeFlags.IOSQE_IO_LINK)
    ring.prep_link_timeout(ts, 2)
    ring.submit()
    assert by_user_data(wait_for(ring, 2)) == {1: (-errno.ECANCELED, 0), 2: (-errno.ETIME, 0)}


def test_link_timeout_is_cancelled_when_the_recv_wins(
    ring: abi.Ring, sockpair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = sockpair
    a.send(b"hi")
    addr, n, _keep = pin_writable(bytearray(16))
    ts = make_timespec(DEADLINE)
    ring.prep_recv(b.fileno(), addr, n, 1, SqeFlags.IOSQE_IO_LINK)
    ring.prep_link_timeout(ts, 2)
    ring.submit()
    assert by_user_data(wait_for(ring, 2)) == {1: (2, 0), 2: (-errno.ECANCELED, 0)}


# -- cross-ring and cross-thread wake-ups --------------------------------------------------------


@pytest.mark.skipif(
    not PROBE.supports(IoringOp.IORING_OP_MSG_RING), reason="MSG_RING needs Linux 5.18"
)
def test_msg_ring_posts_a_cqe_into_another_ring(ring: abi.Ring) -> None:
    with abi.Ring(8) as other:
        ring.prep_msg_ring(other.fd, 1234, (1 << 64) - 2, 1)
        ring.submit()
        assert wait_for(ring, 1) == [(1, 0, 0)]
        assert other.wait_cqes(1, DEADLINE) == 1
        assert other.reap() == [((1 << 64) - 2, 1234, 0)]
        ring.prep_msg_ring(other.fd, -5, 7, 2, cqe_flags=0x10000)
        ring.submit()
        assert wait_for(ring, 1) == [(2, 0, 0)]
        assert wait_for(other, 1) == [(7, -5, 0x10000)]


def test_registered_eventfd_wakes_another_thread(ring: abi.Ring) -> None:
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    try:
        ring.register_eventfd(efd)
        woke = threading.Event()
        ready = threading.Event()

        def waiter() -> None:
            ready.set()
            if select.select([efd], [], [], DEADLINE)[0]:
                woke.set()

        t = threading.Thread(target=waiter, name="winaio-test-eventfd")
        t.start()
        assert ready.wait(DEADLINE)
        ring.prep_nop(1)
        ring.submit()
        t.join(DEADLINE)
        assert not t.is_alive()
        assert woke.is_set()
        assert os.eventfd_read(efd) >= 1
        assert wait_for(ring, 1) == [(1, 0, 0)]

        ring.unregister_eventfd()
        ring.prep_nop(2)
        ring.submit(1)
        assert ring.reap() == [(2, 0, 0)]
        assert select.select([efd], [], [], 0)[0] == []  # no longer signalled
    finally:
        os.close(efd)


def test_wait_in_another_thread_sees_completion(ring: abi.Ring) -> None:
    result: list[int] = []
    t = threading.Thread(
        target=lambda: result.append(ring.wait_cqes(1, DEADLINE)), name="winaio-test-waiter"
    )
    t.start()
    ring.prep_nop(1)
    ring.submit()
    t.join(DEADLINE)
    assert not t.is_alive()
    assert result == [1]
    assert ring.reap() == [(1, 0, 0)]


def test_requests_of_an_exited_thread_are_cancelled(
    ring: abi.Ring, sockpair: tuple[socket.socket, socket.socket]
) -> None:
    """A kernel fact the backend must design around: requests belong to the submitting thread.

    Depending on the kernel the RECV is cancelled when the thread exits or when its task work
    would run (data arriving); either way it ends with -ECANCELED and the data stays queued.
    """
    a, b = sockpair
    addr, n, _keep = pin_writable(bytearray(8))
    tids: list[int] = []

    def submit_and_exit() -> None:
        tids.append(threading.get_native_id())
        ring.prep_recv(b.fileno(), addr, n, 1)
        ring.submit()

    t = threading.Thread(target=submit_and_exit, name="winaio-test-short-lived")
    t.start()
    t.join(DEADLINE)
    # join() returns before the OS thread is gone; until then it still runs its task work.
    end = time.monotonic() + DEADLINE
    while os.path.exists(f"/proc/self/task/{tids[0]}"):
        assert time.monotonic() < end, "the thread never exited"
        os.sched_yield()
    a.send(b"hi")
    assert wait_for(ring, 1) == [(1, -errno.ECANCELED, 0)]
    assert b.recv(8) == b"hi"


# -- SQPOLL ------------------------------------------------------------------------------------


def _sqpoll_ring(entries: int = 32) -> abi.Ring:
    try:
        r = abi.Ring(
            entries, flags=SetupFlags.IORING_SETUP_SQPOLL, cq_entries=256, sq_thread_idle=1
        )
    except OSError as e:
        pytest.skip(f"SQPOLL refused here: {os.strerror(e.errno or 0)}")
    if not r.features & Feature.IORING_FEAT_SQPOLL_NONFIXED:
        r.close()
        pytest.skip("kernel < 5.11: SQPOLL needs registered files")
    return r


def _until_poller_sleeps(r: abi.Ring) -> None:
    """Wait (bounded, yielding) until the SQ poller has gone idle: IORING_SQ_NEED_WAKEUP."""
    end = time.monotonic() + DEADLINE
    while not r.sq_needs_wakeup():
        assert time.monotonic() < end, "the SQ poller never went to sleep"
        os.sched_yield()


def test_sqpoll_submits_without_enter_and_wakes_a_sleeping_poller(
    monkeypatch: pytest.MonkeyPatch, sq_pollers: Callable[[], set[str]]
) -> None:
    before = sq_pollers()
    r = _sqpoll_ring()
    assert r.sqpoll
    # The poller names itself (set_task_comm in io_sq_thread) once it first runs: wait for it.
    end = time.monotonic() + DEADLINE
    while len(sq_pollers() - before) != 1:
        assert time.monotonic() < end, f"no single new SQ poller thread: {sq_pollers() - before}"
        os.sched_yield()
    real = abi_syscall._syscall
    enters: list[int] = []  # flags of the io_uring_enter calls that do not wait

    def spy(nr: int, *args: Any) -> Any:
        if nr == abi_syscall.NR_IO_URING_ENTER and not args[3] & EnterFlags.IORING_ENTER_GETEVENTS:
            enters.append(args[3])
        return real(nr, *args)

    monkeypatch.setattr(abi_syscall, "_syscall", spy)
    with r:
        for round_ in range(3):
            _until_poller_sleeps(r)
            enters.clear()
            r.prep_nop(10 + round_)
            assert r.submit() == 1  # published; the woken poller consumes it
            assert enters == [int(EnterFlags.IORING_ENTER_SQ_WAKEUP)]
            assert wait_for(r, 1) == [(10 + round_, 0, 0)]
        # A busy poller needs no syscall at all; a submit never enters for anything but a
        # wake-up (how many depends on how often this thread was preempted past the idle).
        enters.clear()
        for ud in range(20, 40):
            r.prep_nop(ud)
            r.submit()
        assert sorted(u for u, _, _ in wait_for(r, 20)) == list(range(20, 40))
        assert set(enters) <= {int(EnterFlags.IORING_ENTER_SQ_WAKEUP)}
        for ud in range(100, 200):  # a full SQ ring (32 slots) waits for room with SQ_WAIT
            while True:
                try:
                    r.prep_nop(ud)
                    break
                except abi.SubmissionQueueFull:
                    r.submit()
                    r.wakeup_sq(wait_for_space=True)
        r.submit()
        end = time.monotonic() + DEADLINE
        got: list[int] = []
        while len(got) < 100:
            assert time.monotonic() < end
            got += [ud for ud, _, _ in r.reap()]
            if not r.cq_ready():
                r.wait_cqes(1, 0.5)
    end = time.monotonic() + DEADLINE
    while sq_pollers() - before:  # the poller exits (asynchronously) with its last ring
        assert time.monotonic() < end, "the SQ poller thread outlived its ring"
        os.sched_yield()


def test_sqpoll_requests_survive_the_exit_of_the_thread_that_published_them(
    sockpair: tuple[socket.socket, socket.socket],
) -> None:
    """The kernel fact the backend's SQPOLL mode relies on (compare the test above): with
    SQPOLL the poller issues every request, so neither the thread that created the ring, nor
    the one that prepared, published and woke the poller (io_uring_enter(SQ_WAKEUP)) owns it;
    their exits leave it alone and its task work (the RECV receiving) still runs."""
    a, b = sockpair
    buf = bytearray(8)
    addr, n, _keep = pin_writable(buf)
    rings: list[abi.Ring] = []
    tids: list[int] = []

    def create() -> None:
        tids.append(threading.get_native_id())
        rings.append(_sqpoll_ring())

    def submit_and_exit(r: abi.Ring) -> None:
        tids.append(threading.get_native_id())
        _until_poller_sleeps(r)  # so this thread makes the SQ_WAKEUP enter itself
        r.prep_recv(b.fileno(), addr, n, 1)
        r.submit()

    for target in (create, lambda: submit_and_exit(rings[0])):
        t = threading.Thread(target=target, name="winaio-test-brief")
        t.start()
        t.join(DEADLINE)
        end = time.monotonic() + DEADLINE
        while os.path.exists(f"/proc/self/task/{tids[-1]}"):
            assert time.monotonic() < end, "the thread never exited"
            os.sched_yield()
    (r,) = rings
    with r:
        _until_poller_sleeps(r)  # the completion must wake the idle poller for its task work
        a.send(b"hi")
        assert wait_for(r, 1) == [(1, 2, 0)]
        assert bytes(buf[:2]) == b"hi"


# -- enter errors ------------------------------------------------------------------------------


def test_submit_retries_eintr_and_surfaces_busy(
    monkeypatch: pytest.MonkeyPatch, ring: abi.Ring
) -> None:
    real = abi_syscall._syscall
    calls: list[int] = []

    def interrupted_once(nr: int, *args: object) -> int:
        calls.append(nr)
        if len(calls) == 1:
            ctypes.set_errno(errno.EINTR)
            return -1
        return int(real(nr, *args))

    monkeypatch.setattr(abi_syscall, "_syscall", interrupted_once)
    ring.prep_nop(1)
    assert ring.submit(1) == 1
    assert calls == [426, 426]
    assert ring.reap() == [(1, 0, 0)]

    def busy(nr: int, *args: object) -> int:
        ctypes.set_errno(errno.EBUSY)
        return -1

    monkeypatch.setattr(abi_syscall, "_syscall", busy)
    ring.prep_nop(2)
    with pytest.raises(abi.RingBusyError) as info:
        ring.submit()
    assert info.value.errno == errno.EBUSY
    monkeypatch.setattr(abi_syscall, "_syscall", real)
    assert ring.submit(1) == 1  # still prepared: it goes with the next submit
    assert ring.reap() == [(2, 0, 0)]


# -- waiting with a timeout ----------------------------------------------------------------------


@pytest.mark.skipif(
    not PROBE.features & Feature.IORING_FEAT_EXT_ARG, reason="wait timeouts need Linux 5.11"
)
def test_wait_with_timeout_returns_empty_after_the_timeout(ring: abi.Ring) -> None:
    start = time.monotonic()
    assert ring.wait_cqes(1, 0.05) == 0
    elapsed = time.monotonic() - start
    assert 0.045 <= elapsed < DEADLINE
    assert ring.reap() == []
    assert ring.wait_cqes(1, 0) == 0  # zero timeout: a poll


@pytest.mark.skipif(
    not PROBE.features & Feature.IORING_FEAT_EXT_ARG, reason="wait timeouts need Linux 5.11"
)
def test_submit_and_wait_timeout_submits_then_waits(
    ring: abi.Ring, sockpair: tuple[socket.socket, socket.socket]
) -> None:
    _, b = sockpair
    addr, n, _keep = pin_writable(bytearray(4))
    ring.prep_recv(b.fileno(), addr, n, 1)
    start = time.monotonic()
    assert ring.submit_and_wait_timeout(1, 0.05) == 1
    assert time.monotonic() - start >= 0.045
    assert ring.cq_ready() == 0
    ring.prep_cancel(1, 2)
    ring.submit()
    assert by_user_data(wait_for(ring, 2)) == {1: (-errno.ECANCELED, 0), 2: (0, 0)}


def test_wait_timeout_without_ext_arg_is_refused(ring: abi.Ring) -> None:
    ring.features &= ~Feature.IORING_FEAT_EXT_ARG
    with pytest.raises(NotImplementedError, match="EXT_ARG"):
        ring.wait_cqes(1, 0.01)


# -- buffer pinning ---------------------------------------------------------------------------


def test_pinned_bytearray_cannot_move() -> None:
    buf = bytearray(16)
    _, _, keep = pin_writable(buf)
    with pytest.raises(BufferError):
        buf.extend(b"x" * 4096)  # a resize could move the memory under the kernel
    del keep
    buf.extend(b"x")


def test_pin_rejects_read_only_for_writing_and_handles_empty() -> None:
    with pytest.raises(TypeError):
        pin_writable(memoryview(b"abc"))  # type: ignore[arg-type]
    assert pin_writable(bytearray())[:2] == (0, 0)
    assert pin_readonly(b"")[1] == 0
    view = memoryview(b"abcdef")[2:]
    addr, n, keep = pin_readonly(view)
    assert n == 4 and ctypes.string_at(addr, n) == b"cdef"
    assert keep is not None
