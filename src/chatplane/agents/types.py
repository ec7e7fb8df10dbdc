"""Agent and deployment domain types."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from chatplane.lang import Diagnostic, Program
from chatplane.storage.models import Agent as AgentRow
from chatplane.storage.models import Deployment as DeploymentRow

ENVIRONMENTS: Final = ("dev", "staging", "production")
ACTIVE, DRAINING, RETIRED = "active", "draining", "retired"
STATUSES: Final = (ACTIVE, DRAINING, RETIRED)
DRAFT = "draft"  # Resolved.status when a project without a deployment runs its sources
AGENT_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class AgentWarning:
    """A compiler warning kept with the agent (the wire calls them `warnings`)."""

    code: str
    message: str
    line: int
    col: int

    @classmethod
    def of(cls, d: Diagnostic) -> AgentWarning:
        return cls(d.code, d.message, d.line, d.col)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "line": self.line, "col": self.col}


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    name: str
    format: str  # abl | yaml
    description: str
    warnings: tuple[AgentWarning, ...]
    content_hash: str
    created_at: datetime
    updated_at: datetime
    source: str | None = None  # only when asked for one agent

    @classmethod
    def of(cls, row: AgentRow, *, with_source: bool = False) -> Agent:
        loaded = json.loads(row.warnings or "[]")
        warnings = tuple(
            AgentWarning(str(w["code"]), str(w["message"]), int(w["line"]), int(w["col"]))
            for w in loaded
        )
        return cls(
            row.id,
            row.name,
            row.format,
            row.description,
            warnings,
            row.content_hash,
            row.created_at,
            row.updated_at,
            row.source if with_source else None,
        )


@dataclass(frozen=True, slots=True)
class DeployedAgent:
    """One agent as a deployment froze it."""

    id: str
    name: str
    format: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class Deployment:
    id: str
    project_id: str
    environment: str
    status: str
    entry_agent_name: str
    label: str
    agents: tuple[DeployedAgent, ...]
    content_hash: str
    previous_deployment_id: str | None
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None

    @classmethod
    def of(cls, row: DeploymentRow, agents: tuple[DeployedAgent, ...]) -> Deployment:
        return cls(
            row.id,
            row.project_id,
            row.environment,
            row.status,
            row.entry_agent_name,
            row.label,
            agents,
            row.content_hash,
            row.previous_deployment_id,
            row.created_at,
            row.activated_at,
            row.retired_at,
        )


@dataclass(frozen=True, slots=True)
class DeploymentPage:
    deployments: Sequence[Deployment]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class Rollback:
    """Both sides of a rollback: the deployment active again, and the one retired."""

    active: Deployment
    retired: Deployment


@dataclass(frozen=True, slots=True)
class Resolved:
    """What an agent turn runs: the deployment (None for a draft of the current sources),
    its environment and status, the entry agent's name, every agent's program by name and
    every agent's id by name.

    `agents` and `agent_ids` are shared and immutable (cached per deployment)."""

    deployment_id: str | None
    environment: str  # "" for a draft
    status: str  # active | draining | draft (get_deployment_programs: retired too)
    entry_agent: str
    agents: Mapping[str, Program]
    agent_ids: Mapping[str, str]
