"""Reasoning: tool-use loops, EXIT_WHEN, MAX_TURNS, agents without FLOW, llm errors."""

from __future__ import annotations

from chatplane.errors import DeadlineExceeded
from chatplane.runtime import TestContext, TextDelta, ToolMock
from tests.fakes.runtime_host import ScriptedHost, text, tool_call
from tests.unit.runtime.helpers import Chat, agent, types

NOFLOW = agent(
    """AGENT: Helper
GOAL: "Answer weather questions"
PERSONA: "Cheerful"
INSTRUCTIONS: "Use the tools"
LIMITATIONS:
  - "No medical advice"
TOOLS:
  weather(city: string) -> {temp: number}
    description: "Current weather"
    type: http
    endpoint: "https://example.com/w"
  forecast(city: string, days?: integer = 3) -> {summary: string}
    description: "Forecast"
    type: http
    endpoint: "https://example.com/f"
"""
)


async def test_agent_without_flow_runs_a_multi_round_tool_loop() -> None:
    host = ScriptedHost(
        [
            tool_call("weather", {"city": "Oslo"}, "c1"),
            tool_call("forecast", {"city": "Oslo"}, "c2"),
            text("It is 3 degrees and snowy."),
        ],
        tools={"forecast": {"summary": "snow"}},
    )
    chat = Chat(NOFLOW, host)
    mocks = (ToolMock("weather", {"temp": 3}),)
    out = await chat.say("Weather in Oslo?", TestContext(tool_mocks=mocks))
    assert out.reply == "It is 3 degrees and snowy."
    assert host.tool_calls == [("forecast", {"city": "Oslo", "days": 3})]
    req = host.model_requests[-1]
    assert "GOAL: Answer weather questions" in req.system and "PERSONA: Cheerful" in req.system
    assert "No medical advice" in req.system and req.purpose == "reasoning"
    assert [m["role"] for m in req.messages] == ["user", "assistant", "tool", "assistant", "tool"]
    assert req.messages[2]["tool_call_id"] == "c1"
    assert {t.name for t in req.tools} == {"weather", "forecast"}
    llm = [e for e in out.events if e.type == "llm_call"]
    assert len(llm) == 3
    assert set(llm[0].data) >= {
        "model",
        "provider",
        "inputTokens",
        "outputTokens",
        "estimatedCost",
        "latencyMs",
        "timeToFirstTokenMs",
        "finishReason",
    }
    tool_ev = next(e for e in out.events if e.type == "tool_call")
    assert tool_ev.parent_span_id == out.span_id
    assert chat.vars["weather"] == {"temp": 3}
    assert TextDelta("It is 3 degrees and snowy.") in host.stream
    assert any(getattr(i, "type", None) == "llm_call" for i in host.stream)
    # history carries over to the next turn
    await chat.say("thanks")
    assert [m["role"] for m in host.model_requests[-1].messages] == ["user", "assistant", "user"]


async def test_bad_tool_arguments_go_back_to_the_model() -> None:
    host = ScriptedHost([tool_call("weather", {"town": "x"}), text("Sorry, which city?")])
    out = await Chat(NOFLOW, host).say("weather?")
    assert out.reply == "Sorry, which city?"
    tool_msg = host.model_requests[-1].messages[-1]
    assert "unknown argument" in tool_msg["content"]


async def test_llm_error_uses_handler_or_apology() -> None:
    out = await Chat(NOFLOW, ScriptedHost([DeadlineExceeded("slow")])).say("hi")
    assert out.reply.startswith("Sorry") and "error" in types(out)


STEPPED = agent(
    """AGENT: Stepped
GOAL: "g"
TOOLS:
  classify(text: string) -> {intent: string}
    type: http
    endpoint: "https://example.com/c"
FLOW:
  steps: [think, route]
  think:
    REASONING: true
    GOAL: "Classify the request"
    AVAILABLE_TOOLS: [classify]
    EXIT_WHEN: classify.intent IS SET
    MAX_TURNS: 2
    THEN: route
  route:
    REASONING: false
    RESPOND: "intent={{classify.intent}}"
"""
)


async def test_exit_when_leaves_the_reasoning_step() -> None:
    host = ScriptedHost(
        [tool_call("classify", {"text": "refund"})], tools={"classify": {"intent": "refund"}}
    )
    out = await Chat(STEPPED, host).say("I want a refund")
    assert out.reply == "intent=refund"
    assert "GOAL: Classify the request" in host.model_requests[0].system


async def test_max_turns_forces_exit() -> None:
    host = ScriptedHost([text("What do you mean?"), text("Still unsure.")])
    chat = Chat(STEPPED, host)
    assert (await chat.say("hmm")).reply == "What do you mean?"
    assert (await chat.say("stuff")).reply == "Still unsure."
    out = await chat.say("more")  # MAX_TURNS 2 reached: forced exit to THEN
    assert out.reply == "intent="
    assert len(host.model_requests) == 2


async def test_model_call_limit_is_bounded() -> None:
    from chatplane.runtime import Limits

    host = ScriptedHost(
        [tool_call("weather", {"city": "A"}, f"c{i}") for i in range(50)], tools={"weather": {}}
    )
    out = await Chat(NOFLOW, host, limits=Limits(max_model_calls=3)).say("loop")
    assert len(host.model_requests) <= 10
    assert out.reply
