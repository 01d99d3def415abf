"""The concurrent renders of one Avatar replica (`max_streams`): a stream takes a slot or is
refused at once (429 + Retry-After); an async job waits for one, first come first served.
Used from the replica's event loop only."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.common.errors import ResourceExhausted

#: What a busy replica tells clients to wait before retrying (seconds): about one short render.
BUSY_RETRY_AFTER_S = 5


class StreamSlots:
    def __init__(self, n: int) -> None:
        self.n = n
        self.active = 0
        self._waiters: deque[asyncio.Future] = deque()

    @property
    def waiting(self) -> int:
        return sum(not f.done() for f in self._waiters)

    @asynccontextmanager
    async def take(self) -> AsyncIterator[None]:
        """A slot now, or ResourceExhausted (retryable)."""
        if self.active >= self.n:
            raise ResourceExhausted(f"this replica is serving its limit of {self.n} streams; "
                                    f"retry in {BUSY_RETRY_AFTER_S} s", retry_after_s=BUSY_RETRY_AFTER_S)
        self.active += 1
        try:
            yield
        finally:
            self._release()

    @asynccontextmanager
    async def wait(self) -> AsyncIterator[None]:
        """A slot once one is free (FIFO); cancelling the wait gives up its place."""
        if self.active < self.n and not self.waiting:
            self.active += 1
        else:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():  # handed a slot as we were cancelled: pass it on
                    self._release()
                elif fut in self._waiters:
                    self._waiters.remove(fut)
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiters:  # hand the slot straight to the next waiter: no stream can cut in
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self.active -= 1
