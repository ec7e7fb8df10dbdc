"""Classification of upstream failures: domain error, reason, retryable, retry-after."""

from __future__ import annotations

import socket

import anthropic
import httpx2
import pytest

from chatplane.errors import (
    ChatplaneError,
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from chatplane.llm.anthropic import AnthropicProvider
from chatplane.llm.anthropic.errors import (
    BadResponse,
    IncompleteStream,
    classify,
    describe,
    retry_after_seconds,
)
from chatplane.llm.types import ProviderEvent, TokenUsage, UsageUpdate
from tests.fakes.anthropic import FakeAnthropic
from tests.unit.llm.helpers import USAGE, RawReply, RawUpstream, events_of, params, sse

pytest_plugins = ["tests.unit.llm.fixtures"]

REQUEST = httpx2.Request("POST", "http://upstream/v1/messages")


def status_error(
    status: int, kind: str = "", headers: dict[str, str] | None = None
) -> anthropic.APIStatusError:
    body = {"type": "error", "error": {"type": kind, "message": "nope"}} if kind else None
    response = httpx2.Response(status, headers=headers, request=REQUEST)
    return anthropic.APIStatusError("Error", response=response, body=body)


# --- classify, directly ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "error", "reason", "retryable"),
    [
        (IncompleteStream(), Unavailable, "UPSTREAM_UNAVAILABLE", True),
        (BadResponse("x"), Unavailable, "UPSTREAM_ERROR", False),
        (anthropic.APITimeoutError(REQUEST), DeadlineExceeded, "UPSTREAM_TIMEOUT", True),
        (httpx2.ReadTimeout("slow"), DeadlineExceeded, "UPSTREAM_TIMEOUT", True),
        (anthropic.APIConnectionError(request=REQUEST), Unavailable, "UPSTREAM_UNAVAILABLE", True),
        (httpx2.RemoteProtocolError("cut"), Unavailable, "UPSTREAM_UNAVAILABLE", True),
        (status_error(429), ResourceExhausted, "UPSTREAM_RATE_LIMITED", True),
        (status_error(401), Unavailable, "UPSTREAM_AUTH", False),
        (status_error(403), Unavailable, "UPSTREAM_AUTH", False),
        (status_error(402), Unavailable, "UPSTREAM_BILLING", False),
        (status_error(408), DeadlineExceeded, "UPSTREAM_TIMEOUT", True),
        (status_error(504), DeadlineExceeded, "UPSTREAM_TIMEOUT", True),
        (status_error(500), Unavailable, "UPSTREAM_UNAVAILABLE", True),
        (status_error(529), Unavailable, "UPSTREAM_UNAVAILABLE", True),
        (status_error(400), InvalidArgument, "UPSTREAM_INVALID_REQUEST", False),
        (status_error(404), InvalidArgument, "UPSTREAM_INVALID_REQUEST", False),
        # In-stream errors: status 200, the kind only in the body.
        (status_error(200, "overloaded_error"), Unavailable, "UPSTREAM_UNAVAILABLE", True),
        (status_error(200, "rate_limit_error"), ResourceExhausted, "UPSTREAM_RATE_LIMITED", True),
        (status_error(200, "billing_error"), Unavailable, "UPSTREAM_BILLING", False),
        (
            status_error(200, "invalid_request_error"),
            InvalidArgument,
            "UPSTREAM_INVALID_REQUEST",
            False,
        ),
        (status_error(200), Unavailable, "UPSTREAM_ERROR", False),
    ],
)
def test_classify(
    exc: BaseException, error: type[ChatplaneError], reason: str, retryable: bool
) -> None:
    failure = classify(exc)
    assert type(failure.error) is error
    assert (failure.error.reason, failure.retryable) == (reason, retryable)


