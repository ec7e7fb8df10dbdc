"""Reasoning: the LLM tool-use loop of REASONING steps and of agents without FLOW."""

from __future__ import annotations

import json
from typing import Any

from chatplane.errors import ChatplaneError, ErrorKind
from chatplane.lang import ir
from chatplane.runtime import handlers
from chatplane.runtime.context import Turn
from chatplane.runtime.effects import CallModel, Gen, ModelFailure
from chatplane.runtime.handlers import GOTO, NEXT, STOP, WAIT
from chatplane.runtime.tools import invoke, schema
from chatplane.runtime.types import ModelRequest, ModelResult, ToolSchema

AGENT_LOOP = "__agent__"  # the reasoning loop of an agent without FLOW (or after its flow)
EXIT = "exit"
MAX_VARS_IN_PROMPT = 4000
# Host errors that mean "no model can serve this turn": they leave run_turn (503/429...).
FATAL_KINDS = frozenset(
    {
        ErrorKind.UNAVAILABLE,
        ErrorKind.FAILED_PRECONDITION,
        ErrorKind.RESOURCE_EXHAUSTED,
        ErrorKind.PERMISSION_DENIED,
        ErrorKind.UNAUTHENTICATED,
    }
)


def system_prompt(t: Turn, goal: str | None) -> str:
    p = t.program
    parts = [f"You are {p.name}.", f"GOAL: {goal or p.goal}"]
    if p.persona:
        parts.append(f"PERSONA: {p.persona}")
    if p.instructions:
        parts.append(f"INSTRUCTIONS: {p.instructions}")
    if p.limitations:
        parts.append("LIMITATIONS:\n" + "\n".join(f"- {x}" for x in p.limitations))
    known = json.dumps(t.state.vars, default=str)[:MAX_VARS_IN_PROMPT]
    parts.append(f"Known session variables (JSON): {known}")
    return "\n\n".join(parts)


def call_model(
    t: Turn,
    system: str,
    messages: list[dict[str, Any]],
    tools: tuple[ToolSchema, ...],
    purpose: str,
) -> Gen[ModelResult | BaseException]:
    """One model call with its llm_call event. Host errors of a FATAL kind propagate."""
    span = t.new_id()
    started = t.now_ms()
    t.model_calls += 1
    req = ModelRequest(system, tuple(messages), tools, purpose, span)
    got = yield CallModel(req)
    if isinstance(got, ModelFailure):
        err = got.error
        if isinstance(err, ChatplaneError) and err.kind in FATAL_KINDS and purpose == "reasoning":
            raise err
        t.error("llm_error", f"{type(err).__name__}: {err}", purpose=purpose)
        return err
    if not isinstance(got, ModelResult):
        t.error("llm_error", "the host returned no model result", purpose=purpose)
        return RuntimeError("no model result")
    t.event(
        "llm_call",
        {
            "purpose": purpose,
            "model": got.model,
            "provider": got.provider,
            "inputTokens": got.input_tokens,
            "outputTokens": got.output_tokens,
            "estimatedCost": got.estimated_cost,
            "latencyMs": got.latency_ms,
            "timeToFirstTokenMs": got.ttft_ms,
            "finishReason": got.finish_reason,
            "toolCalls": [c.name for c in got.tool_calls],
        },
        span=span,
        started=started,
    )
    return got


def loop(t: Turn, step: ir.Step | None) -> Gen[str]:
    """Returns WAIT (answered, waits for the user), EXIT (EXIT_WHEN / MAX_TURNS), GOTO, STOP."""
    st = t.state
    key = step.name if step is not None else AGENT_LOOP
    allowed = step.available_tools if step is not None else None
    tools = tuple(
        schema(x) for x in t.program.tools if (allowed is None or x.name in allowed) and x.supported
    )
    messages: list[dict[str, Any]] = [
        {"role": m["role"], "content": m["content"]} for m in st.history
    ]
    t.consumed = True
    st.waiting = None
    per_turn = 0
    max_turns = step.max_turns if step is not None else 10
    while True:
        if step is not None and t.cond(step.exit_when):
            t.decision(
                "routing",
                {
                    "step": key,
                    "reason": "EXIT_WHEN",
                    "condition": step.exit_when.text if step.exit_when else None,
                },
            )
            return EXIT
        used = st.reasoning_turns.get(key, 0) if step is not None else per_turn
        if used >= max_turns:
            t.decision("routing", {"step": key, "reason": "MAX_TURNS", "maxTurns": max_turns})
            return EXIT if step is not None else WAIT
        if t.model_calls >= t.limits.max_model_calls or not t.tick():
            t.error("limit_exceeded", f"more than {t.limits.max_model_calls} model calls in a turn")
            return handlers.apply_handler(t, step, None, "limit_exceeded")
        res = yield from call_model(
            t, system_prompt(t, step.goal if step else None), messages, tools, "reasoning"
        )
        if not isinstance(res, ModelResult):
            h = handlers.find_handler(t, step, "llm_error", None)
            r = handlers.apply_handler(t, step, h, "llm_error")
            return EXIT if r == NEXT and step is not None else (WAIT if r == NEXT else r)
        per_turn += 1
        if step is not None:
            st.reasoning_turns[key] = st.reasoning_turns.get(key, 0) + 1
        if not res.tool_calls:
            t.say(res.text)
            if step is not None and t.cond(step.exit_when):
                return EXIT
            st.waiting = {"kind": "reasoning", "step": key}
            return WAIT
        messages.append(
            {
                "role": "assistant",
                "content": res.text,
                "tool_calls": [
                    {"id": c.id, "name": c.name, "arguments": c.arguments} for c in res.tool_calls
                ],
            }
        )
        for c in res.tool_calls:
            content = yield from _tool(t, c.name, c.arguments, tools)
            messages.append({"role": "tool", "tool_call_id": c.id, "content": content})
            if t.stopped:
                return STOP
        if t.switched:
            return GOTO


def _tool(t: Turn, name: str, arguments: str, tools: tuple[ToolSchema, ...]) -> Gen[str]:
    try:
        args = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        args = None
    if not isinstance(args, dict):
        t.error("tool_error", f"arguments of {name} are not a JSON object", toolName=name)
        return json.dumps({"error": "arguments must be a JSON object"})
    if name not in {s.name for s in tools}:
        t.error("tool_error", f"tool {name!r} is not available here", toolName=name)
        return json.dumps({"error": f"tool {name} is not available"})
    res = yield from invoke(t, name, args)
    if res.ok:
        t.set_var(name, res.value)  # reasoning results land in the session under the tool's name
        return json.dumps(res.value, default=str)
    return json.dumps({"error": res.error, "errorType": res.error_type})


__all__ = ["AGENT_LOOP", "EXIT", "GOTO", "NEXT", "STOP", "WAIT", "call_model", "loop"]
