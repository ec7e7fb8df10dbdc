"""The Anthropic Messages API provider: request building, response mapping, error
classification and the provider itself. Importing this package imports the SDK."""

from chatplane.llm.anthropic.provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
