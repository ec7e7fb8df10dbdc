"""OpenAI-compatible Chat Completions through Envoy, with the official `openai` SDK as the
client: unary, streaming with usage, tool calls, stop, models, errors in OpenAI's shape."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from tests.conftest import TenantKeys
from tests.e2e.test_rest import create_project

LOCAL = "chatplane-local-echo"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
async def project(http: httpx.AsyncClient, tenant: TenantKeys) -> str:
    return await create_project(http, tenant)


@pytest.fixture
async def client(
    gateway: str, tenant: TenantKeys, project: str
) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{gateway}/v1",
        api_key=tenant.key,
        default_headers={"X-Chatplane-Project": project},
        max_retries=0,
        timeout=10,
    ) as sdk:
        yield sdk


async def test_unary_completion(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient, tenant: TenantKeys, project: str
) -> None:
    completion = await client.chat.completions.create(
        model=LOCAL,
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        max_completion_tokens=200,
        temperature=0.5,
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == LOCAL
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content is not None
    assert choice.message.content.startswith("You said: What is 2+2?")
    assert completion.usage is not None
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    # The same usage store as the native routes.
    report = await http.get(
        "/api/v1/chat/usage", params={"projectId": project}, headers=tenant.headers
    )
    assert report.json()["summary"]["requestCount"] == 1
    assert report.json()["summary"]["totalTokens"] == usage.total_tokens


async def test_tiers_max_tokens_and_stop(client: openai.AsyncOpenAI) -> None:
    # A tier name resolves like the native `tier` (no credentials: the local model).
    short = await client.chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "one two three four"}], max_tokens=2
    )
    assert short.model == LOCAL
    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None and short.usage.completion_tokens == 2
    stopped = await client.chat.completions.create(
        model=LOCAL, messages=[{"role": "user", "content": "alpha beta gamma"}], stop=[" beta"]
    )
    assert stopped.choices[0].message.content == "You said: alpha"
    assert stopped.choices[0].finish_reason == "stop"


async def test_streaming_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "Hello there"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("You said: Hello there")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_wire_bytes(http: httpx.AsyncClient, tenant: TenantKeys, project: str) -> None:
    async with http.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": LOCAL, "messages": [{"role": "user", "content": "hi"}], "stream": True},
        headers={**tenant.headers, "X-Chatplane-Project": project},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    frames = raw.split(b"\n\n")
    assert frames[-1] == b"" and frames[-2] == b"data: [DONE]"
    for frame in frames[:-2]:
        assert frame.startswith(b"data: {")
        assert "usage" not in json.loads(frame[6:])  # include_usage not asked for


async def test_tool_calls_round_trip(client: openai.AsyncOpenAI) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "use get_weather please"}]
    first = await client.chat.completions.create(
        model=LOCAL,
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {}
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = await client.chat.completions.create(
        model=LOCAL,
        messages=messages,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert second.choices[0].message.content is not None
    assert second.choices[0].message.content.startswith("The tool returned: sunny")

    # Streamed: the call arrives as tool_calls deltas (index, id, name, then arguments).
    stream = await client.chat.completions.create(
        model=LOCAL,
        messages=[{"role": "user", "content": "get_weather now"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        stream=True,
    )
    deltas = [c.choices[0] async for c in stream if c.choices]
    calls = [tc for d in deltas for tc in (d.delta.tool_calls or [])]
    assert calls[0].index == 0 and calls[0].id and calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    arguments = "".join((tc.function.arguments or "") for tc in calls if tc.function)
    assert arguments == "{}"
    assert deltas[-1].finish_reason == "tool_calls"


async def test_models(client: openai.AsyncOpenAI) -> None:
    models = [m async for m in client.models.list()]
    ids = {m.id for m in models}
    assert {LOCAL, "fast", "balanced", "powerful", "claude-sonnet-4-6"} <= ids
    assert all(m.object == "model" for m in models)
    model = await client.models.retrieve(LOCAL)
    assert model.id == LOCAL and model.owned_by == "chatplane"
    with pytest.raises(openai.NotFoundError) as missing:
        await client.models.retrieve("gpt-nothing")
    assert missing.value.code == "model_not_found"


async def test_errors_in_openai_shape(
    client: openai.AsyncOpenAI, gateway: str, tenant: TenantKeys, http: httpx.AsyncClient
) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model=LOCAL, messages=[])
    assert bad.value.status_code == 400
    assert bad.value.body == {
        "message": "Invalid request: messages must be a non-empty array",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "invalid_argument",
    }
    with pytest.raises(openai.BadRequestError) as too_hot:
        await client.chat.completions.create(
            model=LOCAL, messages=[{"role": "user", "content": "x"}], temperature=2.5
        )
    assert too_hot.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as tokens:
        await client.chat.completions.create(
            model=LOCAL, messages=[{"role": "user", "content": "x"}], max_tokens=0
        )
    assert tokens.value.param == "max_tokens"

    async with openai.AsyncOpenAI(
        base_url=f"{gateway}/v1", api_key="abl_sk-wrong", max_retries=0
    ) as stranger:
        with pytest.raises(openai.AuthenticationError) as denied:
            await stranger.models.list()
    assert denied.value.status_code == 401
    assert isinstance(denied.value.body, dict)
    assert denied.value.body["type"] == "authentication_error"

    # No project header: 400 naming the header.
    async with openai.AsyncOpenAI(
        base_url=f"{gateway}/v1", api_key=tenant.key, max_retries=0
    ) as no_project:
        with pytest.raises(openai.BadRequestError) as missing:
            await no_project.chat.completions.create(
                model=LOCAL, messages=[{"role": "user", "content": "x"}]
            )
    assert missing.value.param == "X-Chatplane-Project"

    # The SDK's own `project` option (OpenAI-Project header) works too; a Claude model
    # without credentials is 503 server_error (the SDK's InternalServerError).
    project = await create_project(http, tenant)
    async with openai.AsyncOpenAI(
        base_url=f"{gateway}/v1", api_key=tenant.key, project=project, max_retries=0
    ) as by_option:
        ok = await by_option.chat.completions.create(
            model=LOCAL, messages=[{"role": "user", "content": "x"}]
        )
        assert ok.choices[0].message.content
        with pytest.raises(openai.InternalServerError) as unconfigured:
            await by_option.chat.completions.create(
                model="claude-sonnet-4-6", messages=[{"role": "user", "content": "x"}]
            )
    assert unconfigured.value.status_code == 503
    assert unconfigured.value.code == "runtime_not_configured"

    # Unknown routes under /v1/ are 404 in the same envelope.
    unknown = await http.get("/v1/embeddings", headers=tenant.headers)
    assert unknown.status_code == 404
    assert set(unknown.json()["error"]) == {"message", "type", "param", "code"}
