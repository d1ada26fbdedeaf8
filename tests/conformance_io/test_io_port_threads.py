"""Win32 I/O conformance: completion ports and threads (behaviours 92-96; spec §6.6-§6.8).

All threads are created with CreateThread; "blocked" is established with
``winaio.testing.wait_until_blocked`` / ``wait_until_waiters`` (a thread blocked in
GetQueuedCompletionStatus counts as blocked).

Wine: nt/sync.c test_completion_port_scheduling; MS: I/O Completion Ports,
GetQueuedCompletionStatus.
"""

from __future__ import annotations

import os
import threading

import pytest

import winaio.win32 as w

SENTINEL = 0xDEADBEEF
SHORT = 100
LONG = 5000


def test_gqcs_waiters_released_lifo(io, testing) -> None:
    # spec: win32 #92 [W:nt/sync.c:test_completion_port_scheduling]
    port = io.port(concurrency=8)  # not limited by the CPU count
    got: dict = {}

    def waiter(tag: str):
        def body() -> None:
            got[tag] = io.gqcs(port, LONG)

        return body

    t1 = io.thread(waiter("T1"))
    testing.wait_until_blocked(t1.tid)
    t2 = io.thread(waiter("T2"))
    testing.wait_until_blocked(t2.tid)
    for key in (3, 4, 5):
        assert w.PostQueuedCompletionStatus(port, 0, key, None)
    t1.join()
    t2.join()
    assert got["T2"].ok and got["T2"].key == 3  # the most recent waiter gets the oldest packet
    assert got["T1"].ok and got["T1"].key == 4
    pk = io.gqcs(port, LONG)
    assert pk.ok is True
    assert pk.key == 5


def test_gqcs_waiters_released_lifo_three(io, testing) -> None:
    # spec: win32 #92, §6.6 (LIFO over three waiters, FIFO packets)
    port = io.port(concurrency=8)
    got: dict = {}
    workers = []
    for tag in ("A", "B", "C"):

        def body(tag: str = tag) -> None:
            got[tag] = io.gqcs(port, LONG).key

        t = io.thread(body)
        testing.wait_until_blocked(t.tid)
        workers.append(t)
    for key in (10, 11, 12):
        assert w.PostQueuedCompletionStatus(port, 0, key, None)
    for t in workers:
        t.join()
    assert got == {"C": 10, "B": 11, "A": 12}


def test_direct_waits_on_port_all_wake_and_packet_stays(io, testing) -> None:
    # spec: win32 #93 [W:nt/sync.c:test_completion_port_scheduling]
    port = io.port()
    assert w.WaitForSingleObject(port, 0) == w.WAIT_TIMEOUT  # empty: nonsignaled
    res: list = []

    def body() -> None:
        res.append(w.WaitForSingleObject(port, LONG))

    ta, tb = io.thread(body), io.thread(body)
    testing.wait_until_waiters(port, 2)
    assert w.PostQueuedCompletionStatus(port, 0, 1, None)
    ta.join()
    tb.join()
    assert res == [w.WAIT_OBJECT_0, w.WAIT_OBJECT_0]
    # waiting on a port never dequeues
    assert w.WaitForSingleObject(port, 0) == w.WAIT_OBJECT_0
    assert w.WaitForSingleObject(port, 0) == w.WAIT_OBJECT_0
    pk = io.gqcs(port, 0)
    assert (pk.ok, pk.key, pk.overlapped) == (True, 1, None)
    assert w.WaitForSingleObject(port, 0) == w.WAIT_TIMEOUT


def test_packet_goes_to_gqcs_not_to_direct_waiter(io, testing) -> None:
    # spec: win32 #94 [W:nt/sync.c:test_completion_port_scheduling]
    port = io.port(concurrency=8)
    gq: list = []
    wf: list = []

    t1 = io.thread(lambda: gq.append(io.gqcs(port, LONG)))
    testing.wait_until_blocked(t1.tid)
    t2 = io.thread(lambda: wf.append(w.WaitForSingleObject(port, 300)))
    testing.wait_until_blocked(t2.tid)
    assert w.PostQueuedCompletionStatus(port, 0, 2, None)
    t1.join()
    t2.join()
    assert len(gq) == 1
    assert gq[0].ok is True
    assert gq[0].key == 2
    assert wf == [w.WAIT_TIMEOUT]
    io.no_packet(port, 0)


