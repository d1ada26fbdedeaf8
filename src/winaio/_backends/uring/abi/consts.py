"""io_uring uapi constants, spelled exactly as in ``<linux/io_uring.h>``.

Purpose: the numbers of the io_uring ABI as IntEnum/IntFlag tables, so every name can be
grepped against the man pages (io_uring_setup(2), io_uring_enter(2), io_uring_register(2),
io_uring_prep_*(3)). A comment gives the first kernel version where it matters; check what the
running kernel supports with ``abi.probe()``.

Rules: data only; stdlib ``enum`` only. Hot paths copy the values they need into plain ints.
"""

from __future__ import annotations

import enum

__all__ = [
    "IoringOp",
    "SetupFlags",
    "Feature",
    "SqeFlags",
    "EnterFlags",
    "SqRingFlags",
    "CqRingFlags",
    "CqeFlags",
    "TimeoutFlags",
    "CancelFlags",
    "PollFlags",
    "MsgRingFlags",
    "RecvSendFlags",
    "RegisterOp",
]


class IoringOp(enum.IntEnum):
    """``enum io_uring_op``: the SQE opcode byte. Check support with ``probe().opcodes``."""

    IORING_OP_NOP = 0  # 5.1
    IORING_OP_READV = 1  # 5.1
    IORING_OP_WRITEV = 2  # 5.1
    IORING_OP_FSYNC = 3  # 5.1
    IORING_OP_READ_FIXED = 4
    IORING_OP_WRITE_FIXED = 5
    IORING_OP_POLL_ADD = 6  # 5.1
    IORING_OP_POLL_REMOVE = 7  # 5.1
    IORING_OP_SYNC_FILE_RANGE = 8
    IORING_OP_SENDMSG = 9  # 5.3
    IORING_OP_RECVMSG = 10  # 5.3
    IORING_OP_TIMEOUT = 11  # 5.4
    IORING_OP_TIMEOUT_REMOVE = 12  # 5.5
    IORING_OP_ACCEPT = 13  # 5.5
    IORING_OP_ASYNC_CANCEL = 14  # 5.5
    IORING_OP_LINK_TIMEOUT = 15  # 5.5
    IORING_OP_CONNECT = 16  # 5.5
    IORING_OP_FALLOCATE = 17
    IORING_OP_OPENAT = 18
    IORING_OP_CLOSE = 19
    IORING_OP_FILES_UPDATE = 20
    IORING_OP_STATX = 21
    IORING_OP_READ = 22  # 5.6
    IORING_OP_WRITE = 23  # 5.6
    IORING_OP_FADVISE = 24
    IORING_OP_MADVISE = 25
    IORING_OP_SEND = 26  # 5.6
    IORING_OP_RECV = 27  # 5.6
    IORING_OP_OPENAT2 = 28
    IORING_OP_EPOLL_CTL = 29
    IORING_OP_SPLICE = 30
    IORING_OP_PROVIDE_BUFFERS = 31
    IORING_OP_REMOVE_BUFFERS = 32
    IORING_OP_TEE = 33
    IORING_OP_SHUTDOWN = 34
    IORING_OP_RENAMEAT = 35
    IORING_OP_UNLINKAT = 36
    IORING_OP_MKDIRAT = 37
    IORING_OP_SYMLINKAT = 38
    IORING_OP_LINKAT = 39
    IORING_OP_MSG_RING = 40  # 5.18
    IORING_OP_FSETXATTR = 41
    IORING_OP_SETXATTR = 42
    IORING_OP_FGETXATTR = 43
    IORING_OP_GETXATTR = 44
    IORING_OP_SOCKET = 45
    IORING_OP_URING_CMD = 46
    IORING_OP_SEND_ZC = 47
    IORING_OP_SENDMSG_ZC = 48
    IORING_OP_READ_MULTISHOT = 49
    IORING_OP_WAITID = 50
    IORING_OP_FUTEX_WAIT = 51
    IORING_OP_FUTEX_WAKE = 52
    IORING_OP_FUTEX_WAITV = 53
    IORING_OP_FIXED_FD_INSTALL = 54
    IORING_OP_FTRUNCATE = 55
    IORING_OP_BIND = 56
    IORING_OP_LISTEN = 57
    IORING_OP_RECV_ZC = 58
    IORING_OP_EPOLL_WAIT = 59
    IORING_OP_READV_FIXED = 60
    IORING_OP_WRITEV_FIXED = 61
    IORING_OP_PIPE = 62


