"""The load generator's calls: aiohttp for HTTP (Envoy and the fake upstream), grpc.aio for gRPC.

Each call returns (latency, time to first token or None) in seconds and raises when the
answer is not a complete success.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chatplane.chat.v1 import chat_service_pb2 as chat_pb
from chatplane.chat.v1 import chat_service_pb2_grpc as chat_grpc
from chatplane.project.v1 import project_service_pb2 as project_pb
from chatplane.project.v1 import project_service_pb2_grpc as project_grpc

MODEL = "claude-haiku-4-5"
PROMPT = "Say hello to the benchmark in about ten words please"
EXPECTED_TEXT = f"Echo: {PROMPT}"  # what the fake upstream answers
TIMEOUT = 15.0  # seconds, per call
ANTHROPIC_VERSION = "2023-06-01"


class BenchFailure(RuntimeError):
    """A response that is not what a successful call returns."""


class Clients:
    def __init__(
        self, *, rest_base: str, grpc_port: int, fake_base: str, api_key: str, fake_key: str
    ) -> None:
        self.rest_base = rest_base
        self.fake_base = fake_base
        self.api_key = api_key
        self.fake_key = fake_key
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.project_id = ""
        self.http: aiohttp.ClientSession | None = None
        self.channel: grpc.aio.Channel | None = None

    async def open(self) -> None:
        # Same connector settings for Envoy and the fake upstream: keep-alive, no cap
        # below the loops' concurrency, no DNS (literal IPs).
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, force_close=False),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT),
        )
        self.channel = grpc.aio.insecure_channel(self.grpc_target)
        await self.channel.channel_ready()
        self.projects = project_grpc.ProjectServiceStub(self.channel)
        self.chat = chat_grpc.ChatServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self.channel is not None:
            await self.channel.close()
            self.channel = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self.http is not None
        return self.http

    @property
    def rest_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),)

    # --- setup and checks ---------------------------------------------------------------

    async def create_project(self) -> str:
        async with self.session.post(
            f"{self.rest_base}/api/projects",
            data=json.dumps({"name": "bench"}),
            headers=self.rest_headers,
        ) as response:
            body = await response.text()
            if response.status != 200:
                raise BenchFailure(f"POST /api/projects: {response.status} {body}")
        self.project_id = str(json.loads(body)["project"]["id"])
        return self.project_id

    def chat_body(self) -> bytes:
        return json.dumps(
            {
                "projectId": self.project_id,
                "messages": [{"role": "user", "content": PROMPT}],
                "modelId": MODEL,
            }
        ).encode()

    def chat_request(self) -> chat_pb.CompleteChatRequest:
        return chat_pb.CompleteChatRequest(
            project_id=self.project_id,
            messages=[
                chat_pb.ChatMessage(role="user", content=struct_pb2.Value(string_value=PROMPT))
            ],
            model_id=MODEL,
        )

    def openai_body(self) -> bytes:
        """An OpenAI Chat Completions request with chat_body()'s message and model (the
        body sent to chatplane's `/v1/chat/completions` and to LiteLLM's alike)."""
        return json.dumps(
            {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
        ).encode()

    def upstream_body(self, *, stream: bool) -> bytes:
        """What chatplane sends upstream for chat_body() (the SDK's request, same tokens)."""
        body: dict[str, Any] = {
            "model": MODEL,
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
        }
        if stream:
            body["stream"] = True
        return json.dumps(body).encode()

    async def check_provider(self) -> dict[str, str]:
        """Fail loudly unless chatplane really answers through the anthropic provider
        (the real SDK against the fake upstream), on every path measured."""
        found: dict[str, str] = {}
        async with self.session.post(
            f"{self.rest_base}/api/v1/chat/stream", data=self.chat_body(), headers=self.rest_headers
        ) as response:
            raw = await response.read()
        if response.status != 200 or not raw.startswith(b"event: metadata\ndata: "):
            raise BenchFailure(f"REST stream: {response.status} {raw[:300]!r}")
        metadata = json.loads(raw.split(b"\n", 2)[1][len(b"data: ") :])
        if metadata.get("provider") != "anthropic" or metadata.get("modelId") != MODEL:
            raise BenchFailure(f"REST stream metadata is not the anthropic provider: {metadata}")
        text = "".join(
            json.loads(line[len(b"data: ") :])["delta"]
            for frame in raw.split(b"\n\n")
            if frame.startswith(b"event: text_delta\n")
            for line in frame.split(b"\n")[1:2]
        )
        if text != EXPECTED_TEXT:
            raise BenchFailure(f"REST stream text {text!r} is not the fake's {EXPECTED_TEXT!r}")
        found["REST stream"] = f"provider={metadata['provider']} model={metadata['modelId']}"

        events = [
            event
            async for event in self.chat.StreamChat(
                self.chat_request(), metadata=self.metadata, timeout=TIMEOUT
            )
        ]
        first = events[0] if events else None
        if first is None or first.metadata.provider != "anthropic":
            raise BenchFailure(f"gRPC StreamChat first event is not anthropic metadata: {first}")
        found["gRPC StreamChat"] = f"provider={first.metadata.provider}"

        async with self.session.post(
            f"{self.rest_base}/api/v1/chat/complete",
            data=self.chat_body(),
            headers=self.rest_headers,
        ) as response:
            body = await response.text()
        if response.status != 200:
            raise BenchFailure(f"REST complete: {response.status} {body}")
        reply = json.loads(body)
        if reply.get("model") != MODEL or reply.get("content") != EXPECTED_TEXT:
            raise BenchFailure(f"REST complete did not come from the fake upstream: {reply}")
        found["REST complete"] = f"model={reply['model']} content={reply['content']!r}"

        unary = await self.chat.CompleteChat(
            self.chat_request(), metadata=self.metadata, timeout=TIMEOUT
        )
        if unary.model != MODEL or unary.content != EXPECTED_TEXT:
            raise BenchFailure(f"gRPC CompleteChat did not come from the fake upstream: {unary}")
        found["gRPC CompleteChat"] = f"model={unary.model}"
        return found

    async def usage_by_model(self) -> list[dict[str, Any]]:
        async with self.session.get(
            f"{self.rest_base}/api/v1/chat/usage",
            params={"projectId": self.project_id, "groupBy": "model", "startDate": "2020-01-01"},
            headers=self.rest_headers,
        ) as response:
            body = await response.text()
        if response.status != 200:
            raise BenchFailure(f"GET /api/v1/chat/usage: {response.status} {body}")
        by_model: list[dict[str, Any]] = json.loads(body).get("byModel", [])
        return by_model

    # --- measured calls -----------------------------------------------------------------

    async def rest_get_project(self) -> tuple[float, None]:
        url = f"{self.rest_base}/api/projects/{self.project_id}"
        headers = {"Authorization": f"Bearer {self.api_key}"}
        started = time.perf_counter()
        async with self.session.get(url, headers=headers) as response:
            body = await response.read()
        latency = time.perf_counter() - started
        if response.status != 200 or self.project_id.encode() not in body:
            raise BenchFailure(f"GET project: {response.status} {body[:200]!r}")
        return latency, None

    async def grpc_get_project(self) -> tuple[float, None]:
        request = project_pb.GetProjectRequest(project_id=self.project_id)
        started = time.perf_counter()
        reply = await self.projects.GetProject(request, metadata=self.metadata, timeout=TIMEOUT)
        latency = time.perf_counter() - started
        if reply.project.id != self.project_id:
            raise BenchFailure(f"GetProject returned {reply}")
        return latency, None

    async def grpc_health_check(self) -> tuple[float, None]:
        """The floor of a gRPC call on this server: no interceptor work, no database."""
        request = health_pb2.HealthCheckRequest(service="")
        started = time.perf_counter()
        reply = await self.health.Check(request, timeout=TIMEOUT)
        latency = time.perf_counter() - started
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise BenchFailure(f"Health.Check returned {reply}")
        return latency, None

    async def post_json(self, url: str, body: bytes, headers: dict[str, str]) -> float:
        started = time.perf_counter()
        async with self.session.post(url, data=body, headers=headers) as response:
            raw = await response.read()
        latency = time.perf_counter() - started
        if response.status != 200 or EXPECTED_TEXT.encode() not in raw:
            raise BenchFailure(f"POST {url}: {response.status} {raw[:200]!r}")
        return latency

    async def _post_sse(
        self, url: str, body: bytes, headers: dict[str, str], first: bytes, last: bytes
    ) -> tuple[float, float]:
        """POST, read the event stream to its end; TTFT is when `first` has arrived."""
        started = time.perf_counter()
        ttft = None
        buffer = b""
        async with self.session.post(url, data=body, headers=headers) as response:
            if response.status != 200:
                raise BenchFailure(f"POST {url}: {response.status} {await response.read()!r}")
            async for chunk in response.content.iter_any():
                buffer += chunk
                if ttft is None and first in buffer:
                    ttft = time.perf_counter() - started
        latency = time.perf_counter() - started
        if ttft is None or last not in buffer[-200:]:
            raise BenchFailure(f"POST {url}: incomplete event stream {buffer[-200:]!r}")
        return latency, ttft

    def fake_headers(self) -> dict[str, str]:
        return {
            "x-api-key": self.fake_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "Content-Type": "application/json",
        }

    def calls(self) -> dict[str, Any]:
        """Every measured chat call, by mode name (bodies serialised once, up front)."""
        rest_body = self.chat_body()
        rest_headers = self.rest_headers
        fake_headers = self.fake_headers()
        fake_url = f"{self.fake_base}/v1/messages"
        json_body = self.upstream_body(stream=False)
        sse_body = self.upstream_body(stream=True)
        complete_url = f"{self.rest_base}/api/v1/chat/complete"
        openai_url = f"{self.rest_base}/v1/chat/completions"
        openai_body = self.openai_body()
        openai_headers = {**rest_headers, "X-Chatplane-Project": self.project_id}
        stream_url = f"{self.rest_base}/api/v1/chat/stream"
        request = self.chat_request()
        metadata = self.metadata

        async def direct_json() -> tuple[float, None]:
            return await self.post_json(fake_url, json_body, fake_headers), None

        async def direct_sse() -> tuple[float, float]:
            return await self._post_sse(
                fake_url,
                sse_body,
                fake_headers,
                b"event: content_block_delta\n",
                b"event: message_stop\n",
            )

        async def rest_complete() -> tuple[float, None]:
            return await self.post_json(complete_url, rest_body, rest_headers), None

        async def openai_complete() -> tuple[float, None]:
            return await self.post_json(openai_url, openai_body, openai_headers), None

        async def rest_stream() -> tuple[float, float]:
            return await self._post_sse(
                stream_url, rest_body, rest_headers, b"event: text_delta\n", b"event: complete\n"
            )

        async def grpc_complete() -> tuple[float, None]:
            started = time.perf_counter()
            reply = await self.chat.CompleteChat(request, metadata=metadata, timeout=TIMEOUT)
            latency = time.perf_counter() - started
            if reply.content != EXPECTED_TEXT:
                raise BenchFailure(f"CompleteChat returned {reply}")
            return latency, None

        async def grpc_stream() -> tuple[float, float]:
            started = time.perf_counter()
            ttft = None
            kind = None
            async for event in self.chat.StreamChat(request, metadata=metadata, timeout=TIMEOUT):
                kind = event.WhichOneof("event")
                if ttft is None and kind == "text_delta":
                    ttft = time.perf_counter() - started
            latency = time.perf_counter() - started
            if ttft is None or kind != "complete":
                raise BenchFailure(f"StreamChat ended with {kind}")
            return latency, ttft

        return {
            "direct_json": direct_json,
            "direct_sse": direct_sse,
            "rest_complete": rest_complete,
            "openai_complete": openai_complete,
            "rest_stream": rest_stream,
            "grpc_complete": grpc_complete,
            "grpc_stream": grpc_stream,
        }
