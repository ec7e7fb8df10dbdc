"""XO bot function import and conversation test suites (import, run, status, delete).

Suite import and suite run are durable jobs of the analytics job runner (`ds-...` and
`ctr-...`), played by `playback.py`. A restart mid-job re-runs it from the start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chatplane.agents.repository import ImportedToolRepository
from chatplane.agents.service import AgentService
from chatplane.analytics import jobs
from chatplane.analytics.vendor import vendor_limit
from chatplane.errors import FailedPrecondition, InvalidArgument, NotFound
from chatplane.kit.clock import iso, utcnow
from chatplane.kit.ids import cuid
from chatplane.projects.service import ProjectService
from chatplane.ratelimit import RateLimiter
from chatplane.sessions.turn import TurnService
from chatplane.storage.db import Database
from chatplane.storage.models import ImportedTool
from chatplane.testing import botfunctions, suites
from chatplane.testing.playback import SuitePlayer, find_suite
from chatplane.testing.uploads import UploadService

SUITE_IMPORT, SUITE_RUN = "suite_import", "suite_run"
MAX_FILES = 10
MAX_SUITE_BYTES = 2 * 1000 * 1000  # the vendor's 2 MB
MAX_NAME = 200


def _str_field(body: dict[str, Any], name: str, *, required: bool, limit: int = 200) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise InvalidArgument(f"{name} is required", field=name, reason="MISSING_FIELD")
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidArgument(f"{name} must be a string of at most {limit} characters", field=name)
    return value


class BotFunctionService:
    """`POST /api/public/bot/{botId}/import/botfunctions`."""

    def __init__(
        self,
        db: Database,
        *,
        uploads: UploadService,
        projects: ProjectService,
        agents: AgentService,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._db = db
        self._uploads = uploads
        self._projects = projects
        self._agents = agents
        self._limiter = limiter

    async def import_functions(
        self, tenant_id: str, bot_id: str, body: list[Any], *, created_by: str
    ) -> dict[str, Any]:
        await vendor_limit(self._limiter, f"xo:import:{tenant_id}:{bot_id}")
        await self._projects.get(tenant_id, bot_id)
        if not body:
            raise InvalidArgument("Invalid file id", field="fileId", reason="INVALID_FILE_ID")
        if len(body) > MAX_FILES:
            raise InvalidArgument(f"At most {MAX_FILES} files at once", field="fileId")
        found: dict[str, botfunctions.Declaration] = {}
        files: list[tuple[str, str]] = []
        from_file: dict[str, str] = {}  # tool name -> the uploaded file it came from
        for item in body:
            if not isinstance(item, dict):
                raise InvalidArgument("Each item must be {fileName, fileId}", field="fileId")
            file_id = item.get("fileId")
            stored = await self._uploads.read(
                tenant_id, file_id if isinstance(file_id, str) else ""
            )
            name = str(item.get("fileName") or stored.row.file_name)[:255]
            files.append((stored.row.id, name))
            for decl in botfunctions.parse_file(name, stored.row.file_extension, stored.data):
                found[decl.name] = decl  # a later file wins
                from_file[decl.name] = stored.row.id
        async with self._db.read() as uow:
            rows = await ImportedToolRepository(uow, tenant_id).in_project(bot_id)
            existing = {r.name: r for r in rows}
        merged = {n: r.source for n, r in existing.items()} | {
            n: d.source for n, d in found.items()
        }
        problems = await self._agents.imported_tool_conflicts(
            tenant_id, bot_id, list(merged.values())
        )
        if problems:
            shown = "; ".join(problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise InvalidArgument(
                f"Not imported: the tools would break agents of this bot: {shown}{more}",
                field="fileId",
                reason="TOOL_BREAKS_AGENT",
            )
        now = utcnow()
        async with self._db.uow() as uow:
            for name, decl in found.items():
                row = existing.get(name)
                if row is None:
                    row = ImportedTool(
                        id=cuid(),
                        tenant_id=tenant_id,
                        project_id=bot_id,
                        name=name,
                        source="",
                        created_at=now,
                    )
                else:
                    row = await uow.get(ImportedTool, row.id) or row
                row.source, row.origin, row.updated_at = decl.source, decl.origin, now
                row.file_id = from_file[name]
                uow.add(row)
            await uow.flush()
            await self._agents.recompile_with_tools(
                tenant_id=tenant_id, project_id=bot_id, tx=uow, declarations=list(merged.values())
            )
        return {
            "requestType": "BotImport",
            "status": "Success",
            "createdOn": iso(now),
            "_id": cuid()[:24].ljust(24, "0"),
            "createdBy": created_by,
            "__v": 0,
            "fileId": files[0][0],
            "fileName": files[0][1],
            "importedTools": sorted(found),
        }


class TestSuiteService:
    """Conversation test suites of a project (`/api/public/stream/{id}/conversation/...`)."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        db: Database,
        *,
        uploads: UploadService,
        projects: ProjectService,
        agents: AgentService,
        turns: TurnService,
        runner: jobs.JobRunner,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._db = db
        self._uploads = uploads
        self._projects = projects
        self._agents = agents
        self._runner = runner
        self._limiter = limiter
        player = SuitePlayer(db, turns)
        runner.register(SUITE_IMPORT, player.run_import)
        runner.register(SUITE_RUN, player.run_suite)

    # -- import --------------------------------------------------------------------------

    async def import_suite(
        self, tenant_id: str, stream_id: str, body: dict[str, Any], *, created_by: str
    ) -> dict[str, Any]:
        await vendor_limit(self._limiter, f"xo:suite-import:{tenant_id}:{stream_id}")
        await self._projects.get(tenant_id, stream_id)
        file_id = _str_field(body, "fileName", required=True, limit=64)
        name = _str_field(body, "name", required=True, limit=MAX_NAME)
        description = _str_field(body, "description", required=False, limit=2000)
        email = _str_field(body, "userEmailId", required=False, limit=320)
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidArgument("tags must be an array of strings", field="tags")
        stored = await self._uploads.read(tenant_id, file_id)
        if len(stored.data) > MAX_SUITE_BYTES:
            raise InvalidArgument(
                "A test suite file is at most 2 MB", field="fileName", reason="SUITE_TOO_LARGE"
            )
        try:
            doc = json.loads(stored.data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise InvalidArgument(
                "The test suite file must be JSON", field="fileName", reason="INVALID_TEST_SUITE"
            ) from None
        steps, problems = suites.normalize(doc)
        async with self._db.read() as uow:
            old = await find_suite(uow, tenant_id, stream_id, name)
        params = {
            "name": name,
            "suiteId": old.id if old else f"ctc-{jobs.new_job_id('x')[2:]}",
            "tags": tags[:50],
            "description": description,
            "userEmailId": email,
            "steps": steps,
            "problems": problems,
        }
        row = await jobs.enqueue(
            self._db,
            tenant_id=tenant_id,
            project_id=stream_id,
            kind=SUITE_IMPORT,
            params=params,
            created_by=created_by,
            job_id=jobs.new_job_id("ds"),
        )
        self._runner.wake()
        return {"status": "IN_PROGRESS", "dsId": row.id}

    async def import_status(self, tenant_id: str, stream_id: str, ds_id: str) -> dict[str, Any]:
        await vendor_limit(self._limiter, f"xo:status:{tenant_id}:{ds_id}")
        await self._projects.get(tenant_id, stream_id)
        row = await jobs.load(self._db, tenant_id, ds_id)
        if row is None or row.project_id != stream_id or row.kind != SUITE_IMPORT:
            raise NotFound("Test suite import not found", reason="IMPORT_NOT_FOUND")
        params = json.loads(row.params)
        result = json.loads(row.result) if row.result else {}
        failed = row.status == jobs.FAILED or (
            row.status == jobs.SUCCEEDED and not result.get("ok")
        )
        status = (
            "FAILED" if failed else "SUCCESS" if row.status == jobs.SUCCEEDED else "IN_PROGRESS"
        )
        out: dict[str, Any] = {
            "_id": row.id,
            "status": status,
            "percentageComplete": 100 if row.status == jobs.SUCCEEDED else row.percentage,
            "streamId": stream_id,
            "jobType": "CONVERSATION_TESTING_VALIDATE",
            "action": "RUN",
            "countOfDockStatuses": 1,
            "createdBy": row.created_by,
            "testSuiteId": params.get("suiteId", ""),
            "expireAt": iso(row.expire_at),
            "statusLogs": [],
            "lMod": iso(row.updated_at),
            "createdOn": iso(row.created_at),
            "requestedTime": iso(row.created_at),
            "__v": 0,
        }
        if status == "SUCCESS":
            out["response"] = result.get("document", {})
        elif failed:
            out["reason"] = row.error or "The test suite is not valid"
            out["errors"] = result.get("errors", [])
        return out

    # -- run -------------------------------------------------------------------------------

    async def run(
        self, tenant_id: str, stream_id: str, name: str, body: dict[str, Any], *, created_by: str
    ) -> dict[str, Any]:
        await vendor_limit(self._limiter, f"xo:suite-run:{tenant_id}:{stream_id}")
        await self._projects.get(tenant_id, stream_id)
        version = _str_field(body, "version", required=True, limit=20)
        if version not in ("published", "inDevelopment"):
            raise InvalidArgument("version must be published or inDevelopment", field="version")
        email = _str_field(body, "userEmailId", required=False, limit=320)
        deployment_id = _str_field(body, "deploymentId", required=False, limit=128)
        async with self._db.read() as uow:
            suite = await find_suite(uow, tenant_id, stream_id, name)
        if suite is None:
            raise NotFound(f"Test suite {name!r} not found", reason="TEST_SUITE_NOT_FOUND")
        environment = "dev"
        if deployment_id:
            await self._agents.resolve(tenant_id, stream_id, deployment_id=deployment_id)
        elif version == "published":
            resolved = await self._agents.resolve(tenant_id, stream_id, environment="production")
            if resolved.environment != "production":
                raise FailedPrecondition(
                    "The bot has no published version: deploy it to production first",
                    reason="NOT_PUBLISHED",
                )
            environment = "production"
        total = len(json.loads(suite.document).get("testSteps", []))
        row = await jobs.enqueue(
            self._db,
            tenant_id=tenant_id,
            project_id=stream_id,
            kind=SUITE_RUN,
            params={
                "suiteId": suite.id,
                "name": name,
                "version": version,
                "environment": environment,
                "deploymentId": deployment_id,
                "userEmailId": email,
                "total": total,
            },
            created_by=created_by,
            job_id=jobs.new_job_id("ctr"),
        )
        self._runner.wake()
        return {"status": "IN_PROGRESS", "testRunId": row.id}

    async def run_status(
        self, tenant_id: str, stream_id: str, name: str, run_id: str
    ) -> dict[str, Any]:
        await vendor_limit(self._limiter, f"xo:status:{tenant_id}:{run_id}")
        await self._projects.get(tenant_id, stream_id)
        row = await jobs.load(self._db, tenant_id, run_id)
        params = json.loads(row.params) if row is not None else {}
        if (
            row is None
            or row.project_id != stream_id
            or row.kind != SUITE_RUN
            or params.get("name") != name
        ):
            raise NotFound("Test run not found", reason="TEST_RUN_NOT_FOUND")
        head: dict[str, Any] = {
            "_id": row.id,
            "streamId": stream_id,
            "testSuiteId": params["suiteId"],
        }
        version = "published" if params["version"] == "published" else "configured"
        if row.status == jobs.SUCCEEDED:
            result = json.loads(row.result)
            return head | {
                "status": result["status"],
                "totalTestStepsCount": params["total"],
                "result": result,
                "percentageCompleted": 100,
            }
        if row.status == jobs.FAILED:
            return head | {
                "status": "failed",
                "totalTestStepsCount": params["total"],
                "result": {
                    "nlpVersion": [],
                    "startTime": iso(row.created_at),
                    "version": version,
                    "status": "failed",
                    "stepDetails": {"passed": 0, "failed": 0, "total": params["total"]},
                    "errorDetails": row.error,
                    "executionResults": [],
                    "duration": _ms(row.created_at, row.finished_at),
                },
                "percentageCompleted": row.percentage,
            }
        return head | {
            "status": "inprogress",
            "totalTestStepsCount": params["total"],
            "result": {
                "nlpVersion": [],
                "startTime": iso(row.created_at),
                "version": version,
                "status": "inprogress",
            },
            "percentageCompleted": row.percentage,
        }

    # -- delete ------------------------------------------------------------------------------

    async def delete(self, tenant_id: str, stream_id: str, body: dict[str, Any]) -> dict[str, Any]:
        await vendor_limit(self._limiter, f"xo:suite-delete:{tenant_id}:{stream_id}")
        await self._projects.get(tenant_id, stream_id)
        names = body.get("testSuiteNames")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise InvalidArgument(
                "testSuiteNames must be a non-empty array of names", field="testSuiteNames"
            )
        if len(names) > 100:
            raise InvalidArgument("At most 100 test suites at once", field="testSuiteNames")
        missing: list[str] = []
        async with self._db.uow() as uow:
            for name in dict.fromkeys(names):
                row = await find_suite(uow, tenant_id, stream_id, name)
                if row is None:
                    missing.append(name)
                else:
                    await uow.delete(row)
        if len(missing) == len(set(names)):
            raise NotFound(
                "Test suite not found: " + ", ".join(missing[:10]), reason="TEST_SUITE_NOT_FOUND"
            )
        return {"status": "Success", "notFound": missing} if missing else {"status": "Success"}


def _ms(start: Any, end: Any) -> int:
    if start is None or end is None:
        return 0
    return max(0, int((end - start).total_seconds() * 1000))


__all__: Sequence[str] = ("BotFunctionService", "TestSuiteService")
