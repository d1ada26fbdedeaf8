"""The C accelerator of the io_uring leader's wait chain (``winaio._io._fastring.c``): each C
function against its Python reference (``BackendRing``'s CQ/SQ primitives, ``Deferral``'s
``take_burst``/``hint_locked``, ``Reaper.reap``'s empty test), on real rings: CQ wrap-around,
the kernel's overflow list, errors, a signal during the wait (EINTR runs the handlers: a
handler's exception surfaces from the call), no Python frame on the hot shapes, no leak.
The uring suites run on both implementations (``fast_path_impl`` in their modules)."""

from __future__ import annotations

import errno
import gc
import os
import signal
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from winaio._backends import uring
from winaio._backends.uring import abi
from winaio._backends.uring import deferral as deferral_mod
from winaio._backends.uring import reaper as reaper_mod
from winaio._backends.uring import ring as ring_mod
from winaio._backends.uring.abi.consts import Feature
from winaio._backends.uring.backlog import Backlog
from winaio._backends.uring.common import InFlight
from winaio._backends.uring.deferral import Deferral
from winaio._backends.uring.migration import Migration
from winaio._backends.uring.ring import BackendRing
from winaio._io import _accel
from winaio._io._backend import IdleWork
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._kernel._threads import current_thread_state
from winaio.errors import Win32Error

PROBE = abi.probe()
REQUIRE = os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0")
pytestmark = [
    pytest.mark.skipif(not PROBE.available, reason=f"io_uring not usable here: {PROBE.reason}"),
    pytest.mark.skipif(
        ring_mod._C_METHODS is None and not REQUIRE,
        reason="the C accelerator (winaio._io._fastio) was not built",
    ),
]

DEADLINE = 5.0


def test_built_under_ci() -> None:
    # WINAIO_REQUIRE_ACCEL=1 (CI): a missing build fails here instead of skipping.
    assert ring_mod._C_METHODS is not None
    assert deferral_mod._C_METHODS is not None and reaper_mod._C_METHODS is not None


def c(name: str) -> Callable[..., Any]:
    assert ring_mod._C_METHODS is not None
    func: Callable[..., Any] = ring_mod._C_METHODS[name]  # type: ignore[assignment]
    return func


def py(name: str) -> Callable[..., Any]:
    func: Callable[..., Any] = ring_mod._PY_METHODS[name]
    return func


@pytest.fixture
def rings() -> Iterator[tuple[BackendRing, BackendRing]]:
    """Two identical small rings (4 SQEs, 8 CQEs): one driven by C, one by Python."""
    a, b = BackendRing(4), BackendRing(4)
    yield a, b
    a.close()
    b.close()


def _submit_nops(ring: BackendRing, uds: list[int], impl: Callable[[str], Callable[..., Any]]):
    for ud in uds:
        ring.prep_nop(ud)
    pending = impl("publish")(ring)
    assert pending == len(uds)
    assert impl("enter")(ring, pending, 0) == pending
    assert impl("sq_ready")(ring) == 0


def _wait_ready(ring: BackendRing, n: int, impl: Callable[[str], Callable[..., Any]]) -> None:
    end = time.monotonic() + DEADLINE
    while impl("cq_ready")(ring) < n:
        assert time.monotonic() < end, "CQEs never came"
        impl("enter_timeout")(ring, 0, 1, 0.05)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(0, 6)), min_size=1, max_size=12))
def test_reap_publish_enter_match_python_across_wrap_around(
    batches: list[tuple[int, int]],
) -> None:
    # Batches of NOPs (1..4 per submit), reaped with a varying max_n (0: everything): the CQ
    # ring (8 entries) wraps many times. Same CQEs, same counts, same heads on both sides.
    a, b = BackendRing(4), BackendRing(4)
    try:
        ud = 1 << 40
        for size, max_n in batches:
            uds = list(range(ud, ud + size))
            ud += size
            for ring, impl in ((a, c), (b, py)):
                _submit_nops(ring, uds, impl)
                _wait_ready(ring, size, impl)
            assert c("cq_ready")(a) == py("cq_ready")(b) == size
            assert c("cq_has_overflow")(a) is py("cq_has_overflow")(b) is False
            args = (max_n,) if max_n else ()
            got_c = c("reap")(a, *args)
            got_py = py("reap")(b, *args)
            assert got_c == got_py
            assert [cqe[0] for cqe in got_c] == uds[: len(got_c)]
            assert all(type(x) is int for cqe in got_c for x in cqe)
            assert a._cq_head == b._cq_head and c("cq_ready")(a) == py("cq_ready")(b)
            # the rest, so that every batch starts from an empty CQ ring
            assert c("reap")(a) == py("reap")(b)
            assert c("reap")(a) == py("reap")(b) == []
            assert a._cq_u32[a._cq_head_i] == a._cq_head
    finally:
        a.close()
        b.close()


