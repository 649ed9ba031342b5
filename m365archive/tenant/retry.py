"""The tenant floor's one retry-and-poll policy (on tenacity), and its one bound.

THE BOUND: a single request is sent at most `MAX_SENDS` (8) times in all — the first send and every
resend for whatever reason: throttling (429), a transient failure (503/504, a dropped connection), a
token the service refused before its expiry (re-acquired, resent once), a write naming an object that
has not replicated yet. Nothing else resends: msgraph-sdk's RetryHandler stays in the middleware chain
but is switched off (`should_retry=False`), so the SDK sends each request once; the Exchange runner's
`$batch` counts each item's sends across resent batches and resent items. So a create marked safe to
resend goes out at most 8 times (before, up to 16 on Graph: the gateway's 4 tries on top of the SDK's
own 3 retries), and one that is not safe to resend is sent once.

What may be resent: a 429 always (the service did not run it); a 503/504 or a dropped connection only
when repeating it is harmless (reads, PATCH/PUT/DELETE, a create whose "already exists" is recognised,
every cmdlet the product sends), because the write may have taken effect before the failure.

Waits between sends: `Retry-After` when the service sends one (parsed here and nowhere else: seconds,
fractional seconds from the time-scaled simulator, or an HTTP date), otherwise jittered exponential
back-off. Every pause, and every poll of a wait on the service, ends at once when the run is stopped
(Ctrl-C): `Interrupted` is raised instead of sending again, so the change is reported as interrupted,
never as sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
)

MAX_SENDS = 8
T = TypeVar("T")


class Interrupted(Exception):
    """The run was stopped (Ctrl-C) while waiting to send again or to poll again."""


class Again(Exception):
    """An answer worth sending the request again for: after `delay` seconds (None: back off), carrying
    what came back (`answer`) so that the last one can be reported when the bound is reached."""

    def __init__(self, reason: str, *, delay: float | None = None, answer: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
        self.answer = answer


def retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Retry-After as seconds: an integer, a decimal (the time-scaled simulator) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


class StopSignal:
    """Set once when the run is stopped (Ctrl-C); every pause and poll of the floor watches it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds`, or raise Interrupted as soon as the signal is set."""
        if self._event.is_set():
            raise Interrupted
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=max(0.0, seconds))
            raise Interrupted


@dataclass(frozen=True)
class Backoff:
    """Jittered exponential back-off: the n-th pause is uniform in [c/2, c], c = min(cap, base * 2**(n-1))."""

    base: float
    cap: float

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(attempt - 1, 0))
        return (rng or _RANDOM).uniform(ceiling / 2, ceiling)


_RANDOM = random.Random()


def sends(backoff: Backoff, stop: StopSignal, *, max_sends: int = MAX_SENDS) -> AsyncRetrying:
    """The policy for sending one request: each attempt is one send; an attempt that raises `Again` is sent
    again after the answer's Retry-After or the back-off, at most `max_sends` sends in all (never more than
    MAX_SENDS). At the bound the last `Again` is raised to the caller, who reports its answer."""
    return AsyncRetrying(
        retry=retry_if_exception_type(Again),
        stop=stop_after_attempt(max(1, min(max_sends, MAX_SENDS))),
        wait=lambda state: _pause_for(state, backoff),
        sleep=stop.pause,
        reraise=True,
    )


def _pause_for(state: RetryCallState, backoff: Backoff) -> float:
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, Again) and exc.delay is not None:
        return exc.delay
    return backoff.delay(state.attempt_number)


async def poll(
    condition: Callable[[], Awaitable[bool]],
    *,
    timeout: float,
    stop: StopSignal,
    first: float = 0.05,
    cap: float = 10.0,
    tick: Callable[[float], None] | None = None,
) -> bool:
    """Ask `condition` until it is true (True) or `timeout` seconds have passed (False); the pauses grow from
    `first` to `cap` seconds. Interrupted when the run is stopped. `tick(elapsed)` before each pause."""
    started = time.monotonic()

    def before_sleep(state: RetryCallState) -> None:
        if tick is not None:
            tick(time.monotonic() - started)

    retrying = AsyncRetrying(
        retry=retry_if_result(lambda ok: not ok),
        stop=stop_after_delay(timeout),
        wait=lambda state: min(cap, first * 2 ** max(state.attempt_number - 1, 0)),
        sleep=stop.pause,
        before_sleep=before_sleep,
        retry_error_callback=lambda state: False,
    )

    async def ask() -> bool:  # a coroutine function: tenacity would take a lambda's coroutine for its result
        return await condition()

    return bool(await retrying(ask))
