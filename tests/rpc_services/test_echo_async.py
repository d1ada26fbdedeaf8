"""rpcecho's asynchronous procedure over loopback: TestSleep is answered from a timer.

No thread waits for a sleeping call (Samba answers it from its event loop; we from timers of
winaio's default thread pool, all served by its one wait thread), other calls go on meanwhile,
and a client cancel ends it with nca_s_fault_cancel.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from winaio import rpc
from winaio.rpc._interfaces import _echo
from winaio.testing import wait_until


def sleep_stub(seconds: int) -> bytes:
    return seconds.to_bytes(4, "little")


def test_many_sleeping_calls_hold_no_thread(served: Any, raw_client: Any) -> None:
    # 50 calls asleep at once: the thread count does not grow with them.
    client = raw_client(served.port, conc_mpx=True)
    threads_before = threading.active_count()
    call_ids = []
    for _ in range(50):
        call_id, data = client.conn.request(0, 6, sleep_stub(1))
        client.send(data)
        call_ids.append(call_id)
    wait_until(lambda: served.server.active_calls == 50, what="50 calls asleep")
    # At most the default pool's wait thread and a worker, however many calls sleep.
    assert threading.active_count() <= threads_before + 2
    events = client.events(50)
    assert sorted(e.call_id for e in events) == call_ids
    assert all(isinstance(e, rpc.ResponseReceived) and e.stub == sleep_stub(1) for e in events)


def test_a_sleeping_call_does_not_block_the_connection(served: Any, raw_client: Any) -> None:
    # spec: rpc #21 (a pending manager does not block other calls on the same connection
    # under CONC_MPX, nor other connections)
    client = raw_client(served.port, conc_mpx=True)
    sleep_id, data = client.conn.request(0, 6, sleep_stub(1))
    client.send(data)
    started = time.monotonic()
    add_id, data = client.conn.request(0, 0, (41).to_bytes(4, "little"))
    client.send(data)
    (first,) = client.events(1)
    assert first.call_id == add_id and first.stub == (42).to_bytes(4, "little")
    assert time.monotonic() - started < 0.5
    other = raw_client(served.port)
    assert other.call("AddOne", in_data=1) == {"out_data": 2}
    (second,) = client.events(1)
    assert second.call_id == sleep_id and time.monotonic() - started >= 0.9


def test_cancel_ends_a_sleeping_call_with_fault_cancel(served: Any, raw_client: Any) -> None:
    # spec: rpc #15 (co_cancel reaches the call), #16 (a manager that aborts on cancel: the
    # client sees RPC_S_CALL_CANCELLED through nca_s_fault_cancel 0x1C00000D)
    client = raw_client(served.port)
    call_id, data = client.conn.request(0, 6, sleep_stub(30))
    client.send(data)
    wait_until(lambda: _echo.pending_sleeps() == 1, what="timer armed")
    client.send(client.conn.cancel(call_id))
    (event,) = client.events(1)
    assert isinstance(event, rpc.FaultReceived)
    assert (event.call_id, event.nca_status, event.status) == (call_id, 0x1C00000D, 1818)
    wait_until(lambda: _echo.pending_sleeps() == 0, what="timer cancelled")
    wait_until(lambda: served.server.active_calls == 0, what="call released")


def test_sleep_longer_than_the_bound_is_refused(served: Any, raw_client: Any) -> None:
    client = raw_client(served.port)
    event = client.call("TestSleep", seconds=10**6)
    assert isinstance(event, rpc.FaultReceived) and event.nca_status == 87
