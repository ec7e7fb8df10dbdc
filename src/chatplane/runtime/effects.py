"""Effects: what the pure interpreter asks the driver to do (CallModel, CallTool) and what it
reports as it happens (Reply, Handoff, Escalate, Complete)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from chatplane.lang import ir
from chatplane.runtime.types import ModelRequest

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CallModel:
    """Answered with a ModelResult, or a ModelFailure when the host raised."""

    request: ModelRequest


@dataclass(frozen=True, slots=True)
class CallTool:
    """Answered with a ToolResult (mocks are applied by the driver)."""

    tool: ir.Tool
    args: dict[str, Any]
    span_id: str


@dataclass(frozen=True, slots=True)
class ModelFailure:
    error: BaseException


@dataclass(frozen=True, slots=True)
class Reply:
    text: str


@dataclass(frozen=True, slots=True)
class Handoff:
    from_agent: str
    to_agent: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Escalate:
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Complete:
    data: dict[str, Any] = field(default_factory=dict)


Effect = CallModel | CallTool
Notice = Reply | Handoff | Escalate | Complete
# An interpreter routine: yields effects, receives their results, returns T.
Gen = Generator[Effect, Any, T]
