"""The C=64 receive's bookkeeping cuts (rslot, issue 9): the reaper's batch of direct STREAM
heads serviced without the ``(line, res, ud)`` list (``_fastprocess.c``'s ``heads_only``), and
the locks' non-blocking try without the clock (``fio_try_lock``).

Differential (Hypothesis): a batch where every CQE is a direct head's is mapped by the C
``Reaper.process`` on one copy of a world and by the Python method with the pure-Python
``service_direct`` on another; the table, the lines, the spares, the results and the counters
must agree. Then: the shape runs no Python frame, an interrupt in the heads' service reaches
``ReaperCuts.heads_cut`` with every head as the Python method hands them, and many batches
leave no reference behind. The socket suites run the whole path on both implementations
(``fast_path_impl``/``sock_impl``).
"""

from __future__ import annotations

import gc
import os
import socket
import sys
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import winaio
from winaio._backends.uring import reaper as reaper_mod
from winaio._backends.uring.common import InFlight
from winaio._backends.uring.migration import Migration
from winaio._backends.uring.reaper_cuts import ReaperCuts
from winaio._backends.uring.streams import Line, StreamLines
from winaio._io import _accel
from winaio._io._netevents import SocketMode
from winaio._io._stream_ops import StreamReadOp
from winaio.codes import WinError

C_DONE = reaper_mod._C_DONE


@pytest.fixture(autouse=True)
def _built() -> None:
    if C_DONE is None:
        if os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0"):
            pytest.fail("WINAIO_REQUIRE_ACCEL=1 but winaio._io._fastio was not built")
        pytest.skip("the C accelerator (winaio._io._fastio) was not built")


@pytest.fixture
def accel_on() -> Iterator[None]:
    before = _accel.use(True)
    try:
        yield
    finally:
        _accel.use(before)


class HeadsCuts(ReaperCuts):
    """Records the cut's hand-off (``heads_cut``) into ``handed``."""

    __slots__ = ("handed",)

    def __init__(self, reaper: reaper_mod.Reaper, handed: list[Any]) -> None:
        super().__init__(reaper, reaper._table, reaper._slots, reaper._streams)
        self.handed = handed

    def heads_cut(self, heads: list[tuple[Line, int, int]], finished: Any) -> None:
        self.handed.append([(line.key, res, ud) for line, res, ud in heads])
        super().heads_cut(heads, finished)


class HeadsReaper(reaper_mod.Reaper):
    """Records the hooks' calls (``events``) and, through its continuations (``HeadsCuts``),
    the cut's hand-off (``handed``)."""

    __slots__ = ("events", "handed")


class SlowLines(StreamLines):
    """``service`` records the lines the batch routes to it (not plain heads)."""

    __slots__ = ("calls",)

    def service(self, line: Line, res: int, finished: Any) -> int:
        self.calls.append((line.key, res))
        finished.append((line.key, 7, res))
        return 1