def test_reap_takes_the_overflow_list_like_python(rings: tuple[BackendRing, BackendRing]) -> None:
    # 12 NOPs into an 8-entry CQ ring without reaping: the kernel keeps 4 on its overflow list
    # (FEAT_NODROP) and says so in the SQ flags; reap takes the ring's 8, then (the ring empty,
    # the flag set) flushes the list into the ring and takes the rest.
    if not PROBE.features & Feature.IORING_FEAT_NODROP:
        pytest.skip("no IORING_FEAT_NODROP: overflowed CQEs are dropped")
    a, b = rings
    for ring, impl in ((a, c), (b, py)):
        for base in (0, 4, 8):
            _submit_nops(ring, list(range(base + 1, base + 5)), impl)
    assert c("cq_has_overflow")(a) is py("cq_has_overflow")(b) is True
    assert c("cq_ready")(a) == py("cq_ready")(b) == 8
    first_c, first_py = c("reap")(a), py("reap")(b)
    assert first_c == first_py and len(first_c) == 8
    rest_c, rest_py = c("reap")(a), py("reap")(b)
    assert rest_c == rest_py and [cqe[0] for cqe in rest_c] == [9, 10, 11, 12]
    assert c("cq_has_overflow")(a) is False and c("reap")(a) == []


def test_publish_with_dirty_sqes_and_enter_errors_match_python(
    rings: tuple[BackendRing, BackendRing],
) -> None:
    a, b = rings
    # A dirty SQE tail (_sq_dirty) goes to the Python publish, which cleans it.
    for ring, impl in ((a, c), (b, py)):
        ring._sq_dirty.append(ring._sq_tail)
        ring.prep_nop(7)
        assert impl("publish")(ring) == 1
        assert impl("enter")(ring, 1, 1) == 1
        assert impl("reap")(ring) == [(7, 0, 0)]
    assert a._sq_dirty == b._sq_dirty  # (cleaned by the Python _sq_clean, on both)
    # io_uring_enter on something that is not a ring: the same OSError.
    r, w = os.pipe()
    try:
        errors = []
        for ring, impl in ((a, c), (b, py)):
            fd, ring.fd = ring.fd, r
            try:
                with pytest.raises(OSError) as info:
                    impl("enter")(ring, 0, 1)
                errors.append((type(info.value), info.value.errno))
                with pytest.raises(OSError) as info:
                    impl("enter_timeout")(ring, 0, 1, 0.01)
                errors.append((type(info.value), info.value.errno))
            finally:
                ring.fd = fd
        assert errors[:2] == errors[2:] and errors[0][1] == errno.EOPNOTSUPP
    finally:
        os.close(r)
        os.close(w)
    # A timeout that expires (ETIME) returns 0; odd shapes go to Python (same results).
    for ring, impl in ((a, c), (b, py)):
        assert impl("enter_timeout")(ring, 0, 1, 0.001) == 0
        assert impl("enter_timeout")(ring, 0, 1, 0) == 0
        assert impl("enter_timeout")(ring, 0, 1, -1.0) == 0
        with pytest.raises(ValueError):
            impl("enter_timeout")(ring, 0, 1, float("nan"))
        assert impl("reap")(ring, 0) == []


def test_a_closed_ring_raises_like_python(rings: tuple[BackendRing, BackendRing]) -> None:
    a, b = rings
    a.close()
    b.close()
    for name, args in (("cq_ready", ()), ("reap", ()), ("publish", ()), ("sq_ready", ())):
        with pytest.raises(ValueError):
            c(name)(a, *args)
        with pytest.raises(ValueError):
            py(name)(b, *args)


