"""Time and load: latency, throttling (token bucket + concurrency cap) and injected faults."""

from __future__ import annotations

import math
import random
import threading
import time


class TokenBucket:
    """`rate` tokens per real second, at most `burst` banked. rate <= 0 means unlimited."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(burst, 1) if rate > 0 else 0
        self._tokens = float(self.burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: int = 1) -> float | None:
        """Take n tokens; None when granted, else the seconds to wait before retrying."""
        if self.rate <= 0:
            return None
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= n:
                self._tokens -= n
                return None
            return (n - self._tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    """Retry-After as Exchange and Graph send it: whole seconds, at least 1.

    With a time-scaled simulator the wait may be far shorter than a second; the header then
    carries a decimal so that tests stay fast (our client accepts both forms).
    """
    if seconds >= 1:
        return str(math.ceil(seconds))
    return f"{max(seconds, 0.001):.3f}"


class FaultModel:
    """Seeded, so a run with the same seed injects faults at the same requests."""

    def __init__(
        self, rate: float, kinds: tuple[str, ...], methods: tuple[str, ...], seed: int, limit: int = 0
    ) -> None:
        self.rate = rate
        self.limit = limit
        self.kinds = kinds or ("503",)
        self.methods = methods
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.injected = 0

    def pick(self, method: str, path: str) -> str | None:
        if self.rate <= 0:
            return None
        key = f"{method} {path}"
        if self.methods and not any(key == m or (m.endswith("*") and key.startswith(m[:-1])) for m in self.methods):
            return None
        with self._lock:
            if self.limit and self.injected >= self.limit:
                return None
            if self._random.random() >= self.rate:
                return None
            self.injected += 1
            return self._random.choice(self.kinds)


class Latency:
    def __init__(self, low_ms: float, high_ms: float, seed: int) -> None:
        self.low = low_ms / 1000
        self.high = high_ms / 1000
        self._random = random.Random(seed + 1)

    def draw(self) -> float:
        if self.high <= 0:
            return 0.0
        return self._random.uniform(self.low, self.high)
