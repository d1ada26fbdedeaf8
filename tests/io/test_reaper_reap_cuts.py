"""The Python reaper's ``reap`` under an interrupt once its CQEs left the CQ ring (recv, issue 9;
the gaps tidy3 left, docs/design.md "The backend's receive side and the reaper's cuts as owned
objects").

``Reaper.reap`` takes the CQEs off the CQ ring (``ring.reap``: the head is advanced, nobody
else will ever see them), then either delivers the one CQE of a QD1 read itself or hands the
batch to ``_batch_locked``. A signal handler's exception (KeyboardInterrupt) raised between the
two - at the return of ``len`` or of the table's ``get`` in the one-CQE test, or at
``_batch_locked``'s entry - used to leave the CQEs in no one's hands: their requests never
completed (a socket's receive pending for ever, its close waiting for a CQE that was gone).

Swept (``winaio.testing.Sweep``: a callee's entry, a C call's return in ``reap``'s and
``_batch_locked``'s frames, one interrupt per run) on a backend whose ring thread is parked
(nothing but the test reaps), with the accelerators off (the Python reaper), for one receive
(the one-CQE path) and three (a batch), as requests and on the Python receive slot: wherever
the interrupt lands, every receive completes once with its bytes (the next wait reaps what the
cut left in the ring), and no lock is left held.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from winaio._backends import uring
from winaio._backends.uring import reaper as reaper_mod
from winaio._io._overlapped import Overlapped
from winaio._io._port import CompletionPort
from winaio._io._sockets import Socket
from winaio._kernel._threads import current_thread_state
from winaio.codes import NtStatus
from winaio.testing import (
    Sweep,
    accelerator_for_test,
    connected_pair,
    left_behind,
    profiled,
    sweep_cut_points,
    wait_until,
)

OK, REASON = uring.probe_backend()
pytestmark = pytest.mark.skipif(not OK, reason=f"io_uring backend unavailable: {REASON}")

SUCCESS = int(NtStatus.STATUS_SUCCESS)
LONG = 5.0
#: The frames swept: the Python ``reap`` and the batch path it hands CQEs to.
CODES = {reaper_mod._PY_REAP.__code__, reaper_mod.Reaper._batch_locked.__code__}


@pytest.fixture
def backend() -> Iterator[uring.IoUringBackend]:
    """A backend without COOP_TASKRUN (a completion is in the CQ ring as soon as the data is
    there: the test waits for it there), its leaders' poke armed."""
    b = uring.IoUringBackend(64, coop=False)
    wait_until(lambda: not b._lead.closed, LONG, "the leaders' poke is armed")
    try:
        yield b
    finally:
        b.close()


def _pair(b: uring.IoUringBackend, port: CompletionPort, key: int) -> tuple[Socket, socket.socket]:
    return connected_pair(b, port, key, LONG)


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("slot_impl", ["off", "py"], indirect=True)
@pytest.mark.usefixtures("slot_impl")
def test_an_interrupt_once_reap_took_the_cqes_loses_no_receive(
    backend: uring.IoUringBackend,
    parked_port: Callable[[Any], CompletionPort],
    n: int,
) -> None:
    port = parked_port(backend)  # nothing but this thread reaps
    ring = backend._ring
    made: list[tuple[Socket, socket.socket]] = []
    with accelerator_for_test("python"):

        def run(k: int) -> tuple[Sweep, list[str]]:
            pairs = [_pair(backend, port, len(made) + i) for i in range(n)]
            made.extend(pairs)
            ovs: list[Overlapped] = []
            bufs: list[bytearray] = []
            for s, _ in pairs:
                ovs.append(Overlapped())
                bufs.append(bytearray(16))
                assert s.start_read(bufs[-1], ovs[-1]) is False
            for i, (_, peer) in enumerate(pairs):
                peer.sendall(bytes([65 + i]) * (i + 3))
            # (this thread owns the ring after its first wait: its receives were deferred to
            # its next wait; submitted now, so that the reap under the sweep finds them)
            backend._deferral.flush(current_thread_state())
            wait_until(lambda: ring.cq_ready() >= n, LONG, "the receives complete")
            sweep = Sweep(k, CODES)
            profiled(sweep, backend._reaper.reap)
            bad = left_behind(
                port, locks={"the CQ lock": backend._reaper.cq_lock, "the lock": backend._lock}
            )
            # The next wait (this thread leads the ring) reaps whatever the cut left there.
            got = {}
            for _ in range(n):
                packet = port.get(2.0)
                if packet is None:
                    bad.append(f"{n - len(got)} of {n} receives never completed")
                    break
                got[id(packet.overlapped)] = (packet.status, packet.bytes_transferred)
            if port.get(0) is not None:
                bad.append("a receive completed twice")
            expected = {id(ov): (SUCCESS, i + 3) for i, ov in enumerate(ovs)}
            if got and got != expected:
                bad.append(f"completed {sorted(got.values())}, not {sorted(expected.values())}")
            for i, buf in enumerate(bufs):
                if id(ovs[i]) in got and bytes(buf[: i + 3]) != bytes([65 + i]) * (i + 3):
                    bad.append(f"receive {i}'s bytes {bytes(buf)!r}")
            return sweep, bad

        try:
            assert sweep_cut_points(run, at_least=3) == {}
        finally:
            for s, peer in made:
                s.close()
                peer.close()
