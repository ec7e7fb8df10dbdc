"""Chat completions on the Anthropic path: the real `anthropic` SDK talks to a local server
speaking the Messages API (tests/fakes/anthropic.py), end to end through Envoy."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from aiohttp import web
from sqlmodel import col, select

from chatplane.app import App
from chatplane.config import descriptor_path
from chatplane.gateway import EnvoyProcess
from chatplane.llm.pricing import PriceTable
from chatplane.storage.models import UsageRecord
from tests.conftest import TenantKeys, make_settings, new_tenant
from tests.e2e.test_chat_rest import parse_sse
from tests.fakes.anthropic import FakeAnthropic, FakeToolUse, ScriptedReply

MODEL = "claude-haiku-4-5"


@dataclass
class Stack:
    fake: FakeAnthropic
    app: App
    http: httpx.AsyncClient


@pytest.fixture(scope="session")
async def stack(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    fake = FakeAnthropic()
    await fake.start()
    data = tmp_path_factory.mktemp("anthropic")
    # A separate database so this app's tenants don't meet the local-provider app's.
    url = database_url
    if url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{data / 'a.db'}"
    app = App(
        make_settings(
            data,
            url,
            anthropic_api_key=fake.api_key,
            anthropic_base_url=fake.base_url,
            tool_allowed_hosts=("127.0.0.1",),  # the test's own tool server
        )
    )
    await app.start()
    envoy = EnvoyProcess(
        http_port=0, grpc_port=app.grpc_port, descriptor=descriptor_path(), work_dir=data / "envoy"
    )
    await envoy.start()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{envoy.http_port}", timeout=20.0
    ) as http:
        yield Stack(fake, app, http)
    await envoy.stop()
    await app.stop(1.0)
    await fake.stop()


@pytest.fixture
def fake(stack: Stack) -> Iterator[FakeAnthropic]:
    stack.fake.chunk_delay = 0.0
    stack.fake.replies.clear()
    yield stack.fake
    stack.fake.chunk_delay = 0.0


@pytest.fixture
async def owner(stack: Stack) -> TenantKeys:
    return await new_tenant(stack.app)


async def project(stack: Stack, owner: TenantKeys, **fields: object) -> str:
    response = await stack.http.post(
        "/api/projects", json={"name": "p", **fields}, headers=owner.headers
    )
    return str(response.json()["project"]["id"])


def chat_body(
    pid: str, text: str = "Explain quantum computing.", **extra: object
) -> dict[str, object]:
    return {
        "projectId": pid,
        "modelId": MODEL,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


async def stream_frames(
    stack: Stack, owner: TenantKeys, body: dict[str, object]
) -> tuple[list[tuple[str, dict[str, object]]], list[float]]:
    arrivals: list[float] = []
    raw = b""
    async with stack.http.stream(
        "POST", "/api/v1/chat/stream", json=body, headers=owner.headers
    ) as response:
        assert response.status_code == 200, await response.aread()
        async for chunk in response.aiter_raw():
            raw += chunk
            arrivals.append(time.perf_counter())
    return parse_sse(raw), arrivals


async def test_stream_is_anthropic_and_priced(
    stack: Stack, fake: FakeAnthropic, owner: TenantKeys
) -> None:
    pid = await project(stack, owner)
    fake.script(
        ScriptedReply(
            text="Quantum computing leverages the principles", input_tokens=42, output_tokens=128
        )
    )
    frames, _ = await stream_frames(stack, owner, chat_body(pid, maxTokens=500))
    assert frames[0] == (
        "metadata",
        {"modelId": MODEL, "provider": "anthropic", "source": "request"},
    )
    text = "".join(str(d["delta"]) for name, d in frames if name == "text_delta")
    assert text == "Quantum computing leverages the principles"
    assert frames[-2] == ("usage", {"inputTokens": 42, "outputTokens": 128})
    name, complete = frames[-1]
    expected = PriceTable.load().cost(MODEL, 42, 128)
    assert name == "complete" and expected is not None
    assert complete["totalTokens"] == 170 and complete["estimatedCost"] == expected
    sent = fake.last_request
    assert sent.body["model"] == MODEL and sent.body["stream"] is True
    assert sent.body["max_tokens"] == 500


async def test_frames_leave_as_the_model_emits_them(
    stack: Stack, fake: FakeAnthropic, owner: TenantKeys
) -> None:
    pid = await project(stack, owner)
    fake.chunk_delay = 0.15
    fake.script(ScriptedReply(text="one two three four five six"))
    started = time.perf_counter()
    frames, arrivals = await stream_frames(stack, owner, chat_body(pid))
    assert len(arrivals) >= 4  # not one buffered blob
    assert [n for n, _ in frames].count("text_delta") >= 3
    # The first bytes arrive long before the last: nothing buffers the stream.
    assert arrivals[0] - started < (arrivals[-1] - started) / 2
    assert arrivals[-1] - arrivals[0] >= 0.3


async def test_tool_call_events(stack: Stack, fake: FakeAnthropic, owner: TenantKeys) -> None:
    pid = await project(stack, owner)
    args = {"account_id": "acct_123", "fields": ["name", "balance"]}
    fake.script(
        ScriptedReply(
            text="Let me look.", tool_calls=[FakeToolUse("lookup_account", args, id="toolu_1")]
        )
    )
    tools = [
        {
            "name": "lookup_account",
            "description": "Find an account",
            "parameters": {"type": "object", "properties": {"account_id": {"type": "string"}}},
        }
    ]
    frames, _ = await stream_frames(stack, owner, chat_body(pid, tools=tools))
    names = [n for n, _ in frames]
    start = names.index("tool_call_start")
    end = names.index("tool_call_end")
    assert frames[start][1] == {"id": "toolu_1", "name": "lookup_account"}
    deltas = [d for n, d in frames[start:end] if n == "tool_call_delta"]
    assert deltas and all(d["id"] == "toolu_1" for d in deltas)
    joined = "".join(str(d["arguments"]) for d in deltas)
    assert json.loads(joined) == args
    assert frames[end][1]["name"] == "lookup_account"
    assert json.loads(str(frames[end][1]["arguments"])) == args
    sent = fake.last_request.body
    assert sent["tools"][0]["name"] == "lookup_account"
    assert sent["tools"][0]["input_schema"]["properties"]["account_id"] == {"type": "string"}


async def test_complete_with_tool_calls_and_tool_results(
    stack: Stack, fake: FakeAnthropic, owner: TenantKeys
) -> None:
    pid = await project(stack, owner)
    fake.script(
        ScriptedReply(
            tool_calls=[FakeToolUse("get_time", {"tz": "UTC"}, id="toolu_9")],
            input_tokens=10,
            output_tokens=5,
        )
    )
    response = await stack.http.post(
        "/api/v1/chat/complete", json=chat_body(pid, "time?"), headers=owner.headers
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["finishReason"] == "tool_use"
    assert body["toolCalls"] == [
        {"id": "toolu_9", "name": "get_time", "arguments": json.dumps({"tz": "UTC"})}
    ]
    assert body["usage"]["estimatedCost"] == PriceTable.load().cost(MODEL, 10, 5)

    follow_up = chat_body(pid)
    follow_up["messages"] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "time?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "toolu_9", "name": "get_time", "arguments": '{"tz":"UTC"}'}],
        },
        {"role": "tool", "tool_call_id": "toolu_9", "content": "12:00"},
    ]
    response = await stack.http.post("/api/v1/chat/complete", json=follow_up, headers=owner.headers)
    assert response.status_code == 200, response.text
    sent = fake.last_request.body
    assert sent["system"] == "Be brief."
    assert sent["messages"][1]["content"][0]["type"] == "tool_use"
    assert sent["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_9",
        "content": "12:00",
    }


@pytest.mark.parametrize(
    ("upstream", "times", "status"), [(429, 5, 429), (529, 5, 503), (500, 5, 503), (400, 1, 400)]
)
async def test_errors_before_first_token(
    stack: Stack, fake: FakeAnthropic, owner: TenantKeys, upstream: int, times: int, status: int
) -> None:
    pid = await project(stack, owner)
    for route in ("/api/v1/chat/complete", "/api/v1/chat/stream"):
        fake.fail_next(upstream, times=times)
        response = await stack.http.post(route, json=chat_body(pid), headers=owner.headers)
        assert response.status_code == status, response.text
        assert "code" in response.json()
        fake.clear_faults()  # retries may have used fewer faults than queued


async def test_retry_before_first_token_then_success(
    stack: Stack, fake: FakeAnthropic, owner: TenantKeys
) -> None:
    pid = await project(stack, owner)
    before = fake.request_count
    fake.fail_next(529, times=1)
    frames, _ = await stream_frames(stack, owner, chat_body(pid))
    assert frames[-1][0] == "complete"
    assert fake.request_count - before == 2


async def test_failure_mid_stream_is_an_error_event(
    stack: Stack, fake: FakeAnthropic, owner: TenantKeys
) -> None:
    pid = await project(stack, owner)
    fake.script(ScriptedReply(text="alpha beta gamma delta epsilon zeta"))
    fake.break_next_stream(after_deltas=2)
    before = fake.request_count
    frames, _ = await stream_frames(stack, owner, chat_body(pid))
    names = [n for n, _ in frames]
    assert names[0] == "metadata" and "text_delta" in names
    assert names[-1] == "error" and "complete" not in names
    assert frames[-1][1]["error"]
    assert fake.request_count - before == 1  # no retry after the first token


async def _usage_rows(app: App, project_id: str) -> list[UsageRecord]:
    await app.usage_writer.flush()
    async with app.db.read() as session:
        rows = await session.exec(
            select(UsageRecord)
            .where(UsageRecord.project_id == project_id)
            .order_by(col(UsageRecord.created_at))
        )
        return list(rows.all())


async def test_disconnect_cancels_upstream_and_records_usage(
    stack: Stack, fake: FakeAnthropic, owner: TenantKeys
) -> None:
    pid = await project(stack, owner)
    fake.chunk_delay = 0.2
    fake.script(ScriptedReply(text=" ".join(f"w{i}" for i in range(50)), input_tokens=33))
    fake.disconnected.clear()
    disconnects = fake.disconnects
    async with stack.http.stream(
        "POST", "/api/v1/chat/stream", json=chat_body(pid), headers=owner.headers
    ) as response:
        async for chunk in response.aiter_raw():
            if b"text_delta" in chunk:
                break  # the client goes away mid-stream
    await asyncio.wait_for(fake.disconnected.wait(), 5)
    assert fake.disconnects == disconnects + 1
    for _ in range(50):
        rows = await _usage_rows(stack.app, pid)
        if rows:
            break
        await asyncio.sleep(0.1)
    assert [r.status for r in rows] == ["cancelled"]
    assert rows[0].input_tokens == 33 and rows[0].provider == "anthropic"
    assert rows[0].ttft_ms is not None


async def test_usage_totals_match_the_calls(
    stack: Stack, fake: FakeAnthropic, owner: TenantKeys
) -> None:
    pid = await project(stack, owner)
    expected_tokens, expected_cost = 0, 0.0
    for i in range(3):
        fake.script(ScriptedReply(text="ok", input_tokens=100 + i, output_tokens=10 * (i + 1)))
        reply = (
            await stack.http.post(
                "/api/v1/chat/complete", json=chat_body(pid), headers=owner.headers
            )
        ).json()
        expected_tokens += reply["usage"]["totalTokens"]
        expected_cost += reply["usage"]["estimatedCost"]
    fake.script(ScriptedReply(text="streamed", input_tokens=7, output_tokens=3))
    frames, _ = await stream_frames(stack, owner, chat_body(pid))
    expected_tokens += int(str(frames[-1][1]["totalTokens"]))
    expected_cost += float(str(frames[-1][1]["estimatedCost"]))
    fake.fail_next(400)
    await stack.http.post("/api/v1/chat/complete", json=chat_body(pid), headers=owner.headers)

    usage = (
        await stack.http.get(
            f"/api/v1/chat/usage?projectId={pid}&groupBy=model", headers=owner.headers
        )
    ).json()
    assert usage["summary"]["requestCount"] == 5  # the failed call is recorded too
    assert usage["summary"]["totalTokens"] == expected_tokens
    assert usage["summary"]["totalCost"] == pytest.approx(expected_cost, abs=1e-8)
    assert usage["byModel"] == [
        {
            "modelId": MODEL,
            "provider": "anthropic",
            "totalTokens": expected_tokens,
            "totalCost": pytest.approx(expected_cost, abs=1e-8),
            "requestCount": 5,
        }
    ]
    statuses = sorted(r.status for r in await _usage_rows(stack.app, pid))
    assert statuses == ["error", "ok", "ok", "ok", "ok"]


async def test_model_resolution_sources(
    stack: Stack, fake: FakeAnthropic, owner: TenantKeys
) -> None:
    async def source(pid: str, **extra: object) -> tuple[object, object]:
        body = chat_body(pid, **extra)
        body.pop("modelId")
        if "modelId" in extra:
            body["modelId"] = extra["modelId"]
        frames, _ = await stream_frames(stack, owner, body)
        return frames[0][1]["modelId"], frames[0][1]["source"]

    plain = await project(stack, owner)
    assert await source(plain) == ("claude-sonnet-4-6", "server")
    assert await source(plain, tier="fast") == ("claude-haiku-4-5", "server")
    tiered = await project(
        stack, owner, tierModels={"powerful": "claude-opus-4-8"}, defaultModel="claude-sonnet-4-6"
    )
    assert await source(tiered, tier="powerful") == ("claude-opus-4-8", "tier")
    assert await source(tiered, tier="fast") == ("claude-sonnet-4-6", "project")
    assert await source(tiered, modelId="claude-haiku-4-5") == ("claude-haiku-4-5", "request")
    await stack.app.iam.configure_tenant(owner.tenant_id, default_model="claude-opus-4-8")
    assert await source(plain) == ("claude-opus-4-8", "tenant")
    # An unpriced model gets a null cost, never a guess.
    frames, _ = await stream_frames(stack, owner, chat_body(plain, modelId="claude-mythos-5"))
    assert frames[-1][1]["estimatedCost"] is None


async def test_tenant_credentials_are_used(
    stack: Stack, fake: FakeAnthropic, owner: TenantKeys
) -> None:
    pid = await project(stack, owner)
    await stack.app.iam.configure_tenant(owner.tenant_id, anthropic_api_key="sk-ant-tenant-own")
    response = await stack.http.post(
        "/api/v1/chat/complete", json=chat_body(pid), headers=owner.headers
    )
    # The fake only knows the server's key: the tenant's own key was sent, and rejected.
    assert response.status_code == 503
    assert response.json()["message"].startswith("Runtime not configured")
    sent = fake.last_request.headers
    assert "sk-ant-tenant-own" in (sent.get("x-api-key", "") + sent.get("authorization", ""))
    async with stack.app.db.read() as session:
        from chatplane.storage.models import Tenant

        tenant = await session.get(Tenant, owner.tenant_id)
        assert tenant is not None and "sk-ant-tenant-own" not in tenant.anthropic_key_encrypted


ORDERS = """AGENT: Orders
GOAL: "Answer order questions with the lookup tool"
TOOLS:
  lookup_order(order_id: string) -> {status: string}
    description: "Look up an order by its id"
    type: http
    endpoint: "http://127.0.0.1:PORT/orders/{order_id}"
    method: GET
    timeout: 3000
