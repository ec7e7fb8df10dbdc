"""Chat completions through Envoy: the seed's curl examples, SSE bytes, usage, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from chatplane.app import App
from chatplane.config import descriptor_path
from chatplane.gateway import EnvoyProcess
from tests.conftest import TenantKeys, make_settings, new_tenant
from tests.e2e.test_rest import create_project

FRAME = re.compile(rb"event: ([a-z_]+)\ndata: (\{.*?\})\n\n", re.S)


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, object]]]:
    frames = [(m.group(1).decode(), json.loads(m.group(2))) for m in FRAME.finditer(raw)]
    # Nothing but well-formed frames, byte for byte.
    assert b"".join(m.group(0) for m in FRAME.finditer(raw)) == raw
    return frames


async def test_complete_seed_example(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid = await create_project(http, tenant)
    response = await http.post(
        "/api/v1/chat/complete",
        headers={**tenant.headers, "Content-Type": "application/json"},
        json={"projectId": pid, "messages": [{"role": "user", "content": "What is 2+2?"}]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"content", "toolCalls", "model", "finishReason", "usage", "latencyMs"}
    assert body["model"] == "chatplane-local-echo"
    assert body["finishReason"] == "end_turn"
    usage = body["usage"]
    assert set(usage) == {"inputTokens", "outputTokens", "totalTokens", "estimatedCost"}
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert isinstance(usage["estimatedCost"], (int, float))
    assert isinstance(body["latencyMs"], int)


async def test_stream_seed_example_bytes(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid = await create_project(http, tenant)
    request = {
        "projectId": pid,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Explain quantum computing in one paragraph."},
        ],
        "temperature": 0.7,
        "maxTokens": 500,
    }
    async with http.stream(
        "POST", "/api/v1/chat/stream", json=request, headers=tenant.headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    frames = parse_sse(raw)
    names = [name for name, _ in frames]
    assert names[0] == "metadata" and names[-2:] == ["usage", "complete"]
    assert set(names[1:-2]) == {"text_delta"}
    assert frames[0][1] == {
        "modelId": "chatplane-local-echo",
        "provider": "local",
        "source": "server",
    }
    assert raw.startswith(
        b'event: metadata\ndata: {"modelId":"chatplane-local-echo","provider":"local",'
        b'"source":"server"}\n\nevent: text_delta\ndata: {"delta":'
    )
    complete = frames[-1][1]
    assert list(complete) == [
        "inputTokens",
        "outputTokens",
        "totalTokens",
        "estimatedCost",
        "latencyMs",
    ]
    usage = frames[-2][1]
    assert usage == {
        "inputTokens": complete["inputTokens"],
        "outputTokens": complete["outputTokens"],
    }


async def test_stream_errors_before_start_are_http_statuses(
    http: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    pid = await create_project(http, tenant)
    bad = await http.post(
        "/api/v1/chat/stream", json={"projectId": pid, "messages": []}, headers=tenant.headers
    )
    assert bad.status_code == 400
    assert bad.json()["message"] == "Invalid request: messages must contain at least one message"
    foreign = await http.post(
        "/api/v1/chat/stream",
        json={"projectId": pid, "messages": [{"role": "user", "content": "hi"}]},
        headers=other_tenant.headers,
    )
    assert foreign.status_code == 404 and foreign.json()["message"] == "Project not found"
    unconfigured = await http.post(
        "/api/v1/chat/complete",
        json={
            "projectId": pid,
            "modelId": "claude-sonnet-4-6",
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers=tenant.headers,
    )
    assert unconfigured.status_code == 503
    assert unconfigured.json()["message"].startswith("Runtime not configured")


async def test_snake_case_message_fields(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid = await create_project(http, tenant)
    response = await http.post(
        "/api/v1/chat/complete",
        json={
            "projectId": pid,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "look it up"}]},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"id": "call_1", "name": "lookup", "arguments": "{}"}],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "42"},
                {"role": "user", "content": "thanks"},
            ],
        },
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    missing_id = await http.post(
        "/api/v1/chat/complete",
        json={"projectId": pid, "messages": [{"role": "tool", "content": "42"}]},
        headers=tenant.headers,
    )
    assert missing_id.status_code == 400
    assert missing_id.json()["details"][0]["metadata"] == {"field": "messages[0].tool_call_id"}


async def test_usage_route(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid = await create_project(http, tenant)
    tokens = 0
    for _ in range(2):
        reply = await http.post(
            "/api/v1/chat/complete",
            json={"projectId": pid, "messages": [{"role": "user", "content": "hi"}]},
            headers=tenant.headers,
        )
        tokens += reply.json()["usage"]["totalTokens"]
    usage = await http.get(
        f"/api/v1/chat/usage?projectId={pid}&groupBy=model&startDate=2020-01-01",
        headers=tenant.headers,
    )
    assert usage.status_code == 200, usage.text
    body = usage.json()
    assert body["summary"]["requestCount"] == 2
    assert body["summary"]["totalTokens"] == tokens
    assert set(body["summary"]) == {"totalTokens", "totalCost", "requestCount", "avgLatency"}
    assert body["byModel"][0]["modelId"] == "chatplane-local-echo"
    assert set(body["byModel"][0]) == {
        "modelId",
        "provider",
        "totalTokens",
        "totalCost",
        "requestCount",
    }


async def test_agent_route_without_agents_is_404(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    response = await http.post(
        "/api/v1/chat/agent", json={"projectId": "p", "message": "hi"}, headers=tenant.headers
    )
    assert response.status_code == 404
    assert response.json()["message"] == "Project not found or has no agents"


async def test_session_rate_limit(tmp_path: Path, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the limiter path")
    app = App(
        make_settings(
            tmp_path, f"sqlite+aiosqlite:///{tmp_path}/s.db", session_rate_limit_per_minute=2
        )
    )
    await app.start()
    try:
        async with EnvoyProcess(
            http_port=0,
            grpc_port=app.grpc_port,
            descriptor=descriptor_path(),
            work_dir=tmp_path / "envoy",
        ) as envoy:
            owner = await new_tenant(app)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{envoy.http_port}") as http:
                pid = await create_project(http, owner)

                async def call(session: str | None) -> httpx.Response:
                    body: dict[str, object] = {
                        "projectId": pid,
                        "messages": [{"role": "user", "content": "hi"}],
                    }
                    if session:
                        body["sessionId"] = session
                    return await http.post(
                        "/api/v1/chat/complete", json=body, headers=owner.headers
                    )

                codes = [(await call("sess_a")).status_code for _ in range(2)]
                limited = await call("sess_a")
                assert codes == [200, 200] and limited.status_code == 429
                assert limited.json()["message"] == "Session message rate limit exceeded"
                assert limited.json()["details"][0]["reason"] == "SESSION_RATE_LIMIT_EXCEEDED"
                assert 1 <= int(limited.headers["retry-after"]) <= 60
                streamed = await http.post(
                    "/api/v1/chat/stream",
                    headers=owner.headers,
                    json={
                        "projectId": pid,
                        "sessionId": "sess_a",
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                )
                assert streamed.status_code == 429
                # Other sessions, and calls without a session, are not affected.
                assert (await call("sess_b")).status_code == 200
                assert (await call(None)).status_code == 200
    finally:
        await app.stop(1.0)
