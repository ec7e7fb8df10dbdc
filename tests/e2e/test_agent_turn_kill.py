"""A server killed mid-turn leaves the session exactly as it was before the turn."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest
from aiohttp import web
from google.protobuf import struct_pb2

from chatplane.app import App
from chatplane.chat.v1 import chat_service_pb2 as chat_pb
from chatplane.chat.v1 import chat_service_pb2_grpc as chat_grpc
from chatplane.project.v1 import project_service_pb2 as project_pb
from chatplane.project.v1 import project_service_pb2_grpc as project_grpc
from chatplane.storage.models import AgentSession
from tests.conftest import make_settings
from tests.e2e.test_lifecycle import ADMIN, _start_server

SLOW = """AGENT: Slow
GOAL: "Look things up slowly"
TOOLS:
  slow(q: string) -> {v: string}
    description: "A slow lookup"
    type: http
    endpoint: "http://127.0.0.1:PORT/slow"
    method: GET
    timeout: 30000
FLOW:
  entry_point: ask
  steps:
    - ask
    - look
  ask:
    REASONING: false
    GATHER:
      - q: required
        type: string
        prompt: "What should I look up?"
    THEN: look
  look:
    REASONING: false
    CALL: slow
      WITH:
        q: q
      AS: r
    RESPOND: "got {{r.v}}"
    CLEAR: [q]
    THEN: ask
"""


async def _session(data_dir: Path, session_id: str) -> AgentSession:
    app = App(make_settings(data_dir, f"sqlite+aiosqlite:///{data_dir / 'chatplane.db'}"))
    try:
        async with app.db.read() as uow:
            row = await uow.get(AgentSession, session_id)
        assert row is not None
        return row
    finally:
        await app.close()


async def test_kill_during_a_turn_changes_nothing(tmp_path: Path, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("runs the default embedded configuration")
    called = asyncio.Event()
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        called.set()
        await release.wait()
        return web.json_response({"v": "late"})

    tool = web.Application()
    tool.router.add_get("/slow", slow)
    runner = web.AppRunner(tool)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    extra = {"CHATPLANE_TOOL_ALLOWED_HOSTS": "127.0.0.1"}
    proc, grpc_port = await _start_server(tmp_path, token_delay_ms=0, **extra)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            pid = (
                await project_grpc.ProjectServiceStub(channel).CreateProject(
                    project_pb.CreateProjectRequest(name="kill"), metadata=ADMIN
                )
            ).project.id
            app = App(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'chatplane.db'}"))
            try:
                await app.agents.put(
                    (await app.iam.default_tenant_id()),
                    pid,
                    "Slow",
                    SLOW.replace("PORT", str(port)),
                )
            finally:
                await app.close()
            chat = chat_grpc.ChatServiceStub(channel)
            mock = chat_pb.TestContext(
                tool_mocks=[chat_pb.ToolMock(tool_name="slow", response=_value({"v": "fast"}))]
            )
            first = await chat.ChatAgent(
                chat_pb.ChatAgentRequest(project_id=pid, message="hello", test_context=mock),
                metadata=ADMIN,
            )
            assert "got fast" in first.response
            before = await _session(tmp_path, first.session_id)
            assert (before.turn_count, before.message_count) == (1, 2)

            pending = asyncio.ensure_future(
                chat.ChatAgent(
                    chat_pb.ChatAgentRequest(
                        project_id=pid, session_id=first.session_id, message="again"
                    ),
                    metadata=ADMIN,
                )
            )
            await asyncio.wait_for(called.wait(), 10)  # the turn is in its tool call
            proc.kill()
            await proc.wait()
            with pytest.raises(grpc.aio.AioRpcError):
                await pending
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        release.set()
        await runner.cleanup()

    after = await _session(tmp_path, first.session_id)
    assert (after.turn_count, after.message_count, after.trace_event_count) == (
        before.turn_count,
        before.message_count,
        before.trace_event_count,
    )
    assert json.loads(after.state) == json.loads(before.state)
    assert after.version == before.version


def _value(data: dict[str, str]) -> struct_pb2.Value:
    out = struct_pb2.Value()
    out.struct_value.update(data)
    return out
