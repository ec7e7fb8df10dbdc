"""XO bot function import and conversation test suites (import, run, status, delete).

Suite import and suite run are durable jobs of the analytics job runner (`ds-...` and
`ctr-...`): an import replays each test case against the project to record what the bot
did (agent, step, action) per output; a run plays every test case as a fresh session
through the real agent turn (channel `test`, a developer session) and checks the
assertions (`suites.py`). A restart mid-job re-runs it from the start (fresh sessions).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from sqlmodel import col, select

from chatplane.agents.service import AgentService
from chatplane.analytics import jobs
from chatplane.analytics.service import vendor_limit
from chatplane.errors import ChatplaneError, FailedPrecondition, InvalidArgument, NotFound
from chatplane.iam import scopes as scope_names
from chatplane.kit.clock import iso, utcnow
from chatplane.kit.ids import cuid
from chatplane.projects.service import ProjectService
from chatplane.ratelimit import RateLimiter
from chatplane.runtime import TestContext, ToolMock
from chatplane.sessions.turn import TurnService
from chatplane.sessions.types import TurnRequest
from chatplane.storage.db import Database
from chatplane.storage.models import ConversationTestSuite, ImportedTool
from chatplane.testing import botfunctions, suites
from chatplane.testing.uploads import UploadService

SUITE_IMPORT, SUITE_RUN = "suite_import", "suite_run"
MAX_FILES = 10
MAX_SUITE_BYTES = 2 * 1000 * 1000  # the vendor's 2 MB
MAX_NAME = 200
RUN_SCOPES = frozenset({scope_names.SESSION_EXECUTE, scope_names.PROJECT_WRITE})
_STATE_KEYS = ("currentAgent", "currentStep", "status")


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
        async with self._db.read() as uow:
            existing = {
                r.name: r
                for r in (
                    await uow.exec(
                        select(ImportedTool).where(
                            ImportedTool.tenant_id == tenant_id, ImportedTool.project_id == bot_id
                        )
                    )
                ).all()
            }
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
                row.file_id = next((f for f, _ in files), "")
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
        self._turns = turns
        self._runner = runner
        self._limiter = limiter
        runner.register(SUITE_IMPORT, self._run_import)
        runner.register(SUITE_RUN, self._run_suite)

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
            old = await self._suite(uow, tenant_id, stream_id, name)
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

    async def _run_import(self, job: jobs.Job, progress: jobs.Progress) -> dict[str, Any]:
        p = job.params
        if p["problems"]:
            return {"ok": False, "errors": p["problems"]}
        steps: list[dict[str, Any]] = p["steps"]
        errors: list[dict[str, Any]] = []
        done = 0
        for _name, case in suites.cases(steps):
            session_id = ""
            for n, step in case:
                try:
                    result = await self._turns.run(
                        job.tenant_id,
                        RUN_SCOPES,
                        _turn(
                            job.project_id,
                            step,
                            session_id=session_id,
                            first=case[0][1],
                            email=p["userEmailId"],
                            job_id=job.id,
                        ),
                    )
                except ChatplaneError as exc:
                    errors.append({"step": n + 1, "msg": f"replay failed: {exc.message}"})
                    break
                session_id = result.session_id
                _record(step, result.state, result.action.type, result.response)
                done += 1
                await progress(int(done * 100 / max(1, len(steps))))
        if errors:
            return {"ok": False, "errors": errors}
        now = utcnow()
        async with self._db.uow() as uow:
            row = await uow.get(ConversationTestSuite, p["suiteId"])
            if row is None:
                stale = await self._suite(uow, job.tenant_id, job.project_id, p["name"])
                if stale is not None:
                    await uow.delete(stale)
                    await uow.flush()
                row = ConversationTestSuite(
                    id=p["suiteId"],
                    tenant_id=job.tenant_id,
                    project_id=job.project_id,
                    name=p["name"],
                    document="{}",
                    created_by=job.created_by,
                    created_at=now,
                )
            document = {
                "schedule": {"enableSchedule": False},
                "channel": "test",
                "tags": p["tags"],
                "recentTags": [],
                "metadataAvailable": True,
                "name": p["name"],
                "description": p["description"],
                "preprocessor": "",
                "serviceMap": [],
                "authProfiles": [],
                "streamId": job.project_id,
                "accountId": job.tenant_id,
                "lModBy": job.created_by,
                "createdBy": row.created_by,
                "testSteps": steps,
                "_id": row.id,
                "createdOn": iso(row.created_at),
                "lModOn": iso(now),
                "__v": 0,
            }
            row.document = json.dumps(document)
            row.updated_at = now
            uow.add(row)
        return {"ok": True, "document": document}

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
            suite = await self._suite(uow, tenant_id, stream_id, name)
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

    async def _run_suite(self, job: jobs.Job, progress: jobs.Progress) -> dict[str, Any]:
        p = job.params
        async with self._db.read() as uow:
            suite = await uow.get(ConversationTestSuite, p["suiteId"])
        if suite is None or suite.tenant_id != job.tenant_id:
            raise jobs.JobFailed("The test suite was deleted before the run started")
        steps: list[dict[str, Any]] = json.loads(suite.document).get("testSteps", [])
        started_ms = time.time()
        started = utcnow()
        results: list[dict[str, Any]] = []
        cases_passed = cases_failed = 0
        for case_name, case in suites.cases(steps):
            session_id, broken = "", ""
            case_ok = True
            for n, step in case:
                item = await self._play(
                    job, p=p, step=step, case=case, n=n, session_id=session_id, broken=broken
                )
                session_id = item.pop("_session", session_id) or session_id
                broken = item.pop("_broken", "") or broken
                item["testCase"] = case_name
                case_ok = case_ok and item["status"] == "passed"
                results.append(item)
                await progress(int(len(results) * 100 / max(1, len(steps))))
            cases_passed += case_ok
            cases_failed += not case_ok
        passed = sum(1 for r in results if r["status"] == "passed")
        status = "passed" if passed == len(results) and results else "failed"
        out: dict[str, Any] = {
            "nlpVersion": ["abl"] * len(results),
            "startTime": iso(started),
            "version": "published" if p["version"] == "published" else "configured",
            "status": status,
            "stepDetails": {
                "passed": passed,
                "failed": len(results) - passed,
                "total": len(results),
            },
            "caseDetails": {
                "passed": cases_passed,
                "failed": cases_failed,
                "total": cases_passed + cases_failed,
            },
            "errorDetails": None,
            "executionResults": results,
            "duration": round((time.time() - started_ms) * 1000),
        }
        if p.get("deploymentId"):
            out["deploymentId"] = p["deploymentId"]
        return out

    async def _play(
        self,
        job: jobs.Job,
        *,
        p: dict[str, Any],
        step: dict[str, Any],
        case: list[tuple[int, dict[str, Any]]],
        n: int,
        session_id: str,
        broken: str,
    ) -> dict[str, Any]:
        head: dict[str, Any] = {"input": step["input"]}
        if step.get("event"):
            head["event"] = step["event"]
        expected = step.get("outputs", [])
        if broken:
            return head | {
                "outputs": expected,
                "actualOutput": [],
                "intents": [],
                "faqs": [],
                "smalltalk": [],
                "requestId": f"{job.id}{n + 1}",
                "nlpVersion": "abl",
                "status": "failed",
                "failureReasons": [f"not executed: {broken}"],
            }
        try:
            result = await self._turns.run(
                job.tenant_id,
                RUN_SCOPES,
                _turn(
                    job.project_id,
                    step,
                    session_id=session_id,
                    first=case[0][1],
                    email=p["userEmailId"],
                    job_id=job.id,
                    environment=p["environment"],
                    deployment_id=p.get("deploymentId", ""),
                ),
            )
        except ChatplaneError as exc:
            reason = f"the turn failed: {exc.message}"
            return head | {
                "outputs": expected,
                "actualOutput": [],
                "intents": [],
                "faqs": [],
                "smalltalk": [],
                "requestId": f"{job.id}{n + 1}",
                "nlpVersion": "abl",
                "status": "failed",
                "failureReasons": [reason],
                "_broken": "an earlier step of the test case failed to run",
            }
        agent = str(result.state.get("currentAgent") or "")
        node = str(result.state.get("currentStep") or "")
        texts = suites.split_reply(result.response, len(expected))
        checked, reasons = [], []
        for out, text in zip(expected, texts, strict=False):
            seen = suites.Observed(text, agent, node, result.action.type, dict(result.state))
            c, r = suites.check_output(out, seen)
            checked.append(c)
            reasons += r
        actual = [
            _actual(text, agent, node, result.action.type)
            for text in (texts if len(texts) > 1 else [result.response])
        ]
        return head | {
            "outputs": checked,
            "actualOutput": actual,
            "intents": [],
            "faqs": [],
            "smalltalk": [],
            "requestId": f"{job.id}{n + 1}",
            "nlpVersion": "abl",
            "status": "failed" if reasons else "passed",
            "failureReasons": reasons,
            "sessionId": result.session_id,
            "_session": result.session_id,
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
                row = await self._suite(uow, tenant_id, stream_id, name)
                if row is None:
                    missing.append(name)
                else:
                    await uow.delete(row)
        if len(missing) == len(set(names)):
            raise NotFound(
                "Test suite not found: " + ", ".join(missing[:10]), reason="TEST_SUITE_NOT_FOUND"
            )
        return {"status": "Success", "notFound": missing} if missing else {"status": "Success"}

    async def _suite(
        self, uow: Any, tenant_id: str, stream_id: str, name: str
    ) -> ConversationTestSuite | None:
        found = await uow.exec(
            select(ConversationTestSuite).where(
                ConversationTestSuite.tenant_id == tenant_id,
                ConversationTestSuite.project_id == stream_id,
                col(ConversationTestSuite.name) == name,
            )
        )
        row: ConversationTestSuite | None = found.first()
        return row


def _turn(
    project_id: str,
    step: dict[str, Any],
    *,
    session_id: str,
    first: dict[str, Any],
    email: str,
    job_id: str,
    environment: str = "dev",
    deployment_id: str = "",
) -> TurnRequest:
    mocks = tuple(
        ToolMock(str(m["toolName"]), m.get("response"), m.get("error"))
        for m in first.get("toolMocks") or []
    )
    metadata: dict[str, Any] = {"testRunId": job_id}
    if step.get("event"):
        metadata["event"] = step["event"]
    return TurnRequest(
        project_id=project_id,
        message=step["input"],
        session_id=session_id,
        environment="" if deployment_id or session_id else environment,
        deployment_id="" if session_id else deployment_id,
        # inDevelopment runs the draft (the current sources), published production.
        draft=not session_id and not deployment_id and environment != "production",
        metadata=metadata,
        test=TestContext(tool_mocks=mocks, caller_context={"userId": email} if email else {}),
        channel="test",
    )


def _actual(text: str, agent: str, node: str, action: str) -> dict[str, Any]:
    return {
        "text": text,
        **suites.OUTPUT_DEFAULTS,
        "nodeId": node,
        "componentType": "step",
        "nodeName": node,
        "dialogName": agent,
        "actionType": action,
    }


def _record(step: dict[str, Any], state: dict[str, Any], action: str, reply: str) -> None:
    """What the replay saw, per output (the vendor's validation metadata); an enabled
    flow assertion without items gets the replay's agent, step and action."""
    agent = str(state.get("currentAgent") or "")
    node = str(state.get("currentStep") or "")
    outputs = step.get("outputs") or []
    texts = suites.split_reply(reply, len(outputs))
    for out, _text in zip(outputs, texts, strict=False):
        out.update(nodeId=node, nodeName=node, componentType="step", dialogName=agent)
        out["actionType"] = action
        flow = out["assertions"]["flowLevel"]
        if flow.get("enabled") and not flow.get("contains"):
            flow["contains"] = [{"dialogName": agent, "nodeId": node, "actionType": action}]


def _ms(start: Any, end: Any) -> int:
    if start is None or end is None:
        return 0
    return max(0, int((end - start).total_seconds() * 1000))


__all__: Sequence[str] = ("BotFunctionService", "TestSuiteService")
