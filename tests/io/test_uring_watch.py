"""The ring thread's watch ticks without the GIL (``uring.ringthread.watch_sleep``, its C
accelerator ``_fastwatch.c``; watch): the C function against the Python reference on real
rings, and the ring thread taking over from an owner that went away through it.

``watch_sleep(efd, ring, first, tick, ticks, seen) -> (woken, seen)``: a write to the eventfd
ends it (woken); otherwise it looks at the CQ ring before each further tick as
``OwnerWatch.tick`` (``takeover``) does - empty (``seen`` -1), CQEs under a new head (``seen``
= head, the owner gets a tick), CQEs under the head seen a tick before (returned at once: the
Python watch takes over) - and returns when its ticks are used up. Bad arguments raise
ValueError in both (the C function hands every shape it does not take to the Python one).
Nothing here times anything beyond "it slept through its ticks" (a lower bound).
"""

from __future__ import annotations

import math
import os
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from winaio._backends import uring
from winaio._backends.uring import abi, ringthread
from winaio._backends.uring.ring import BackendRing
from winaio._kernel._wait import wait_for_one
from winaio.testing import nomem_sweep, wait_until

PROBE = abi.probe()
REQUIRE = os.environ.get("WINAIO_REQUIRE_ACCEL", "") not in ("", "0")
IMPLS = ["py"] + (["c"] if ringthread._C_WATCH_SLEEP is not None else [])
pytestmark = pytest.mark.skipif(not PROBE.available, reason=f"io_uring: {PROBE.reason}")
LONG = 5.0
TICK = 0.002


def test_built_under_ci() -> None:
    # WINAIO_REQUIRE_ACCEL=1 (CI): a missing C function fails here (the C rows below need it).
    assert ringthread._C_WATCH_SLEEP is not None or not REQUIRE


def impl(name: str) -> Callable[..., tuple[bool, int]]:
    if name == "c":
        assert ringthread._C_WATCH_SLEEP is not None
        return ringthread._C_WATCH_SLEEP
    return ringthread._PY_WATCH_SLEEP


@pytest.fixture
def ring() -> Iterator[BackendRing]:
    r = BackendRing(4)
    yield r
    r.close()


@pytest.fixture
def efd() -> Iterator[int]:
    fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    yield fd
    os.close(fd)


def _waiting(ring: BackendRing, n: int = 1) -> int:
    """``n`` NOP completions left in the CQ ring (nobody reaps them); returns the CQ head."""
    for i in range(n):
        ring.prep_nop(1000 + i)
    ring.submit(n)
    assert ring.cq_ready() == n
    head: int = ring._cq_u32[ring._cq_head_i]
    return head


@pytest.mark.parametrize("name", IMPLS)
def test_a_written_eventfd_wakes_it_at_once(name: str, ring: BackendRing, efd: int) -> None:
    os.eventfd_write(efd, 1)
    assert impl(name)(efd, ring, LONG, LONG, 5, 7) == (True, 7)  # seen as given
    assert os.eventfd_read(efd) == 1  # (left for the caller's round to read)


@pytest.mark.parametrize("name", IMPLS)
def test_an_empty_ring_is_slept_through_every_tick(name: str, ring: BackendRing, efd: int) -> None:
    began = time.monotonic()
    assert impl(name)(efd, ring, TICK, TICK, 3, 7) == (False, -1)  # nothing waited: -1
    assert time.monotonic() - began >= 4 * TICK - 1e-3
    # No tick to look at: the caller's watch looks at the first one, ``seen`` untouched.
    assert impl(name)(efd, ring, TICK, TICK, 0, 7) == (False, 7)


@pytest.mark.parametrize("name", IMPLS)
def test_cqes_under_an_unmoved_head_end_it_after_one_tick(
    name: str, ring: BackendRing, efd: int
) -> None:
    head = _waiting(ring)
    began = time.monotonic()
    # First look: CQEs under a head not seen before (the owner gets a tick); second look: the
    # same head, so it returns without using its other 98 ticks.
    assert impl(name)(efd, ring, TICK, TICK, 100, -1) == (False, head)
    assert time.monotonic() - began < 50 * TICK  # (not 101 ticks: far from any timing edge)
    # A head other than the one waiting counts as "moved": one more tick, then the same.
    assert impl(name)(efd, ring, TICK, TICK, 100, (head - 1) & 0xFFFFFFFF) == (False, head)
    # Seen a tick before (by the Python watch): returned at the first look.
    assert impl(name)(efd, ring, TICK, TICK, 100, head) == (False, head)
    assert len(ring.reap()) == 1


@pytest.mark.parametrize("name", IMPLS)
def test_a_moving_head_keeps_it_asleep(name: str, ring: BackendRing, efd: int) -> None:
    # Another thread reaps one CQE and leaves the next one for every tick: the head moves
    # between two looks, so it sleeps through all its ticks and reports the last head seen.
    _waiting(ring, 1)
    stop = threading.Event()
    moved: list[int] = []

    def owner() -> None:
        while not stop.is_set():
            ring.prep_nop(2000)
            ring.submit(1)  # two CQEs waiting now
            assert len(ring.reap(1)) == 1  # one reaped: the head moves, one stays
            moved.append(1)
            time.sleep(TICK / 4)

    t = threading.Thread(target=owner)
    t.start()
    try:
        wait_until(lambda: moved, LONG, "the owner runs")
        woken, seen = impl(name)(efd, ring, TICK, 4 * TICK, 5, -1)
    finally:
        stop.set()
        t.join(LONG)
    assert not woken
    # (seen is a head the looks saw; the ring's head has moved on since, or is that one)
    assert seen != -1