@pytest.mark.parametrize("timed", [False, True])
def test_a_signal_during_the_wait_runs_its_handler(
    rings: tuple[BackendRing, BackendRing], timed: bool
) -> None:
    # The main thread sleeps in io_uring_enter (GIL released); a signal interrupts it (EINTR):
    # the handler runs inside the call, and its exception (Ctrl-C's KeyboardInterrupt, here a
    # RuntimeError) surfaces from it. A handler that returns: the call returns 0, as Python's.
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are handled in the main thread")
    a, _ = rings
    calls: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        calls.append(signum)
        if len(calls) == 1:
            raise RuntimeError("interrupted")

    def wait() -> int:
        if timed:
            return int(c("enter_timeout")(a, 0, 1, DEADLINE))
        return int(c("enter")(a, 0, 1))

    main = threading.main_thread().ident
    assert main is not None
    old = signal.signal(signal.SIGUSR1, handler)
    try:
        for expect_raise in (True, False):
            timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGUSR1))
            timer.start()
            start = time.monotonic()
            try:
                if expect_raise:
                    with pytest.raises(RuntimeError, match="interrupted"):
                        wait()
                else:
                    assert wait() == 0
            finally:
                timer.join()
            assert time.monotonic() - start < DEADLINE / 2  # cut short by the signal
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert calls == [signal.SIGUSR1, signal.SIGUSR1]


# ------------------------------------------------------------------ Deferral


def _deferral(ring: BackendRing) -> tuple[Deferral, Migration, InFlight, Backlog]:
    table, backlog, migration = InFlight(), Backlog(), Migration()
    d = Deferral(
        ring, threading.Lock(), table, backlog, migration,
        lambda ts: False, lambda: False, -1,
    )  # fmt: skip
    return d, migration, table, backlog


def _take(impl: str, ring: BackendRing, uds: list[int], stuck: bool, owned: int) -> Any:
    d, migration, table, backlog = _deferral(ring)
    ts = current_thread_state()
    for ud in uds:
        ring.prep_nop(ud)
        table[ud] = (None, None)  # type: ignore[assignment]
    d.unsubmitted.extend(uds)
    methods = deferral_mod._C_METHODS if impl == "c" else deferral_mod._PY_METHODS
    assert methods is not None
    methods["hint_locked"](d)  # type: ignore[operator]
    hinted = (d.hinted, d in deferral_mod._deferring, IdleWork.deferred)
    backlog.stuck = stuck
    if owned:
        migration.owned[ts] = set(range(-owned, 0))  # completed long ago: pruned
    try:
        got = methods["take_burst"](d, ts)  # type: ignore[operator]
        state = (
            got, hinted, d.hinted, d in deferral_mod._deferring, IdleWork.deferred,
            list(d.unsubmitted), d.enters, {k is ts: v for k, v in migration.owned.items()},
            ring.sq_ready(),
        )  # fmt: skip
    finally:
        d.unsubmitted.clear()
        deferral_mod._PY_METHODS["hint_locked"](d)
        ring.enter(ring.publish(), 0)
        ring.reap()
    return state


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 4), st.booleans(), st.sampled_from([0, 10, 200]))
def test_take_burst_matches_python(n: int, stuck: bool, owned: int) -> None:
    a, b = BackendRing(4), BackendRing(4)
    try:
        uds = list(range(100, 100 + n))
        assert _take("c", a, uds, stuck, owned) == _take("py", b, uds, stuck, owned)
    finally:
        a.close()
        b.close()


def test_a_subclass_that_redefines_a_slot_runs_python(
    rings: tuple[BackendRing, BackendRing],
) -> None:
    # A Deferral subclass whose ``unsubmitted`` is not the slot: its slots are not read
    # directly, the Python method runs (and sees the property).
    looked: list[int] = []

    class Odd(Deferral):
        @property  # type: ignore[misc]
        def unsubmitted(self) -> list[int]:
            looked.append(1)
            return []

    d = Odd.__new__(Odd)
    assert deferral_mod._C_METHODS is not None
    assert deferral_mod._C_METHODS["take_burst"](d, current_thread_state()) == 0  # type: ignore[operator]
    assert looked


# ------------------------------------------------------------------ the hot shapes, leaks


#: The Python functions the accelerator replaces (and those they would call).
REPLACED = {
    "cq_ready", "cq_has_overflow", "sq_ready", "reap", "publish", "enter", "enter_timeout",
    "take_burst", "hint_locked", "own_locked", "acquire", "_wait_as_leader", "enter_or_follow",
    "get_many", "block", "__init__", "current_thread_state",
}  # fmt: skip
#: ... in these modules (a thread's parker lock may be a pool worker's, whose ``acquire`` is
#: Python: called by the C leader as the Python one calls it).
REPLACED_IN = {
    "lead.py", "ring.py", "queue.py", "deferral.py", "reaper.py", "migration.py", "_port.py",
    "_wait.py", "_dispatcher.py", "_threads.py",
}  # fmt: skip


