"""The thread backend's own mechanism beyond the contract: a thread about to block in
GetQueuedCompletionStatus runs a lone queued FILE request itself (``_io._backend.IdleWork``)
instead of handing it to a worker and waiting for the worker to hand the completion back.

Pinned without timing: over 200 QD1 writes through a completion port, the waiting thread runs
(nearly) all of them; with a timeout (no inline work: it could overshoot it) the workers do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from winaio._backends._threads import ThreadBackend
from winaio._io._backend import IdleWork
from winaio._io._files import start
from winaio._io._ops import FileWriteOp
from winaio._io._overlapped import STATUS_PENDING, Overlapped
from winaio._io._port import CompletionPort
from winaio.codes import NtStatus

SUCCESS = int(NtStatus.STATUS_SUCCESS)
LONG = 5.0


@pytest.fixture
def backend() -> Iterator[ThreadBackend]:
    b = ThreadBackend(workers=2)
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


def _writes(backend: ThreadBackend, tmp_path: Path, kit: Any, timeout: float | None) -> list[str]:
    f = kit.file(backend, tmp_path / "f")
    port = CompletionPort()
    f.associate(port, "f")
    _Spy.ran_on = []
    for i in range(200):
        op = _Spy(f, Overlapped(64 * i), [memoryview(b"x" * 64)], 64 * i)
        assert start(op) == STATUS_PENDING
        packet = port.get(timeout if timeout is not None else None)
        assert packet is not None and (packet.status, packet.bytes_transferred) == (SUCCESS, 64)
    f.close()
    port.close()
    assert IdleWork.queued == 0
    return _Spy.ran_on


def test_a_port_waiter_runs_a_lone_queued_request_itself(
    backend: ThreadBackend, tmp_path: Path, kit: Any
) -> None:
    ran_on = _writes(backend, tmp_path, kit, None)
    here = threading.current_thread().name
    # A worker woken by the queue needs the GIL, which this thread holds until it blocks in
    # GQCS - where it takes the request first - unless the interpreter switches meanwhile.
    assert ran_on.count(here) >= 180, ran_on


def test_a_waiter_with_a_timeout_leaves_requests_to_the_workers(
    backend: ThreadBackend, tmp_path: Path, kit: Any
) -> None:
    ran_on = _writes(backend, tmp_path, kit, LONG)
    assert all(name.startswith("winaio-io-worker-") for name in ran_on), ran_on