class SetupFlags(enum.IntFlag):
    """``io_uring_params.flags`` for io_uring_setup(2)."""

    IORING_SETUP_IOPOLL = 1 << 0
    IORING_SETUP_SQPOLL = 1 << 1
    IORING_SETUP_SQ_AFF = 1 << 2
    IORING_SETUP_CQSIZE = 1 << 3  # 5.5
    IORING_SETUP_CLAMP = 1 << 4  # 5.6
    IORING_SETUP_ATTACH_WQ = 1 << 5
    IORING_SETUP_R_DISABLED = 1 << 6
    IORING_SETUP_SUBMIT_ALL = 1 << 7  # 5.18
    IORING_SETUP_COOP_TASKRUN = 1 << 8  # 5.19
    IORING_SETUP_TASKRUN_FLAG = 1 << 9  # 5.19
    IORING_SETUP_SQE128 = 1 << 10
    IORING_SETUP_CQE32 = 1 << 11
    IORING_SETUP_SINGLE_ISSUER = 1 << 12  # 6.0
    IORING_SETUP_DEFER_TASKRUN = 1 << 13  # 6.1
    IORING_SETUP_NO_MMAP = 1 << 14
    IORING_SETUP_REGISTERED_FD_ONLY = 1 << 15
    IORING_SETUP_NO_SQARRAY = 1 << 16


class Feature(enum.IntFlag):
    """``io_uring_params.features``, filled in by the kernel."""

    IORING_FEAT_SINGLE_MMAP = 1 << 0  # 5.4
    IORING_FEAT_NODROP = 1 << 1  # 5.5
    IORING_FEAT_SUBMIT_STABLE = 1 << 2  # 5.5
    IORING_FEAT_RW_CUR_POS = 1 << 3  # 5.6
    IORING_FEAT_CUR_PERSONALITY = 1 << 4
    IORING_FEAT_FAST_POLL = 1 << 5  # 5.7
    IORING_FEAT_POLL_32BITS = 1 << 6  # 5.9
    IORING_FEAT_SQPOLL_NONFIXED = 1 << 7
    IORING_FEAT_EXT_ARG = 1 << 8  # 5.11
    IORING_FEAT_NATIVE_WORKERS = 1 << 9  # 5.12
    IORING_FEAT_RSRC_TAGS = 1 << 10
    IORING_FEAT_CQE_SKIP = 1 << 11  # 5.17
    IORING_FEAT_LINKED_FILE = 1 << 12
    IORING_FEAT_REG_REG_RING = 1 << 13
    IORING_FEAT_RECVSEND_BUNDLE = 1 << 14
    IORING_FEAT_MIN_TIMEOUT = 1 << 15
    IORING_FEAT_RW_ATTR = 1 << 16
    IORING_FEAT_NO_IOWAIT = 1 << 17


class SqeFlags(enum.IntFlag):
    """``io_uring_sqe.flags`` (IOSQE_*)."""

    IOSQE_FIXED_FILE = 1 << 0  # fd is an index into register_files()
    IOSQE_IO_DRAIN = 1 << 1
    IOSQE_IO_LINK = 1 << 2  # the next SQE starts only after this one succeeds
    IOSQE_IO_HARDLINK = 1 << 3
    IOSQE_ASYNC = 1 << 4  # skip the non-blocking attempt, go straight to io-wq
    IOSQE_BUFFER_SELECT = 1 << 5
    IOSQE_CQE_SKIP_SUCCESS = 1 << 6  # 5.17: no CQE unless the request fails


class EnterFlags(enum.IntFlag):
    """io_uring_enter(2) ``flags``."""

    IORING_ENTER_GETEVENTS = 1 << 0
    IORING_ENTER_SQ_WAKEUP = 1 << 1
    IORING_ENTER_SQ_WAIT = 1 << 2
    IORING_ENTER_EXT_ARG = 1 << 3  # 5.11