def _python_frames(call: Callable[[], Any]) -> set[str]:
    """The Python functions ``call`` ran (a profile hook sees C calls apart); only the names
    that matter here (another test's gc callback may run meanwhile)."""
    names: set[str] = set()

    def hook(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        if (
            event == "call"
            and code.co_name in REPLACED
            and os.path.basename(code.co_filename) in REPLACED_IN
        ):
            names.add(code.co_name)

    sys.setprofile(hook)
    try:
        call()
    finally:
        sys.setprofile(None)
    return names


def test_the_hot_shapes_run_no_python_frame(rings: tuple[BackendRing, BackendRing]) -> None:
    a, _ = rings
    before = _accel.use(True)
    backend = uring.IoUringBackend()
    try:
        reaper = backend._reaper
        assert _python_frames(reaper.reap) == set()  # the empty CQ ring: C only
        a.prep_nop(1)
        assert _python_frames(lambda: a.enter(a.publish(), 1)) == set()
        assert _python_frames(a.cq_ready) == set()
        assert _python_frames(a.reap) == set()
        d, _, table, _ = _deferral(a)
        a.prep_nop(2)
        table[2] = (None, None)  # type: ignore[assignment]
        d.unsubmitted.append(2)
        ts = current_thread_state()
        assert _python_frames(d.hint_locked) == set() and d.hinted
        assert _python_frames(lambda: d.take_burst(ts)) == set() and not d.hinted
        # Switched off: the Python methods run, on existing leaderships too.
        _accel.use(False)
        assert "reap" in _python_frames(backend._lead.reap)
        assert "take_burst" in _python_frames(lambda: backend._lead.take_burst(ts))
        _accel.use(True)
        assert _python_frames(backend._lead.reap) == set()
    finally:
        backend.close()
        _accel.use(before)


def test_no_leak_over_many_rounds(rings: tuple[BackendRing, BackendRing]) -> None:
    a, _ = rings
    d, _, table, _ = _deferral(a)
    ts = current_thread_state()

    def rounds(n: int) -> None:
        for i in range(n):
            a.prep_nop(i)
            table[i] = (None, None)  # type: ignore[assignment]
            d.unsubmitted.append(i)
            d.hint_locked()
            burst = d.take_burst(ts)
            assert c("enter")(a, burst, 1) == 1
            got = c("reap")(a, 8)
            assert got == [(i, 0, 0)]
            del table[i]
            c("cq_ready")(a), c("cq_has_overflow")(a), c("sq_ready")(a)
            c("enter_timeout")(a, 0, 0, 0.0)

    rounds(200)
    gc.collect()
    tracemalloc.start()
    try:
        first = tracemalloc.take_snapshot()
        rounds(3000)
        gc.collect()
        second = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in second.compare_to(first, "filename"))
    assert grown < 64 * 1024, grown


# ------------------------------------------------------------------ the leader (RingParker.acquire)

PORT_WAIT = {"get_many", "block", "__init__", "current_thread_state"}
LEADER = {"acquire", "_wait_as_leader", "enter_or_follow", "take_burst", "hint_locked",
          "publish", "enter", "cq_ready", "cq_has_overflow", "sq_ready"}  # fmt: skip


def _owned_socket(b: Any, socket_pair: Any, port: Any) -> tuple[Any, Any, bytearray]:
    """A socket on ``b`` whose port waits this thread leads (it owns the ring after one)."""
    s, peer = socket_pair(b)
    s.associate(port, "s")
    buf = bytearray(64)
    assert s.start_read(buf, Overlapped(0)) is False
    peer.sendall(b"x")
    assert port.get(DEADLINE) is not None
    assert b._lead.owner is current_thread_state().parker
    return s, peer, buf


