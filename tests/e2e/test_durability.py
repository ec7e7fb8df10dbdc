"""kill -9 under load loses no acknowledged call's usage (issue 12, item 5).

A `chatplane serve` process takes completions and streams from 16 concurrent clients; it
is killed with SIGKILL mid-load, restarted on the same data, and every call that was
acknowledged (a unary reply, or a stream's `complete` event) must have its usage row.
Calls cut by the kill may or may not have one.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2

from chatplane.chat.v1 import chat_service_pb2 as chat_pb
from chatplane.chat.v1 import chat_service_pb2_grpc as chat_grpc
from chatplane.project.v1 import project_service_pb2 as project_pb
from chatplane.project.v1 import project_service_pb2_grpc as project_grpc
from tests.e2e.test_lifecycle import ADMIN, _start_server

CLIENTS = 16
ACKED_BEFORE_KILL = 50  # completed streams before the kill (waited for, not timed)


async def test_sigkill_under_load_loses_no_acknowledged_usage(
    tmp_path: Path, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("runs the default embedded configuration")
    proc, port = await _start_server(tmp_path, token_delay_ms=0)
    acked = 0
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            pid = (
                await project_grpc.ProjectServiceStub(channel).CreateProject(
                    project_pb.CreateProjectRequest(name="durable"), metadata=ADMIN
                )
            ).project.id
            chat = chat_grpc.ChatServiceStub(channel)
            request = chat_pb.CompleteChatRequest(
                project_id=pid,
                messages=[
                    chat_pb.ChatMessage(role="user", content=struct_pb2.Value(string_value="hi"))
                ],
            )
            stop, loaded = asyncio.Event(), asyncio.Event()

            def ack() -> None:
                nonlocal acked
                acked += 1
                if acked >= ACKED_BEFORE_KILL:
                    loaded.set()

            async def client(index: int) -> None:
                while not stop.is_set():
                    try:
                        if index % 2:
                            await chat.CompleteChat(request, metadata=ADMIN, timeout=10)
                            ack()
                        else:
                            async for event in chat.StreamChat(request, metadata=ADMIN, timeout=10):
                                if event.WhichOneof("event") == "complete":
                                    ack()
                    except grpc.aio.AioRpcError:
                        return  # the server is gone

            clients = [asyncio.create_task(client(i)) for i in range(CLIENTS)]
            await asyncio.wait_for(loaded.wait(), 60)
            proc.send_signal(signal.SIGKILL)  # mid-load, no chance to flush
            await proc.wait()
            stop.set()
            await asyncio.gather(*clients)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert acked >= ACKED_BEFORE_KILL, "the load did not run"

    proc, port = await _start_server(tmp_path, token_delay_ms=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            usage = await chat_grpc.ChatServiceStub(channel).GetChatUsage(
                chat_pb.GetChatUsageRequest(project_id=pid), metadata=ADMIN
            )
        assert usage.summary.request_count >= acked  # in-flight calls may add a few
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
