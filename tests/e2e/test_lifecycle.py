"""Server lifecycle: health, reflection, rate limits through Envoy, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pb2, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from chatplane.app import App
from chatplane.chat.v1 import chat_service_pb2 as chat_pb
from chatplane.chat.v1 import chat_service_pb2_grpc as chat_grpc
from chatplane.config import descriptor_path
from chatplane.gateway import EnvoyProcess
from chatplane.project.v1 import project_service_pb2 as project_pb
from chatplane.project.v1 import project_service_pb2_grpc as project_grpc
from tests.conftest import BOOTSTRAP_KEY, make_settings, new_tenant

ADMIN = (("authorization", f"Bearer {BOOTSTRAP_KEY}"),)


async def test_health_serving(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "chatplane.project.v1.ProjectService", "chatplane.chat.v1.ChatService"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = set()
    async for reply in stub.ServerReflectionInfo(requests()):
        names |= {s.name for s in reply.list_services_response.service}
    assert {
        "chatplane.project.v1.ProjectService",
        "chatplane.iam.v1.ApiKeyService",
        "chatplane.chat.v1.ChatService",
        "grpc.health.v1.Health",
    } <= names


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_reflection_answers_under_v1_and_v1alpha(
    channel: grpc.aio.Channel, version: str
) -> None:
    # v1's messages are v1alpha's under another package: the same bytes on the wire.
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )

    async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        yield reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="chatplane.chat.v1.ChatService"
        )

    replies = [reply async for reply in call(requests())]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"grpc.reflection.v1.ServerReflection", "chatplane.chat.v1.ChatService"} <= names
    files = replies[1].file_descriptor_response.file_descriptor_proto
    described = [descriptor_pb2.FileDescriptorProto.FromString(f) for f in files]
    assert "chatplane/chat/v1/chat_service.proto" in {d.name for d in described}


async def test_rate_limit_429_through_envoy(tmp_path: Path, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the limiter path")
    app = App(
        make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/rl.db", rate_limit_per_minute=3)
    )
    await app.start()
    try:
        async with EnvoyProcess(
            http_port=0,
            grpc_port=app.grpc_port,
            descriptor=descriptor_path(),
            work_dir=tmp_path / "envoy",
        ) as envoy:
            limited = await new_tenant(app)
            other = await new_tenant(app)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{envoy.http_port}") as http:
                statuses = []
                for _ in range(4):
                    response = await http.get("/api/projects", headers=limited.headers)
                    statuses.append(response.status_code)
                assert statuses == [200, 200, 200, 429]
                assert response.json()["message"] == "Rate limit exceeded"
                assert 1 <= int(response.headers["retry-after"]) <= 60
                assert response.headers["x-ratelimit-limit"] == "3"
                assert response.headers["x-ratelimit-remaining"] == "0"
                # Other tenants are not affected.
                assert (await http.get("/api/projects", headers=other.headers)).status_code == 200
    finally:
        await app.stop(1.0)


async def _read_port(proc: asyncio.subprocess.Process) -> int:
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, "server exited before it listened"
        found = re.search(r"gRPC on 127\.0\.0\.1:(\d+)", line)
        if found:
            return int(found.group(1))


async def _start_server(
    data_dir: Path, *, token_delay_ms: int = 40, grace_seconds: float = 10, **extra: str
) -> tuple[asyncio.subprocess.Process, int]:
    env = {
        **os.environ,
        "CHATPLANE_DATA_DIR": str(data_dir),
        "CHATPLANE_GRPC_PORT": "0",
        "CHATPLANE_BOOTSTRAP_API_KEY": BOOTSTRAP_KEY,
        "CHATPLANE_LOCAL_TOKEN_DELAY_MS": str(token_delay_ms),
        "CHATPLANE_SHUTDOWN_GRACE_SECONDS": str(grace_seconds),
        "CHATPLANE_RATE_LIMIT_PER_MINUTE": "0",
        "CHATPLANE_RATE_LIMIT_PER_HOUR": "0",
        "CHATPLANE_SESSION_RATE_LIMIT_PER_MINUTE": "0",
        **extra,
    }
    env.pop("CHATPLANE_DATABASE_URL", None)
    env.pop("ANTHROPIC_API_KEY", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chatplane.cli",
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return proc, await _read_port(proc)


async def test_sigterm_drains_in_flight_stream(tmp_path: Path, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("runs the default embedded configuration")
    proc, port = await _start_server(tmp_path)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            projects = project_grpc.ProjectServiceStub(channel)
            pid = (
                await projects.CreateProject(
                    project_pb.CreateProjectRequest(name="drain"), metadata=ADMIN
                )
            ).project.id
            chat = chat_grpc.ChatServiceStub(channel)
            request = chat_pb.CompleteChatRequest(
                project_id=pid,
                messages=[
                    chat_pb.ChatMessage(
                        role="user", content=struct_pb2.Value(string_value="tell me a long story")
                    )
                ],
            )
            events = []
            async for event in chat.StreamChat(request, metadata=ADMIN):
                events.append(event)
                if len(events) == 1:  # in flight: ask the server to stop
                    proc.send_signal(signal.SIGTERM)
            kinds = [e.WhichOneof("event") for e in events]
            assert kinds[0] == "metadata" and kinds[-1] == "complete"  # finished, not cut
            total = events[-1].complete.total_tokens
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    # Restart on the same data: the drained call's usage record was flushed, not lost.
    proc, port = await _start_server(tmp_path)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            usage = await chat_grpc.ChatServiceStub(channel).GetChatUsage(
                chat_pb.GetChatUsageRequest(project_id=pid), metadata=ADMIN
            )
            assert usage.summary.request_count == 1
            assert usage.summary.total_tokens == total
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_sigterm_ends_streams_past_the_grace_period_in_band(
    tmp_path: Path, database_url: str
) -> None:
    """Issue 12, item 7: a stream still running when the grace period ends gets an `error`
    event ("server shutting down", retryable) instead of just stopping, and its usage
    records the tokens actually delivered (status cancelled)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("runs the default embedded configuration")
    from chatplane.llm.local import count_tokens

    text = "tell me a long story " * 100  # 500 tokens at 40 ms: far beyond the grace
    proc, port = await _start_server(tmp_path, grace_seconds=1)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            pid = (
                await project_grpc.ProjectServiceStub(channel).CreateProject(
                    project_pb.CreateProjectRequest(name="cut"), metadata=ADMIN
                )
            ).project.id
            request = chat_pb.CompleteChatRequest(
                project_id=pid,
                messages=[
                    chat_pb.ChatMessage(role="user", content=struct_pb2.Value(string_value=text))
                ],
            )
            events = []
            call = chat_grpc.ChatServiceStub(channel).StreamChat(request, metadata=ADMIN)
            async for event in call:
                events.append(event)
                if len(events) == 3:
                    proc.send_signal(signal.SIGTERM)
            assert await call.code() == grpc.StatusCode.OK  # ended, not reset
        kinds = [e.WhichOneof("event") for e in events]
        assert kinds[0] == "metadata" and kinds[-1] == "error", kinds[-3:]
        assert events[-1].error.error == "server shutting down"
        deltas = [e.text_delta.delta for e in events if e.WhichOneof("event") == "text_delta"]
        assert 10 < len(deltas) < 200  # cut after about 1 s of 40 ms tokens
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    proc, port = await _start_server(tmp_path)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            usage = await chat_grpc.ChatServiceStub(channel).GetChatUsage(
                chat_pb.GetChatUsageRequest(project_id=pid), metadata=ADMIN
            )
        assert usage.summary.request_count == 1
        delivered = sum(count_tokens(d) for d in deltas)
        assert usage.summary.total_tokens == count_tokens(text) + delivered
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