def test_a_port_wait_on_a_pended_receive_leads_the_ring_in_c(
    armed_uring: Any, kit: Any, monkeypatch: pytest.MonkeyPatch, socket_pair: Any
) -> None:
    # The C=1 echo server's wait: the receive deferred to the wait, submitted by its enter,
    # its completion reaped by this thread. The wait chain (GetQueuedCompletionStatusEx, the
    # wait block, the leader, the reap) runs no Python frame of its own (the line's service
    # and the delivery are other modules'); switched off, the Python chain runs.
    b = armed_uring
    port = CompletionPort()
    parked = kit.park(b, monkeypatch)  # nothing but this thread submits or reaps
    before = _accel.use(True)
    try:
        s, peer, buf = _owned_socket(b, socket_pair, port)
        for c_on in (True, False, True):
            _accel.use(c_on)
            for i in range(3):
                assert s.start_read(buf, Overlapped(0)) is False
                assert b._deferral.unsubmitted  # deferred to the wait
                peer.sendall(b"y%d" % i)
                leads, own = b._lead.leads, b._lead.own_wakes
                got: list[Any] = []
                frames = _python_frames(lambda got=got: got.append(port.get_many(64)))  # type: ignore[misc]
                assert got[0][1][0].bytes_transferred == 2 and buf[:2] == b"y%d" % i
                assert b._lead.leads == leads + 1 and b._lead.own_wakes == own + 1
                if c_on:
                    assert not frames, frames
                else:
                    assert {
                        "acquire",
                        "_wait_as_leader",
                        "take_burst",
                        "get_many",
                        "reap",
                    } <= frames
                assert b._lead.waiter is None and not b._deferral.unsubmitted
    finally:
        _accel.use(before)
        parked.release()
        port.close()


def test_a_signal_in_the_c_leaders_wait_surfaces_and_loses_nothing(
    armed_uring: Any, kit: Any, monkeypatch: pytest.MonkeyPatch, socket_pair: Any
) -> None:
    # Ctrl-C while the main thread leads the ring in io_uring_enter (the GIL released): the
    # handler's exception surfaces from GetQueuedCompletionStatus, the wait is unregistered, no
    # waiter is left behind, and the receive (submitted by that enter) completes later.
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are handled in the main thread")
    b = armed_uring
    port = CompletionPort()
    parked = kit.park(b, monkeypatch)
    before = _accel.use(True)
    main = threading.main_thread().ident
    assert main is not None

    def handler(signum: int, frame: Any) -> None:
        raise kit.Interrupted

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        s, peer, buf = _owned_socket(b, socket_pair, port)
        assert s.start_read(buf, Overlapped(0)) is False
        timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGUSR1))
        timer.start()
        try:
            with pytest.raises(kit.Interrupted):
                port.get(DEADLINE * 2)
        finally:
            timer.join()
        assert b._lead.waiter is None and current_thread_state().wait is None
        assert not b._deferral.unsubmitted and b._ring.sq_ready() == 0
        peer.sendall(b"z")
        packet = port.get(DEADLINE)
        assert packet is not None and packet.bytes_transferred == 1 and buf[:1] == b"z"
    finally:
        signal.signal(signal.SIGUSR1, old)
        _accel.use(before)
        parked.release()
        port.close()


def test_a_timed_port_wait_times_out_in_the_c_leader(
    armed_uring: Any, kit: Any, monkeypatch: pytest.MonkeyPatch, socket_pair: Any
) -> None:
    b = armed_uring
    port = CompletionPort()
    parked = kit.park(b, monkeypatch)
    before = _accel.use(True)
    try:
        s, peer, buf = _owned_socket(b, socket_pair, port)
        assert s.start_read(buf, Overlapped(0)) is False
        waits = b._lead.waits
        start = time.monotonic()
        assert port.get(0.1) is None
        assert 0.09 < time.monotonic() - start < DEADLINE
        assert b._lead.waits > waits and b._lead.waiter is None
        peer.sendall(b"t")
        packet = port.get(DEADLINE)
        assert packet is not None and buf[:1] == b"t"
    finally:
        _accel.use(before)
        parked.release()
        port.close()


# ------------------------------------------------------------------ the port wait (get_many)


def _port_run(c_on: bool, queued: int, max_count: int, concurrency: int) -> Any:
    """Packets queued, then one dequeue (no wait): the result and the port's state after."""
    before = _accel.use(c_on)
    try:
        port = CompletionPort(concurrency)
        try:
            assert port.get_many(1, 0) == (258, [])  # (associates this thread: Python)
            for i in range(queued):
                port.post(i, f"k{i}")
            frames = _python_frames(lambda: port.get_many(max_count))
            code, packets = port.get_many(max_count) if queued > max_count else (None, [])
            return (
                sorted(frames), code, [tuple(p) for p in packets], port.queued,
                port.running_threads,
            )  # fmt: skip
        finally:
            port.close()
    finally:
        _accel.use(before)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 2))
