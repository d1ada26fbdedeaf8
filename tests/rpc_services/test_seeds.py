"""The seeds' scenario (examples/seeds_async_io.py) as a test.

A manager in the MS asynchronous form, entered on a dispatch thread of its own, issues an
overlapped ReadFile (or a WSARecv) on a handle associated with a winaio completion port and
returns. The test waits until that dispatch thread has ended and checks the call is still
pending; only then does the data arrive. A port worker thread dequeues the completion and
completes the RPC call; the client (impacket) receives the data. Beside it the pre-Vista pattern
(an application-managed pool does the I/O) and the failure the seed warns about, shown on
purpose: I/O not bound to a port, issued by a dispatch thread that then exits, is cancelled and
ERROR_OPERATION_ABORTED (995) reaches the client as a fault.
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from impacket.dcerpc.v5 import transport
from impacket.dcerpc.v5.rpcrt import DCERPCException
from impacket.uuid import uuidtup_to_bin

import winaio
import winaio.testing
from winaio.testing import wait_until

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "seeds_async_io.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("seeds_async_io", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


@pytest.fixture(params=["io_uring", "threads"])
def seeds(request: pytest.FixtureRequest) -> Iterator[Any]:
    # The handles keep the I/O backend they were created with: run on both.
    if request.param not in winaio.testing.available_backends():
        pytest.skip(f"{request.param} unavailable here")
    with winaio.testing.using_backend(request.param):
        s = example.SeedsServer()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def dce(seeds: Any) -> Iterator[Any]:
    d = transport.DCERPCTransportFactory(seeds.binding).get_dce_rpc()
    d.connect()
    d.bind(uuidtup_to_bin((str(example.SEEDS.uuid), "1.0")))
    yield d
    d.disconnect()


def start_and_wait_for_dispatch_exit(
    seeds: Any, dce: Any, opnum: int, size: int, *, pending: bool = True
) -> Any:
    before = len(seeds.dispatch.threads)
    dce.call(opnum, size.to_bytes(4, "little"))
    wait_until(lambda: len(seeds.dispatch.threads) == before + 1, what="dispatched")
    thread = seeds.dispatch.threads[-1]
    assert winaio.wait(thread, 10).signaled  # the dispatch thread has ended...
    wait_until(lambda: bool(seeds.log), what="the manager returned")
    if pending:
        assert seeds.server.active_calls == 1  # ...and the call is still pending
    return thread


@pytest.mark.parametrize(
    ("opnum", "feed"), [(0, "feed_pipe"), (1, "feed_socket")], ids=["ReadFile", "WSARecv"]
)
def test_port_bound_io_completes_the_call_after_the_dispatch_thread_ended(
    seeds: Any, dce: Any, opnum: int, feed: str
) -> None:
    # spec: rpc #20 (complete from another thread after the manager returned);
    # spec: win32 #108 (port-bound I/O outlives its issuing thread)
    data = b"arrives after the dispatch thread is gone"
    start_and_wait_for_dispatch_exit(seeds, dce, opnum, len(data))
    getattr(seeds, feed)(data)
    assert dce.recv()[8:] == data
    issued, completed = seeds.log
    assert "issued, manager returns on thread dispatch-" in issued
    assert "port completion dequeued" in completed and "thread port-worker" in completed
    wait_until(lambda: seeds.server.active_calls == 0, what="call released")


def test_pre_vista_pattern_application_pool(seeds: Any, dce: Any) -> None:
    data = b"read by a pool thread the application owns"
    start_and_wait_for_dispatch_exit(seeds, dce, 3, len(data))
    seeds.feed_pool(data)
    assert dce.recv()[8:] == data
    wait_until(lambda: len(seeds.log) == 2, what="pool thread completed")
    assert any("pool thread read the data" in line and "thread winaio-worker-" in line
               for line in seeds.log)  # fmt: skip


def test_unbound_io_dies_with_its_dispatch_thread(seeds: Any, dce: Any) -> None:
    # spec: win32 #109 (I/O not bound to a port is cancelled when its thread exits);
    # spec: rpc #18 (abort(code) -> fault whose status is the code)
    # The exit cancels the read at once: the call is aborted without waiting for data.
    start_and_wait_for_dispatch_exit(seeds, dce, 2, 16, pending=False)
    with pytest.raises(DCERPCException, match="000003e3"):
        dce.recv()  # ERROR_OPERATION_ABORTED, without any data ever being written
    assert any("error 995" in line for line in seeds.log)
    wait_until(lambda: seeds.server.active_calls == 0, what="call released")


def test_the_example_runs() -> None:
    run = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.rstrip().endswith("as the seed says")
