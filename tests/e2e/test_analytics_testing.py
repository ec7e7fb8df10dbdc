"""XO upload file, bot function import and conversation test suites through the real
Envoy: shapes, a passing and a failing case, scopes, cross-tenant ids, the envelope."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from chatplane.app import App
from tests.conftest import TenantKeys
from tests.e2e.test_agent_turns import SENT, VALID, agent_project

SUITE: dict[str, Any] = {
    "testCases": [
        {
            "name": "reset works",
            "toolMocks": [SENT, VALID],
            "messages": [
                {
                    "input": "Start_Flow",
                    "event": "Start_Flow",
                    "outputs": [{"contains": "Hi! I can help you reset your password.{{rest}}"}],
                },
                {
                    "input": "me@example.com",
                    "outputs": [
                        {"contains": "{{a}}m***@x.io{{b}}", "context": {"email": "me@example.com"}}
                    ],
                },
                {"input": "123456", "outputs": [{"contains": ["nope", "{{any}}https://r/1{{x}}"]}]},
            ],
        },
        {
            "name": "wrong greeting",
            "messages": [
                {"input": "Start_Flow", "event": "Start_Flow", "outputs": [{"contains": "Goodbye"}]}
            ],
        },
    ]
}


async def upload(
    http: httpx.AsyncClient, tenant: TenantKeys, name: str, data: bytes, ext: str
) -> dict[str, Any]:
    r = await http.post(
        "/api/public/uploadfile",
        files={"file": (name, data)},
        data={"fileContext": "bulkImport", "fileExtension": ext},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def poll(http: httpx.AsyncClient, tenant: TenantKeys, path: str, done: set[str]) -> Any:
    for _ in range(200):
        r = await http.get(path, headers=tenant.headers)
        assert r.status_code == 200, r.text
        if r.json()["status"] in done:
            return r.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"not done: {r.text}")


async def test_upload_and_import_bot_functions(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    pid = await agent_project(http, tenant)
    spec = {
        "openapi": "3.0.3",
        "servers": [{"url": "https://pets.example.com/v1"}],
        "paths": {
            "/pets/{petId}": {
                "get": {
                    "operationId": "getPet",
                    "summary": "One pet",
                    "parameters": [
                        {
                            "name": "petId",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                }
            }
        },
    }
    up = await upload(http, tenant, "pets.json", json.dumps(spec).encode(), "json")
    assert list(up) == ["fileId", "hash", "fileName"]
    assert len(up["fileId"]) == 24 and len(up["hash"]) == 64 and up["fileName"] == "pets.json"
    r = await http.post(
        f"/api/public/bot/{pid}/import/botfunctions",
        json=[{"fileName": "pets.json", "fileId": up["fileId"]}],
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body)[:9] == [
        "requestType",
        "status",
        "createdOn",
        "_id",
        "createdBy",
        "__v",
        "fileId",
        "fileName",
        "importedTools",
    ]
    assert body["status"] == "Success" and body["importedTools"] == ["getPet"]
    # An agent that calls the imported tool compiles (as if declared in its TOOLS).
    caller = (
        'AGENT: Pets\nGOAL: "pets"\nFLOW:\n  entry_point: s\n  steps:\n    - s\n  s:\n'
        '    REASONING: false\n    CALL: getPet(petId = 1)\n    RESPOND: "ok"\n'
    )
    saved = await http.put(
        f"/api/projects/{pid}/agents/Pets", json={"source": caller}, headers=tenant.headers
    )
    assert saved.status_code == 200, saved.text
    # A new definition that breaks it is reported, not applied.
    spec["paths"]["/pets/{petId}"]["get"]["parameters"][0]["name"] = "id"
    spec["paths"]["/pets/{id}"] = spec["paths"].pop("/pets/{petId}")
    up2 = await upload(http, tenant, "pets2.yaml", json.dumps(spec).encode(), "yaml")
    broken = await http.post(
        f"/api/public/bot/{pid}/import/botfunctions",
        json=[{"fileName": "pets2.yaml", "fileId": up2["fileId"]}],
        headers=tenant.headers,
    )
    assert broken.status_code == 400
    assert "Pets (draft)" in broken.json()["errors"][0]["msg"]
    js = await upload(http, tenant, "BotFunctions.js", b"function f() {}", "js")
    bad = await http.post(
        f"/api/public/bot/{pid}/import/botfunctions",
        json=[{"fileName": "BotFunctions.js", "fileId": js["fileId"]}],
        headers=tenant.headers,
    )
    assert bad.status_code == 400
    assert "OpenAPI 3" in bad.json()["errors"][0]["msg"] and "ABL" in bad.json()["errors"][0]["msg"]
    unknown = await http.post(
        f"/api/public/bot/{pid}/import/botfunctions",
        json=[{"fileName": "x", "fileId": "0" * 24}],
        headers=tenant.headers,
    )
    assert unknown.json() == {"errors": [{"msg": "Invalid file id", "code": 400}]}
    # Another tenant: the bot is 404, the file id is invalid.
    foreign = await http.post(
        f"/api/public/bot/{pid}/import/botfunctions",
        json=[{"fileName": "pets.json", "fileId": up["fileId"]}],
        headers=other_tenant.headers,
    )
    assert foreign.status_code == 404 and foreign.json()["errors"][0]["code"] == 404
    reader = await app.iam.create_key(tenant.tenant_id, "reader", ["project:read"])
    denied = await http.post(
        "/api/public/uploadfile",
        files={"file": ("a.txt", b"x")},
        headers={"Authorization": f"Bearer {reader.secret}"},
    )
    assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == 403


async def test_conversation_suite_import_run_delete(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    pid = await agent_project(http, tenant)
    base = f"/api/public/stream/{pid}/conversation/testsuite"
    up = await upload(http, tenant, "suite.json", json.dumps(SUITE).encode(), "json")
    started = await http.post(
        f"{base}/import",
        json={"fileName": up["fileId"], "name": "reset", "tags": ["ci"], "userEmailId": "a@b.c"},
        headers={**tenant.headers, "bot-language": "en"},
    )
    assert started.status_code == 200, started.text
    assert list(started.json()) == ["status", "dsId"]
    assert started.json()["status"] == "IN_PROGRESS" and started.json()["dsId"].startswith("ds-")
    status = await poll(
        http, tenant, f"{base}/import/{started.json()['dsId']}/status", {"SUCCESS", "FAILED"}
    )
    assert status["status"] == "SUCCESS", status
    assert status["jobType"] == "CONVERSATION_TESTING_VALIDATE" and status["action"] == "RUN"
    doc = status["response"]
    assert doc["name"] == "reset" and doc["_id"] == status["testSuiteId"]
    assert len(doc["testSteps"]) == 4
    first = doc["testSteps"][0]["outputs"][0]
    assert first["nodeId"] == "ask_email" and first["dialogName"] == "Password_Reset"
    assert first["assertions"]["flowLevel"]["contains"][0]["nodeId"] == "ask_email"

    run = await http.post(
        f"{base}/reset/run",
        json={"version": "inDevelopment", "userEmailId": "a@b.c"},
        headers=tenant.headers,
    )
    assert run.status_code == 200, run.text
    assert list(run.json()) == ["status", "testRunId"]
    run_id = run.json()["testRunId"]
    assert run_id.startswith("ctr-")
    done = await poll(http, tenant, f"{base}/reset/{run_id}/status", {"passed", "failed"})
    assert list(done) == [
        "_id",
        "streamId",
        "testSuiteId",
        "status",
        "totalTestStepsCount",
        "result",
        "percentageCompleted",
    ]
    assert done["status"] == "failed" and done["totalTestStepsCount"] == 4
    result = done["result"]
    assert result["version"] == "configured"
    assert result["stepDetails"] == {"passed": 3, "failed": 1, "total": 4}
    assert result["caseDetails"] == {"passed": 1, "failed": 1, "total": 2}
    assert isinstance(result["duration"], int)
    steps = result["executionResults"]
    assert [s["status"] for s in steps] == ["passed", "passed", "passed", "failed"]
    failing = steps[3]
    assert failing["testCase"] == "wrong greeting"
    assert failing["outputs"][0]["assertions"]["text"]["status"] == "failed"
    assert failing["outputs"][0]["assertions"]["flowLevel"]["status"] == "passed"
    assert failing["failureReasons"][0].startswith("text: expected 'Goodbye'")
    assert failing["actualOutput"][0]["text"].startswith("Hi! I can help")
    assert steps[1]["outputs"][0]["assertions"]["context"]["status"] == "passed"
    one_of = steps[2]["outputs"][0]["assertions"]["text"]["contains"]
    assert [c["status"] for c in one_of] == ["failed", "passed"]
    # The run's sessions are developer sessions of channel test.
    sessions = await http.post(
        f"/api/public/bot/{pid}/getSessions",
        json={"sessionId": [steps[0]["sessionId"]]},
        headers=tenant.headers,
    )
    s = sessions.json()["sessions"][0]
    assert s["channel"] == "test" and s["isDeveloper"] is True

    # Cross-tenant, scope, unknown names.
    foreign = await http.get(f"{base}/reset/{run_id}/status", headers=other_tenant.headers)
    assert foreign.status_code == 404
    reader = await app.iam.create_key(tenant.tenant_id, "r", ["project:read"])
    denied = await http.post(
        f"{base}/reset/run",
        json={"version": "inDevelopment"},
        headers={"Authorization": f"Bearer {reader.secret}"},
    )
    assert denied.status_code == 403
    published = await http.post(
        f"{base}/reset/run", json={"version": "published"}, headers=tenant.headers
    )
    assert published.status_code == 400
    assert "production" in published.json()["errors"][0]["msg"]
    gone = await http.request(
        "DELETE", base, json={"testSuiteNames": ["reset", "nope"]}, headers=tenant.headers
    )
    assert gone.status_code == 200, gone.text
    assert gone.json() == {"status": "Success", "notFound": ["nope"]}
    again = await http.request(
        "DELETE", base, json={"testSuiteNames": ["reset"]}, headers=tenant.headers
    )
    assert again.status_code == 404
    assert again.json() == {"errors": [{"msg": "Test suite not found: reset", "code": 404}]}


async def test_invalid_suite_fails_with_errors_per_step(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await agent_project(http, tenant)
    base = f"/api/public/stream/{pid}/conversation/testsuite"
    bad = {
        "testSteps": [
            {"input": "hi", "outputs": []},
            {"outputs": []},
            {"input": "x", "event": "Nope"},
        ]
    }
    up = await upload(http, tenant, "bad.json", json.dumps(bad).encode(), "json")
    started = await http.post(
        f"{base}/import", json={"fileName": up["fileId"], "name": "bad"}, headers=tenant.headers
    )
    status = await poll(
        http, tenant, f"{base}/import/{started.json()['dsId']}/status", {"SUCCESS", "FAILED"}
    )
    assert status["status"] == "FAILED"
    assert [e["step"] for e in status["errors"]] == [2, 3]
    assert status["reason"]


async def test_cli_test_run_writes_junit(
    http: httpx.AsyncClient, tenant: TenantKeys, gateway: str, tmp_path: Any, capsys: Any
) -> None:
    from xml.etree import ElementTree as ET

    from chatplane import cli

    pid = await agent_project(http, tenant)
    suite = tmp_path / "reset-suite.json"
    suite.write_text(json.dumps(SUITE))
    out = tmp_path / "junit.xml"
    argv = [
        "test",
        "run",
        str(suite),
        "--project",
        pid,
        "--junit",
        str(out),
        "--url",
        gateway,
        "--key",
        tenant.key,
    ]
    code = await asyncio.to_thread(cli.main, argv)
    printed = capsys.readouterr().out
    assert code == 1, printed
    assert "ok   reset works (3 steps)" in printed
    assert "FAIL wrong greeting (1 steps)" in printed
    assert "1 passed, 1 failed test cases" in printed
    root = ET.parse(out).getroot()  # noqa: S314 - our own file
    suite_el = root.find("testsuite")
    assert suite_el is not None and suite_el.get("tests") == "2" and suite_el.get("failures") == "1"
    cases = {c.get("name"): c for c in suite_el.iter("testcase")}
    assert cases["reset works"].find("failure") is None
    failure = cases["wrong greeting"].find("failure")
    assert failure is not None and "text: expected 'Goodbye'" in (failure.get("message") or "")
    # The suite was deleted after the run.
    gone = await http.request(
        "DELETE",
        f"/api/public/stream/{pid}/conversation/testsuite",
        json={"testSuiteNames": ["reset-suite"]},
        headers=tenant.headers,
    )
    assert gone.status_code == 404


async def test_suite_run_interrupted_by_a_restart_resumes(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    from datetime import timedelta

    import sqlalchemy as sa

    from chatplane.analytics import jobs
    from chatplane.kit.clock import utcnow

    pid = await agent_project(http, tenant)
    base = f"/api/public/stream/{pid}/conversation/testsuite"
    up = await upload(http, tenant, "s.json", json.dumps(SUITE).encode(), "json")
    started = await http.post(
        f"{base}/import", json={"fileName": up["fileId"], "name": "s"}, headers=tenant.headers
    )
    await poll(http, tenant, f"{base}/import/{started.json()['dsId']}/status", {"SUCCESS"})
    # A run that a dead process had claimed: `running`, its lease long expired.
    suite_id = (
        await http.get(f"{base}/import/{started.json()['dsId']}/status", headers=tenant.headers)
    ).json()["testSuiteId"]
    row = await jobs.enqueue(
        app.db,
        tenant_id=tenant.tenant_id,
        project_id=pid,
        kind="suite_run",
        params={
            "suiteId": suite_id,
            "name": "s",
            "version": "inDevelopment",
            "environment": "dev",
            "deploymentId": "",
            "userEmailId": "",
            "total": 4,
        },
        created_by="k",
        job_id=jobs.new_job_id("ctr"),
    )
    table = jobs.J
    async with app.db.uow() as uow:
        conn = await uow.connection()
        await conn.execute(
            sa.update(table)
            .where(table.c.id == row.id)
            .values(
                status=jobs.RUNNING,
                claimed_by="dead-process",
                attempts=1,
                percentage=25,
                updated_at=utcnow() - timedelta(minutes=5),
            )
        )
    mid = await http.get(f"{base}/s/{row.id}/status", headers=tenant.headers)
    assert mid.json()["status"] == "inprogress" and mid.json()["percentageCompleted"] == 25
    assert await app.jobs.recover() >= 1  # what every runner does at start and periodically
    app.jobs.wake()
    done = await poll(http, tenant, f"{base}/s/{row.id}/status", {"passed", "failed"})
    assert done["result"]["stepDetails"] == {"passed": 3, "failed": 1, "total": 4}


async def test_vendor_rate_limits_on_suite_routes(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    from chatplane.ratelimit import Window, build_rate_limiter

    pid = await agent_project(http, tenant)
    base = f"/api/public/stream/{pid}/conversation/testsuite"
    small = build_rate_limiter([Window(60, 2), Window(3600, 100)], None)
    saved = app.test_suites._limiter
    app.test_suites._limiter = small
    try:
        codes = []
        for _ in range(3):
            r = await http.request(
                "DELETE", base, json={"testSuiteNames": ["x"]}, headers=tenant.headers
            )
            codes.append(r.status_code)
        assert codes == [404, 404, 429]
        assert r.json() == {
            "errors": [
                {
                    "msg": "You've exceeded the per-minute rate limit. "
                    "Please wait for sometime before retrying.",
                    "code": 429,
                }
            ]
        }
        assert int(r.headers["retry-after"]) > 0
        # Status routes count per request id, not per bot.
        for _ in range(2):
            s = await http.get(f"{base}/import/ds-a/status", headers=tenant.headers)
            assert s.status_code == 404
        other = await http.get(f"{base}/import/ds-b/status", headers=tenant.headers)
        assert other.status_code == 404
        third = await http.get(f"{base}/import/ds-a/status", headers=tenant.headers)
        assert third.status_code == 429
    finally:
        app.test_suites._limiter = saved
        await small.aclose()
