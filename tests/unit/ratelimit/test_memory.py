"""In-process specifics: lazy and full eviction of idle keys."""

from __future__ import annotations

from chatplane.ratelimit import InProcessRateLimiter, Window
from tests.unit.ratelimit._support import FakeClock


async def test_in_process_evicts_idle_keys() -> None:
    clock = FakeClock(1000.0)
    rl = InProcessRateLimiter([Window(60, 5), Window(3600, 100)], clock=clock)
    for i in range(100):
        await rl.hit(f"idle-{i}")
    assert len(rl) == 100

    clock.advance(120)  # minute buckets expired, hour buckets not: nothing to evict
    await rl.hit("busy")
    assert rl.evict_expired() == 0
    assert len(rl) == 101

    clock.now = 1000.0 + 3600 + 60  # every idle key's hour bucket has expired
    await rl.hit("busy")  # lazily: a bounded number per hit (8), oldest first
    assert len(rl) == 101 - 8
    for _ in range(19):
        await rl.hit("busy")
    assert len(rl) == 1  # only "busy" is left
    assert not (await rl.hit("busy")).allowed  # and it kept its own counts (5 in the minute)

    # A full sweep drops everything expired at once.
    for i in range(50):
        await rl.hit(f"other-{i}")
    clock.advance(3600 + 60)
    assert rl.evict_expired() == 51
    assert len(rl) == 0

    # A denied hit for an unknown key stores nothing.
    full = InProcessRateLimiter([Window(60, 1)], clock=clock)
    await full.hit("a")
    await full.hit("a")
    assert len(full) == 1


async def test_in_process_lazy_eviction_keeps_memory_bounded() -> None:
    clock = FakeClock(0.0)
    rl = InProcessRateLimiter([Window(60, 5)], clock=clock)
    for i in range(5000):  # a new tenant every 0.1 s: at most ~60 s worth are live
        clock.now = i * 0.1
        await rl.hit(f"k{i}")
    assert len(rl) <= 700
