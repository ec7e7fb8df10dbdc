"""Agent sources: save (compile and store), list, get, delete; and, through the
deployments (`deployments.py`), what an agent turn runs (`resolve`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError

from chatplane.agents.checks import agent_not_found, check_agent_name, require_project
from chatplane.agents.compile import compile_failed, source_hash, tools_of
from chatplane.agents.deployments import DeploymentService
from chatplane.agents.repository import AgentRepository, ImportedToolRepository
from chatplane.agents.types import Agent, AgentWarning, Resolved
from chatplane.errors import AlreadyExists, InvalidArgument
from chatplane.kit.clock import utcnow
from chatplane.kit.ids import cuid
from chatplane.lang import CompileResult, compile_source, ir, to_json
from chatplane.storage.db import Database, UnitOfWork
from chatplane.storage.models import Agent as AgentRow

_Problems = list[str]


class AgentService:
    def __init__(self, db: Database, *, deployments: DeploymentService | None = None) -> None:
        self._db = db
        self.deployments = deployments or DeploymentService(db)

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
        """What an agent turn runs; see `DeploymentService.resolve` for the order."""
        return await self.deployments.resolve(
            tenant_id,
            project_id,
            deployment_id=deployment_id,
            environment=environment,
            draft=draft,
            uow=uow,
        )

    async def get_deployment_programs(
        self, tenant_id: str, deployment_id: str, *, uow: UnitOfWork | None = None
    ) -> Resolved:
        """A deployment's programs whatever its status (resumed sessions)."""
        return await self.deployments.get_deployment_programs(tenant_id, deployment_id, uow=uow)

    async def put(
        self,
        tenant_id: str,
        project_id: str,
        name: str,
        source: str,
        *,
        uow: UnitOfWork | None = None,
    ) -> Agent:
        """Compile `source` and store it as agent `name`: every error at once and nothing
        stored when it does not compile. A HANDOFF to an agent the project does not have
        (yet) is a warning here, so agents that hand off to each other can be saved in any
        order; deploying checks it as an error. The id stays the same across saves."""
        check_agent_name(name)
        if not source.strip():
            raise InvalidArgument("source is required", field="source")
        async with self._db.read() as tx:
            await require_project(tx, tenant_id, project_id)
            known = await AgentRepository(tx, tenant_id).names(project_id)
            imported = await imported_tools(tx, tenant_id, project_id)
        known.add(name)
        # Off the event loop: a long source takes milliseconds to compile.
        result = await asyncio.to_thread(_compile, source, imported)
        _check_compiled(result, name)
        assert result.program is not None
        program = result.program
        warnings = [AgentWarning.of(d).to_json() for d in result.warnings]
        warnings += [w.to_json() for w in unknown_handoffs(program, frozenset(known))]
        now = utcnow()
        try:
            async with self._db.within(uow) as tx:
                await require_project(tx, tenant_id, project_id)
                repo = AgentRepository(tx, tenant_id)
                row = await repo.by_name(project_id, name)
                if row is None:
                    row = AgentRow(
                        id=cuid(),
                        tenant_id=tenant_id,
                        project_id=project_id,
                        name=name,
                        created_at=now,
                        format="",
                        source="",
                        ir="",
                        content_hash="",
                    )
                    repo.add(row)
                row.format = result.format
                row.source = source
                row.description = program.description or ""
                row.warnings = json.dumps(warnings)
                row.ir = json.dumps(to_json(program), separators=(",", ":"))
                row.content_hash = source_hash(source)
                row.updated_at = now
        except IntegrityError:  # another save created the same name first
            raise AlreadyExists(
                f"Agent {name} was created concurrently; retry the save",
                reason="CONCURRENT_SAVE",
            ) from None
        return Agent.of(row)

    async def list(self, tenant_id: str, project_id: str) -> list[Agent]:
        async with self._db.read() as tx:
            await require_project(tx, tenant_id, project_id)
            rows = await AgentRepository(tx, tenant_id).in_project(project_id)
        return [Agent.of(r) for r in rows]

    async def get(self, tenant_id: str, project_id: str, name: str) -> Agent:
        async with self._db.read() as tx:
            await require_project(tx, tenant_id, project_id)
            row = await AgentRepository(tx, tenant_id).by_name(project_id, name)
        if row is None:
            raise agent_not_found()
        return Agent.of(row, with_source=True)

    async def delete(
        self, tenant_id: str, project_id: str, name: str, *, uow: UnitOfWork | None = None
    ) -> Agent:
        """Delete an agent; deployments keep their own copy of it."""
        async with self._db.within(uow) as tx:
            await require_project(tx, tenant_id, project_id)
            repo = AgentRepository(tx, tenant_id)
            row = await repo.by_name(project_id, name)
            if row is None:
                raise agent_not_found()
            await repo.delete(row)
        return Agent.of(row)

    # --- imported tools (issue 13) -----------------------------------------------------

    async def imported_tool_conflicts(
        self, tenant_id: str, project_id: str, declarations: Sequence[str]
    ) -> Sequence[str]:
        """What the project's imported tools set to `declarations` would break: every
        saved agent and every agent of an active deployment compiled again with them;
        one line per error (`agent (where): line L, col C: [CODE] message`)."""
        tools = await asyncio.to_thread(tools_of, declarations)
        async with self._db.read() as tx:
            await require_project(tx, tenant_id, project_id)
            rows = await AgentRepository(tx, tenant_id).in_project(project_id)
            deployed = await self.deployments.active_sources(tx, tenant_id, project_id)
        sources = [(r.name, "draft", r.source) for r in rows] + [*deployed]
        problems: _Problems = []
        for name, where, source in sources:
            result = await asyncio.to_thread(_compile, source, tools)
            problems += [
                f"{name} ({where}): line {d.line}, col {d.col}: [{d.code}] {d.message}"
                for d in result.errors
            ]
        return problems

    async def recompile_with_tools(
        self, tx: UnitOfWork, tenant_id: str, project_id: str, declarations: Sequence[str]
    ) -> None:
        """The saved agents compiled again with the project's new imported tools (what a
        draft runs); deployments keep the tools they were created with. The sources are
        the ones `tx` reads (a save since the conflict check counts), compiled off the
        event loop."""
        tools = await asyncio.to_thread(tools_of, declarations)
        now = utcnow()
        for row in await AgentRepository(tx, tenant_id).in_project(project_id):
            result = await asyncio.to_thread(_compile, row.source, tools)
            if result.program is not None:
                row.ir = json.dumps(to_json(result.program), separators=(",", ":"))
                row.updated_at = now


