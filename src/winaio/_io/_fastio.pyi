"""Stub of the optional C accelerator (``_fastio.c``); see ``_disk.use_accelerator``."""

from typing import Any

def configure(
    disk_file: type,
    overlapped: type,
    completion_port: type,
    event: type,
    completion_packet: type,
    lock: Any,
    wake_waiters: Any,
    read_now: Any,
    start_read: Any,
    start_read_after: Any,
    refused: tuple[type[BaseException], ...],
    would_block: int,
    /,
) -> tuple[Any, Any, bool]: ...
def configure_alias(
    overlapped: type, handle_entry: Any, read_file: Any, read_file_after: Any, /
) -> Any: ...
def set_enabled(flag: bool, /) -> None: ...
def configure_gqcs(
    gqcs_ex: Any,
    overlapped_entry: type,
    ref: type,
    handle_entry: Any,
    after: Any,
    failed: Any,
    win32_error: type[BaseException],
    /,
) -> Any: ...
def configure_ring(part: str, /, *args: Any) -> dict[str, Any]: ...
def configure_pend(
    backend: type,
    pend_receive: Any,
    stream_read_op: type,
    file_object: type,
    overlapped: type,
    thread_state: type,
    ring_parker: type,
    leadership: type,
    deferral: type,
    backlog: type,
    stream_lines: type,
    line: type,
    in_flight: type,
    backend_ring: type,
    lock: Any,
    tls: Any,
    current_thread_state: Any,
    deque: type,
    eventfd_write: Any,
    io_key: str,
    /,
) -> tuple[Any, Any]: ...
def configure_sockets(
    socket_class: type,
    fd_users: type,
    event: type,
    overlapped: type,
    socket_type: type,
    probe: Any,
    claim: Any,
    start_read: Any,
    start_write: Any,
    closed_error: Any,
    recv_blocked: Any,
    recv_failed: Any,
    recv_end: Any,
    send_failed: Any,
    send_rest: Any,
    status_pending: int,
    ask_run: int,
    ask_every: int,
    lock: Any,
    wake_waiters: Any,
    /,
) -> tuple[Any, Any]: ...
