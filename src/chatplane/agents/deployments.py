"""Deployments: immutable snapshots of a project's compiled agents, their lifecycle, and
what an agent turn runs (`resolve`).

Lifecycle rules are in `lifecycle.py`. Draining deployments become retired in `settle`,
once `active_sessions(deployment_id)` says none are left; create, retire and list call it
for the project first, so a deployment drained by one call is retired by the next
(never by the call that drained it) when it has no sessions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence

from chatplane.agents import lifecycle
from chatplane.agents.checks import check_agent_name, require_project
from chatplane.agents.compile import compile_all, snapshot_hash
from chatplane.agents.programs import ProgramCache
from chatplane.agents.repository import (
    AgentRepository,
    DeploymentRepository,
    ImportedToolRepository,
)
from chatplane.agents.types import (
    ACTIVE,
    DRAINING,
    RETIRED,
    STATUSES,
    Deployment,
    DeploymentPage,
    Resolved,
    Rollback,
)
from chatplane.errors import Gone, InvalidArgument, NotFound
from chatplane.kit.clock import utcnow
from chatplane.kit.ids import cuid
from chatplane.projects.service import page_bounds
from chatplane.storage.db import Database, UnitOfWork
from chatplane.storage.models import Deployment as DeploymentRow

ActiveSessions = Callable[[str], Awaitable[int]]
_Sources = list[tuple[str, str, str]]


async def no_sessions(deployment_id: str) -> int:
    """The default `active_sessions` hook until sessions exist: none."""
    return 0


def deployment_not_found() -> NotFound:
    return NotFound("Deployment not found", reason="DEPLOYMENT_NOT_FOUND")


class DeploymentService:
    def __init__(self, db: Database, *, active_sessions: ActiveSessions | None = None) -> None:
        self._db = db
        # How many sessions still run on a deployment; sessions set it (see `settle`).
        self.active_sessions: ActiveSessions = active_sessions or no_sessions
        self._cache = ProgramCache()

    # --- create and read ---------------------------------------------------------------

    async def create(
        self,
        tenant_id: str,
        project_id: str,
        *,
        environment: str,
        entry_agent_name: str,
        label: str = "",
        uow: UnitOfWork | None = None,
    ) -> Deployment:
        """Compile every agent of the project again and store the result as the
        environment's active deployment; the previous active one starts draining."""
        lifecycle.check_environment(environment)
        check_agent_name(entry_agent_name, "entryAgentName")
        await self.settle_project(tenant_id, project_id)
        async with self._db.read() as tx:
            await require_project(tx, tenant_id, project_id)
            agents = list(await AgentRepository(tx, tenant_id).in_project(project_id))
            imported = await _imported_sources(tx, tenant_id, project_id)
        if not agents:
            raise InvalidArgument(
                "The project has no agents to deploy", field="entryAgentName", reason="NO_AGENTS"
            )
        if entry_agent_name not in {a.name for a in agents}:
            raise InvalidArgument(
                f"entryAgentName {entry_agent_name!r} is not an agent of the project",
                field="entryAgentName",
                reason="AGENT_NOT_FOUND",
            )
        snapshot = await asyncio.to_thread(compile_all, agents, imported)
        async with self._db.within(uow) as tx:
            await require_project(tx, tenant_id, project_id)
            row = await _activate(
                tx,
                tenant_id,
                project_id,
                environment,
                entry_agent_name=entry_agent_name,
                label=label,
                snapshot=json.dumps(snapshot, separators=(",", ":")),
                content_hash=snapshot_hash(
                    {n: (a["format"], a["content_hash"]) for n, a in snapshot.items()}
                ),
            )
        return self._cache.deployment(row)

    async def list(
        self,
        tenant_id: str,
        project_id: str,
        *,
        environment: str = "",
        status: str = "",
        limit: int = 0,
        offset: int = 0,
    ) -> DeploymentPage:
        if environment:
            lifecycle.check_environment(environment)
        if status and status not in STATUSES:
            raise InvalidArgument(
                f"status must be active, draining or retired (got {status!r})", field="status"
            )
        limit, offset = page_bounds(limit, offset)
        await self.settle_project(tenant_id, project_id)
        async with self._db.read() as tx:
            await require_project(tx, tenant_id, project_id)
            rows, total = await DeploymentRepository(tx, tenant_id).filtered(
                project_id, environment=environment, status=status, limit=limit, offset=offset
            )
        return DeploymentPage([self._cache.deployment(r) for r in rows], total, limit, offset)

    async def get(self, tenant_id: str, project_id: str, deployment_id: str) -> Deployment:
        async with self._db.read() as tx:
            row = await self._row(tx, tenant_id, project_id, deployment_id)
        return self._cache.deployment(row)

    # --- lifecycle -------------------------------------------------------------------------

    async def retire(
        self,
        tenant_id: str,
        project_id: str,
        deployment_id: str,
        *,
        uow: UnitOfWork | None = None,
    ) -> Deployment:
        await self.settle_project(tenant_id, project_id)
        async with self._db.within(uow) as tx:
            row = await self._row(tx, tenant_id, project_id, deployment_id)
            row.status = lifecycle.check_retire(row.status)
            row.retired_at = utcnow()
        return self._cache.deployment(row)

    async def promote(
        self,
        tenant_id: str,
        project_id: str,
        deployment_id: str,
        *,
        environment: str,
        label: str = "",
        uow: UnitOfWork | None = None,
    ) -> Deployment:
        """The same snapshot (not recompiled) as the active deployment of `environment`."""
        lifecycle.check_environment(environment)
        async with self._db.within(uow) as tx:
            source = await self._row(tx, tenant_id, project_id, deployment_id)
            lifecycle.check_promote(source.status, source.environment, environment)
            row = await _activate(
                tx,
                tenant_id,
                project_id,
                environment,
                entry_agent_name=source.entry_agent_name,
                label=label or source.label,
                snapshot=source.snapshot,
                content_hash=source.content_hash,
            )
        return self._cache.deployment(row)

    async def rollback(
        self,
        tenant_id: str,
        project_id: str,
        deployment_id: str,
        *,
        uow: UnitOfWork | None = None,
    ) -> Rollback:
        """The environment's previous deployment becomes active again; this one retires."""
        now = utcnow()
        async with self._db.within(uow) as tx:
            row = await self._row(tx, tenant_id, project_id, deployment_id)
            mine, theirs = lifecycle.check_rollback(
                row.status, row.previous_deployment_id, row.environment
            )
            assert row.previous_deployment_id is not None
            previous = await DeploymentRepository(tx, tenant_id).in_project(
                project_id, row.previous_deployment_id
            )
            if previous is None:
                raise lifecycle.invalid("Cannot roll back: the previous deployment is gone")
            row.status, row.retired_at = mine, now
            previous.status, previous.activated_at, previous.retired_at = theirs, now, None
        return Rollback(self._cache.deployment(previous), self._cache.deployment(row))

    async def restore(
        self,
        tenant_id: str,
        project_id: str,
        deployment_id: str,
        *,
        uow: UnitOfWork | None = None,
    ) -> Deployment:
        """Retired -> active if its environment has no active deployment, else draining."""
        async with self._db.within(uow) as tx:
            row = await self._row(tx, tenant_id, project_id, deployment_id)
            active = await DeploymentRepository(tx, tenant_id).active(project_id, row.environment)
            row.status = lifecycle.restore_to(row.status, active is not None)
            row.retired_at = None
            if row.status == ACTIVE:
                row.activated_at = utcnow()
        return self._cache.deployment(row)

    async def settle(self, tenant_id: str, deployment_id: str) -> Deployment:
        """Retire the deployment if it is draining and `active_sessions` says none are
        left. Sessions call this when one ends; create, retire and list call it for every
        draining deployment of their project first."""
        async with self._db.uow() as tx:
            row = await DeploymentRepository(tx, tenant_id).get(deployment_id)
            if row is None:
                raise deployment_not_found()
            await self._settle_row(row)
        return self._cache.deployment(row)

    async def settle_project(self, tenant_id: str, project_id: str) -> None:
        async with self._db.uow() as tx:
            for row in await DeploymentRepository(tx, tenant_id).draining(project_id):
                await self._settle_row(row)

    async def _settle_row(self, row: DeploymentRow) -> None:
        if row.status != DRAINING:
            return
        status = lifecycle.settled(row.status, await self.active_sessions(row.id))
        if status != row.status:
            row.status, row.retired_at = status, utcnow()

    # --- what a turn runs --------------------------------------------------------------------

    async def resolve(
        self,
        tenant_id: str,
        project_id: str,
        *,
        deployment_id: str = "",
        environment: str = "",
        draft: bool = False,
        uow: UnitOfWork | None = None,
    ) -> Resolved:
        """The programs an agent turn runs; `draft` asks for the current sources outright
        (a test run "inDevelopment"). Otherwise the first match wins:

        1. `deployment_id`: that deployment (retired: Gone "Deployment is retired";
           unknown or another project's: NotFound "Deployment not found");
        2. the active deployment of `environment`;
        3. the project's active production deployment;
        4. the project's newest active deployment;
        5. a draft of the project's current sources (deployment_id None, status "draft",
           the entry agent the oldest agent);
        6. no agents at all: NotFound "Project not found or has no agents".
        """
        if environment:
            lifecycle.check_environment(environment)
        if uow is not None:
            return await self._resolve(
                uow, tenant_id, project_id, deployment_id, environment, draft=draft
            )
        async with self._db.read() as tx:
            return await self._resolve(
                tx, tenant_id, project_id, deployment_id, environment, draft=draft
            )

    async def _resolve(
        self, tx: UnitOfWork, t: str, p: str, d: str, e: str, *, draft: bool
    ) -> Resolved:  # tenant, project, deployment id, environment, draft only
        repo = DeploymentRepository(tx, t)
        if draft:
            return await self._draft_of(tx, t, p)
        if d:
            row = await repo.in_project(p, d)
            if row is None:
                raise deployment_not_found()
            if row.status == RETIRED:
                raise Gone("Deployment is retired", reason="DEPLOYMENT_RETIRED")
            return self._cache.resolved(row)
        row = await repo.active(p, e) if e else None
        if row is None and e != "production":
            row = await repo.active(p, "production")
        if row is None:
            row = await repo.newest_active(p)
        if row is not None:
            return self._cache.resolved(row)
        return await self._draft_of(tx, t, p)

    async def _draft_of(self, tx: UnitOfWork, tenant_id: str, project_id: str) -> Resolved:
        agents = await AgentRepository(tx, tenant_id).in_project(project_id)
        if not agents:
            raise NotFound("Project not found or has no agents", reason="PROJECT_NOT_FOUND")
        return self._cache.draft(agents)

    async def get_deployment_programs(
        self, tenant_id: str, deployment_id: str, *, uow: UnitOfWork | None = None
    ) -> Resolved:
        """A deployment's programs whatever its status; the caller decides what a status
        allows (a resumed session finishes on a draining deployment; a retired one is Gone
        in sessions/turn.py)."""
        if uow is not None:
            row = await DeploymentRepository(uow, tenant_id).get(deployment_id)
        else:
            async with self._db.read() as tx:
                row = await DeploymentRepository(tx, tenant_id).get(deployment_id)
        if row is None:
            raise deployment_not_found()
        return self._cache.resolved(row)

    async def active_sources(
        self, tx: UnitOfWork, tenant_id: str, project_id: str
    ) -> Sequence[tuple[str, str, str]]:
        """(agent name, `deployment <id>`, source) of every active deployment's agents."""
        rows = await DeploymentRepository(tx, tenant_id).filtered(
            project_id, environment="", status=ACTIVE, limit=10, offset=0
        )
        out: _Sources = []
        for row in rows[0]:
            for name, agent in sorted(json.loads(row.snapshot).items()):
                out.append((name, f"deployment {row.id}", str(agent.get("source", ""))))
        return out

    # --- helpers ---------------------------------------------------------------------------

    async def _row(
        self, tx: UnitOfWork, tenant_id: str, project_id: str, deployment_id: str
    ) -> DeploymentRow:
        row = await DeploymentRepository(tx, tenant_id).in_project(project_id, deployment_id)
        if row is None:
            await require_project(tx, tenant_id, project_id)
            raise deployment_not_found()
        return row


async def _imported_sources(tx: UnitOfWork, tenant_id: str, project_id: str) -> list[str]:
    """The project's imported tool declarations, oldest first."""
    return [r.source for r in await ImportedToolRepository(tx, tenant_id).in_project(project_id)]


async def _activate(
    tx: UnitOfWork,
    tenant_id: str,
    project_id: str,
    environment: str,
    *,
    entry_agent_name: str,
    label: str,
    snapshot: str,
    content_hash: str,
) -> DeploymentRow:
    """A new active deployment of `environment`; the one active before drains."""
    repo = DeploymentRepository(tx, tenant_id)
    previous = await repo.active(project_id, environment)
    now = utcnow()
    row = DeploymentRow(
        id=cuid(),
        tenant_id=tenant_id,
        project_id=project_id,
        environment=environment,
        status=ACTIVE,
        entry_agent_name=entry_agent_name,
        label=label,
        snapshot=snapshot,
        content_hash=content_hash,
        previous_deployment_id=previous.id if previous else None,
        created_at=now,
        activated_at=now,
    )
    if previous is not None:
        previous.status = DRAINING
    repo.add(row)
    return row
