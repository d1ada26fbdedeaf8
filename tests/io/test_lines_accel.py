"""The optional C loop of ``StreamLines.service_direct`` (``_backends/uring/_lines.c``) against
its Python reference (``StreamLines._service_direct_py``), and the socket paths on both.

- Differential (Hypothesis): random batches of heads - plain or not (queued requests behind,
  not direct, busy, a head whose class maps its CQE otherwise), lines still in ``lines`` or
  already replaced, a spare list with or without room - give the same completions, the same
  slow lines, the same line states, ``lines`` and ``spare`` with both loops.
- The lock: taken once and released once; an ``acquire`` that raises (a Ctrl-C while waiting
  for it) leaves everything untouched; a malformed head releases it and propagates.
- No reference leaks: the objects a batch moves keep their counts once the batch is dropped.
- The C=64 echo shape (every receive pended, one reap of many CQEs) through a real io_uring
  backend with either loop: each receive completes once, with its bytes.
"""

from __future__ import annotations

import gc
import os
import socket
import sys
from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import winaio.testing as wt
from winaio._backends.uring import streams
from winaio._backends.uring.streams import Line, StreamLines
from winaio._io._ops import StreamReadOp
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._io._streams import Socket

try:
    from winaio._backends.uring import _lines as accel
except ImportError:  # optional: not built without a C compiler, except where CI requires it
    if os.environ.get("WINAIO_REQUIRE_ACCEL"):
        raise
    pytest.skip("the C loop (_lines.c) was not built", allow_module_level=True)
LONG = 5.0


class PlainOp:
    """A head whose CQE maps as StreamReadOp's (what the loop tests), nothing else."""

    from_cqe = StreamReadOp.from_cqe

    def __init__(self, n: int) -> None:
        self.n = n


class OtherOp(PlainOp):
    from_cqe = staticmethod(lambda res: (0, res))  # type: ignore[assignment]


class CountingLock:
    def __init__(self, fail: bool = False) -> None:
        self.acquired = self.released = 0
        self.fail = fail

    def acquire(self) -> bool:
        if self.fail:
            raise KeyboardInterrupt  # a signal handler's, while waiting for the lock
        self.acquired += 1
        return True

    def release(self) -> None:
        self.released += 1

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


head_specs = st.lists(
    st.tuples(
        st.integers(0, 2),  # requests in the line
        st.booleans(),  # direct
        st.booleans(),  # busy
        st.booleans(),  # head of another class
        st.sampled_from(["mine", "other", "absent"]),  # what ``lines`` holds under its key
        st.integers(1, 4096),  # res
    ),
    max_size=12,
)


def _world(specs: list[Any], spare_room: int) -> tuple[StreamLines, list[Any], list[Any]]:
    sl = StreamLines(CountingLock(), lambda op, line: None)  # type: ignore[arg-type]
    heads: list[tuple[Line, int, int]] = []
    for i, (count, direct, busy, other, held, res) in enumerate(specs):
        line = Line(i, 2 * i)
        for j in range(count):
            line.ops.append((OtherOp if other and j == 0 else PlainOp)(i))  # type: ignore[arg-type]
        line.direct, line.busy, line.poll_ud, line.keep = direct, busy, 100 + i, object()
        if held == "mine":
            sl.lines[line.key] = line
        elif held == "other":
            sl.lines[line.key] = Line(i, 2 * i)
        heads.append((line, res, 100 + i))
    sl._spare.extend(Line(-1, -1) for _ in range(streams._SPARE_MAX - spare_room))
    return sl, heads, list(sl._spare)


def _state(sl: StreamLines, heads: list[Any], finished: list[Any], slow: list[Any]) -> Any:
    def ln(line: Line) -> Any:
        return (line.fd, [op.n for op in line.ops], line.direct, line.busy, line.poll_ud,
                line.keep is None)  # fmt: skip

    return (
        [(op.n, status, res) for op, status, res in finished],
        [(ln(line), res) for line, res in slow],
        [ln(h[0]) for h in heads],
        sorted((k, ln(v), any(v is h[0] for h in heads)) for k, v in sl.lines.items()),
        [ln(x) for x in sl._spare],
        (sl._lock.acquired, sl._lock.released),  # type: ignore[attr-defined]
    )


@settings(max_examples=300, deadline=None)
@given(specs=head_specs, spare_room=st.integers(0, 3))
def test_the_c_loop_does_what_the_python_loop_does(specs: list[Any], spare_room: int) -> None:
    results = []
    for impl in ("py", "c"):
        sl, heads, _ = _world(specs, spare_room)
        finished: list[Any] = [("already", 0, 0)][:0]
        if impl == "py":
            slow = sl._service_direct_py(heads, finished)
        else:
            slow = accel.service_direct(
                sl._lock, sl.lines, sl._spare, streams._SPARE_MAX, heads, finished,
                streams._READ_FROM_CQE, streams._SUCCESS,
            )  # fmt: skip
        results.append(_state(sl, heads, finished, slow))
    assert results[0] == results[1]
    assert results[1][-1] == (1, 1)  # one hold of the lock for the batch


def test_an_interrupted_acquire_touches_nothing() -> None:
    sl, heads, _ = _world([(1, True, False, False, "mine", 64)], 1)
    sl._lock = CountingLock(fail=True)  # type: ignore[assignment]
    finished: list[Any] = []
    with pytest.raises(KeyboardInterrupt):
        accel.service_direct(
            sl._lock, sl.lines, sl._spare, streams._SPARE_MAX, heads, finished,
            streams._READ_FROM_CQE, streams._SUCCESS,
        )  # fmt: skip
    line = heads[0][0]
    assert finished == [] and len(line.ops) == 1 and line.poll_ud == 100 and line.direct
    assert sl.lines[line.key] is line