def test_rate_limit_carries_retry_after() -> None:
    failure = classify(status_error(429, headers={"retry-after": "2.5"}))
    assert failure.retry_after == 2.5
    assert failure.error.metadata == {"retry_after_seconds": "2.5"}
    assert classify(status_error(429)).error.metadata == {}


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),
        ({"retry-after": "-1"}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_seconds(headers) == seconds


def test_describe_is_one_short_line() -> None:
    assert describe(IncompleteStream()) == "IncompleteStream"
    assert describe(BadResponse("a\n  b")) == "BadResponse: a b"
    assert describe(status_error(529, "overloaded_error")) == "APIStatusError: 529 nope"
    long = describe(BadResponse("x" * 500))
    assert len(long) == len("BadResponse: ") + 160 and long.endswith("...")


# --- through the provider -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (429, ResourceExhausted, "UPSTREAM_RATE_LIMITED"),
        (529, Unavailable, "UPSTREAM_UNAVAILABLE"),
        (500, Unavailable, "UPSTREAM_UNAVAILABLE"),
        (400, InvalidArgument, "UPSTREAM_INVALID_REQUEST"),
        (401, Unavailable, "UPSTREAM_AUTH"),
        (403, Unavailable, "UPSTREAM_AUTH"),
        (404, InvalidArgument, "UPSTREAM_INVALID_REQUEST"),
    ],
)
@pytest.mark.parametrize("call", ["stream", "complete"])
async def test_error_mapping(
    fake: FakeAnthropic, status: int, error: type[ChatplaneError], reason: str, call: str
) -> None:
    fake.fail_next(status, message="model: claude-nope not found" if status == 404 else None)
    p = AnthropicProvider(fake.api_key, fake.base_url, max_retries=0)
    try:
        with pytest.raises(error) as info:
            if call == "stream":
                await events_of(p, params())
            else:
                await p.complete(params())
    finally:
        await p.aclose()
    assert info.value.reason == reason
    assert fake.request_count == 1
    if status == 404:
        assert "claude-nope not found" in info.value.message


async def test_wrong_api_key_is_an_auth_error(fake: FakeAnthropic) -> None:
    p = AnthropicProvider("sk-ant-wrong", fake.base_url)
    try:
        with pytest.raises(Unavailable) as info:
            await p.complete(params())
    finally:
        await p.aclose()
    assert info.value.reason == "UPSTREAM_AUTH"
    assert "sk-ant-wrong" not in info.value.message
    assert fake.request_count == 1  # credentials errors are not retried


async def test_unreachable_upstream_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    p = AnthropicProvider(
        "sk-ant-x", f"http://127.0.0.1:{port}", max_retries=1, retry_base_delay=0.01
    )
    try:
        with pytest.raises(Unavailable):
            await events_of(p, params())
    finally:
        await p.aclose()


async def test_read_timeout_is_deadline_exceeded(fake: FakeAnthropic) -> None:
    fake.chunk_delay = 1.0
    p = AnthropicProvider(fake.api_key, fake.base_url, max_retries=0, timeout=0.3)
    try:
        with pytest.raises(DeadlineExceeded):
            await events_of(p, params())
    finally:
        await p.aclose()


@pytest.mark.parametrize(
    ("kind", "error", "reason"),
    [
        ("overloaded_error", Unavailable, "UPSTREAM_UNAVAILABLE"),
        ("rate_limit_error", ResourceExhausted, "UPSTREAM_RATE_LIMITED"),
        ("timeout_error", DeadlineExceeded, "UPSTREAM_TIMEOUT"),
        ("invalid_request_error", InvalidArgument, "UPSTREAM_INVALID_REQUEST"),
    ],
)
async def test_in_stream_error_kinds(kind: str, error: type[ChatplaneError], reason: str) -> None:
    start = sse("message_start", {"type": "message_start", "message": {"usage": USAGE}})
    failure = sse("error", {"type": "error", "error": {"type": kind, "message": "nope"}})
    async with RawUpstream(RawReply((start + failure).encode())) as upstream:
        p = AnthropicProvider("sk-ant-x", upstream.base_url, retry_base_delay=0.01)
        received: list[ProviderEvent] = []
        try:
            with pytest.raises(error) as info:
                async for event in p.stream(params()):
                    received.append(event)
        finally:
            await p.aclose()
    assert info.value.reason == reason
    assert received == [UsageUpdate(TokenUsage(10, 1))]
    assert upstream.requests == 1  # an event was delivered: no retry
    if kind == "invalid_request_error":
        assert "nope" in info.value.message
