"""OpenTelemetry tracing end to end: `chatplane run` (two workers and Envoy) configured
only by OTEL_* variables, exporting OTLP/HTTP to a receiver in this test.

A REST caller's W3C `traceparent` reaches the server's RPC span through Envoy; the LLM
span carries the GenAI attributes (the Anthropic path, against tests/fakes/anthropic.py);
an agent turn has its span with the LLM, step and tool spans under it; spans still
buffered when the server stops are flushed; log lines carry the trace id.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from tests.conftest import BOOTSTRAP_KEY
from tests.e2e.test_agent_turns import RESET, SENT
from tests.e2e.test_workers import _run_env, _start_run
from tests.fakes.anthropic import FakeAnthropic, ScriptedReply
from tests.fakes.otlp import Exported, OtlpReceiver

MODEL = "claude-haiku-4-5"
HEADERS = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
ASSISTANT = 'AGENT: Helper\nGOAL: "Answer questions"\nINSTRUCTIONS: "Be brief."\n'


def traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-01", trace_id, parent_id


def in_trace(trace_id: str, *names: str) -> Callable[[list[Exported]], bool]:
    """All of `names` exported in the trace (a parent ends, and may leave, after its
    children)."""
    return lambda spans: set(names) <= {s.name for s in spans if s.trace_id == trace_id}


def one(spans: list[Exported], trace_id: str, name: str) -> Exported:
    found = [s for s in spans if s.trace_id == trace_id and s.name == name]
    assert len(found) == 1, [s.name for s in spans if s.trace_id == trace_id]
    return found[0]


@dataclass
class Traced:
    receiver: OtlpReceiver
    fake: FakeAnthropic
    base: str
    log: Path
    proc: asyncio.subprocess.Process


def _env(data: Path, receiver: OtlpReceiver, fake: FakeAnthropic, **extra: str) -> dict[str, str]:
    env = _run_env(
        data,
        CHATPLANE_BOOTSTRAP_API_KEY=BOOTSTRAP_KEY,
        CHATPLANE_LOG_LEVEL="INFO",
        ANTHROPIC_API_KEY=fake.api_key,
        ANTHROPIC_BASE_URL=fake.base_url,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="chatplane-e2e",
        **extra,
    )
    for name in ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        env.pop(name, None)
    return env


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@pytest.fixture(scope="module")
async def traced(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Traced]:
    if not database_url.startswith("sqlite"):
        pytest.skip("runs the default embedded configuration")
    receiver, fake = OtlpReceiver(), FakeAnthropic()
    await receiver.start()
    await fake.start()
    data = tmp_path_factory.mktemp("traced")
    log = data / "server.log"
    env = _env(data, receiver, fake, CHATPLANE_WORKERS="2", OTEL_BSP_SCHEDULE_DELAY="50")
    with log.open("wb") as stderr:
        proc, text = await _start_run(env, stderr=stderr.fileno())
    base = text.split("REST (Envoy):")[1].split()[0]
    try:
        yield Traced(receiver, fake, base, log, proc)
    finally:
        await _stop(proc)
        await fake.stop()
        await receiver.stop()


async def _project(http: httpx.AsyncClient) -> str:
    created = await http.post("/api/projects", json={"name": "traced"}, headers=HEADERS)
    assert created.status_code == 200, created.text
    return str(created.json()["project"]["id"])


async def test_a_rest_completion_joins_the_callers_trace(traced: Traced) -> None:
    header, trace_id, caller_span = traceparent()
    traced.fake.script(ScriptedReply(text="Four.", input_tokens=17, output_tokens=3))
    async with httpx.AsyncClient(base_url=traced.base, timeout=30) as http:
        pid = await _project(http)
        reply = await http.post(
            "/api/v1/chat/complete",
            json={
                "projectId": pid,
                "modelId": MODEL,
                "messages": [{"role": "user", "content": "2+2?"}],
            },
            headers={**HEADERS, "traceparent": header},
        )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    rpc_name = "/chatplane.chat.v1.ChatService/CompleteChat"
    sdk_name = "anthropic.messages.create"
    spans = await traced.receiver.wait_for(in_trace(trace_id, rpc_name, f"chat {MODEL}", sdk_name))
    rpc = one(spans, trace_id, rpc_name)
    assert rpc.parent_id == caller_span  # Envoy forwarded the caller's context
    assert rpc.span.kind == PbSpan.SPAN_KIND_SERVER
    assert rpc.attributes["rpc.grpc.status_code"] == 0
    assert rpc.resource["service.name"] == "chatplane-e2e"

    llm = one(spans, trace_id, f"chat {MODEL}")
    assert llm.parent_id == rpc.span_id
    assert llm.span.kind == PbSpan.SPAN_KIND_CLIENT
    attributes = llm.attributes
    assert attributes["gen_ai.system"] == "anthropic"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.usage.input_tokens"] == body["usage"]["inputTokens"] == 17
    assert attributes["gen_ai.usage.output_tokens"] == body["usage"]["outputTokens"] == 3
    assert attributes["gen_ai.response.finish_reasons"] == [body["finishReason"]]
    assert attributes["chatplane.cost_usd"] == pytest.approx(body["usage"]["estimatedCost"])
    # The SDK's own instrumentation is on too (its span under ours), and sends the
    # trace on to the upstream.
    assert one(spans, trace_id, sdk_name).parent_id == llm.span_id
    upstream = traced.fake.requests[-1].headers.get("traceparent", "")
    assert upstream.split("-")[1] == trace_id


async def test_a_failed_model_call_is_an_error_span(traced: Traced) -> None:
    header, trace_id, caller_span = traceparent()
    traced.fake.fail_next(400, message="bad request upstream")
    async with httpx.AsyncClient(base_url=traced.base, timeout=30) as http:
        pid = await _project(http)
        failed = await http.post(
            "/api/v1/chat/stream",
            json={
                "projectId": pid,
                "modelId": MODEL,
                "messages": [{"role": "user", "content": "x"}],
            },
            headers={**HEADERS, "traceparent": header},
        )
    traced.fake.clear_faults()
    assert failed.status_code == 400, failed.text
    rpc_name = "/chatplane.chat.v1.ChatService/StreamChatSse"
    spans = await traced.receiver.wait_for(in_trace(trace_id, rpc_name, f"chat {MODEL}"))
    rpc = one(spans, trace_id, rpc_name)
    assert rpc.parent_id == caller_span
    assert rpc.attributes["rpc.grpc.status_code"] == 3  # INVALID_ARGUMENT
    llm = one(spans, trace_id, f"chat {MODEL}")
    assert llm.parent_id == rpc.span_id
    assert llm.span.status.code == llm.span.status.STATUS_CODE_ERROR
    assert llm.attributes["chatplane.status"] == "error"
    assert llm.attributes["error.type"]
    assert "gen_ai.response.finish_reasons" not in llm.attributes


async def test_agent_turns_have_turn_llm_step_and_tool_spans(traced: Traced) -> None:
    async with httpx.AsyncClient(base_url=traced.base, timeout=30) as http:
        pid = await _project(http)
        for name, source in (("Helper", ASSISTANT), ("Password_Reset", RESET)):
            saved = await http.put(
                f"/api/projects/{pid}/agents/{name}", json={"source": source}, headers=HEADERS
            )
            assert saved.status_code == 200, saved.text

        header, trace_id, caller_span = traceparent()
        traced.fake.script(ScriptedReply(text="Hello!", input_tokens=40, output_tokens=2))
        first = await http.post(
            "/api/v1/chat/agent",
            json={"projectId": pid, "agentId": "Helper", "message": "hi"},
            headers={**HEADERS, "traceparent": header},
        )
        assert first.status_code == 200, first.text
        rpc_name = "/chatplane.chat.v1.ChatService/ChatAgent"
        spans = await traced.receiver.wait_for(in_trace(trace_id, "agent_turn", rpc_name))
        turn = one(spans, trace_id, "agent_turn")
        rpc = one(spans, trace_id, rpc_name)
        assert (rpc.parent_id, turn.parent_id) == (caller_span, rpc.span_id)
        assert turn.attributes["chatplane.project_id"] == pid
        assert turn.attributes["chatplane.session_id"] == first.json()["sessionId"]
        assert turn.attributes["chatplane.agent"] == "Helper"
        assert turn.attributes["chatplane.outcome"] == "ok"
        assert turn.attributes["chatplane.action"] == first.json()["action"]["type"]
        calls = [e for e in first.json()["traceEvents"] if e["type"] == "llm_call"]
        llm = [s for s in spans if s.trace_id == trace_id and s.name.startswith("chat ")]
        assert len(llm) == len(calls) >= 1
        assert all(s.parent_id == turn.span_id for s in llm)
        assert sorted(s.attributes["gen_ai.usage.input_tokens"] for s in llm) == sorted(
            c["data"]["inputTokens"] for c in calls
        )

        # A flow agent whose second turn calls a (mocked) tool inside a step.
        started = await http.post(
            "/api/v1/chat/agent",
            json={"projectId": pid, "agentId": "Password_Reset", "message": "I forgot it"},
            headers=HEADERS,
        )
        assert started.status_code == 200, started.text
        header, trace_id, _ = traceparent()
        second = await http.post(
            "/api/v1/chat/agent",
            json={
                "projectId": pid,
                "sessionId": started.json()["sessionId"],
                "message": "it is me@example.com",
                "testContext": {"toolMocks": [SENT]},
            },
            headers={**HEADERS, "traceparent": header},
        )
        assert second.status_code == 200, second.text
    spans = await traced.receiver.wait_for(
        in_trace(trace_id, "agent_turn", "execute_tool send_reset_code")
    )
    turn = one(spans, trace_id, "agent_turn")
    assert turn.attributes["chatplane.agent"] == "Password_Reset"
    tool = one(spans, trace_id, "execute_tool send_reset_code")
    assert tool.attributes["gen_ai.tool.name"] == "send_reset_code"
    assert tool.attributes["chatplane.tool.ok"] is True
    assert tool.attributes["chatplane.tool.mocked"] is True
    steps = {s.span_id: s for s in spans if s.trace_id == trace_id and s.name.startswith("step ")}
    assert tool.parent_id in steps  # the step that called it
    assert all(s.parent_id == turn.span_id for s in steps.values())
    assert steps[tool.parent_id].span.start_time_unix_nano <= tool.span.start_time_unix_nano


async def test_every_worker_exports_its_own_spans(traced: Traced) -> None:
    async with httpx.AsyncClient(base_url=traced.base, timeout=30) as http:
        ids = []
        for _ in range(4):  # Envoy round-robins across the two workers
            header, trace_id, _ = traceparent()
            listed = await http.get("/api/projects", headers={**HEADERS, "traceparent": header})
            assert listed.status_code == 200
            ids.append(trace_id)
    name = "/chatplane.project.v1.ProjectService/ListProjects"
    spans = await traced.receiver.wait_for(lambda got: all(in_trace(t, name)(got) for t in ids))
    instances = {one(spans, t, name).resource["service.instance.id"] for t in ids}
    assert len(instances) == 2


async def test_log_lines_carry_the_trace_id(traced: Traced) -> None:
    header, trace_id, _ = traceparent()
    async with httpx.AsyncClient(base_url=traced.base, timeout=30) as http:
        listed = await http.get("/api/projects", headers={**HEADERS, "traceparent": header})
    assert listed.status_code == 200
    await traced.receiver.wait_for(
        in_trace(trace_id, "/chatplane.project.v1.ProjectService/ListProjects")
    )
    lines = [
        json.loads(line) for line in traced.log.read_text().splitlines() if line.startswith("{")
    ]
    access = [line for line in lines if line.get("trace_id") == trace_id]
    assert access, "no log line with the caller's trace id"
    assert all(line["request_id"] and line["span_id"] for line in access)


async def test_buffered_spans_are_flushed_on_stop(tmp_path: Path, database_url: str) -> None:
    """A batch delay longer than the test: the span leaves only because stop flushes."""
    if not database_url.startswith("sqlite"):
        pytest.skip("runs the default embedded configuration")
    receiver, fake = OtlpReceiver(), FakeAnthropic()
    await receiver.start()
    await fake.start()
    env = _env(tmp_path, receiver, fake, OTEL_BSP_SCHEDULE_DELAY="600000")
    proc, text = await _start_run(env)
    try:
        header, trace_id, _ = traceparent()
        async with httpx.AsyncClient(base_url=text.split("REST (Envoy):")[1].split()[0]) as http:
            listed = await http.get("/api/projects", headers={**HEADERS, "traceparent": header})
        assert listed.status_code == 200
        assert not any(s.trace_id == trace_id for s in receiver.spans)
        await _stop(proc)
        assert proc.returncode == 0
        assert in_trace(trace_id, "/chatplane.project.v1.ProjectService/ListProjects")(
            receiver.spans
        )
    finally:
        await _stop(proc)
        await fake.stop()
        await receiver.stop()
