"""The agent runtime: runs the IR of `chatplane.lang` one user turn at a time.

Pure: no gRPC, HTTP or SQL. The caller supplies a `Host` (model, tools, stream) and stores the
`SessionState` the turn returns. See docs/abl.md, section "Runtime".
"""

from chatplane.runtime.driver import run_turn
from chatplane.runtime.host import Host
from chatplane.runtime.limits import Limits
from chatplane.runtime.state import STATE_VERSION, SessionState, StateError
from chatplane.runtime.types import (
    ModelRequest,
    ModelResult,
    StreamItem,
    TestContext,
    TextDelta,
    ToolCallRequest,
    ToolMock,
    ToolResult,
    ToolSchema,
    TraceEvent,
    TurnAction,
    TurnInput,
    TurnOutcome,
)

__all__ = [
    "STATE_VERSION",
    "Host",
    "Limits",
    "ModelRequest",
    "ModelResult",
    "SessionState",
    "StateError",
    "StreamItem",
    "TestContext",
    "TextDelta",
    "ToolCallRequest",
    "ToolMock",
    "ToolResult",
    "ToolSchema",
    "TraceEvent",
    "TurnAction",
    "TurnInput",
    "TurnOutcome",
    "run_turn",
]
