"""The Exchange runner's two speed controls, on a fake clock (no test waits in real time)."""

from __future__ import annotations

import asyncio

from m365archive.tenant.pacing import AimdLimiter, RatePacer


class FakeTime:
    """A clock that moves only when the code under test sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# -- AIMD ------------------------------------------------------------------------------------------------------


def test_the_limiter_halves_on_a_throttled_request_and_grows_by_one_on_success_up_to_its_maximum() -> None:
    async def body() -> list[float]:
        limiter = AimdLimiter(8)
        seen = [limiter.limit]
        for throttled in (True, True, True, True):
            await limiter.acquire()
            await limiter.release(throttled=throttled)
            seen.append(limiter.limit)
        for _ in range(10):
            await limiter.acquire()
            await limiter.release(ok=True)
        seen.append(limiter.limit)
        await limiter.throttled()  # a 429 inside a $batch answer
        seen.append(limiter.limit)
        return seen

    assert asyncio.run(body()) == [8.0, 4.0, 2.0, 1.0, 1.0, 8.0, 4.0]


def test_the_limiter_holds_a_request_until_one_in_flight_is_released() -> None:
    async def body() -> tuple[int, int, bool]:
        limiter = AimdLimiter(2)
        await limiter.acquire()
        await limiter.acquire()
        third = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)  # let it try
        blocked = not third.done()
        await limiter.release(ok=True)
        await third
        return limiter.in_flight, limiter.peak, blocked

    assert asyncio.run(body()) == (2, 2, True)


def test_a_limiter_of_zero_still_lets_one_request_through() -> None:
    assert AimdLimiter(0).maximum == 1


# -- the pacer -------------------------------------------------------------------------------------------------


def test_the_pacer_does_not_pace_until_the_service_first_throttles() -> None:
    fake = FakeTime()
    pacer = RatePacer(clock=fake.clock, sleep=fake.sleep)

    async def body() -> None:
        for _ in range(100):
            await pacer.acquire(10)
            pacer.accepted(10)

    asyncio.run(body())
    assert pacer.rate is None and fake.slept == []


def test_a_429_pauses_every_sender_for_retry_after_and_paces_at_95_percent_of_what_was_accepted() -> None:
    fake = FakeTime()
    pacer = RatePacer(clock=fake.clock, sleep=fake.sleep)
    for _ in range(8):  # 80 cmdlets accepted over the last second
        pacer.accepted(10)
        fake.now += 0.125
    pacer.throttled(2.0)
    assert pacer.rate == 76.0

    async def body() -> None:
        await pacer.acquire(10)  # waits out the Retry-After; the pause filled the allowance (a burst of 10)
        await pacer.acquire(10)  # 10 more at 76 a second

    asyncio.run(body())
    assert fake.slept[0] == 2.0
    assert len(fake.slept) == 2 and abs(fake.slept[1] - 10 / 76) < 1e-9


def test_concurrent_429s_cut_the_rate_once_and_quiet_seconds_grow_it_by_5_percent() -> None:
    fake = FakeTime()
    pacer = RatePacer(clock=fake.clock, sleep=fake.sleep)
    for _ in range(8):
        pacer.accepted(10)
        fake.now += 0.125
    pacer.throttled(0.0)
    first = pacer.rate
    fake.now += 0.1
    pacer.throttled(0.0)  # another batch reporting the same exhaustion
    assert pacer.rate == first
    fake.now += 1.0
    pacer.accepted(1)
    assert first == 76.0 and pacer.rate == first * 1.05


def test_the_rate_never_falls_below_one_cmdlet_a_second() -> None:
    fake = FakeTime()
    pacer = RatePacer(clock=fake.clock, sleep=fake.sleep)
    pacer.throttled(0.0)  # nothing accepted yet
    assert pacer.rate == 1.0
