"""Agent-backed chat (POST /api/v1/chat/agent and its streams) through the real Envoy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from sqlmodel import col, select

from chatplane.app import App
from chatplane.chat.v1 import chat_service_pb2 as pb
from chatplane.chat.v1 import chat_service_pb2_grpc as pb_grpc
from chatplane.storage.models import AgentSession, SessionMessage, TraceEventRecord, UsageRecord
from tests.conftest import TenantKeys, make_settings, new_tenant
from tests.e2e.test_chat_rest import parse_sse
from tests.e2e.test_rest import create_project

RESET = (Path(__file__).resolve().parents[2] / "examples/agents/password-reset.abl").read_text()
SENT = {"toolName": "send_reset_code", "response": {"sent": True, "masked_email": "m***@x.io"}}
VALID = {"toolName": "verify_reset_code", "response": {"valid": True, "reset_url": "https://r/1"}}
INVALID = {"toolName": "verify_reset_code", "response": {"valid": False}}
ASSISTANT = """AGENT: Helper
GOAL: "Answer questions about {{session.messageMetadata.topic}}"
INSTRUCTIONS: "Be brief."
"""
ECHO_META = """AGENT: Echo
GOAL: "Echo metadata"
FLOW:
  entry_point: say
  steps:
    - say
  say:
    REASONING: false
    RESPOND: "account={{session.messageMetadata.accountId}}"
