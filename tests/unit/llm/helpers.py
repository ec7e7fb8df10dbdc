"""Shared helpers of the LLM unit tests: request params, a raw scripted upstream, SSE text.

Fixtures stay in the test modules (the suite runs with --noconftest).
"""

from __future__ import annotations

import asyncio
import json
import typing
from dataclasses import dataclass

from aiohttp import web

from chatplane.llm.anthropic import AnthropicProvider
from chatplane.llm.local import LocalProvider
from chatplane.llm.types import (
    CompletionParams,
    Finish,
    Message,
    ProviderEvent,
    TextDelta,
    TokenUsage,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    UsageUpdate,
)

MODEL = "claude-sonnet-4-6"
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def params(text: str = "Hello there", **kwargs: typing.Any) -> CompletionParams:
    return CompletionParams(
        model=kwargs.pop("model", MODEL), messages=(Message("user", text),), **kwargs
    )


async def events_of(
    provider: AnthropicProvider | LocalProvider, p: CompletionParams
) -> list[ProviderEvent]:
    return [e async for e in provider.stream(p)]


def sse(event: str, data: dict[str, typing.Any], eol: str = "\n") -> str:
    return f"event: {event}{eol}data: {json.dumps(data)}{eol}{eol}"


@dataclass
class RawReply:
    body: bytes
    status: int = 200
    content_type: str = "text/event-stream"
    piece: int = 0  # write the body in pieces of this size (0: at once)


class RawUpstream:
    """Answers /v1/messages with scripted raw bodies, to feed the provider exact bytes."""

    def __init__(self, *replies: RawReply) -> None:
        self.replies = list(replies)
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> RawUpstream:
        app = web.Application()
        app.router.add_post("/v1/messages", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        reply = self.replies[min(self.requests, len(self.replies) - 1)]
        self.requests += 1
        response = web.StreamResponse(
            status=reply.status, headers={"content-type": reply.content_type}
        )
        await response.prepare(request)
        size = reply.piece or len(reply.body)
        for i in range(0, len(reply.body), size):
            await response.write(reply.body[i : i + size])
            if reply.piece:
                await asyncio.sleep(0.001)  # separate reads on the client side
        await response.write_eof()
        return response


# A Messages stream with every kind of frame the provider must skip or map.
USAGE = {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": None}
FULL_STREAM = "".join(
    [
        sse("message_start", {"type": "message_start", "message": {"usage": USAGE}}),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}},
        ),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta"}},
        ),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta"}},
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ": keep-alive\n\n",
        sse("ping", {"type": "ping"}),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": {"type": "text"}},
        ),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta"}},
        ),
        *(
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "text_delta", "text": t},
                },
            )
            for t in ("Héllo", "", " wörld")
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
        sse("some_future_event", {"type": "some_future_event"}),
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "toolu_x", "name": "f", "input": {}},
            },
        ),
        *(
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 2,
                    "delta": {"type": "input_json_delta", "partial_json": p},
                },
            )
            for p in ("", '{"a": ', "1}")
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 2}),
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 9, "cache_creation_input_tokens": 4},
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]
)
FULL_EVENTS: list[ProviderEvent] = [
    UsageUpdate(TokenUsage(10, 1)),
    TextDelta("Héllo"),
    TextDelta(" wörld"),
    ToolCallStart("toolu_x", "f"),
    ToolCallDelta("toolu_x", '{"a": '),
    ToolCallDelta("toolu_x", "1}"),
    ToolCallEnd("toolu_x", "f", '{"a": 1}'),
    UsageUpdate(TokenUsage(10, 9, cache_write_tokens=4)),
    Finish("tool_use", TokenUsage(10, 9, cache_read_tokens=0, cache_write_tokens=4)),
]