"""


async def test_agent_reasoning_loop_with_a_real_http_tool(
    stack: Stack, fake: FakeAnthropic, owner: TenantKeys
) -> None:
    seen: list[str] = []

    async def order(request: web.Request) -> web.Response:
        seen.append(request.match_info["order_id"])
        return web.json_response({"status": f"shipped-{request.match_info['order_id']}"})

    tool_app = web.Application()
    tool_app.router.add_get("/orders/{order_id}", order)
    runner = web.AppRunner(tool_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        pid = await project(stack, owner, defaultModel=MODEL)
        saved = await stack.http.put(
            f"/api/projects/{pid}/agents/Orders",
            json={"source": ORDERS.replace("PORT", str(port))},
            headers=owner.headers,
        )
        assert saved.status_code == 200, saved.text
        fake.script(
            ScriptedReply(tool_calls=[FakeToolUse("lookup_order", {"order_id": "A1"})]),
            ScriptedReply(tool_calls=[FakeToolUse("lookup_order", {"order_id": "B2"})]),
            ScriptedReply(text="Both orders have shipped."),
        )
        reply = await stack.http.post(
            "/api/v1/chat/agent",
            json={"projectId": pid, "message": "Where are A1 and B2?"},
            headers=owner.headers,
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["response"] == "Both orders have shipped."
        assert seen == ["A1", "B2"]
        types = [e["type"] for e in body["traceEvents"]]
        assert types.count("llm_call") == 3
        results = [e["data"] for e in body["traceEvents"] if e["type"] == "tool_result"]
        assert [r["success"] for r in results] == [True, True]
        llm = [e["data"] for e in body["traceEvents"] if e["type"] == "llm_call"]
        assert all(d["provider"] == "anthropic" and d["model"] == MODEL for d in llm)
        assert all(d["estimatedCost"] is not None for d in llm)
        # The second request carried the first tool's result back to the model.
        assert "shipped-A1" in json.dumps(fake.requests[-2].body["messages"])
        rows = [r for r in await _usage_rows(stack.app, pid) if r.session_id == body["sessionId"]]
        assert len(rows) == 3 and all(r.provider == "anthropic" for r in rows)
    finally:
        await runner.cleanup()


async def test_attachments_reach_the_model_as_content_blocks(
    stack: Stack, fake: FakeAnthropic, owner: TenantKeys
) -> None:
    from tests.e2e.test_sessions_rest import tiny_pdf, tiny_png, upload

    pid = await project(stack, owner, defaultModel=MODEL)
    saved = await stack.http.put(
        f"/api/projects/{pid}/agents/Helper",
        json={"source": 'AGENT: Helper\nGOAL: "Read what the user sends"\n'},
        headers=owner.headers,
    )
    assert saved.status_code == 200, saved.text
    first = await stack.http.post(
        "/api/v1/chat/agent", json={"projectId": pid, "message": "hello"}, headers=owner.headers
    )
    sid = first.json()["sessionId"]
    files = [("scan.pdf", tiny_pdf()), ("pixel.png", tiny_png()), ("notes.txt", b"line one")]
    ids = [
        (await upload(stack.http, owner, pid, sid, name, data)).json()["attachmentId"]
        for name, data in files
    ]
    sent = await stack.http.post(
        "/api/v1/chat/send",
        json={"sessionId": sid, "message": "Summarize these", "attachmentIds": ids},
        headers=owner.headers,
    )
    assert sent.status_code == 200, sent.text
    user = fake.last_request.body["messages"][-1]
    assert user["role"] == "user"
    kinds = [block["type"] for block in user["content"]]
    assert "document" in kinds and "image" in kinds
    document = next(b for b in user["content"] if b["type"] == "document")
    assert document["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(document["source"]["data"]) == tiny_pdf()
    texts = " ".join(b.get("text", "") for b in user["content"])
    assert "Summarize these" in texts and "line one" in texts and "pixel.png" in texts
