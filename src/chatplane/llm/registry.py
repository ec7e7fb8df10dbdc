"""Providers by name and credential: the local model, and one Anthropic client (with its
connection pool) per API key, built on first use and closed together."""

from __future__ import annotations

from chatplane.llm.anthropic import AnthropicProvider
from chatplane.llm.anthropic.provider import Transport
from chatplane.llm.local import LocalProvider
from chatplane.llm.types import Provider


class ProviderRegistry:
    def __init__(
        self,
        *,
        local: LocalProvider,
        anthropic_base_url: str | None = None,
        transport: Transport = "lean",
    ) -> None:
        self.local = local
        self._base_url = anthropic_base_url
        self._transport: Transport = transport  # AnthropicProvider's HTTP path
        self._anthropic: dict[str, AnthropicProvider] = {}

    def get(self, provider: str, credential: str | None) -> Provider:
        """The provider serving `provider` ("local" or "anthropic") with `credential`."""
        if provider == "local":
            return self.local
        if provider != "anthropic" or not credential:
            raise ValueError(f"no provider {provider!r} with the given credential")
        found = self._anthropic.get(credential)
        if found is None:
            found = AnthropicProvider(
                credential, base_url=self._base_url, transport=self._transport
            )
            self._anthropic[credential] = found
        return found

    async def aclose(self) -> None:
        providers: list[Provider] = [self.local, *self._anthropic.values()]
        for provider in providers:
            await provider.aclose()
        self._anthropic.clear()