"""


async def agent_project(
    http: httpx.AsyncClient, tenant: TenantKeys, source: str = RESET, name: str = "Password_Reset"
) -> str:
    pid = await create_project(http, tenant)
    saved = await http.put(
        f"/api/projects/{pid}/agents/{name}", json={"source": source}, headers=tenant.headers
    )
    assert saved.status_code == 200, saved.text
    return pid


async def turn(
    http: httpx.AsyncClient, tenant: TenantKeys, pid: str, message: str, **body: Any
) -> httpx.Response:
    return await http.post(
        "/api/v1/chat/agent",
        json={"projectId": pid, "message": message, **body},
        headers=tenant.headers,
    )


def mocks(*items: dict[str, Any]) -> dict[str, Any]:
    return {"testContext": {"toolMocks": list(items)}}


async def session_row(app: App, session_id: str) -> AgentSession:
    async with app.db.read() as uow:
        row = await uow.get(AgentSession, session_id)
    assert row is not None
    return row


async def test_a_conversation_runs_to_completion(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await agent_project(http, tenant)
    first = await turn(http, tenant, pid, "I forgot my password")
    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) >= {"sessionId", "response", "action", "state", "traceEvents"}
    assert body["action"] == {"type": "continue"}
    assert "reset your password" in body["response"]
    assert body["state"]["currentStep"] == "ask_email"
    assert body["traceEvents"][0]["type"] == "dsl_on_start"
    sid = body["sessionId"]

    second = await turn(http, tenant, pid, "it is me@example.com", sessionId=sid, **mocks(SENT))
    assert second.status_code == 200, second.text
    assert "m***@x.io" in second.json()["response"]
    assert second.json()["state"]["email"] == "me@example.com"

    third = await turn(http, tenant, pid, "123456", sessionId=sid, **mocks(VALID))
    assert third.status_code == 200, third.text
    done = third.json()
    assert done["action"]["type"] == "complete"
    assert "https://r/1" in done["response"]

    row = await session_row(app, sid)
    assert (row.status, row.outcome, row.turn_count) == ("ended", "selfService", 3)
    assert row.message_count == 6
    events = [first, second, third]
    assert row.trace_event_count == sum(len(r.json()["traceEvents"]) for r in events)
    async with app.db.read() as uow:
        messages = (
            await uow.exec(
                select(SessionMessage)
                .where(SessionMessage.session_id == sid)
                .order_by(col(SessionMessage.seq))
            )
        ).all()
        traces = (
            await uow.exec(select(TraceEventRecord).where(TraceEventRecord.session_id == sid))
        ).all()
    assert [m.role for m in messages] == ["user", "assistant"] * 3
    assert messages[0].content == "I forgot my password"
    assert len(traces) == row.trace_event_count

    ended = await turn(http, tenant, pid, "hello again", sessionId=sid)
    assert ended.status_code == 400
    assert ended.json()["message"] == "Session has ended"


async def test_three_wrong_codes_escalate(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await agent_project(http, tenant)
    sid = (await turn(http, tenant, pid, "help")).json()["sessionId"]
    await turn(http, tenant, pid, "me@example.com", sessionId=sid, **mocks(SENT))
    actions = []
    for _ in range(4):
        reply = await turn(http, tenant, pid, "000000", sessionId=sid, **mocks(INVALID))
        assert reply.status_code == 200, reply.text
        actions.append(reply.json()["action"])
        if reply.json()["action"]["type"] != "continue":
            break
    assert actions[-1]["type"] == "escalate"
    assert actions[-1]["reason"] == "Too many wrong verification codes"
    row = await session_row(app, sid)
    assert (row.status, row.outcome) == ("ended", "agent")


async def test_errors_of_the_documented_table(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    empty = await create_project(http, tenant)
    nothing = await turn(http, tenant, empty, "hi")
    assert nothing.status_code == 404
    assert nothing.json()["message"] == "Project not found or has no agents"

    pid = await agent_project(http, tenant)
    unknown = await turn(http, tenant, pid, "hi", sessionId="sess_nope")
    assert unknown.status_code == 404 and unknown.json()["message"] == "Session not found"
    sid = (await turn(http, tenant, pid, "hi")).json()["sessionId"]
    # Another tenant's session (and another tenant's project) is simply not found.
    foreign = await turn(http, other_tenant, pid, "hi", sessionId=sid)
    assert foreign.status_code == 404

    deep: dict[str, Any] = {"v": 1}
    for _ in range(9):
        deep = {"d": deep}
    too_deep = await turn(http, tenant, pid, "hi", metadata=deep)
    assert too_deep.status_code == 400
    assert too_deep.json()["message"] == "Invalid message metadata"
    big = await turn(http, tenant, pid, "hi", metadata={"x": "y" * 20_000})
    assert big.status_code == 400 and big.json()["message"] == "Invalid message metadata"
    blank = await turn(http, tenant, pid, "")
    assert blank.status_code == 400

    created = await http.post(
        "/api/keys", json={"name": "exec", "scopes": ["session:execute"]}, headers=tenant.headers
    )
    executor = {"Authorization": f"Bearer {created.json()['secret']}"}
    denied = await http.post(
        "/api/v1/chat/agent",
        json={"projectId": pid, "message": "hi", **mocks(SENT)},
        headers=executor,
    )
    assert denied.status_code == 403
    assert "testContext requires the project:write scope" in denied.json()["message"]
    allowed = await http.post(
        "/api/v1/chat/agent", json={"projectId": pid, "message": "hi"}, headers=executor
    )
    assert allowed.status_code == 200

    deployed = await http.post(
        f"/api/projects/{pid}/deployments",
        json={"environment": "dev", "entryAgentName": "Password_Reset"},
        headers=tenant.headers,
    )
    did = deployed.json()["deployment"]["id"]
    retired = await http.post(
        f"/api/projects/{pid}/deployments/{did}/retire", headers=tenant.headers
    )
    assert retired.status_code == 200, retired.text
    gone = await turn(http, tenant, pid, "hi", deploymentId=did)
    assert gone.status_code == 410
    assert gone.json()["message"] == "Deployment is retired"


async def test_metadata_is_for_one_turn_only(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid = await agent_project(http, tenant, ECHO_META, "Echo")
    first = await turn(http, tenant, pid, "hi", metadata={"accountId": "acct_123"})
    assert first.status_code == 200, first.text
    assert "account=acct_123" in first.json()["response"]
    assert "messageMetadata" not in json.dumps(first.json()["state"])


async def test_reasoning_turn_is_metered_and_counted(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await agent_project(http, tenant, ASSISTANT, "Helper")
    reply = await turn(http, tenant, pid, "What is ABL?", metadata={"topic": "agents"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert "What is ABL?" in body["response"]  # the local model echoes
    calls = [e for e in body["traceEvents"] if e["type"] == "llm_call"]
    assert calls, body["traceEvents"]
    data = calls[0]["data"]
    assert data["provider"] == "local" and data["model"] == "chatplane-local-echo"
    assert data["usage"]["inputTokens"] == data["inputTokens"] > 0
    await app.usage_writer.flush()
    async with app.db.read() as uow:
        rows = (
            await uow.exec(select(UsageRecord).where(UsageRecord.session_id == body["sessionId"]))
        ).all()
    assert len(rows) == len(calls)
    row = await session_row(app, body["sessionId"])
    assert row.token_count == sum(r.input_tokens + r.output_tokens for r in rows) > 0
    usage = await http.get(f"/api/v1/chat/usage?projectId={pid}", headers=tenant.headers)
    assert usage.json()["summary"]["requestCount"] >= len(rows)


async def test_a_failed_turn_stores_nothing(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await create_project(http, tenant, defaultModel="claude-sonnet-4-6")
    await http.put(
        f"/api/projects/{pid}/agents/Helper", json={"source": ASSISTANT}, headers=tenant.headers
    )
    failed = await turn(http, tenant, pid, "hi")
    assert failed.status_code == 503
    assert failed.json()["message"].startswith("Runtime not configured")
    async with app.db.read() as uow:
        stored = (await uow.exec(select(AgentSession).where(AgentSession.project_id == pid))).all()
    assert stored == []


async def test_streamed_turn_sse_and_grpc(
    http: httpx.AsyncClient, channel: grpc.aio.Channel, tenant: TenantKeys
) -> None:
    pid = await agent_project(http, tenant)
    async with http.stream(
        "POST",
        "/api/v1/chat/agent/stream",
        json={"projectId": pid, "message": "I forgot my password"},
        headers=tenant.headers,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = parse_sse(b"".join([c async for c in response.aiter_raw()]))
    names = [name for name, _ in frames]
    assert names[-1] == "response" and "trace_event" in names
    final = frames[-1][1]
    assert final["action"] == {"type": "continue"} and final["sessionId"].startswith("sess_")
    streamed = [data for name, data in frames if name == "trace_event"]
    assert [e["type"] for e in streamed] == [e["type"] for e in final["traceEvents"]]

    stub = pb_grpc.ChatServiceStub(channel)
    events = [
        e
        async for e in stub.StreamAgentTurn(
            pb.ChatAgentRequest(project_id=pid, session_id=final["sessionId"], message="x@y.io"),
            metadata=tenant.metadata,
        )
    ]
    assert events[-1].WhichOneof("event") == "response"
    assert events[-1].response.session_id == final["sessionId"]


async def test_concurrent_turns_on_one_session_are_serialized(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await agent_project(http, tenant, ASSISTANT, "Helper")
    sid = (await turn(http, tenant, pid, "hello")).json()["sessionId"]
    replies = await asyncio.gather(
        *(turn(http, tenant, pid, f"question {i}", sessionId=sid) for i in range(4))
    )
    assert [r.status_code for r in replies] == [200] * 4
    row = await session_row(app, sid)
    assert row.turn_count == 5 and row.message_count == 10
    async with app.db.read() as uow:
        seqs = (
            await uow.exec(
                select(SessionMessage.seq)
                .where(SessionMessage.session_id == sid)
                .order_by(col(SessionMessage.seq))
            )
        ).all()
    assert list(seqs) == list(range(1, 11))


@pytest.fixture
async def small_app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = App(
        make_settings(
            tmp_path_factory.mktemp("small"),
            database_url,
            max_active_sessions=1,
            bootstrap_api_key=None,
        )
    )
    await server.start()
    yield server
    await server.stop(1.0)


async def test_concurrent_session_limit(small_app: App) -> None:
    tenant = await new_tenant(small_app)
    project = await small_app.projects.create(tenant.tenant_id, name="p")
    await small_app.agents.put(tenant.tenant_id, project.id, "Echo", ECHO_META)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{small_app.grpc_port}") as ch:
        stub = pb_grpc.ChatServiceStub(ch)
        await stub.ChatAgent(
            pb.ChatAgentRequest(project_id=project.id, message="one"), metadata=tenant.metadata
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ChatAgent(
                pb.ChatAgentRequest(project_id=project.id, message="two"),
                metadata=tenant.metadata,
            )
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.value.details() == "Concurrent session limit exceeded"
    trailing = dict(err.value.trailing_metadata() or ())
    assert trailing.get("retry-after") == "60"


LOOKUP = """AGENT: Lookup
GOAL: "Look an order up"
TOOLS:
  lookup_order(order_id: string) -> {status: string}
    description: "Look up an order"
    type: http
    endpoint: "http://127.0.0.1:9/orders/{order_id}"
    method: GET
FLOW:
  entry_point: look
  steps:
    - look
  look:
    REASONING: false
    CALL: lookup_order
      WITH:
        order_id: "A1"
      AS: found
    RESPOND: "status={{found.status}}"
"""


async def test_http_tools_may_not_reach_private_addresses_by_default(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await agent_project(http, tenant, LOOKUP, "Lookup")
    reply = await turn(http, tenant, pid, "where is my order?")
    assert reply.status_code == 200, reply.text  # the agent answers, not a 500
    results = [e["data"] for e in reply.json()["traceEvents"] if e["type"] == "tool_result"]
    assert results and results[0]["success"] is False
    assert "CHATPLANE_TOOL_ALLOWED_HOSTS" in json.dumps(results[0])
    # A mock replaces the tool entirely: nothing is called, the flow goes on.
    mocked = await turn(
        http,
        tenant,
        pid,
        "again",
        testContext={"toolMocks": [{"toolName": "lookup_order", "response": {"status": "ok"}}]},
    )
    assert "status=ok" in mocked.json()["response"]
