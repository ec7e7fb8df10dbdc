"""Playing conversation test suites through the real agent turn: the two job handlers of
`TestSuiteService` (suite import replays each case to record what the bot did; suite run
plays each case as a fresh test session and checks its assertions with `suites.py`)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlmodel import col, select

from chatplane.analytics import jobs
from chatplane.errors import ChatplaneError
from chatplane.iam import scopes as scope_names
from chatplane.kit.clock import iso, utcnow
from chatplane.runtime import TestContext, ToolMock
from chatplane.sessions.turn import TurnService
from chatplane.sessions.types import TurnRequest, TurnResult
from chatplane.storage.db import Database
from chatplane.storage.models import ConversationTestSuite
from chatplane.testing import suites

RUN_SCOPES = frozenset({scope_names.SESSION_EXECUTE, scope_names.PROJECT_WRITE})


class SuitePlayer:
    """Runs suite-import and suite-run jobs (registered with the job runner by the service)."""

    def __init__(self, db: Database, turns: TurnService) -> None:
        self._db = db
        self._turns = turns

    async def _step(
        self,
        job: jobs.Job,
        step: dict[str, Any],
        case: list[tuple[int, dict[str, Any]]],
        session_id: str,
    ) -> TurnResult:
        """One step of a test case as a turn of the case's test session (a suite run names
        its environment or deployment; an import replays the draft)."""
        p = job.params
        return await self._turns.run(
            job.tenant_id,
            RUN_SCOPES,
            _turn(
                job.project_id,
                step,
                session_id=session_id,
                first=case[0][1],
                email=p["userEmailId"],
                job_id=job.id,
                environment=p.get("environment", "dev"),
                deployment_id=p.get("deploymentId", ""),
            ),
        )

    async def run_import(self, job: jobs.Job, progress: jobs.Progress) -> dict[str, Any]:
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
                    result = await self._step(job, step, case, session_id)
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
                stale = await find_suite(uow, job.tenant_id, job.project_id, p["name"])
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

    async def run_suite(self, job: jobs.Job, progress: jobs.Progress) -> dict[str, Any]:
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
            result = await self._step(job, step, case, session_id)
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


async def find_suite(
    uow: Any, tenant_id: str, stream_id: str, name: str
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
