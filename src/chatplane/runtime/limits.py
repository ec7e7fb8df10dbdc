"""Bounds on the work of one turn."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_model_calls: int = 25  # per turn, every purpose
    max_steps: int = 200  # per turn: step entries plus actions executed
    max_tool_calls: int = 25  # per turn, flow CALLs and model tool calls (mocked ones too)
    max_reply_chars: int = 100_000
    history_messages: int = 40  # conversation messages kept in the session state
    max_handoffs: int = 5  # per turn (guards A -> B -> A loops)
    gather_model: bool = True  # ask the model for free-text / ambiguous GATHER extraction
