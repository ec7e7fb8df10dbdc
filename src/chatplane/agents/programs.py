"""Decoded deployments kept in memory: the programs a turn runs and the agent summaries a
listing shows, decoded once per deployment (a deployment never changes) or per draft
(keyed by the agents' ids, sources and last update)."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Generic, TypeVar

from chatplane.agents.compile import snapshot_hash
from chatplane.agents.types import DRAFT, DeployedAgent, Deployment, Resolved
from chatplane.lang import Program, from_json
from chatplane.storage.models import Agent as AgentRow
from chatplane.storage.models import Deployment as DeploymentRow

V = TypeVar("V")
# Programs by agent name, agent ids by name: decoded once per deployment, never mutated.
_Programs = tuple[Mapping[str, Program], Mapping[str, str]]
CACHE_SIZE = 256  # decoded deployments kept in memory (they never change)


class _Lru(Generic[V]):
    """A small LRU of immutable values keyed by deployment id."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


class ProgramCache:
    """Decoded snapshots by deployment id (or draft key)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._summaries: _Lru[tuple[DeployedAgent, ...]] = _Lru(size * 4)
        self._programs: _Lru[_Programs] = _Lru(size)

    def deployment(self, row: DeploymentRow) -> Deployment:
        agents = self._summaries.get(row.id)
        if agents is None:
            snapshot = json.loads(row.snapshot)
            agents = tuple(
                DeployedAgent(a["id"], name, a["format"], a["content_hash"])
                for name, a in sorted(snapshot.items())
            )
            self._summaries.put(row.id, agents)
        return Deployment.of(row, agents)

    def _programs_of(self, row: DeploymentRow) -> _Programs:
        cached = self._programs.get(row.id)
        if cached is None:
            snapshot = json.loads(row.snapshot)
            cached = (
                MappingProxyType({n: from_json(a["ir"]) for n, a in snapshot.items()}),
                MappingProxyType({n: str(a["id"]) for n, a in snapshot.items()}),
            )
            self._programs.put(row.id, cached)
        return cached

    def resolved(self, row: DeploymentRow) -> Resolved:
        programs, ids = self._programs_of(row)
        return Resolved(row.id, row.environment, row.status, row.entry_agent_name, programs, ids)

    def draft(self, agents: Sequence[AgentRow]) -> Resolved:
        rows = list(agents)
        # The agents' ids are part of the key: two projects with the same sources share
        # programs but not ids.
        ids = ",".join(sorted(a.id for a in rows))
        key = f"draft:{ids}:" + snapshot_hash({a.name: (a.format, a.content_hash) for a in rows})
        # Importing tools compiles the agents again without changing their sources.
        key += ":" + max(a.updated_at for a in rows).isoformat()
        cached = self._programs.get(key)
        if cached is None:
            cached = (
                MappingProxyType({a.name: from_json(json.loads(a.ir)) for a in rows}),
                MappingProxyType({a.name: a.id for a in rows}),
            )
            self._programs.put(key, cached)
        entry = min(rows, key=lambda a: (a.created_at, a.id)).name
        return Resolved(None, "", DRAFT, entry, *cached)