class InterruptingLock:
    """A lock whose first ``acquire`` raises (a Ctrl-C while the lines' lock is contended)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.armed = True

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt
        return self.lock.acquire(blocking, timeout)

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


head_st = st.fixed_dictionaries(
    {
        "nops": st.sampled_from([1, 1, 1, 2]),
        "busy": st.sampled_from([False, False, True]),
        "in_lines": st.sampled_from(["self", "self", "other", "absent"]),
        "res": st.sampled_from([64, 64, 1, 4096, 65536]),
        # the line's poll_ud: the table key's own int object, or another int of that value
        "same_ud": st.booleans(),
    }
)


def build(
    specs: list[dict[str, Any]], spare: int, lock: Any = None
) -> tuple[HeadsReaper, list[Line], list[tuple[int, int, int]]]:
    """A reaper whose table holds one direct head per spec, and the batch of their CQEs."""
    table = InFlight()
    streams = SlowLines(lock if lock is not None else threading.Lock(), lambda op, line: None)
    streams.calls = []
    streams._spare.extend(Line(-1, -1) for _ in range(spare))
    events: list[Any] = []
    reaper = HeadsReaper(
        None,  # type: ignore[arg-type]
        table,
        streams,
        Migration(),
        lambda op, extra: events.append(("migrate", op)),
        lambda res: events.append(("poke", res)),
        lambda: events.append(("wake",)),
    )
    reaper.events = events
    reaper.handed = []
    reaper.cuts = HeadsCuts(reaper, reaper.handed)
    lines: list[Line] = []
    cqes: list[tuple[int, int, int]] = []
    for i, s in enumerate(specs):
        ud = 100_000 + i  # (not a cached small int: the identity of the key matters)
        line = Line(10 + i, 20 + 2 * i)
        for j in range(s["nops"]):
            op = object.__new__(StreamReadOp)
            op.token = (i, j)  # type: ignore[assignment]
            op.cancel_requested = False
            op.done = False
            line.ops.append(op)
        line.direct = True
        line.busy = s["busy"]
        line.poll_ud = ud if s.get("same_ud", True) else int(str(ud))
        line.keep = object()
        if s["in_lines"] == "self":
            streams.lines[line.key] = line
        elif s["in_lines"] == "other":
            streams.lines[line.key] = Line(0, line.key)
        table[ud] = (line.ops[0], line)
        lines.append(line)
        cqes.append((ud, s["res"], 0))
    return reaper, lines, cqes


def snapshot(reaper: HeadsReaper, lines: list[Line], finished: list[Any]) -> Any:
    streams: Any = reaper._streams
    return (
        sorted(reaper._table),
        [(getattr(op, "token", op), s, r) for op, s, r in finished],
        reaper.done,
        reaper.cancelled,
        reaper.events,
        reaper.handed,
        streams.calls,
        sorted((k, v.fd) for k, v in streams.lines.items()),
        [ln.fd for ln in streams._spare],
        [(len(ln.ops), ln.poll_ud, ln.direct, ln.keep is None) for ln in lines],
    )


def python_process(reaper: HeadsReaper, cqes: Any, finished: list[Any]) -> None:
    """The reference: the Python ``Reaper.process`` with the Python ``service_direct``."""
    before = _accel.use(False)
    try:
        reaper_mod._PY_PROCESS(reaper, cqes, finished)
    finally:
        _accel.use(before)


def c_process(reaper: HeadsReaper, cqes: Any, finished: list[Any]) -> None:
    assert C_DONE is not None
    before = _accel.use(True)
    try:
        C_DONE[2].__get__(reaper)(cqes, finished)
    finally:
        _accel.use(before)


@settings(max_examples=300, deadline=None)
@given(specs=st.lists(head_st, max_size=70), spare=st.sampled_from([0, 3, 63, 64]))
def test_a_batch_of_direct_heads_agrees_with_python(
    specs: list[dict[str, Any]], spare: int
) -> None:
    a, la, ca = build(specs, spare)
    b, lb, cb = build(specs, spare)
    fa: list[Any] = [("earlier", 0, 0)]
    fb: list[Any] = [("earlier", 0, 0)]
    c_process(a, ca, fa)
    python_process(b, cb, fb)
    assert snapshot(a, la, fa) == snapshot(b, lb, fb)


def test_a_batch_of_direct_heads_runs_no_python_frame(accel_on: None) -> None:
    assert C_DONE is not None
    specs = [{"nops": 1, "busy": False, "in_lines": "self", "res": 64}] * 64
    reaper, lines, cqes = build(specs, 0)
    reaper._streams = StreamLines(threading.Lock(), lambda op, line: None)
    for line in lines:
        reaper._streams.lines[line.key] = line
    finished: list[Any] = []
    seen: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            seen.append(frame.f_code.co_qualname)

    gc.collect()
    gc.disable()  # (a collection meanwhile runs callbacks - Hypothesis's - that are frames)
    sys.setprofile(profile)
    try:
        C_DONE[2].__get__(reaper)(cqes, finished)
    finally:
        sys.setprofile(None)
        gc.enable()
    assert seen == []
    assert [op.token for op, _, _ in finished] == [(i, 0) for i in range(64)]
    assert reaper.done == 64 and not reaper._table and not reaper._streams.lines
    assert len(reaper._streams._spare) == 64


@pytest.mark.parametrize("impl", ["c", "python"])
def test_an_interrupt_in_the_heads_service_hands_every_head_to_heads_cut(impl: str) -> None:
    specs = [{"nops": 1, "busy": False, "in_lines": "self", "res": 64 + i} for i in range(3)]
    reaper, lines, cqes = build(specs, 0, InterruptingLock())
    finished: list[Any] = []
    with pytest.raises(KeyboardInterrupt):
        (c_process if impl == "c" else python_process)(reaper, cqes, finished)
    assert reaper.handed == [[(20 + 2 * i, 64 + i, 100_000 + i) for i in range(3)]]
    # heads_cut serviced them (the lock works the second time): every head completed once.
    assert [op.token for op, _, _ in finished] == [(0, 0), (1, 0), (2, 0)]
    assert not reaper._table
    assert [(len(ln.ops), ln.poll_ud) for ln in lines] == [(0, 0)] * 3


def test_the_two_paths_agree_after_an_interrupt() -> None:
    results = []
    for run in (c_process, python_process):
        specs = [{"nops": 1, "busy": False, "in_lines": "self", "res": 9}] * 2
        reaper, lines, cqes = build(specs, 1, InterruptingLock())
        finished: list[Any] = []
        with pytest.raises(KeyboardInterrupt):
            run(reaper, cqes, finished)
        results.append(snapshot(reaper, lines, finished))
    assert results[0] == results[1]


def test_many_batches_leave_no_reference_behind(accel_on: None) -> None:
    specs = [{"nops": 1, "busy": False, "in_lines": "self", "res": 64}] * 64
    run = partial(c_process)

    def once() -> None:
        reaper, _, cqes = build(specs, 3)
        finished: list[Any] = []
        run(reaper, cqes, finished)
        assert len(finished) == 64

    for _ in range(20):
        once()
    gc.collect()
    before = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
    blocks = sys.getallocatedblocks()
    for _ in range(300):
        once()
    gc.collect()
    assert sys.getallocatedblocks() - blocks < 200
    if before is not None:
        assert sys.gettotalrefcount() - before < 200


def test_a_contended_lock_is_still_waited_for(accel_on: None) -> None:
    """``fio_try_lock`` fails on a held lock: the C path then waits in ``acquire``."""
    specs = [{"nops": 1, "busy": False, "in_lines": "self", "res": 64}] * 4
    reaper, _, cqes = build(specs, 0)
    lock = reaper._streams._lock
    lock.acquire()
    finished: list[Any] = []
    worker = threading.Thread(target=c_process, args=(reaper, cqes, finished))
    worker.start()
    worker.join(0.2)
    assert worker.is_alive() and finished == []  # waiting for the lines' lock
    lock.release()
    worker.join(5)
    assert not worker.is_alive() and len(finished) == 4


@pytest.mark.parametrize("same_ud", [True, False])
def test_the_table_entry_goes_whichever_int_object_the_line_holds(same_ud: bool) -> None:
    specs = [{"nops": 1, "busy": False, "in_lines": "self", "res": 64, "same_ud": same_ud}] * 3
    reaper, lines, cqes = build(specs, 0)
    assert all((ln.poll_ud is ud) == same_ud for ln, (ud, _, _) in zip(lines, cqes, strict=True))
    finished: list[Any] = []
    c_process(reaper, cqes, finished)
    assert not reaper._table and len(finished) == 3 and reaper.done == 3


# ---------------------------------------------------------------------- the sockets' issue side


@pytest.fixture(params=["c", "python"])
def impl(request: pytest.FixtureRequest) -> Iterator[str]:
    before = _accel.use(request.param == "c")
    try:
        yield request.param
    finally:
        _accel.use(before)


@pytest.fixture
def connected() -> Iterator[tuple[Any, socket.socket]]:
    listener = socket.create_server(("127.0.0.1", 0))
    peer = socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()
    listener.close()
    conn.setblocking(False)
    file = winaio.Socket(conn.fileno(), overlapped=True, sock=conn)
    port = winaio.CompletionPort(1)
    file.associate(port, "key")
    file.set_completion_modes(True, True)
    try:
        yield file, peer
    finally:
        file.close()
        peer.close()
        port.close()


def test_each_pended_receive_carries_its_own_buffer_size(
    impl: str, connected: tuple[Any, socket.socket]
) -> None:
    """The C path reuses the last size's int: a receive of another size gets its own."""
    file, peer = connected
    port = file.port
    for size in (100, 200, 200, 100, 65536, 100):
        ov = winaio.Overlapped()
        buf = bytearray(size)
        for _ in range(6):  # (past the run of misses: it pends without asking)
            if not file.start_read(buf, ov):
                break
        (op,) = file.pending_ops()
        assert op.nbytes == size and len(op.buffers[0]) == size
        peer.send(b"x")
        packet = port.get(5.0)
        assert packet is not None and packet.overlapped is ov and packet.bytes_transferred == 1


class ShutMode(SocketMode):
    """A SocketMode whose ``shut_rd`` is a property: the C read takes the attribute."""

    __slots__ = ()

    @property  # type: ignore[override]
    def shut_rd(self) -> bool:
        return True

    @shut_rd.setter
    def shut_rd(self, value: bool) -> None:
        pass  # (set by __init__; this mode always says shut)


def test_a_redefined_shut_rd_is_read_as_an_attribute(
    impl: str, connected: tuple[Any, socket.socket]
) -> None:
    file, peer = connected
    peer.send(b"data")
    file.winsock = ShutMode()
    with pytest.raises(winaio.IoError) as info:
        file.start_read(bytearray(8), winaio.Overlapped())
    assert info.value.winerror == WinError.ERROR_BROKEN_PIPE  # (WSAESHUTDOWN in the aliases)
    assert file.pending_requests == 0