@pytest.mark.parametrize("name", IMPLS)
@pytest.mark.parametrize(
    "args",
    [
        (-0.1, TICK, 1, -1),  # negative time
        (TICK, math.nan, 1, -1),  # NaN tick
        (TICK, math.inf, 1, -1),
        (TICK, TICK, -1, -1),  # negative ticks
        (TICK, TICK, 1, -2),  # not a head
        (TICK, TICK, 1, 1 << 32),
    ],
)
def test_bad_arguments_raise_value_error(
    name: str, args: tuple[float, float, int, int], ring: BackendRing, efd: int
) -> None:
    with pytest.raises(ValueError, match="watch_sleep"):
        impl(name)(efd, ring, *args)


@pytest.mark.parametrize("name", IMPLS)
def test_a_closed_ring_raises_and_an_invalid_descriptor_wakes(name: str, efd: int) -> None:
    r = BackendRing(4)
    r.close()
    with pytest.raises(ValueError):  # its views are released: no read of unmapped memory
        impl(name)(efd, r, 0.0, 0.0, 1, -1)
    open_ring = BackendRing(4)
    spare = os.dup(efd)
    os.close(spare)  # a descriptor number that is not open: POLLNVAL, never a hang
    try:
        assert impl(name)(spare, open_ring, LONG, LONG, 3, -1) == (True, -1)
    finally:
        open_ring.close()


@pytest.mark.parametrize("name", IMPLS)
def test_the_ring_thread_takes_over_from_an_owner_that_went_away(
    name: str, armed_uring: uring.IoUringBackend, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The owner leads once, issues a second read and goes away; once that read is in the
    # kernel (its deferred burst submitted by the watch) the ring thread watches it from
    # watch_sleep (a busy owner: a request in flight, nothing deferred). The data then comes:
    # the ticks without the GIL see its CQE wait, return, and the Python watch takes over.
    backend = armed_uring
    real = impl(name)
    returned: list[tuple[bool, int]] = []
    inside = threading.Event()

    def recording(*args: Any) -> tuple[bool, int]:
        inside.set()
        got = real(*args)
        inside.clear()
        returned.append(got)
        return got

    monkeypatch.setattr(ringthread, "_watch_sleep", recording)
    with kit.absent_owner(backend) as (ev, issued, w2):
        wait_until(lambda: issued and not backend._lead.deferred, LONG, "the read submitted")
        wait_until(inside.is_set, LONG, "the ring thread watches without the GIL")
        takeovers, before = backend._lead.watcher.takeovers, len(returned)
        os.write(w2, b"22")
        assert wait_for_one(ev, LONG, False) == 0
        assert issued[0].overlapped.information == 2
        assert backend._lead.watcher.takeovers > takeovers
        # The sleep it was in ended on the waiting CQE (not woken: the eventfd is off while
        # the ring is owned), with its head.
        assert any(not woken and seen >= 0 for woken, seen in returned[before:])
    assert backend._lead.owner is None  # taken over


_NOMEM = textwrap.dedent(
    """
import os, sys, _testcapi
from winaio._io import _accel
_accel.use(True)
from winaio._backends.uring import ringthread
from winaio._backends.uring.ring import BackendRing

c = ringthread._C_WATCH_SLEEP
assert c is not None
ring = BackendRing(4)
efd = os.eventfd(0, os.EFD_NONBLOCK)
for _ in range(300):  # a head past the small ints: returning it allocates
    ring.prep_nop(1)
    ring.submit(1)
    ring.reap()
ring.prep_nop(1)
ring.submit(1)
head = ring._cq_u32[ring._cq_head_i]
bad = set()
failed = 0
for k in range(int(sys.argv[1])):
    for woke in (False, True):
        if woke:
            os.eventfd_write(efd, 1)
        got = raised = None
        _testcapi.set_nomemory(k, k + 1)
        try:
            got = c(efd, ring, 0.001, 0.001, 3, -1)
        except MemoryError as exc:
            raised = exc
            failed += 1
        finally:
            _testcapi.remove_mem_hooks()
        want = (True, -1) if woke else (False, head)
        if raised is None and got != want:
            bad.add(f"{got} != {want}")
        if ring.cq_ready() != 1:
            bad.add("the waiting CQE was touched")
        if woke:
            try:
                os.eventfd_read(efd)
            except BlockingIOError:
                bad.add("the eventfd was read")
if c(efd, ring, 0.001, 0.001, 3, -1) != (False, head):
    bad.add("not itself after the sweep")
if not failed:
    bad.add("no allocation made to fail (the sweep swept nothing)")
print(sorted(bad))
os._exit(0)
    """
)


def test_a_failed_allocation_in_the_c_watch_changes_nothing() -> None:
    # Every allocation of the C function made to fail in turn (a child under the debug
    # allocator): it raises MemoryError or returns the right answer; the CQ ring and the
    # eventfd are left as they were (it only reads them).
    nomem_sweep(_NOMEM, "12")
