"""The thread backend's own mechanism beyond the contract: a thread about to block in
GetQueuedCompletionStatus runs a lone queued FILE request itself (``_io._backend.IdleWork``)
instead of handing it to a worker and waiting for the worker to hand the completion back.

Pinned without timing, on a backend with no worker at all (so nothing but the waiting thread
can run a FILE request): 200 QD1 writes through a completion port all run on the thread
waiting in GetQueuedCompletionStatus; a wait with a timeout runs nothing inline (it could
overshoot its timeout) - the request waits for a waiter without one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from winaio._backends._threads import ThreadBackend
from winaio._io._backend import IdleWork
from winaio._io._issue import start
from winaio._io._ops import FileWriteOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPort
from winaio.codes import NtStatus

SUCCESS = int(NtStatus.STATUS_SUCCESS)
LONG = 5.0


@pytest.fixture
def backend() -> Iterator[ThreadBackend]:
    b = ThreadBackend(workers=0)  # only a waiting thread can run a FILE request
    try:
        yield b
    finally:
        b.close()


class _Spy(FileWriteOp):
    __slots__ = ()
    ran_on: ClassVar[list[str]] = []

    def run_blocking(self) -> tuple[int, int]:
        self.ran_on.append(threading.current_thread().name)
        return super().run_blocking()


def test_a_port_waiter_runs_a_lone_queued_request_itself(
    backend: ThreadBackend, tmp_path: Path, kit: Any
) -> None:
    f = kit.file(backend, tmp_path / "f")
    port = CompletionPort()
    f.associate(port, "f")
    _Spy.ran_on = []
    for i in range(200):
        op = _Spy(f, Overlapped(64 * i), [memoryview(b"x" * 64)], 64 * i)
        assert start(op) == STATUS_PENDING
        packet = port.get(None)
        assert packet is not None and (packet.status, packet.bytes_transferred) == (SUCCESS, 64)
    assert _Spy.ran_on == [threading.current_thread().name] * 200
    assert IdleWork.queued == 0
    f.close()
    port.close()


def test_a_waiter_with_a_timeout_runs_nothing_inline(
    backend: ThreadBackend, tmp_path: Path, kit: Any
) -> None:
    f = kit.file(backend, tmp_path / "f")
    port = CompletionPort()
    f.associate(port, "f")
    _Spy.ran_on = []
    op = _Spy(f, Overlapped(0), [memoryview(b"y" * 64)], 0)
    assert start(op) == STATUS_PENDING
    assert port.get(0.05) is None and _Spy.ran_on == []
    packet = port.get(None)  # without a timeout: this thread runs it
    assert packet is not None and packet.status == SUCCESS and len(_Spy.ran_on) == 1
    f.close()
    port.close()