def test_closing_port_releases_all_waiters(io, testing) -> None:
    # spec: win32 #95 [W:nt/sync.c:test_completion_port_scheduling]
    port = io.port()
    out: dict = {}

    def gqcs() -> None:
        out["gqcs"] = io.gqcs(port, LONG)

    def gqcs_ex() -> None:
        entries = [w.OVERLAPPED_ENTRY()]
        removed = w.Ref(SENTINEL)
        w.SetLastError(SENTINEL)
        ok = w.GetQueuedCompletionStatusEx(port, entries, 1, removed, LONG, True)
        out["gqcs_ex"] = (ok, w.GetLastError())

    def direct() -> None:
        out["wait"] = w.WaitForSingleObject(port, LONG)

    def nt_remove() -> None:
        key, value = w.Ref(SENTINEL), w.Ref(SENTINEL)
        iosb = w.IO_STATUS_BLOCK()
        out["nt"] = w.NtRemoveIoCompletion(port, key, value, iosb, -50_000_000)

    workers = [io.thread(f) for f in (gqcs, gqcs_ex, direct, nt_remove)]
    for t in workers:
        testing.wait_until_blocked(t.tid)
    io.close(port)
    for t in workers:
        t.join()
    pk = out["gqcs"]
    assert pk.ok is False
    assert pk.error == w.ERROR_ABANDONED_WAIT_0 == 735
    assert pk.overlapped is None
    assert out["gqcs_ex"] == (False, w.ERROR_ABANDONED_WAIT_0)
    assert out["wait"] == w.WAIT_OBJECT_0
    assert out["nt"] == w.STATUS_ABANDONED_WAIT_0


def test_closing_empty_port_wakes_direct_waiter(io, testing) -> None:
    # spec: win32 #95, §1.2 (a port is "signaled" when closed, even if it was empty)
    port = io.port()
    res: list = []
    t = io.thread(lambda: res.append(w.WaitForSingleObject(port, LONG)))
    testing.wait_until_waiters(port, 1)
    io.close(port)
    t.join()
    assert res == [w.WAIT_OBJECT_0]


@pytest.mark.parametrize("concurrency", [1, 2])
def test_concurrency_limit_holds_packets_while_a_thread_runs(io, testing, concurrency) -> None:
    # spec: win32 #96 [MS:I/O Completion Ports] (concurrency 2: the contrast)
    port = io.port(concurrency=concurrency)
    a_got = threading.Event()  # plain Python sync: invisible to the kernel, A keeps "running"
    a_go = threading.Event()
    block = io.event()
    results: dict = {}

    def a_body() -> None:
        results["a1"] = io.gqcs(port, LONG)
        a_got.set()
        a_go.wait(10)  # running, as far as the port is concerned
        results["a_wait"] = w.WaitForSingleObject(block, LONG)  # blocks elsewhere

    def b_body() -> None:
        results["b"] = io.gqcs(port, LONG)

    io.on_cleanup(a_go.set)
    io.on_cleanup(lambda: w.SetEvent(block))
    a = io.thread(a_body)
    testing.wait_until_blocked(a.tid)
    assert w.PostQueuedCompletionStatus(port, 0, 1, None)
    assert a_got.wait(5)
    assert results["a1"].key == 1
    b = io.thread(b_body)
    testing.wait_until_blocked(b.tid)
    assert w.PostQueuedCompletionStatus(port, 0, 2, None)
    depth = w.Ref(SENTINEL)
    if concurrency == 1:
        assert b.is_running(SHORT)  # B is not released while A runs
        assert "b" not in results
        assert w.NtQueryIoCompletion(port, depth) == 0
        assert depth.value == 1  # the packet is still queued
        a_go.set()  # A now blocks in WaitForSingleObject: running(P) drops to 0
        b.join()
    else:
        b.join()  # one running thread < 2: B is released at once
        a_go.set()
    assert results["b"].ok is True
    assert results["b"].key == 2
    assert w.NtQueryIoCompletion(port, depth) == 0
    assert depth.value == 0
    assert w.SetEvent(block)
    a.join()
    assert results["a_wait"] == w.WAIT_OBJECT_0


def test_concurrency_slot_freed_when_running_thread_exits(io, testing) -> None:
    # spec: win32 #96, §8 (thread exit removes the thread's running(P) contribution)
    port = io.port(concurrency=1)
    a_got = threading.Event()
    a_go = threading.Event()
    results: dict = {}

    def a_body() -> None:
        results["a"] = io.gqcs(port, LONG)
        a_got.set()
        a_go.wait(10)

    def b_body() -> None:
        results["b"] = io.gqcs(port, LONG)

    io.on_cleanup(a_go.set)
    a = io.thread(a_body)
    testing.wait_until_blocked(a.tid)
    assert w.PostQueuedCompletionStatus(port, 0, 1, None)
    assert a_got.wait(5)
    b = io.thread(b_body)
    testing.wait_until_blocked(b.tid)
    assert w.PostQueuedCompletionStatus(port, 0, 2, None)
    assert b.is_running(SHORT)
    a_go.set()  # A returns: its thread ends
    a.join()
    b.join()
    assert results["b"].key == 2


