"""Latency samples and load loops (each bounded in request count and in time)."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

# One call: returns (latency seconds, time to first token seconds or None); raises on failure.
Call = Callable[[], Awaitable[tuple[float, float | None]]]

MAX_ERROR_SHARE = 0.01  # a loop stops early when more calls than this fail (after 20)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass
class Sample:
    """What one loop measured for one mode."""

    name: str
    latencies: list[float] = field(default_factory=list)  # seconds
    ttfts: list[float] = field(default_factory=list)  # seconds
    errors: int = 0
    first_error: str = ""
    elapsed: float = 0.0  # wall time of the measured loop, seconds
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds used

    @property
    def count(self) -> int:
        return len(self.latencies)

    def p(self, q: float) -> float:
        """Latency percentile, ms."""
        return percentile(self.latencies, q) * 1000

    def ttft(self, q: float) -> float:
        """Time-to-first-token percentile, ms."""
        return percentile(self.ttfts, q) * 1000

    @property
    def rps(self) -> float:
        return self.count / self.elapsed if self.elapsed > 0 else float("nan")

    def add(self, latency: float, ttft: float | None) -> None:
        self.latencies.append(latency)
        if ttft is not None:
            self.ttfts.append(ttft)

    def fail(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{type(exc).__name__}: {exc}"[:300]

    def too_many_errors(self) -> bool:
        return self.errors > 20 and self.errors > MAX_ERROR_SHARE * (self.errors + self.count)


async def warm_up(call: Call, count: int, concurrency: int = 1) -> None:
    """Unmeasured calls; any failure here is fatal (the setup is wrong)."""
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def interleaved(
    calls: Mapping[str, Call], *, rounds: int, max_seconds: float, alternate: bool = False
) -> dict[str, Sample]:
    """Sequential calls, one per mode per round (modes alternate, so slow drift in the
    machine's state hits every mode alike), until `rounds` rounds or `max_seconds`.
    `alternate` reverses the order every other round, so no mode always follows another
    (an A/B pair run in a fixed order showed ~0.2 ms at p50 for the second of two
    identical servers)."""
    samples = {name: Sample(name) for name in calls}
    order = list(calls.items())
    started = time.perf_counter()
    deadline = started + max_seconds
    for i in range(rounds):
        if time.perf_counter() >= deadline:
            break
        for name, call in reversed(order) if alternate and i % 2 else order:
            sample = samples[name]
            try:
                latency, ttft = await call()
            except Exception as exc:
                sample.fail(exc)
                if sample.too_many_errors():
                    raise RuntimeError(f"{name}: too many errors: {sample.first_error}") from exc
                continue
            sample.add(latency, ttft)
    elapsed = time.perf_counter() - started
    for sample in samples.values():
        sample.elapsed = elapsed
    return samples


async def closed_loop(
    name: str,
    call: Call,
    *,
    concurrency: int,
    max_count: int,
    max_seconds: float,
    cpu_probe: Callable[[], dict[str, float]],
) -> Sample:
    """`concurrency` workers calling back to back until `max_count` calls were started or
    `max_seconds` passed; throughput counts successful calls over the loop's wall time."""
    sample = Sample(name)
    started_calls = 0
    stop = False
    cpu_before = cpu_probe()
    started = time.perf_counter()
    deadline = started + max_seconds

    async def worker() -> None:
        nonlocal started_calls, stop
        while not stop and started_calls < max_count and time.perf_counter() < deadline:
            started_calls += 1
            try:
                latency, ttft = await call()
            except Exception as exc:
                sample.fail(exc)
                if sample.too_many_errors():
                    stop = True
                continue
            sample.add(latency, ttft)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    sample.elapsed = time.perf_counter() - started
    cpu_after = cpu_probe()
    sample.cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
    return sample


def fmt(value: float | None, digits: int = 2) -> str:
    """A figure for a report table: `n/a` when there is none."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def ratio(value: float, base: float) -> str:
    """`value / base` as `1.23x`, or `n/a`."""
    if base <= 0 or math.isnan(value) or math.isnan(base):
        return "n/a"
    return f"{value / base:.2f}x"


async def median_ms(fn: Callable[[], Awaitable[object]], runs: int) -> float:
    """The median wall time of `runs` sequential calls, in milliseconds."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000