def test_get_many_takes_what_is_queued_like_python(queued: int, max_count: int, conc: int) -> None:
    got_c = _port_run(True, queued, max_count, conc)
    got_py = _port_run(False, queued, max_count, conc)
    assert got_c[0] == [] and "get_many" in got_py[0]
    assert got_c[1:] == got_py[1:]


def test_a_blocked_get_is_released_by_a_post_and_by_the_close() -> None:
    # The C wait: registered LIFO, handed a packet by another thread's post, or failed with
    # ERROR_ABANDONED_WAIT_0 by the port's close (the Python continuation, _after_wait).
    before = _accel.use(True)
    try:
        port = CompletionPort()
        assert port.get(0) is None  # associated
        results: list[Any] = []

        def getter() -> None:
            try:
                results.append(port.get())
            except Exception as exc:
                results.append(exc)

        for expect in ("post", "close"):
            t = threading.Thread(target=getter)
            t.start()
            end = time.monotonic() + DEADLINE
            while not port._getters:
                assert time.monotonic() < end
                time.sleep(0.001)
            if expect == "post":
                port.post(5, "five")
            else:
                port.close()
            t.join(DEADLINE)
            assert not t.is_alive()
        first, second = results
        assert first.key == "five" and first.bytes_transferred == 5
        assert isinstance(second, Win32Error) and second.winerror == 735  # ABANDONED_WAIT_0
        assert port.get_many.__class__.__name__ == "builtin_function_or_method"
    finally:
        _accel.use(before)


def test_the_port_wait_leaks_nothing() -> None:
    before = _accel.use(True)
    port = CompletionPort()
    try:
        port.get(0)

        def rounds2(n: int) -> None:
            for i in range(n):
                port.post(i, i)
                port.post(i, i)
                assert len(port.get_many(8)[1]) == 2
                port.post(1, i)
                assert port.get().key == i

        rounds2(200)
        gc.collect()
        tracemalloc.start()
        try:
            first = tracemalloc.take_snapshot()
            rounds2(3000)
            gc.collect()
            second = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        grown = sum(s.size_diff for s in second.compare_to(first, "filename"))
        assert grown < 64 * 1024, grown
    finally:
        port.close()
        _accel.use(before)


# ------------------------------------------------------------------ the reap's QD1 path


@pytest.mark.parametrize("c_on", [True, False])
@pytest.mark.usefixtures("slots_off")  # (the request path: receive slots off)
def test_a_delivery_that_raises_is_reported_and_the_completion_stands(
    c_on: bool, armed_uring: Any, kit: Any, monkeypatch: pytest.MonkeyPatch, socket_pair: Any
) -> None:
    # The QD1 path's ``deliver`` (the module's, looked up at each call) raising an Exception
    # after it delivered: reported as "completing <op>" (``report``), the wait goes on and
    # takes the packet; the same on both implementations.
    b = armed_uring
    port = CompletionPort()
    parked = kit.park(b, monkeypatch)
    before = _accel.use(c_on)
    try:
        s, peer, buf = _owned_socket(b, socket_pair, port)
        reported: list[tuple[str, Any]] = []

        def report(what: str, exc: BaseException | None = None) -> None:
            reported.append((what, type(exc if exc is not None else sys.exception())))

        real = reaper_mod.deliver

        def deliver(op: Any, status: int, res: int) -> bool:
            real(op, status, res)
            raise RuntimeError("a bug after the delivery")

        monkeypatch.setattr(reaper_mod, "report", report)
        monkeypatch.setattr(reaper_mod, "deliver", deliver)
        assert s.start_read(buf, Overlapped(0)) is False
        peer.sendall(b"q")
        packet = port.get(DEADLINE)
        assert packet is not None and buf[:1] == b"q"
        assert len(reported) == 1 and reported[0][1] is RuntimeError
        assert reported[0][0].startswith("completing <")
        monkeypatch.setattr(reaper_mod, "deliver", real)
        assert s.start_read(buf, Overlapped(0)) is False
        peer.sendall(b"r")
        packet = port.get(DEADLINE)
        assert packet is not None and buf[:1] == b"r" and len(reported) == 1
        assert b._reaper.done >= 2 and b._lead.waiter is None
    finally:
        _accel.use(before)
        parked.release()
        port.close()