class SqRingFlags(enum.IntFlag):
    """The ``flags`` word in the SQ ring, written by the kernel."""

    IORING_SQ_NEED_WAKEUP = 1 << 0
    IORING_SQ_CQ_OVERFLOW = 1 << 1
    IORING_SQ_TASKRUN = 1 << 2


class CqRingFlags(enum.IntFlag):
    """The ``flags`` word in the CQ ring, written by the application."""

    IORING_CQ_EVENTFD_DISABLED = 1 << 0  # 5.8: no eventfd signal for new CQEs while set


class CqeFlags(enum.IntFlag):
    """``io_uring_cqe.flags``."""

    IORING_CQE_F_BUFFER = 1 << 0
    IORING_CQE_F_MORE = 1 << 1  # a multishot request will post more CQEs
    IORING_CQE_F_SOCK_NONEMPTY = 1 << 2
    IORING_CQE_F_NOTIF = 1 << 3


class TimeoutFlags(enum.IntFlag):
    """``timeout_flags`` for TIMEOUT / LINK_TIMEOUT / TIMEOUT_REMOVE."""

    IORING_TIMEOUT_ABS = 1 << 0
    IORING_TIMEOUT_UPDATE = 1 << 1
    IORING_TIMEOUT_BOOTTIME = 1 << 2
    IORING_TIMEOUT_REALTIME = 1 << 3
    IORING_LINK_TIMEOUT_UPDATE = 1 << 4
    IORING_TIMEOUT_ETIME_SUCCESS = 1 << 5
    IORING_TIMEOUT_MULTISHOT = 1 << 6


class CancelFlags(enum.IntFlag):
    """``cancel_flags`` for ASYNC_CANCEL (all but the first two need 5.19+ / 6.x)."""

    IORING_ASYNC_CANCEL_ALL = 1 << 0
    IORING_ASYNC_CANCEL_FD = 1 << 1
    IORING_ASYNC_CANCEL_ANY = 1 << 2
    IORING_ASYNC_CANCEL_FD_FIXED = 1 << 3
    IORING_ASYNC_CANCEL_USERDATA = 1 << 4
    IORING_ASYNC_CANCEL_OP = 1 << 5


class PollFlags(enum.IntFlag):
    """POLL_ADD / POLL_REMOVE command flags (carried in ``sqe.len``)."""

    IORING_POLL_ADD_MULTI = 1 << 0  # 5.13
    IORING_POLL_UPDATE_EVENTS = 1 << 1
    IORING_POLL_UPDATE_USER_DATA = 1 << 2
    IORING_POLL_ADD_LEVEL = 1 << 3


class RecvSendFlags(enum.IntFlag):
    """SEND/RECV (and SENDMSG/RECVMSG) flags, carried in ``sqe.ioprio``."""

    #: 5.19: do not try the socket first, arm the poll at once (the caller just saw EAGAIN);
    #: older kernels fail the request with -EINVAL.
    IORING_RECVSEND_POLL_FIRST = 1 << 0
    IORING_RECV_MULTISHOT = 1 << 1  # 6.0
    IORING_RECVSEND_FIXED_BUF = 1 << 2  # 6.0
    IORING_SEND_ZC_REPORT_USAGE = 1 << 3  # 6.2


class MsgRingFlags(enum.IntFlag):
    """``msg_ring_flags`` for MSG_RING."""

    IORING_MSG_RING_CQE_SKIP = 1 << 0  # 6.0: no CQE in the *sending* ring
    IORING_MSG_RING_FLAGS_PASS = 1 << 1  # 6.3: cqe_flags become the target CQE's flags


class RegisterOp(enum.IntEnum):
    """io_uring_register(2) opcodes used here."""

    IORING_REGISTER_BUFFERS = 0
    IORING_UNREGISTER_BUFFERS = 1
    IORING_REGISTER_FILES = 2
    IORING_UNREGISTER_FILES = 3
    IORING_REGISTER_EVENTFD = 4
    IORING_UNREGISTER_EVENTFD = 5
    IORING_REGISTER_FILES_UPDATE = 6
    IORING_REGISTER_EVENTFD_ASYNC = 7
    IORING_REGISTER_PROBE = 8
