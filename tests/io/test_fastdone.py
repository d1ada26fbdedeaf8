"""The completion side's C accelerator (``_fastdone.c``): ``deliver_batch`` and
``StreamLines.service_direct`` have exactly the effects of their Python references.

Differential (Hypothesis): the same world - files, events, ports with GQCS waiters and direct
waiters, threads, requests in every notification shape - is built twice; the C function runs on
one copy, the Python function on the other, and every slot of every object is compared after
(packets, waiter lists, wait blocks' results and data, threads' wake tokens and APCs, the files'
and issuers' bookkeeping, descriptors released). Then: the hot shapes run no Python frame, and
many deliveries leave nothing behind (references, memory). The socket suites that reach this
path run on both implementations through ``fast_path_impl`` (their ``pytestmark``).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from winaio._backends.uring import reaper as reaper_mod
from winaio._backends.uring.streams import Line, StreamLines
from winaio._io import _accel, _dispatch
from winaio._io._files import FileObject
from winaio._io._ops import FileReadOp, Operation
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._io._stream_ops import StreamReadOp, StreamWriteOp
from winaio._kernel._dispatcher import LOCK, ThreadState, WaitBlock
from winaio._kernel._objects import Event
from winaio.testing import python_frames, require_c_path

C_DONE = reaper_mod._C_DONE


@pytest.fixture(autouse=True)
def _built() -> None:
    require_c_path(C_DONE is not None)


def c_deliver_batch(batch: list[tuple[Operation, int, int]]) -> list[BaseException]:
    assert C_DONE is not None
    result: list[BaseException] = C_DONE[0](batch)
    return result


PY_DELIVER_BATCH = _dispatch.py_deliver_batch


# ---------------------------------------------------------------------- odd classes


class PortSub(CompletionPort):
    """A port class the C code does not know exactly: its Python methods run."""

    __slots__ = ()


class ReadSub(StreamReadOp):
    """A request subclass with a ``__dict__`` (its class attributes read generically)."""


class DoneProperty(StreamWriteOp):
    """``done`` redefined: the attribute protocol, not the slot."""

    __slots__ = ("_d",)

    @property  # type: ignore[override]
    def done(self) -> bool:
        return self._d

    @done.setter
    def done(self, value: bool) -> None:
        self._d = value


class Boom(Exception):
    pass


class RaisingPort(CompletionPort):
    """Its ``_post_locked`` raises an Exception (a bug: collected, the batch goes on)."""

    __slots__ = ()

    def _post_locked(self, key: Any, overlapped: Any, status: int, information: int) -> None:
        raise Boom("post")


# ---------------------------------------------------------------------- the world


@dataclass
class World:
    threads: list[ThreadState] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    ports: list[CompletionPort] = field(default_factory=list)
    files: list[FileObject] = field(default_factory=list)
    ops: list[Operation] = field(default_factory=list)
    ovs: list[Overlapped] = field(default_factory=list)
    wbs: list[WaitBlock] = field(default_factory=list)
    routines: list[Callable[..., None]] = field(default_factory=list)
    batch: list[tuple[Operation, int, int]] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)

    def name(self, kind: str, obj: object) -> None:
        self.names[id(obj)] = f"{kind}{sum(1 for v in self.names.values() if v.startswith(kind))}"


def _routine(*args: Any) -> None:
    pass


OP_CLASSES: list[type[Operation]] = [StreamReadOp, StreamWriteOp, FileReadOp, ReadSub, DoneProperty]
PORT_CLASSES: list[type[CompletionPort]] = [CompletionPort, CompletionPort, CompletionPort, PortSub]

thread_st = st.fixed_dictionaries(
    {"awake": st.booleans(), "wake_pending": st.booleans(), "alive": st.booleans()}
)
port_st = st.fixed_dictionaries(
    {
        "cls": st.integers(0, len(PORT_CLASSES) - 1),
        "concurrency": st.integers(1, 3),
        "closed": st.booleans(),
        "queued": st.integers(0, 2),
        "getters": st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), max_size=3),
        "running": st.lists(st.integers(0, 3), max_size=2),
        "direct_waiters": st.lists(st.integers(0, 3), max_size=2),
    }
)
event_st = st.fixed_dictionaries(
    {
        "manual": st.booleans(),
        "signaled": st.booleans(),
        "waiters": st.lists(st.integers(0, 3), max_size=2),
    }
)
file_st = st.fixed_dictionaries(
    {
        "port": st.one_of(st.none(), st.integers(0, 2)),
        "skip_set_event": st.booleans(),
        "closing": st.booleans(),
        "waiters": st.lists(st.integers(0, 3), max_size=2),
        "key": st.integers(0, 5),
        "skip_success": st.booleans(),
    }
)
op_st = st.fixed_dictionaries(
    {
        "cls": st.integers(0, len(OP_CLASSES) - 1),
        "file": st.integers(0, 2),
        "event": st.one_of(st.none(), st.integers(0, 2)),
        "skip_port": st.booleans(),
        "routine": st.booleans(),
        "issuer": st.integers(0, 3),
        "done": st.booleans(),
        "registered": st.booleans(),
        "sync": st.one_of(st.none(), st.integers(0, 2)),
        "status": st.sampled_from([0, 0, 0, 0xC0000120, 0x80000005]),
        "information": st.integers(0, 1 << 20),
        "twice": st.booleans(),
    }
)
world_st = st.fixed_dictionaries(
    {
        "threads": st.lists(thread_st, min_size=4, max_size=4),
        "ports": st.lists(port_st, min_size=3, max_size=3),
        "events": st.lists(event_st, min_size=3, max_size=3),
        "files": st.lists(file_st, min_size=3, max_size=3),
        "ops": st.lists(op_st, min_size=1, max_size=8),
        "raising_port": st.booleans(),
    }
)


def _wait_on(w: World, ts: ThreadState, obj: Any) -> None:
    if ts.wait is not None:
        return  # a thread blocks in one wait at a time
    wb = WaitBlock(ts, (obj,), False, False)
    obj._waiters[wb] = None
    ts.wait = wb
    w.wbs.append(wb)
    w.name("wb", wb)


def build(spec: dict[str, Any], null_fd: int) -> World:
    """A world from ``spec`` (deterministic: two builds are equal slot for slot)."""
    w = World()
    for i, t in enumerate(spec["threads"]):
        ts = ThreadState(1000 + i, 1000 + i)
        ts.awake_in_wait = t["awake"]
        ts.wake_pending = t["wake_pending"]
        ts.alive = t["alive"]
        w.threads.append(ts)
        w.name("ts", ts)
    for p in spec["ports"]:
        port = PORT_CLASSES[p["cls"]](p["concurrency"])
        w.ports.append(port)
        w.name("port", port)
    if spec["raising_port"]:
        w.ports[2] = RaisingPort(1)
        w.name("port", w.ports[2])
    for i, p in enumerate(spec["ports"]):
        port = w.ports[i]
        for q in range(p["queued"]):
            CompletionPort._post_locked(port, f"old{q}", None, 0, q)
        for t, count in p["getters"]:
            ts = w.threads[t]
            if ts.wait is not None:
                continue
            wb = WaitBlock(ts, (), False, False, port._detach)
            wb.data = count
            port._getters.append(wb)
            ts.wait = wb
            ts.block_listener = port
            w.wbs.append(wb)
            w.name("wb", wb)
        for t in p["running"]:
            port._running.add(w.threads[t])
        for t in p["direct_waiters"]:
            _wait_on(w, w.threads[t], port)
        port.closed = p["closed"]
    for e in spec["events"]:
        ev = Event(e["manual"], e["signaled"])
        w.events.append(ev)
        w.name("ev", ev)
    for e, ev in zip(spec["events"], w.events, strict=True):
        for t in e["waiters"]:
            _wait_on(w, w.threads[t], ev)
    for f in spec["files"]:
        fo = FileObject(os.dup(null_fd), overlapped=True, backend=object())  # type: ignore[arg-type]
        if f["port"] is not None:
            fo.port = w.ports[f["port"]]
            fo.key = f["key"]
        fo.skip_set_event = f["skip_set_event"]
        fo.skip_port_on_success = f.get("skip_success", False)
        fo._signaled = False
        w.files.append(fo)
        w.name("file", fo)
        for t in f["waiters"]:
            _wait_on(w, w.threads[t], fo)
    for o in spec["ops"]:
        cls = OP_CLASSES[o["cls"]]
        op = object.__new__(cls)
        file = w.files[o["file"]]
        event = None if o["event"] is None else w.events[o["event"]]
        ov = Overlapped(0, event, skip_port=o["skip_port"])
        w.ovs.append(ov)
        w.name("ov", ov)
        op.file = file
        op.overlapped = ov
        op.event = event
        op.skip_port = o["skip_port"]
        routine: Callable[..., None] | None = None
        if o["routine"]:
            routine = _routine
        op.routine = routine
        op.issuer = w.threads[o["issuer"]]
        op.done = o["done"]
        op.registered = False
        op.submitted = True
        op.cancel_requested = False
        op.token = None
        op.sync_done = None if o["sync"] is None else w.events[o["sync"]]
        if o["registered"]:
            op.registered = True
            file._pending[op] = None
            if cls.kind is StreamReadOp.kind:
                if cls.poll_events & StreamReadOp.poll_events:
                    file.stream_in += 1
                else:
                    file.stream_out += 1
            op.issuer.extensions.setdefault("io", {})[op] = None
        w.ops.append(op)
        w.name("op", op)
        w.batch.append((op, o["status"], o["information"]))
        if o["twice"]:
            w.batch.append((op, o["status"], o["information"]))
    for f, fo in zip(spec["files"], w.files, strict=True):
        fo.closing = f["closing"]
    return w


def snapshot(w: World, errors: list[BaseException]) -> dict[str, Any]:
    def m(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [m(x) for x in v]
        if isinstance(v, dict):
            return [m(k) for k in v]
        if isinstance(v, set):
            return sorted(m(x) for x in v)
        if id(v) in w.names:
            return w.names[id(v)]
        if v is None or isinstance(v, bool | int | str):
            return v
        if callable(v):
            return "callable"
        return type(v).__name__

    out: dict[str, Any] = {"errors": [type(e).__name__ for e in errors]}
    for ts in w.threads:
        out[m(ts)] = (
            m(ts.wait),
            ts.wake_pending,
            ts.awake_in_wait,
            ts.parker.locked(),  # type: ignore[attr-defined]
            [(m(r), m(a)) for r, a in ts.apcs],
            m(ts.extensions.get("io", {})),
            m(ts.block_listener),
        )
    for port in w.ports:
        out[m(port)] = (
            [m(p) for p in port._packets],
            m(port._getters),
            m(port._running),
            port.holding,
            port.closed,
            m(port._waiters),
        )
    for ev in w.events:
        out[m(ev)] = (ev._signaled, m(ev._waiters))
    for fo in w.files:
        out[m(fo)] = (fo._signaled, m(fo._pending), fo.stream_in, fo.stream_out, fo.fd == -1)
        out[m(fo) + ".waiters"] = m(fo._waiters)
    for op in w.ops:
        out[m(op)] = (op.done, op.registered)
    for ov in w.ovs:
        out[m(ov)] = (ov.status, ov.information)
    for wb in w.wbs:
        out[m(wb)] = (wb.result, m(wb.data), wb.detach is None)
    return out


@pytest.fixture(scope="module")
def null_fd() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_RDONLY)
    yield fd
    os.close(fd)


def _close_world(w: World) -> None:
    for fo in w.files:
        if fo.fd >= 0:
            os.close(fo.fd)
            fo.fd = -1
    for ts in w.threads:
        if ts.parker.locked():  # type: ignore[attr-defined]
            pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=world_st)
def test_c_and_python_deliver_batch_agree(spec: dict[str, Any], null_fd: int) -> None:
    a, b = build(spec, null_fd), build(spec, null_fd)
    assert snapshot(a, []) == snapshot(b, [])
    try:
        errors_c = c_deliver_batch(a.batch)
        errors_py = PY_DELIVER_BATCH(b.batch)
        assert snapshot(a, errors_c) == snapshot(b, errors_py)
        assert all(not p.holding for p in a.ports)
    finally:
        _close_world(a)
        _close_world(b)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=world_st, immediate=st.booleans())
def test_c_and_python_deliver_agree(spec: dict[str, Any], immediate: bool, null_fd: int) -> None:
    """``deliver`` one request at a time (the one-CQE reap; ``immediate``: a request that
    finished inside its call): no port held, so a packet goes straight to the most recent GQCS
    waiter when nothing is queued, and SKIP_COMPLETION_PORT_ON_SUCCESS applies."""
    assert C_DONE is not None
    c_deliver = C_DONE[3]
    a, b = build(spec, null_fd), build(spec, null_fd)
    try:
        for (op_a, status, info), (op_b, _, _) in zip(a.batch, b.batch, strict=True):
            outcome = []
            for deliver, op in ((c_deliver, op_a), (_dispatch.deliver, op_b)):
                try:
                    outcome.append(deliver(op, status, info, immediate))
                except Boom:
                    outcome.append("Boom")
            assert outcome[0] == outcome[1]
            assert snapshot(a, []) == snapshot(b, [])
    finally:
        _close_world(a)
        _close_world(b)


def test_a_base_exception_stops_the_batch_and_releases_every_port(null_fd: int) -> None:
    """A KeyboardInterrupt from a delivery (here a port's ``_post_locked``, where a signal
    handler would raise it) stops the batch after that request, as in Python; every held port
    is released, LOCK too."""

    class Interrupting(CompletionPort):
        __slots__ = ()

        def _post_locked(self, key: Any, overlapped: Any, status: int, information: int) -> None:
            super()._post_locked(key, overlapped, status, information)
            raise KeyboardInterrupt

    def one() -> tuple[World, list[CompletionPort]]:
        spec = {
            "threads": [{"awake": False, "wake_pending": False, "alive": True}] * 4,
            "ports": [
                {
                    "cls": 0,
                    "concurrency": 2,
                    "closed": False,
                    "queued": 0,
                    "getters": [(0, 4)],
                    "running": [],
                    "direct_waiters": [],
                }
            ]
            * 3,
            "events": [{"manual": True, "signaled": False, "waiters": []}] * 3,
            "files": [
                {"port": i, "skip_set_event": True, "closing": False, "waiters": [], "key": i}
                for i in range(3)  # (every file, both shapes)
            ],
            "ops": [
                {
                    "cls": 0,
                    "file": i % 3,
                    "event": None,
                    "skip_port": False,
                    "routine": False,
                    "issuer": 1,
                    "done": False,
                    "registered": True,
                    "sync": None,
                    "status": 0,
                    "information": i,
                    "twice": False,
                }
                for i in range(4)
            ],
            "raising_port": False,
        }
        w = build(spec, null_fd)
        bad = Interrupting(1)
        w.names[id(bad)] = "bad"
        w.files[1].port = bad
        return w, [*w.ports, bad]

    (a, pa), (b, pb) = one(), one()
    try:
        with pytest.raises(KeyboardInterrupt):
            c_deliver_batch(a.batch)
        with pytest.raises(KeyboardInterrupt):
            PY_DELIVER_BATCH(b.batch)
        assert not LOCK.locked()
        # Both write the interrupted request's state whole (its packet and its bookkeeping:
        # the Python one since review8, ``_dispatch._rest``) and agree on every slot.
        assert a.ops[1].done and not a.ops[1].registered
        assert b.ops[1].done and not b.ops[1].registered
        assert snapshot(a, []) == snapshot(b, [])
        assert [p.holding for p in pa] == [False] * 4 == [p.holding for p in pb]
        assert [len(p._packets) for p in pa] == [0, 0, 0, 1]  # op2, op3 never delivered
    finally:
        _close_world(a)
        _close_world(b)


# ---------------------------------------------------------------------- service_direct


class RecordingLines(StreamLines):
    """``service`` records the slow lines (the C and Python ``service_direct`` must route the
    same ones to it, in the same order)."""

    __slots__ = ("calls",)

    def service(self, line: Line, res: int, finished: Any) -> int:
        self.calls.append((line.key, res))
        finished.append((line.key, 7, res))
        return 1


class OtherCqe(StreamReadOp):
    __slots__ = ()

    def from_cqe(self, res: int) -> tuple[int, int]:
        return 0, res


line_st = st.fixed_dictionaries(
    {
        "nops": st.integers(0, 2),
        "direct": st.sampled_from([True, False, 1]),
        "busy": st.booleans(),
        "other_cqe": st.booleans(),
        "in_lines": st.sampled_from(["self", "other", "absent"]),
        "res": st.integers(1, 1 << 16),
    }
)


def build_lines(specs: list[dict[str, Any]], spare: int) -> tuple[RecordingLines, list[Any]]:
    lines = RecordingLines(threading.Lock(), lambda op, line: None)
    lines.calls = []
    lines._spare.extend(Line(-1, -1) for _ in range(spare))
    heads: list[Any] = []
    for i, s in enumerate(specs):
        line = Line(10 + i, 20 + 2 * i)
        for _ in range(s["nops"]):
            op = object.__new__(OtherCqe if s["other_cqe"] else StreamReadOp)
            op.token = i
            line.ops.append(op)
        line.direct = s["direct"]
        line.busy = s["busy"]
        line.poll_ud = 100 + i
        line.keep = object()
        if s["in_lines"] == "self":
            lines.lines[line.key] = line
        elif s["in_lines"] == "other":
            lines.lines[line.key] = Line(0, line.key)
        heads.append((line, s["res"], 100 + i))
    return lines, heads


def lines_snapshot(lines: RecordingLines, heads: list[Any], finished: list[Any]) -> Any:
    def op_name(op: Any) -> Any:
        return ("op", op.token) if isinstance(op, Operation) else op

    return (
        lines.calls,
        [(op_name(a), s, r) for a, s, r in finished],
        sorted((k, v.fd) for k, v in lines.lines.items()),
        [ln.fd for ln in lines._spare],
        [
            (len(ln.ops), ln.poll_ud, ln.direct, ln.keep is None, ln.busy, ln.key)
            for ln, _, _ in heads
        ],
    )


@settings(max_examples=300, deadline=None)
@given(specs=st.lists(line_st, max_size=8), spare=st.sampled_from([0, 3, 63, 64]))
def test_c_and_python_service_direct_agree(specs: list[dict[str, Any]], spare: int) -> None:
    assert C_DONE is not None
    a, ha = build_lines(specs, spare)
    b, hb = build_lines(specs, spare)
    fa: list[Any] = []
    fb: list[Any] = []
    ca = C_DONE[1].__get__(a)(ha, fa)
    cb = reaper_mod._PY_SERVICE_DIRECT(b, hb, fb)
    assert ca == cb
    assert lines_snapshot(a, ha, fa) == lines_snapshot(b, hb, fb)
    assert not a._lock.locked()


# ---------------------------------------------------------------------- hot shape, leaks


def _echo_world(null_fd: int, n: int) -> World:
    """The C=64 echo server's shape: receives on sockets with both skip modes set, on one
    port whose one GQCS waiter is awake in its wait (the leader that reaps)."""
    spec = {
        "threads": [{"awake": True, "wake_pending": False, "alive": True}] * 4,
        "ports": [
            {
                "cls": 0,
                "concurrency": 2,
                "closed": False,
                "queued": 0,
                "getters": [(0, 64)],
                "running": [],
                "direct_waiters": [],
            }
        ]
        * 3,
        "events": [{"manual": True, "signaled": False, "waiters": []}] * 3,
        "files": [
            {"port": 0, "skip_set_event": True, "closing": False, "waiters": [], "key": i}
            for i in range(3)
        ],
        "ops": [
            {
                "cls": 0,
                "file": i % 3,
                "event": None,
                "skip_port": False,
                "routine": False,
                "issuer": 0,
                "done": False,
                "registered": True,
                "sync": None,
                "status": 0,
                "information": 64,
                "twice": False,
            }
            for i in range(n)
        ],
        "raising_port": False,
    }
    return build(spec, null_fd)


def test_the_hot_shapes_run_no_python_frame(null_fd: int) -> None:
    w = _echo_world(null_fd, 8)
    try:
        assert C_DONE is not None
        assert python_frames(partial(C_DONE[0], w.batch)) == set()
        assert len(w.wbs[0].data) == 8  # handed to the waiter in one go
        assert all(op.done and not op.registered for op in w.ops)
    finally:
        _close_world(w)
    lines, heads = build_lines(
        [
            {
                "nops": 1,
                "direct": True,
                "busy": False,
                "other_cqe": False,
                "in_lines": "self",
                "res": 64,
            }
        ]
        * 8,
        0,
    )
    finished: list[Any] = []
    assert C_DONE is not None
    assert python_frames(partial(C_DONE[1].__get__(lines), heads, finished)) == set()
    assert len(finished) == 8 and not lines.calls and not lines.lines


def test_the_installer_switches_both_functions() -> None:
    before = _accel.use(True)
    try:
        assert C_DONE is not None
        assert _dispatch.deliver_batch is C_DONE[0] is reaper_mod.deliver_batch
        assert StreamLines.__dict__["service_direct"] is C_DONE[1]
        _accel.use(False)
        assert _dispatch.deliver_batch is _dispatch.py_deliver_batch is reaper_mod.deliver_batch
        assert StreamLines.__dict__["service_direct"] is reaper_mod._PY_SERVICE_DIRECT
    finally:
        _accel.use(before)


def test_many_deliveries_leave_nothing_behind(null_fd: int) -> None:
    """References and memory: the same objects delivered over and over (re-registered each
    round), packets dequeued each round."""
    w = _echo_world(null_fd, 16)
    port = w.ports[0]
    wb = w.wbs[0]
    ts = w.threads[0]
    tracked = [port, w.files[0], w.ops[0], w.ovs[0], ts, wb, port._packets, port._getters]
    status, information = int("3221225760"), int("1000000000001")  # (not shared constants)
    w.batch = [(op, status, information) for op, _, _ in w.batch]

    def round_trip(one_by_one: bool = False) -> None:
        for op in w.ops:
            op.done = False
            op.registered = True
            op.file._pending[op] = None
            op.file.stream_in += 1
            ts.extensions["io"][op] = None
        if wb not in port._getters:
            port._getters.append(wb)
        wb.data = 64
        wb.result = None
        ts.wait = wb
        port._running.discard(ts)
        if one_by_one:  # the first handed to the waiter, the others queued
            assert C_DONE is not None
            assert all(C_DONE[3](op, s, i) is True for op, s, i in w.batch)
            assert len(wb.data) == 1 and len(port._packets) == 15
            port._packets.clear()
        else:
            assert c_deliver_batch(w.batch) == []
            assert len(wb.data) == 16
        wb.data = None

    try:
        for i in range(50):
            round_trip(i % 2 == 1)
        gc.collect()
        refs = [sys.getrefcount(o) for o in tracked]
        value_refs = sys.getrefcount(status), sys.getrefcount(information)
        tracemalloc.start()
        try:
            for i in range(200):
                round_trip(i % 2 == 1)
            gc.collect()
            first, _ = tracemalloc.get_traced_memory()
            for i in range(2000):
                round_trip(i % 2 == 1)
            gc.collect()
            second, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert [sys.getrefcount(o) for o in tracked] == refs
        assert (sys.getrefcount(status), sys.getrefcount(information)) == value_refs
        assert second - first < 16 * 1024, (first, second)
    finally:
        _close_world(w)


def test_service_direct_leaves_nothing_behind() -> None:
    assert C_DONE is not None
    spec = {"nops": 1, "direct": True, "busy": False, "other_cqe": False, "in_lines": "self"}
    lines, _ = build_lines([], 0)
    method = C_DONE[1].__get__(lines)

    def round_trip() -> None:
        heads = []
        for i in range(16):
            line = lines._spare.pop() if lines._spare else Line(i, 2 * i)
            line.key = 2 * i
            op = object.__new__(StreamReadOp)
            line.ops.append(op)
            line.direct = True
            line.poll_ud = 5
            line.keep = b"k"
            lines.lines[line.key] = line
            heads.append((line, 64, 5))
        finished: list[Any] = []
        assert method(heads, finished) == 0
        assert len(finished) == 16

    for _ in range(50):
        round_trip()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(200):
            round_trip()
        gc.collect()
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(2000):
            round_trip()
        gc.collect()
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert second - first < 16 * 1024, (first, second)
    del spec


# ---------------------------------------------------------------------- Reaper.process


class RecordingReaper(reaper_mod.Reaper):
    """Records its hooks (a migration, the leaders' poke) instead of acting on them."""

    __slots__ = ("events",)


cqe_st = st.fixed_dictionaries(
    {
        "what": st.sampled_from(["file", "file", "line", "line", "unknown", "poke"]),
        "res": st.sampled_from([64, 64, 4096, 1, 0, -11, -104, -125]),
        "cancel_requested": st.booleans(),
        "direct": st.sampled_from([True, True, False]),
        "nops": st.sampled_from([1, 1, 2]),
        "flags": st.sampled_from([0, 0, 2]),
    }
)


def build_reaper(
    specs: list[dict[str, Any]], migrating: bool
) -> tuple[RecordingReaper, list[Any], list[tuple[int, int, int]]]:
    from winaio._backends.uring.common import UD_CANCEL, UD_POKE, InFlight
    from winaio._backends.uring.migration import Migration

    table = InFlight()
    lines = RecordingLines(threading.Lock(), lambda op, line: None)
    lines.calls = []
    migration = Migration()
    events: list[Any] = []
    reaper = RecordingReaper(
        None,  # type: ignore[arg-type]
        table,
        lines,
        migration,
        lambda op, extra: events.append(("migrate", op.token)),
        lambda res: events.append(("poke", res)),
        lambda: events.append(("wake",)),
    )
    reaper.events = events
    cqes: list[tuple[int, int, int]] = []
    for i, s in enumerate(specs):
        ud = 100 + i
        if s["what"] == "unknown":
            cqes.append((UD_CANCEL, s["res"], s["flags"]))
            continue
        if s["what"] == "poke":
            cqes.append((UD_POKE, s["res"], s["flags"]))
            continue
        if s["what"] == "file":
            op: Any = object.__new__(FileReadOp)
            op.nbytes = 4096
            extra: Any = object()
        else:
            op = object.__new__(StreamReadOp)
            line = Line(10 + i, 20 + 2 * i)
            for _ in range(s["nops"]):
                line.ops.append(op)
            line.direct = s["direct"]
            line.poll_ud = ud
            lines.lines[line.key] = line
            extra = line
        op.token = ud
        op.cancel_requested = s["cancel_requested"]
        op.done = False
        table[ud] = (op, extra)
        cqes.append((ud, s["res"], s["flags"]))
        if migrating and i == 0:
            migration.migrating.add(ud)
    return reaper, list(lines.lines.values()), cqes


def reaper_snapshot(reaper: RecordingReaper, lines: list[Line], finished: list[Any]) -> Any:
    streams: Any = reaper._streams
    return (
        sorted(reaper._table),
        [(getattr(op, "token", op), s, r) for op, s, r in finished],
        reaper.done,
        reaper.cancelled,
        reaper.events,
        streams.calls,
        sorted(streams.lines),
        [(len(ln.ops), ln.poll_ud, ln.direct) for ln in lines],
    )


@settings(max_examples=300, deadline=None)
@given(specs=st.lists(cqe_st, max_size=8), migrating=st.booleans())
def test_c_and_python_process_agree(specs: list[dict[str, Any]], migrating: bool) -> None:
    assert C_DONE is not None
    a, la, ca = build_reaper(specs, migrating)
    b, lb, cb = build_reaper(specs, migrating)
    fa: list[Any] = [("earlier", 0, 0)]
    fb: list[Any] = [("earlier", 0, 0)]
    C_DONE[2].__get__(a)(ca, fa)
    reaper_mod._PY_PROCESS(b, cb, fb)
    assert reaper_snapshot(a, la, fa) == reaper_snapshot(b, lb, fb)


def test_the_common_batch_is_mapped_without_a_python_frame() -> None:
    assert C_DONE is not None
    specs = [
        {"what": w, "res": 64, "cancel_requested": False, "direct": True, "nops": 1, "flags": 0}
        for w in ("line", "file", "line", "line")
    ]
    reaper, lines, cqes = build_reaper(specs, False)
    reaper._streams = StreamLines(threading.Lock(), lambda op, line: None)
    for line in lines:
        reaper._streams.lines[line.key] = line
    finished: list[Any] = []
    before = _accel.use(True)
    try:
        assert python_frames(partial(C_DONE[2].__get__(reaper), cqes, finished)) == set()
    finally:
        _accel.use(before)
    assert [op.token for op, _, _ in finished] == [101, 100, 102, 103]
    assert reaper.done == 4 and not reaper._table and not reaper._streams.lines


@settings(max_examples=300, deadline=None)
@given(specs=st.lists(line_st, min_size=1, max_size=1), spare=st.sampled_from([0, 3, 64]))
def test_c_and_python_service_agree(specs: list[dict[str, Any]], spare: int) -> None:
    """``StreamLines.service`` (the one-CQE reap's line): its first case in C, the rest in
    Python (every head's request cancelled here, so the general loop needs no real socket)."""
    assert C_DONE is not None
    specs = [dict(s, nops=min(s["nops"], 1), direct=s["direct"] is True) for s in specs]
    a, ha = build_lines(specs, spare)
    b, hb = build_lines(specs, spare)
    results = []
    for lines, heads, service in (
        (a, ha, C_DONE[4].__get__(a)),
        (b, hb, partial(reaper_mod._PY_SERVICE, b)),
    ):
        for line, _, _ in heads:
            for op in line.ops:
                op.cancel_requested = True
        finished: list[Any] = []
        line, res, _ = heads[0]
        results.append((service(line, res, finished), lines_snapshot(lines, heads, finished)))
    assert results[0] == results[1]


def test_the_one_cqe_shapes_run_no_python_frame(null_fd: int) -> None:
    """The QD1 reap: the line's head taken by ``service``, its packet handed straight to the
    port's GQCS waiter (asleep: its parker is released) by ``deliver``."""
    assert C_DONE is not None
    w = _echo_world(null_fd, 1)
    ts = w.threads[0]
    ts.awake_in_wait = False
    try:
        op, status, information = w.batch[0]
        assert python_frames(partial(C_DONE[3], op, status, information)) == set()
        wb = w.wbs[0]
        assert wb.result == 0 and len(wb.data) == 1 and wb.data[0].overlapped is op.overlapped
        assert ts.wake_pending and not ts.parker.locked()  # type: ignore[attr-defined]
        assert op.done and not op.registered and not w.ports[0]._packets
    finally:
        _close_world(w)
    spec = {"nops": 1, "direct": True, "busy": False, "other_cqe": False, "in_lines": "self"}
    lines, heads = build_lines([dict(spec, res=64)], 0)
    finished: list[Any] = []
    line, res, _ = heads[0]
    assert python_frames(partial(C_DONE[4].__get__(lines), line, res, finished)) == set()
    assert len(finished) == 1 and not lines.lines and lines._spare == [line]


# ---------------------------------------------------------------------- Reaper.deliver


class OwnComplete(StreamReadOp):
    """A request whose class overrides ``complete`` (the caller's to route, op by op)."""

    __slots__ = ()

    def complete(self, status: int, information: int) -> None:
        self.done = True
        self.token = ("completed", status, information)


@pytest.mark.parametrize("impl", ["c", "python"])
def test_reaper_deliver_routes_every_batch_as_the_python_method(
    impl: str, null_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert C_DONE is not None
    method = C_DONE[5] if impl == "c" else reaper_mod._PY_DELIVER_BATCHES
    reaper, _, _ = build_reaper([], False)
    w = _echo_world(null_fd, 3)
    try:
        # the module's deliver_batch, whichever is in place (tests patch it)
        seen: list[int] = []
        monkeypatch.setattr(
            reaper_mod, "deliver_batch", lambda batch: seen.append(len(batch)) or [Boom("x")]
        )
        reported: list[BaseException] = []
        monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_value))
        method(reaper, w.batch)
        assert seen == [3] and len(reported) == 1 and isinstance(reported[0], Boom)
        assert not any(op.done for op in w.ops)
        # a class with its own complete: op by op, through it
        own = object.__new__(OwnComplete)
        own.done = False
        method(reaper, [(own, 5, 6)])
        assert own.token == ("completed", 5, 6) and seen == [3]
        # closing: the closing ring thread is woken first
        reaper.closing = True
        method(reaper, w.batch[:1])
        assert reaper.events == [("wake",)] and seen == [3, 1]
    finally:
        _close_world(w)


def test_reaper_deliver_runs_no_python_frame(null_fd: int) -> None:
    assert C_DONE is not None
    reaper, _, _ = build_reaper([], False)
    w = _echo_world(null_fd, 8)
    before = _accel.use(True)
    try:
        assert python_frames(partial(C_DONE[5], reaper, w.batch)) == set()
        assert all(op.done and not op.registered for op in w.ops)
    finally:
        _accel.use(before)
        _close_world(w)