async def imported_tools(tx: UnitOfWork, tenant_id: str, project_id: str) -> tuple[ir.Tool, ...]:
    """The project's imported tools (`imported_tools`), oldest first."""
    rows = await ImportedToolRepository(tx, tenant_id).in_project(project_id)
    return await asyncio.to_thread(tools_of, [r.source for r in rows])


def _check_compiled(result: CompileResult, name: str) -> None:
    if not result.ok:
        raise compile_failed([("source", name, result)])
    assert result.program is not None
    if result.program.name != name:
        raise InvalidArgument(
            f"The source's AGENT name {result.program.name!r} does not match agentName {name!r}",
            field="agentName",
            reason="AGENT_NAME_MISMATCH",
        )


def unknown_handoffs(program: ir.Program, known: frozenset[str]) -> list[AgentWarning]:
    """Warnings for HANDOFF targets the project does not have (yet)."""
    targets = [(h.target, h.line) for h in program.handoffs]
    targets += [(e.handoff_target, e.line) for e in program.on_error if e.handoff_target]
    return [
        AgentWarning(
            "ABL0306",
            f"HANDOFF at line {line} goes to agent '{target}', which this project does not "
            "have yet; deploying fails until it exists",
            line,
            1,
        )
        for target, line in targets
        if target and target not in known
    ]


def _compile(source: str, imported: Sequence[ir.Tool]) -> CompileResult:
    return compile_source(source, imported_tools=imported)
