"""A small in-process TTL cache for hot-path lookups (keys, project settings)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Entries live `ttl` seconds. Bounded: when full, expired entries go first, then all.

    Writes through this process evict at once (`discard`); other replicas see a change
    within `ttl`, which is the documented staleness bound.
    """

    def __init__(
        self, ttl: float, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= self._max:
            now = self._clock()
            self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
            if len(self._entries) >= self._max:
                self._entries.clear()
        self._entries[key] = (self._clock() + self._ttl, value)

    def discard_where(self, predicate: Callable[[K, V], bool]) -> None:
        for key, (_, value) in list(self._entries.items()):
            if predicate(key, value):
                del self._entries[key]
