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
def configure_direct(
    disk_file: type,
    file_read_op: type,
    lock: Any,
    submit_pending_file: Any,
    hand_to_backend: Any,
    handed_again: Any,
    tls: Any,
    current_thread_state: Any,
    status_pending: int,
    align: int,
    /,
) -> None: ...
def configure_submit(
    backend: type,
    submit: Any,
    file_read_op: type,
    file_object: type,
    backend_ring: type,
    in_flight: type,
    backlog: type,
    submission: type,
    thread_state: type,
    ring_parker: type,
    ring_busy_error: type[BaseException],
    eventfd_write: Any,
    /,
) -> Any: ...
def submit_set_enabled(flag: bool, /) -> None: ...
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
) -> tuple[Any, Any, bool]: ...
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
    socket_mode: type,
    /,
) -> tuple[Any, Any]: ...
def configure_done(
    operation: type,
    file_object: type,
    overlapped: type,
    event: type,
    completion_port: type,
    completion_packet: type,
    wait_block: type,
    thread_state: type,
    line: type,
    stream_lines: type,
    deque: type,
    reaper: type,
    migration: type,
    in_flight: type,
    lock: Any,
    wake_waiters: Any,
    queue_routine: Any,
    deliver_batch: Any,
    read_from_cqe: Any,
    stream_kind: Any,
    pollin: int,
    io_key: str,
    handoff: int,
    success: int,
    spare_max: int,
    ud_poke: int,
    deliver: Any,
    reaper_globals: dict[str, Any],
    plain_complete: Any,
    report: Any,
    /,
) -> tuple[Any, Any, Any, Any, Any, Any]: ...
def configure_wsa(
    wsa_recv: Any,
    wsa_send: Any,
    wsa_get_last_error: Any,
    socket: type,
    overlapped: type,
    ref: type,
    thread_state: type,
    handle_entry: Any,
    tls: Any,
    current_thread_state: Any,
    wsa_fail: Any,
    win32_error: type[BaseException],
    wsa_io_pending: int,
    socket_error: int,
    /,
) -> tuple[Any, Any, Any]: ...
def wsa_set_enabled(flag: bool, /) -> None: ...
def configure_event(
    event: type,
    wait_block: type,
    thread_state: type,
    lock: Any,
    tls: Any,
    event_set: Any,
    wait_for_one: Any,
    abandon_wait: Any,
    check_terminating: Any,
    finish: Any,
    terminated: int,
    wait_io_completion: int,
    wait_timeout: int,
    /,
) -> tuple[Any, Any]: ...
def configure_event_win32(
    entries: dict[Any, Any],
    set_event: Any,
    reset_event: Any,
    wait_for_single_object: Any,
    wait_for_single_object_ex: Any,
    fail: Any,
    win32_error: type[BaseException],
    wait_failed: int,
    event_modify_state: int,
    synchronize: int,
    /,
) -> tuple[Any, Any, Any, Any]: ...
def event_set_enabled(flag: bool, /) -> None: ...
def event_wake_without_gil(flag: bool, /) -> bool: ...

# _fastslot.c: the per-socket reusable receive's C fields (docs/plans/receive-slot.md §2)
SLOT_IDLE: int
SLOT_ARMING: int
SLOT_ARMED: int
SLOT_REAPED: int
SLOT_DELIVERING: int
SLOT_DEMOTING_A: int
SLOT_DEMOTING_K: int
SLOT_DEAD: int

class ReceiveSlot:
    index: int
    gen: int
    state: int
    eligible_mode: int
    res: int
    file: Any
    overlapped: Any
    issuer: Any
    view: Any
    ud: Any
    op: Any
    table: Any
    def __init__(self, table: Any = None) -> None: ...
    def pin(self) -> None: ...
    def unpin(self) -> None: ...
    def pending(self) -> int: ...
    @property
    def address(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def pinned(self) -> bool: ...
    @property
    def user_data(self) -> int: ...

class SlotTable:
    items: list[Any]
    free: list[int]
    armed: int
    submitted: int
    done: int
    cancelled: int
