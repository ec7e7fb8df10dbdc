"""The Envoy gateway end to end: a real grpc.aio server behind a real Envoy (REST + gRPC)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from google.api import httpbody_pb2
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from chatplane.chat.v1 import chat_service_pb2, chat_service_pb2_grpc
from chatplane.gateway import (
    EnvoyProcess,
    chatplane_services,
    default_concurrency,
    render_envoy_config,
)
from chatplane.project.v1 import project_service_pb2 as pb
from chatplane.project.v1 import project_service_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = ROOT / "gen" / "descriptor.binpb"
MIB = 1024 * 1024
RATE_HEADERS = (
    ("retry-after", "7"),
    ("x-ratelimit-limit", "600"),
    ("x-ratelimit-remaining", "0"),
    ("x-ratelimit-reset", "42"),
)
SSE_FRAMES = [
    b'event: text_delta\ndata: {"delta":"Hel"}\n\n',
    b'event: text_delta\ndata: {"delta":"lo"}\n\n',
    b'event: usage\ndata: {"input_tokens":3,"output_tokens":2}\n\n',
    b'event: complete\ndata: {"total_tokens":5}\n\n',
]
SSE_GAP = 0.3

Metadata = Iterable[tuple[str, str | bytes]]

# project_id -> (code, message, http status override, rate headers, send headers first)
ERRORS: dict[str, tuple[grpc.StatusCode, str, str | None, bool, bool]] = {
    "missing": (grpc.StatusCode.NOT_FOUND, "Project not found", None, False, False),
    "missing-late": (grpc.StatusCode.NOT_FOUND, "Project not found", None, False, True),
    "bad": (grpc.StatusCode.INVALID_ARGUMENT, "project_id is malformed", None, False, False),
    "unauth": (grpc.StatusCode.UNAUTHENTICATED, "Missing API key", None, False, False),
    "denied": (grpc.StatusCode.PERMISSION_DENIED, "Missing scope", None, False, False),
    "gone": (grpc.StatusCode.FAILED_PRECONDITION, "Project retired", "410", False, False),
    "gone-late": (grpc.StatusCode.FAILED_PRECONDITION, "Project retired", "410", False, True),
    "limited": (grpc.StatusCode.RESOURCE_EXHAUSTED, "Rate limit", None, True, False),
    "limited-late": (grpc.StatusCode.RESOURCE_EXHAUSTED, "Rate limit", None, True, True),
    # grpc's own size limits: RESOURCE_EXHAUSTED without Retry-After is not a rate limit.
    "big-meta": (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "received metadata size exceeds hard limit (17433 vs. 16384); :path:86B x-big:17037B",
        None,
        False,
        False,
    ),
    "big-message": (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "Received message larger than max (9437184 vs. 8388608)",
        None,
        False,
        False,
    ),
}


def status_details(code: grpc.StatusCode, message: str, reason: str) -> bytes:
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.ErrorInfo(
            reason=reason, domain="chatplane", metadata={"resource": "project"}
        )
    )
    code_value: int = code.value[0]
    status = status_pb2.Status(code=code_value, message=message, details=[detail])
    return bytes(status.SerializeToString())


class FakeProjects(pb_grpc.ProjectServiceServicer):
    async def GetProject(
        self, request: pb.GetProjectRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetProjectResponse:
        pid = request.project_id
        if pid in ERRORS:
            code, message, http_status, rate, early = ERRORS[pid]
            trailing: list[tuple[str, str | bytes]] = [
                ("grpc-status-details-bin", status_details(code, message, code.name)),
                ("x-chatplane-internal", "secret"),
            ]
            if http_status is not None:
                trailing.append(("x-chatplane-http-status", http_status))
            if rate:
                trailing.extend(RATE_HEADERS)
            if early:
                await context.send_initial_metadata((("x-request-id", "r-1"),))
            await context.abort(code, message, trailing_metadata=tuple(trailing))
        await context.send_initial_metadata(RATE_HEADERS[1:])
        return pb.GetProjectResponse(
            success=True, project=pb.Project(id=pid, name="One", tier_models={"fast": "m"})
        )

    async def ListProjects(
        self, request: pb.ListProjectsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListProjectsResponse:
        return pb.ListProjectsResponse(success=True, limit=request.limit, offset=request.offset)

    async def CreateProject(
        self, request: pb.CreateProjectRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CreateProjectResponse:
        project = pb.Project(id="new", name=request.name, description=request.description)
        return pb.CreateProjectResponse(success=True, project=project)

    async def DeleteProject(
        self, request: pb.DeleteProjectRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DeleteProjectResponse:
        await context.send_initial_metadata((("x-chatplane-http-status", "204"),))
        return pb.DeleteProjectResponse(success=True, id=request.project_id)


class FakeChat(chat_service_pb2_grpc.ChatServiceServicer):
    def __init__(self) -> None:
        self.sent_at: list[float] = []

    async def StreamChatSse(
        self,
        request: chat_service_pb2.CompleteChatRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        if request.project_id == "gone":  # fails before the stream starts
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "Project retired",
                trailing_metadata=(("x-chatplane-http-status", "410"),),
            )
        self.sent_at = []
        for index, frame in enumerate(SSE_FRAMES):
            if index:
                await asyncio.sleep(SSE_GAP)
            self.sent_at.append(time.monotonic())
            yield httpbody_pb2.HttpBody(content_type="text/event-stream", data=frame)

    async def ChatAgent(
        self,
        request: chat_service_pb2.ChatAgentRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> chat_service_pb2.ChatAgentResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Agent chat is not built yet")

    # Not used here.
    async def CompleteChat(
        self,
        request: chat_service_pb2.CompleteChatRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> chat_service_pb2.CompleteChatResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this fake")

    async def StreamChat(
        self,
        request: chat_service_pb2.CompleteChatRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[chat_service_pb2.StreamChatResponse]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this fake")
        yield chat_service_pb2.StreamChatResponse()  # type: ignore[unreachable]

    async def GetChatUsage(
        self,
        request: chat_service_pb2.GetChatUsageRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> chat_service_pb2.GetChatUsageResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this fake")


class Backend:
    def __init__(self, server: grpc.aio.Server, port: int, chat: FakeChat) -> None:
        self.server = server
        self.port = port
        self.chat = chat


async def start_backend(*, serving: bool = True) -> Backend:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 16 * MIB),
            ("grpc.max_send_message_length", 16 * MIB),
        ]
    )
    chat = FakeChat()
    pb_grpc.add_ProjectServiceServicer_to_server(FakeProjects(), server)
    chat_service_pb2_grpc.add_ChatServiceServicer_to_server(chat, server)
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set(
        "",
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return Backend(server, port, chat)


@pytest_asyncio.fixture(scope="module")
async def backend() -> AsyncIterator[Backend]:
    started = await start_backend()
    try:
        yield started
    finally:
        await started.server.stop(0)


def make_envoy(
    backend: Backend, work_dir: Path, http_port: int = 0, concurrency: int | None = None
) -> EnvoyProcess:
    return EnvoyProcess(
        http_port=http_port,
        grpc_port=backend.port,
        descriptor=DESCRIPTOR,
        work_dir=work_dir,
        host="127.0.0.1",
        log_path=work_dir / "envoy.log",
        concurrency=concurrency,
    )


@pytest_asyncio.fixture(scope="module")
async def envoy(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EnvoyProcess]:
    process = make_envoy(backend, tmp_path_factory.mktemp("envoy"))
    async with process:
        yield process


@pytest_asyncio.fixture(scope="module")
async def client(envoy: EnvoyProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{envoy.http_port}", timeout=10
    ) as http:
        yield http


async def admin_get(envoy: EnvoyProcess, path: str) -> str:
    status, body = await envoy.admin_get(path)
    assert status == 200, (path, status)
    return body.decode()


def stat(stats: str, name: str) -> int:
    for line in stats.splitlines():
        key, _, value = line.partition(": ")
        if key == name:
            return int(value)
    return 0


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


# --- configuration ---------------------------------------------------------------------


def test_services_come_from_the_descriptor() -> None:
    services = chatplane_services(DESCRIPTOR)
    assert "chatplane.project.v1.ProjectService" in services
    assert "chatplane.chat.v1.ChatService" in services
    assert "chatplane.iam.v1.ApiKeyService" in services
    assert all(name.startswith("chatplane.") for name in services)


def test_render_without_admin(tmp_path: Path) -> None:
    text = render_envoy_config(
        http_port=8080, grpc_port=50051, descriptor=DESCRIPTOR, admin_address_path=None
    )
    assert "\nadmin:" not in text
    assert "envoy_on_response" in text  # status.lua is inlined
    with_admin = render_envoy_config(
        http_port=8080,
        grpc_port=50051,
        descriptor=DESCRIPTOR,
        admin_address_path=tmp_path / "admin",
        grpc_host="chatplane-grpc",
    )
    assert "\nadmin:" in with_admin
    assert '"STRICT_DNS"' in with_admin


async def test_loaded_config(envoy: EnvoyProcess) -> None:
    dump = json.loads(await admin_get(envoy, "/config_dump"))
    routes = {node["name"]: node for node in walk(dump) if "match" in node and "route" in node}
    assert routes["chat_stream"]["match"] == {"path": "/api/v1/chat/stream"}
    assert routes["chat_stream"]["route"]["timeout"] == "0s"
    assert routes["chat_stream"]["route"]["idle_timeout"] == "300s"
    assert routes["rest"]["route"]["timeout"] == "60s"
    hcm = next(node for node in walk(dump) if "stream_idle_timeout" in node)
    assert hcm["stream_idle_timeout"] == "300s"
    # The filter's own config (the attachments route overrides it with a larger body limit).
    transcoders = [node for node in walk(dump) if "proto_descriptor" in node]
    transcoder = next(t for t in transcoders if t["max_request_body_size"] == 8 * MIB)
    assert all(t["services"] == chatplane_services(DESCRIPTOR) for t in transcoders)
    assert transcoder["max_response_body_size"] == 8 * MIB
    assert {t["max_request_body_size"] for t in transcoders} == {8 * MIB, 64 * MIB}
    filters = next(node["http_filters"] for node in walk(dump) if "http_filters" in node)
    names = [f["name"] for f in filters]
    assert names.index("envoy.filters.http.lua") < names.index(
        "envoy.filters.http.grpc_json_transcoder"
    )


# --- start-up, health checks, several Envoys ---------------------------------------------


async def test_first_request_right_after_start(backend: Backend, tmp_path: Path) -> None:
    # A second Envoy next to the module's one (dynamic base id, own ports).
    async with make_envoy(backend, tmp_path) as envoy:
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(f"http://127.0.0.1:{envoy.http_port}/api/projects/p1")
        assert response.status_code == 200, response.text
        # ... while the active gRPC health check runs against grpc.health.v1.
        stats = await admin_get(envoy, "/stats")
        assert stat(stats, "cluster.chatplane_grpc.health_check.attempt") >= 1
    assert envoy.pid is None


async def test_failing_health_check_does_not_block_requests(tmp_path: Path) -> None:
    # One upstream host: when it fails its check the cluster is in panic mode and still
    # routes to it, so a check never turns into "no healthy upstream" by itself.
    unhealthy = await start_backend(serving=False)
    try:
        async with make_envoy(unhealthy, tmp_path) as envoy:
            assert "::health_flags::/failed_active_hc" in await admin_get(envoy, "/clusters")
            async with httpx.AsyncClient(timeout=5) as http:
                response = await http.get(f"http://127.0.0.1:{envoy.http_port}/api/projects/p1")
            assert response.status_code == 200, response.text
    finally:
        await unhealthy.server.stop(0)


async def test_startup_failure_is_reported(backend: Backend, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        envoy = make_envoy(backend, tmp_path, http_port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="envoy exited"):
            await envoy.start()
    assert envoy.pid is None


async def test_health_checked_upstream_is_healthy(envoy: EnvoyProcess) -> None:
    clusters = await admin_get(envoy, "/clusters")
    assert "chatplane_grpc::" in clusters
    assert "::health_flags::healthy" in clusters
    stats = await admin_get(envoy, "/stats")
    assert stat(stats, "cluster.chatplane_grpc.health_check.success") >= 1


# --- REST -------------------------------------------------------------------------------


async def test_unary_ok_camel_case_and_rate_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/projects/p1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["success"] is True
    project = body["project"]
    assert project["id"] == "p1"
    assert project["tierModels"] == {"fast": "m"}
    assert project["defaultModel"] == ""  # primitives printed even when empty
    assert project["createdAt"] == ""
    assert response.headers["x-ratelimit-limit"] == "600"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.headers["x-ratelimit-reset"] == "42"
    assert not any(name.startswith("grpc-") for name in response.headers)


async def test_query_parameters(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/projects", params={"limit": 5, "offset": 10})
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "total": 0,
        "offset": 10,
        "limit": 5,
        "projects": [],
    }
    unknown = await client.get("/api/projects", params={"bogus": 1})
    assert unknown.status_code == 400


async def test_unknown_path_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/nothing/here")).status_code == 404
    assert (await client.post("/api/projects/p1", json={})).status_code == 404


@pytest.mark.parametrize("pid", ["missing", "missing-late"])
async def test_not_found_body_is_google_rpc_status(client: httpx.AsyncClient, pid: str) -> None:
    response = await client.get(f"/api/projects/{pid}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == 5
    assert body["message"] == "Project not found"
    assert body["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "NOT_FOUND",
            "domain": "chatplane",
            "metadata": {"resource": "project"},
        }
    ]
    assert "grpc-status-details-bin" not in response.headers
    assert "x-chatplane-internal" not in response.headers


@pytest.mark.parametrize(
    ("pid", "status"),
    [
        ("bad", 400),
        ("unauth", 401),
        ("denied", 403),
        ("gone", 410),
        ("gone-late", 410),
        ("limited", 429),
        ("limited-late", 429),
    ],
)
async def test_error_status_codes(client: httpx.AsyncClient, pid: str, status: int) -> None:
    response = await client.get(f"/api/projects/{pid}")
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == ERRORS[pid][0].value[0]
    assert body["message"] == ERRORS[pid][1]
    assert not any(name.startswith(("x-chatplane-", "grpc-")) for name in response.headers)
    if status == 429:
        assert response.headers["retry-after"] == "7"
        assert response.headers["x-ratelimit-limit"] == "600"
        assert response.headers["x-ratelimit-remaining"] == "0"
        assert response.headers["x-ratelimit-reset"] == "42"


@pytest.mark.parametrize(
    ("pid", "status", "message"),
    [("big-meta", 431, "Request headers too large"), ("big-message", 413, "Request too large")],
)
async def test_grpc_size_limits_are_not_429(
    client: httpx.AsyncClient, pid: str, status: int, message: str
) -> None:
    response = await client.get(f"/api/projects/{pid}")
    assert response.status_code == status, response.text
    assert response.json()["message"] == message  # not grpc's list of header sizes
    assert "retry-after" not in response.headers


async def test_oversized_request_headers_are_431(client: httpx.AsyncClient) -> None:
    for size in (40_000, 70_000):
        response = await client.get("/api/projects/p1", headers={"x-big": "z" * size})
        assert response.status_code == 431
        assert response.json()["details"][0]["reason"] == "HEADERS_TOO_LARGE"


async def test_no_content(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/projects/p1")
    assert response.status_code == 204
    assert response.content == b""
    assert "x-chatplane-http-status" not in response.headers


async def test_unimplemented_is_501(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/chat/agent", json={})
    assert response.status_code == 501
    assert response.json()["code"] == 12


async def test_wrong_json_type_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/projects", json={"name": {"not": "a string"}})
    assert response.status_code == 400


async def test_large_bodies(client: httpx.AsyncClient) -> None:
    description = "x" * (6 * MIB)
    response = await client.post("/api/projects", json={"name": "big", "description": description})
    assert response.status_code == 200
    assert response.json()["project"]["description"] == description
    # Always a clean 413, however the body arrives (it used to depend on timing).
    for _ in range(3):
        too_big = await client.post(
            "/api/projects", json={"name": "huge", "description": "x" * (8 * MIB)}
        )
        assert too_big.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length
        yield b'{"name": "huge", "description": "'
        for _ in range(9):
            yield b"x" * MIB
        yield b'"}'

    chunked = await client.post(
        "/api/projects", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413


async def test_sse_stream_is_unbuffered(client: httpx.AsyncClient, backend: Backend) -> None:
    received = b""
    arrivals: list[float] = []  # when the end of each frame arrived
    expected_ends = [sum(len(f) for f in SSE_FRAMES[: i + 1]) for i in range(len(SSE_FRAMES))]
    request = {"projectId": "p1", "messages": [{"role": "user", "content": "Hi"}]}
    async with client.stream("POST", "/api/v1/chat/stream", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        async for chunk in response.aiter_raw():
            received += chunk
            while (
                len(arrivals) < len(expected_ends) and len(received) >= expected_ends[len(arrivals)]
            ):
                arrivals.append(time.monotonic())
    assert received == b"".join(SSE_FRAMES)
    sent = backend.chat.sent_at
    assert len(sent) == len(SSE_FRAMES) == len(arrivals)
    # The first frame reached the client long before the last one was even sent, and
    # every frame before the server sent the next one.
    assert arrivals[0] < sent[-1] - SSE_GAP
    for arrived_at, next_sent_at in zip(arrivals, sent[1:], strict=False):
        assert arrived_at < next_sent_at


async def test_stream_failing_before_it_starts(client: httpx.AsyncClient) -> None:
    request = {"projectId": "gone", "messages": [{"role": "user", "content": "Hi"}]}
    response = await client.post("/api/v1/chat/stream", json=request)
    assert response.status_code == 410
    assert response.json()["message"] == "Project retired"
    assert not any(name.startswith(("x-chatplane-", "grpc-")) for name in response.headers)


async def test_routes_match_the_incoming_rest_path(
    client: httpx.AsyncClient, envoy: EnvoyProcess
) -> None:
    stream_route = "vhost.chatplane.route.chat_stream.upstream_rq_completed"
    rest_route = "vhost.chatplane.route.rest.upstream_rq_completed"
    stats = await admin_get(envoy, "/stats")
    streams, rests = stat(stats, stream_route), stat(stats, rest_route)
    request = {"projectId": "p1", "messages": [{"role": "user", "content": "Hi"}]}
    assert (await client.post("/api/v1/chat/stream", json=request)).status_code == 200
    assert (await client.get("/api/projects/p1")).status_code == 200
    stats = await admin_get(envoy, "/stats")
    assert stat(stats, stream_route) == streams + 1
    assert stat(stats, rest_route) == rests + 1


# --- native gRPC through the same listener -----------------------------------------------


async def test_native_grpc_passes_through(envoy: EnvoyProcess) -> None:
    grpc_route = "vhost.chatplane.route.grpc.upstream_rq_completed"
    before = stat(await admin_get(envoy, "/stats"), grpc_route)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{envoy.http_port}") as channel:
        stub = pb_grpc.ProjectServiceStub(channel)
        call = stub.GetProject(pb.GetProjectRequest(project_id="p1"))
        reply = await call
        assert reply.project.id == "p1"
        assert ("x-ratelimit-limit", "600") in tuple(await call.initial_metadata() or ())

        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await stub.GetProject(pb.GetProjectRequest(project_id="gone"))
        assert gone.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        trailing = dict(gone.value.trailing_metadata() or ())
        assert trailing["x-chatplane-http-status"] == "410"
        details = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
        assert details.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]

        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetProject(pb.GetProjectRequest(project_id="missing-late"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND

        health_stub = health_pb2_grpc.HealthStub(channel)
        checked = await health_stub.Check(health_pb2.HealthCheckRequest(service=""))
        assert checked.status == health_pb2.HealthCheckResponse.SERVING

        chat = chat_service_pb2_grpc.ChatServiceStub(channel)
        frames = [
            body.data async for body in chat.StreamChatSse(chat_service_pb2.CompleteChatRequest())
        ]
        assert frames == SSE_FRAMES

    # Native calls took the gRPC route (no total timeout; the client's deadline applies).
    assert stat(await admin_get(envoy, "/stats"), grpc_route) == before + 5


async def test_envoy_runs_the_worker_threads_it_is_given(backend: Backend, tmp_path: Path) -> None:
    for wanted, expected in ((None, default_concurrency()), (1, 1), (3, 3)):
        work_dir = tmp_path / f"envoy-{wanted}"
        work_dir.mkdir()
        async with make_envoy(backend, work_dir, concurrency=wanted) as process:
            status, body = await process.admin_get("/server_info")
            assert status == 200, body
            options = json.loads(body)["command_line_options"]
            assert int(options["concurrency"]) == expected