def test_concurrency_thread_reentering_gqcs_gets_or_releases(io, testing) -> None:
    # spec: win32 #96 ("until it re-enters GQCS": the queued packet is then delivered, either
    # to the re-entering thread or to the other waiter)
    port = io.port(concurrency=1)
    a_got = threading.Event()
    a_go = threading.Event()
    results: dict = {}

    def a_body() -> None:
        results["a1"] = io.gqcs(port, LONG)
        a_got.set()
        a_go.wait(10)
        results["a2"] = io.gqcs(port, LONG)

    def b_body() -> None:
        results["b"] = io.gqcs(port, LONG)

    io.on_cleanup(a_go.set)
    a = io.thread(a_body)
    testing.wait_until_blocked(a.tid)
    assert w.PostQueuedCompletionStatus(port, 0, 1, None)
    assert a_got.wait(5)
    b = io.thread(b_body)
    testing.wait_until_blocked(b.tid)
    assert w.PostQueuedCompletionStatus(port, 0, 2, None)
    assert b.is_running(SHORT)
    a_go.set()
    testing.wait_until(lambda: "a2" in results or "b" in results, 5.0, "packet 2 delivered")
    assert w.PostQueuedCompletionStatus(port, 0, 3, None)  # releases the other one
    a.join()
    b.join()
    assert sorted([results["a2"].key, results["b"].key]) == [2, 3]


def test_concurrency_slot_freed_by_blocking_synchronous_io(io, testing) -> None:
    # spec: win32 #96, §6.7 (an associated thread blocked in synchronous I/O does not count as
    # running, so another waiter is released)
    port = io.port(concurrency=1)
    sync_server, sync_client = io.pipe(server_overlapped=False, client_overlapped=False)
    results: dict = {}

    def a_body() -> None:
        results["a"] = io.gqcs(port, LONG)
        n = w.Ref(SENTINEL)
        buf = bytearray(4)
        ok = w.ReadFile(sync_server, buf, 4, n, None)  # blocks: synchronous I/O
        results["a_read"] = (ok, bytes(buf[: n.value]))

    def b_body() -> None:
        results["b"] = io.gqcs(port, LONG)

    a = io.thread(a_body)
    testing.wait_until_blocked(a.tid)
    assert w.PostQueuedCompletionStatus(port, 0, 1, None)
    testing.wait_until(lambda: "a" in results, 5.0, "A dequeued packet 1")
    testing.wait_until_blocked(a.tid)  # now in the synchronous read
    b = io.thread(b_body)
    assert w.PostQueuedCompletionStatus(port, 0, 2, None)
    b.join()
    assert results["b"].key == 2
    n = w.Ref(SENTINEL)
    assert w.WriteFile(sync_client, b"wake", 4, n, None) is True
    a.join()
    assert results["a_read"] == (True, b"wake")


def test_gqcs_ex_waiter_receives_several_packets(io, testing) -> None:
    # spec: win32 §6.5 (a blocked GQCSEx caller dequeues up to count packets)
    port = io.port(concurrency=8)
    out: list = []

    def body() -> None:
        entries = [w.OVERLAPPED_ENTRY() for _ in range(4)]
        removed = w.Ref(SENTINEL)
        ok = w.GetQueuedCompletionStatusEx(port, entries, 4, removed, LONG, False)
        out.append((ok, [e.lpCompletionKey for e in entries[: removed.value]]))

    t = io.thread(body)
    testing.wait_until_blocked(t.tid)
    assert w.PostQueuedCompletionStatus(port, 0, 1, None)
    t.join()
    assert out == [(True, [1])]
    for k in (2, 3, 4):
        assert w.PostQueuedCompletionStatus(port, 0, k, None)
    t2 = io.thread(body)
    t2.join()
    assert out[1] == (True, [2, 3, 4])


def test_default_concurrency_is_processor_count(io, testing) -> None:
    # spec: win32 §6.1 (NumberOfConcurrentThreads 0 -> concurrency = number of processors)
    ncpu = os.cpu_count() or 1
    port = io.port(concurrency=0)
    go = threading.Event()
    io.on_cleanup(go.set)
    got: list = []

    def runner() -> None:
        got.append(io.gqcs(port, LONG).key)
        go.wait(10)  # keeps running as far as the port is concerned

    for i in range(ncpu):
        t = io.thread(runner)
        testing.wait_until_blocked(t.tid)
        assert w.PostQueuedCompletionStatus(port, 0, i, None)
        testing.wait_until(lambda i=i: len(got) == i + 1, 5.0, f"runner {i} released")
    extra: list = []
    e = io.thread(lambda: extra.append(io.gqcs(port, LONG)))
    testing.wait_until_blocked(e.tid)
    assert w.PostQueuedCompletionStatus(port, 0, 99, None)
    assert e.is_running(SHORT)  # ncpu threads run: the packet stays queued
    assert extra == []
    go.set()
    e.join()
    assert extra[0].key == 99
    assert sorted(got) == list(range(ncpu))
