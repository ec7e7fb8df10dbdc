"""Fixtures of the LLM unit tests, loaded with `pytest_plugins` by the modules that use
them (the suite also runs with --noconftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from chatplane.llm.anthropic import AnthropicProvider
from tests.fakes.anthropic import FakeAnthropic


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


@pytest_asyncio.fixture(params=["lean", "sdk"])
async def provider(
    fake: FakeAnthropic, request: pytest.FixtureRequest
) -> AsyncIterator[AnthropicProvider]:
    """A provider on the fake server, with short retry delays; once per transport."""
    p = AnthropicProvider(
        fake.api_key, fake.base_url, retry_base_delay=0.01, transport=request.param
    )
    assert p.transport == request.param
    yield p
    await p.aclose()
