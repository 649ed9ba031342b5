"""How fast the Exchange runner sends: a cap on requests in flight, and a pace for cmdlets.

Two controls, because Exchange Online answers two kinds of "too much" the same way (429):

- `AimdLimiter` caps concurrent requests (additive increase, multiplicative decrease, as TCP's
  congestion window): halved on each 429 of a whole request, grown by one on each success, up to the
  configured maximum.
- `RatePacer` paces cmdlets to the tenant's budget, which Exchange counts per cmdlet (`$batch` items
  one by one): a 429 on a `$batch` item means the budget is spent, not that too many requests are in
  flight, so halving concurrency would collapse throughput.

Both take their clock and sleep as arguments, so their arithmetic is tested without waiting
(tests/test_pacing.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class AimdLimiter:
    """Additive-increase, multiplicative-decrease cap on requests in flight."""

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = float(self.maximum)
        self.in_flight = 0
        self.peak = 0
        self._cond = asyncio.Condition()

    async def acquire(self) -> None:
        async with self._cond:
            while self.in_flight >= int(self.limit):
                await self._cond.wait()
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    async def throttled(self) -> None:
        """A throttling answer that came inside a successful request ($batch items)."""
        async with self._cond:
            self.limit = max(1.0, self.limit / 2)

    async def release(self, *, throttled: bool = False, ok: bool = False) -> None:
        async with self._cond:
            self.in_flight -= 1
            if throttled:
                self.limit = max(1.0, self.limit / 2)
            elif ok:
                self.limit = min(float(self.maximum), self.limit + 1)
            self._cond.notify_all()


class RatePacer:
    """Paces cmdlets to the tenant's budget, learned from the service's 429 answers.

    On a 429 the pacer measures the rate the service accepted over the last second and sends at 95% of
    it (at most one cut per half second: concurrent batches report the same exhaustion), grows 5% a
    second while no 429 comes, and makes every sender wait out the Retry-After (the budget is the
    tenant's, so the pause is too).
    """

    WINDOW = 1.0
    CUT_INTERVAL = 0.5

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self.rate: float | None = None  # cmdlets per second; None until the service first throttles
        self._clock = clock
        self._sleep = sleep
        self._allowance = 0.0
        self._last = clock()
        self._resume_at = 0.0
        self._accepted: deque[tuple[float, int]] = deque()
        self._first_accept: float | None = None
        self._last_change = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self, n: int) -> None:
        """Wait until `n` more cmdlets may be sent."""
        async with self._lock:
            now = self._clock()
            if self._resume_at > now:
                await self._sleep(self._resume_at - now)
            if self.rate is None:
                return
            now = self._clock()
            burst = max(float(n), self.rate * 0.1)
            self._allowance = min(burst, self._allowance + (now - self._last) * self.rate)
            self._last = now
            if self._allowance < n:
                await self._sleep((n - self._allowance) / self.rate)
                self._allowance = float(n)
                self._last = self._clock()
            self._allowance -= n

    def accepted(self, n: int) -> None:
        """The service accepted `n` cmdlets (answered, not throttled)."""
        now = self._clock()
        if self._first_accept is None:
            self._first_accept = now
        self._accepted.append((now, n))
        while self._accepted and self._accepted[0][0] < now - self.WINDOW:
            self._accepted.popleft()
        if self.rate is not None and now - self._last_change >= 1.0:
            self.rate *= 1.05
            self._last_change = now

    def throttled(self, retry_after: float) -> None:
        """The service answered 429: pause everyone for `retry_after`, and cut the rate."""
        now = self._clock()
        self._resume_at = max(self._resume_at, now + retry_after)
        if self.rate is not None and now - self._last_change < self.CUT_INTERVAL:
            return
        span = max(0.1, min(self.WINDOW, now - (self._first_accept or now)))
        measured = sum(n for t, n in self._accepted if t >= now - span) / span
        base = measured if self.rate is None else min(self.rate, max(measured, 1.0))
        self.rate = max(1.0, base * 0.95)
        self._last_change = now
