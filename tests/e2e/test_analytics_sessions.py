"""XO analytics routes (seeds 001, 003) through the real Envoy: getSessions, LLM usage
logs, billing summary and containment report jobs, the vendor's error envelope."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt

from chatplane.app import App
from tests.conftest import TenantKeys
from tests.e2e.test_agent_turns import INVALID, SENT, VALID, agent_project, mocks, turn

SESSION_KEYS = [
    "sessionId",
    "botId",
    "channel",
    "userId",
    "start_time",
    "end_time",
    "session_lang",
    "sessionType",
    "isDeveloper",
    "sessionStatus",
    "tags",
    "noOfMessagesExchanged",
    "noOfTasksExecuted",
    "containmentType",
]
LOG_KEYS = [
    "Prompt Name",
    "Integration",
    "start Date",
    "End Date",
    "Time Taken",
    "statusCode",
    "Bot ID",
    "User ID",
    "Feature Name ",
    "Model Name",
    "Channel Name",
    "Description",
    "task Id",
    "Status",
    "Payload Details",
]


async def three_sessions(http: httpx.AsyncClient, tenant: TenantKeys) -> tuple[str, dict[str, str]]:
    """complete -> selfService, escalate -> agent, ended by hand -> dropOff."""
    pid = await agent_project(http, tenant)
    done = (await turn(http, tenant, pid, "I forgot my password")).json()["sessionId"]
    await turn(http, tenant, pid, "me@example.com", sessionId=done, **mocks(SENT))
    r = await turn(http, tenant, pid, "123456", sessionId=done, **mocks(VALID))
    assert r.json()["action"]["type"] == "complete"
    esc = (await turn(http, tenant, pid, "help")).json()["sessionId"]
    await turn(http, tenant, pid, "me@example.com", sessionId=esc, **mocks(SENT))
    for _ in range(4):
        r = await turn(http, tenant, pid, "000000", sessionId=esc, **mocks(INVALID))
        if r.json()["action"]["type"] != "continue":
            break
    assert r.json()["action"]["type"] == "escalate"
    drop = (await turn(http, tenant, pid, "hello")).json()["sessionId"]
    ended = await http.post(f"/api/projects/{pid}/sessions/{drop}/end", headers=tenant.headers)
    assert ended.status_code == 200, ended.text
    return pid, {"selfService": done, "agent": esc, "dropOff": drop}


async def test_get_sessions_shape_filters_and_containment(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid, ids = await three_sessions(http, tenant)
    r = await http.post(f"/api/public/bot/{pid}/getSessions", headers=tenant.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["total", "moreAvailable", "sessions", "invalidSessions"]
    assert body["total"] == 3 and body["moreAvailable"] is False
    for s in body["sessions"]:
        assert list(s) == SESSION_KEYS
        assert list(s["tags"]) == ["userTags", "sessionTags", "altText"]
        assert s["botId"] == pid and s["sessionStatus"] == "closed"
        assert s["sessionType"] == "interactive" and isinstance(s["isDeveloper"], bool)
    # Newest first.
    assert [s["sessionId"] for s in body["sessions"]] == [
        ids["dropOff"],
        ids["agent"],
        ids["selfService"],
    ]
    for kind, sid in ids.items():
        one = await http.post(
            f"/api/public/bot/{pid}/getSessions?containmentType={kind}", headers=tenant.headers
        )
        assert [s["sessionId"] for s in one.json()["sessions"]] == [sid], kind
        assert one.json()["sessions"][0]["containmentType"] == kind
    page = await http.post(
        f"/api/public/bot/{pid}/getSessions", json={"skip": 1, "limit": 1}, headers=tenant.headers
    )
    assert page.json()["total"] == 3 and page.json()["moreAvailable"] is True
    assert [s["sessionId"] for s in page.json()["sessions"]] == [ids["agent"]]
    # sessionId overrides every other filter (even a window with nothing in it).
    by_id = await http.post(
        f"/api/public/bot/{pid}/getSessions",
        json={
            "sessionId": [ids["agent"], "nope"],
            "dateFrom": "2001-01-01",
            "dateTo": "2001-01-02",
        },
        headers=tenant.headers,
    )
    assert [s["sessionId"] for s in by_id.json()["sessions"]] == [ids["agent"]]
    assert by_id.json()["invalidSessions"] == ["nope"]
    empty = await http.post(
        f"/api/public/bot/{pid}/getSessions",
        json={"dateFrom": "2001-01-01", "dateTo": "2001-01-02"},
        headers=tenant.headers,
    )
    assert empty.json()["total"] == 0
    # The account-level path sees every project of the tenant.
    bac = await http.post("/api/public/getSessions", json={}, headers=tenant.headers)
    assert {s["sessionId"] for s in bac.json()["sessions"]} >= set(ids.values())


async def test_errors_use_the_vendor_envelope(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    pid = await agent_project(http, tenant)
    too_long = await http.post(
        f"/api/public/bot/{pid}/getSessions",
        json={"dateFrom": "2024-01-01", "dateTo": "2024-01-20"},
        headers=tenant.headers,
    )
    assert too_long.status_code == 400
    assert too_long.json() == {
        "errors": [{"msg": "The date range may not exceed 7 days", "code": 400}]
    }
    foreign = await http.post(f"/api/public/bot/{pid}/getSessions", headers=other_tenant.headers)
    assert foreign.status_code == 404 and foreign.json()["errors"][0]["code"] == 404
    key = await app.iam.create_key(tenant.tenant_id, "reader", ["session:read"])
    denied = await http.post(
        f"/api/public/bot/{pid}/getSessions", headers={"Authorization": f"Bearer {key.secret}"}
    )
    assert denied.status_code == 403
    assert denied.json()["errors"][0]["msg"].startswith("Missing required scope")
    bad_jwt = await http.post(f"/api/public/bot/{pid}/getSessions", headers={"auth": "x"})
    assert bad_jwt.status_code == 401 and set(bad_jwt.json()) == {"errors"}
    logs = await http.post(
        f"/api/1.1/public/bot/{pid}/getLLMUsageLogs",
        json={"dateFrom": "2024-01-01", "dateTo": "2024-06-01", "limit": "5"},
        headers=tenant.headers,
    )
    assert logs.status_code == 400
    assert logs.json()["errors"][0]["msg"] == "The date range may not exceed 90 days"


async def test_jwt_auth_header(app: App, http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid = await agent_project(http, tenant)
    client = await app.iam.create_client(tenant.tenant_id, "xo", ["analytics:read"])
    token = jwt.encode(
        {"appId": client.id, "sub": "x", "exp": int(time.time()) + 60},
        client.secret,
        algorithm="HS256",
    )
    r = await http.post(f"/api/public/bot/{pid}/getSessions", headers={"auth": token})
    assert r.status_code == 200, r.text


async def test_llm_usage_logs(app: App, http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid = await agent_project(http, tenant)
    for text in ("Hello", "Say something longer please"):
        done = await http.post(
            "/api/v1/chat/complete",
            json={"projectId": pid, "messages": [{"role": "user", "content": text}]},
            headers=tenant.headers,
        )
        assert done.status_code == 200, done.text
    await app.usage_writer.flush()
    today = time.strftime("%Y-%m-%d", time.gmtime())
    month_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400 * 30))
    body: dict[str, Any] = {"dateFrom": month_ago, "dateTo": today, "limit": "50", "skip": "0"}
    for _ in range(50):
        r = await http.post(
            f"/api/1.1/public/bot/{pid}/getLLMUsageLogs", json=body, headers=tenant.headers
        )
        assert r.status_code == 200, r.text
        if len(r.json()) == 2:
            break
        await asyncio.sleep(0.1)
    logs = r.json()
    assert isinstance(logs, list) and len(logs) == 2
    for item in logs:
        assert list(item) == LOG_KEYS
        assert item["Bot ID"] == pid and item["Status"] == "Success"
        assert item["statusCode"] == 200 and item["Feature Name "] == "Chat Completion"
        assert list(item["Payload Details"]) == [
            "Prompt Name",
            "Request Payload",
            "Response Payload",
            "Request Tokens",
            "Response Tokens",
        ]
    asc = await http.post(
        f"/api/1.1/public/bot/{pid}/getLLMUsageLogs",
        json={**body, "sort": {"field": "Time Taken", "order": "asc"}, "limit": 1},
        headers=tenant.headers,
    )
    assert len(asc.json()) == 1
    assert asc.json()[0]["Time Taken"] == min(i["Time Taken"] for i in logs)


async def poll(http: httpx.AsyncClient, tenant: TenantKeys, path: str) -> dict[str, Any]:
    for _ in range(100):
        r = await http.get(path, headers=tenant.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body.get("status") in ("success", "SUCCESS", "failed", "FAILED"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError("job did not finish")


async def test_billing_summary_and_containment_report(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid, _ids = await three_sessions(http, tenant)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    start = await http.post(
        f"/api/public/bot/{pid}/billingsessionsummary",
        json={
            "fromDate": today,
            "toDate": today,
            "unitType": ["request", "session", "alert", "proactive", "conversations"],
            "groupByBot": "no",
            "groupByPeriod": "date_day",
        },
        headers=tenant.headers,
    )
    assert start.status_code == 200, start.text
    job = start.json()
    assert job["status"] == "IN_PROGRESS" and job["_id"].startswith("ds-")
    assert job["jobType"] == "BILLINGSESSIONS_API" and job["action"] == "QUERY"
    done = await poll(
        http, tenant, f"/api/public/bot/{pid}/billingsessionsummary/status?type=summary"
    )
    assert done["_id"] == job["_id"] and done["status"] == "success"
    data = done["response"]["data"]
    assert data[0]["bot"] == "ALL"
    val = data[0]["val"][0]
    assert val["date"] == f"{today}T00:00:00.000Z"
    assert list(val["val"]) == [
        "requests",
        "sessions",
        "alert_notifications",
        "proactive_notifications",
        "conversations",
    ]
    assert "averageSessions" in done["response"]

    report = await http.post(
        f"/api/public/bot/{pid}/taskContainmentReport?skip=0&limit=10",
        json={"filters": {"dateFrom": today, "AggregationType": "Daily", "isDeveloper": True}},
        headers=tenant.headers,
    )
    assert report.status_code == 200, report.text
    rid = report.json()["_id"]
    assert report.json()["jobType"] == "TASK_EXECUTION_CONTAINMENT_REPORT"
    result = await poll(http, tenant, f"/api/public/bot/{pid}/taskContainmentReport/status/{rid}")
    assert result["status"] == "SUCCESS"
    rows = result["tasksExecutionReport"]["data"][today]
    totals = {
        k: sum(r[k] for r in rows)
        for k in ("selfServiceSessions", "agentTransferSessions", "dropOffSessions")
    }
    assert totals == {"selfServiceSessions": 1, "agentTransferSessions": 1, "dropOffSessions": 1}
    assert result["tasksExecutionReport"]["total"] == len(rows)
    too_long = await http.post(
        f"/api/public/bot/{pid}/taskContainmentReport",
        json={"filters": {"dateFrom": "2024-01-01", "dateTo": "2024-03-01"}},
        headers=tenant.headers,
    )
    assert too_long.json() == {
        "errors": [{"msg": "The date range may not exceed 30 days", "code": 400}]
    }


async def test_the_call_id_filter_matches_the_id_exactly(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await agent_project(http, tenant)
    sessions = {}
    for call_id in ("a_1", "ab1"):
        r = await turn(http, tenant, pid, "hello", metadata={"callId": call_id})
        assert r.status_code == 200, r.text
        sessions[call_id] = r.json()["sessionId"]
    for call_id in ("a_1", "ab1"):  # `_` is a character here, not a LIKE wildcard
        found = await http.post(
            f"/api/public/bot/{pid}/getSessions",
            params={"callId": call_id},
            headers=tenant.headers,
        )
        assert found.status_code == 200, found.text
        assert [s["sessionId"] for s in found.json()["sessions"]] == [sessions[call_id]]
