"""The completion request's limits; errors name the offending field (wire names)."""

from __future__ import annotations

import re

from chatplane.chat.types import ChatRequest
from chatplane.errors import InvalidArgument
from chatplane.llm.messages import validate_messages
from chatplane.llm.models import TIERS

MAX_TOKENS_LIMIT = 200_000
DEFAULT_MAX_TOKENS = 4096
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _bad(message: str, field: str) -> InvalidArgument:
    return InvalidArgument(f"Invalid request: {message}", field=field)


def validate(request: ChatRequest) -> None:
    if not request.project_id:
        raise _bad("projectId is required", "projectId")
    validate_messages(request.messages)
    if request.temperature is not None and not 0 <= request.temperature <= 2:
        raise _bad("temperature must be between 0 and 2", "temperature")
    if request.max_tokens is not None and not 1 <= request.max_tokens <= MAX_TOKENS_LIMIT:
        raise _bad("maxTokens must be between 1 and 200000", "maxTokens")
    if request.tier and request.tier not in TIERS:
        raise _bad("tier must be one of fast, balanced, powerful", "tier")
    for i, tool in enumerate(request.tools):
        if not _TOOL_NAME.match(tool.name):
            raise _bad(f"tools[{i}].name must be 1-64 letters, digits, _ or -", f"tools[{i}].name")
        if not tool.description:
            raise _bad(f"tools[{i}].description is required", f"tools[{i}].description")
        if not tool.parameters:
            raise _bad(
                f"tools[{i}].parameters (a JSON Schema) is required", f"tools[{i}].parameters"
            )