def test_a_malformed_head_releases_the_lock_and_propagates() -> None:
    sl, heads, _ = _world([(1, True, False, False, "mine", 64)], 1)
    finished: list[Any] = []
    with pytest.raises(TypeError):
        accel.service_direct(
            sl._lock, sl.lines, sl._spare, streams._SPARE_MAX, [*heads, ("bad",)], finished,
            streams._READ_FROM_CQE, streams._SUCCESS,
        )  # fmt: skip
    assert (sl._lock.acquired, sl._lock.released) == (1, 1)  # type: ignore[attr-defined]
    assert len(finished) == 1  # the head before the bad one was completed, as in Python


def _one_batch(ops: list[PlainOp], lines: list[Line], res_values: list[int]) -> None:
    sl = StreamLines(CountingLock(), lambda op, line: None)  # type: ignore[arg-type]
    heads = []
    for line, op, res in zip(lines, ops, res_values, strict=True):
        line.ops = deque([op])  # type: ignore[list-item]
        line.direct, line.busy, line.poll_ud = True, False, 7
        sl.lines[line.key] = line
        heads.append((line, res, 7))
    finished: list[Any] = []
    slow = accel.service_direct(
        sl._lock, sl.lines, sl._spare, streams._SPARE_MAX, heads, finished,
        streams._READ_FROM_CQE, streams._SUCCESS,
    )  # fmt: skip
    assert slow == [] and len(finished) == 64
    assert all(line.ops == deque() for line in lines)


def test_containers_it_does_not_know_are_left_to_the_python_loop() -> None:
    class Spare(list[Any]):
        pass

    sl, heads, _ = _world([(1, True, False, False, "mine", 64)], 1)
    sl._spare = Spare(sl._spare)
    finished: list[Any] = []
    got = accel.service_direct(
        sl._lock, sl.lines, sl._spare, streams._SPARE_MAX, heads, finished,
        streams._READ_FROM_CQE, streams._SUCCESS,
    )  # fmt: skip
    assert got is NotImplemented and finished == [] and len(heads[0][0].ops) == 1
    assert (sl._lock.acquired, sl._lock.released) == (0, 0)  # type: ignore[attr-defined]
    streams.use_accelerator(True)
    try:
        assert sl.service_direct(heads, finished) == 0  # the Python loop took it
    finally:
        streams.use_accelerator(streams.ACCELERATED_BY_DEFAULT)
    assert len(finished) == 1 and heads[0][0] in sl._spare


def test_no_reference_leaks() -> None:
    ops = [PlainOp(i) for i in range(64)]
    lines = [Line(i, 2 * i) for i in range(64)]
    res_values = [1000 + i for i in range(64)]
    before = [sys.getrefcount(x) for x in (*ops, *lines)] + [sys.getrefcount(r) for r in res_values]
    for _ in range(200):
        _one_batch(ops, lines, res_values)
    gc.collect()
    after = [sys.getrefcount(x) for x in (*ops, *lines)] + [sys.getrefcount(r) for r in res_values]
    assert after == before


def test_a_c64_batch_of_pended_receives_completes_each_once(
    service_loop: str, armed_uring: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "io_uring" not in wt.available_backends():
        pytest.skip("io_uring backend unavailable")
    # spec: win32 §6.2 (one packet per completed request)
    batches: list[int] = []
    real = StreamLines.service_direct

    def counted(self: StreamLines, heads: Any, finished: Any) -> int:
        batches.append(len(heads))
        return real(self, heads, finished)

    monkeypatch.setattr(StreamLines, "service_direct", counted)
    port = CompletionPort(1)
    made: list[Any] = []
    try:
        with socket.create_server(("127.0.0.1", 0), backlog=128) as listener:
            conns = []
            for i in range(64):
                peer = socket.create_connection(listener.getsockname(), timeout=LONG)
                sock, _ = listener.accept()
                sock.setblocking(False)
                f = Socket(sock.fileno(), overlapped=True, sock=sock, backend=armed_uring)
                f.set_completion_modes(True, True)
                f.associate(port, i)
                made += [f, peer]
                buf = bytearray(256)
                ov = Overlapped()
                assert f.start_read(buf, ov) is False  # nothing there yet: it pends
                conns.append((peer, buf, ov))
        before = armed_uring._done
        for i, (peer, _, _) in enumerate(conns):
            peer.sendall(bytes([i]) * (i + 1))
        got: dict[int, int] = {}
        while len(got) < 64:
            _, packets = port.get_many(64, LONG)
            assert packets, "a receive did not complete"
            for p in packets:
                assert p.key not in got  # exactly once
                got[p.key] = p.bytes_transferred
        for i, (_, buf, ov) in enumerate(conns):
            assert (
                got[i] == i + 1 and ov.information == i + 1 and buf[: i + 1] == bytes([i]) * (i + 1)
            )
        assert armed_uring._done - before == 64
        assert batches and max(batches) > 1  # the reaps took them in batches (the loop ran)
        assert port.get_many(64, 0)[1] == []
        wt.wait_until(lambda: not armed_uring._streams.lines, LONG, "every line ended")
    finally:
        for thing in made:
            thing.close()
        port.close()
