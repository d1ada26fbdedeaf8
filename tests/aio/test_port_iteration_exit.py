"""Leaving an ``async for packet in port`` early (``break``, an exception, a cancelled task):
the packets the iterator had dequeued in its batch but not yielded yet stay on the port.

The iterator takes up to ``max_count`` packets per GetQueuedCompletionStatusEx and yields them
one by one; a consumer that stopped after the first lost the rest of the batch (dequeued, never
seen by anyone). They go back to the head of the port's queue, in order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import winaio
from winaio import aio


async def _finalised() -> None:
    """Let the loop finalise an abandoned async generator (its ``aclose`` is scheduled by the
    loop's finaliser hook, then run as a task)."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_breaking_out_of_port_iteration_leaves_the_rest_queued(run: Any) -> None:
    port = winaio.CompletionPort()

    async def main() -> list[Any]:
        for i in range(5):
            port.post(i, "k")
        async for packet in port:
            assert packet.bytes_transferred == 0
            break
        await _finalised()
        return [port.get(0) for _ in range(5)]

    rest = run(main())
    assert [p.bytes_transferred if p else None for p in rest] == [1, 2, 3, 4, None]
    port.close()


def test_a_cancelled_consumer_leaves_the_rest_queued(run: Any) -> None:
    port = winaio.CompletionPort()

    async def main() -> list[Any]:
        async with aio.Bridge() as bridge:
            for i in range(4):
                port.post(i, "k")
            first = asyncio.Event()

            async def consume() -> None:
                async for _ in bridge.packets(port):
                    first.set()
                    await asyncio.sleep(10)  # cancelled here, holding the rest of the batch

            task = asyncio.create_task(consume())
            await first.wait()
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            await _finalised()
            return [port.get(0) for _ in range(4)]

    rest = run(main())
    assert [p.bytes_transferred if p else None for p in rest] == [1, 2, 3, None]
    port.close()
