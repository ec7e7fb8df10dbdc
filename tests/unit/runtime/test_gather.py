"""GATHER: typed extraction, validation, retries, exhaustion, defaults, several fields."""

from __future__ import annotations

import json
from datetime import date

import pytest

from chatplane.lang import ir
from chatplane.runtime.extract import extract_typed, find
from tests.fakes.runtime_host import ScriptedHost, text, tool_call
from tests.unit.runtime.helpers import Chat, agent, kinds

TODAY = date(2026, 3, 10)


def fld(name: str, type: str = "string", **kw: object) -> ir.GatherField:
    return ir.GatherField(name, None, type, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("type_", "message", "value"),
    [
        ("email", "mail me at Bob.S@example.co.uk please", "Bob.S@example.co.uk"),
        ("phone", "call +1 555-123-4567", "+1 555-123-4567"),
        ("integer", "I want 3 tickets", 3),
        ("number", "about $1,250.50", 1250.5),
        ("boolean", "yes please", True),
        ("boolean", "nope", False),
        ("date", "on 2026-04-01", "2026-04-01"),
        ("date", "March 5, 2026 works", "2026-03-05"),
        ("date", "tomorrow", "2026-03-11"),
    ],
)
def test_typed_values(type_: str, message: str, value: object) -> None:
    found = find(fld("f", type_), message, TODAY)
    assert [f.value for f in found] == [value]


def test_enum_pattern_and_ambiguity() -> None:
    assert [
        f.value for f in find(fld("p", "enum", options=("basic", "pro")), "Pro plan", TODAY)
    ] == ["pro"]
    pat = ir.Validation("pattern", "pattern(^[A-Z]{2}\\d{6}$)", pattern="^[A-Z]{2}\\d{6}$")
    assert [f.value for f in find(fld("o", validate=pat), "order AB123456.", TODAY)] == ["AB123456"]
    assert find(fld("b", "boolean"), "yes no", TODAY) == []
    assert len(find(fld("n", "integer"), "2 or 3", TODAY)) == 2
    vals, amb = extract_typed([fld("a", "integer"), fld("e", "email")], "5 x@y.io", TODAY)
    assert vals == {"a": 5, "e": "x@y.io"} and amb == []
    vals, amb = extract_typed([fld("a", "integer"), fld("b", "number")], "5", TODAY)
    assert vals == {} and sorted(amb) == ["a", "b"]


FORM = agent(
    """AGENT: Form
GOAL: "collect"
FLOW:
  steps: [collect, done]
  collect:
    REASONING: false
    GATHER:
      - age: required
        type: integer
        prompt: "How old are you?"
        validate: min(18)
        retry_prompt: "You must be 18 or older. Your age?"
        max_retries: 1
      - email: required
        type: email
        prompt: "Email?"
      - newsletter: optional
        type: boolean
        default: false
    THEN: done
  done:
    REASONING: false
    RESPOND: "Thanks {{email}} ({{age}}, {{newsletter}})"
"""
)


async def test_several_fields_at_once_and_defaults() -> None:
    chat = Chat(FORM)
    out = await chat.say("I'm 30, a@b.io")
    assert out.reply == "Thanks a@b.io (30, false)"


async def test_validation_retry_and_exhaustion_asks_again() -> None:
    chat = Chat(FORM)
    assert (await chat.say("hi")).reply == "How old are you?"
    out = await chat.say("12")
    assert out.reply == "You must be 18 or older. Your age?"
    assert "retry" in kinds(out)
    out = await chat.say("15")  # max_retries 1 exceeded, no default, no handler
    assert out.reply == "Let's try that once more. How old are you?"
    assert any(e.data.get("errorType") == "validation_error" for e in out.events)
    out = await chat.say("40")
    assert out.reply == "Email?"
    assert (await chat.say("z@z.io")).reply == "Thanks z@z.io (40, false)"


async def test_exhaustion_uses_default_then_on_exhausted() -> None:
    p = agent(
        """AGENT: D
GOAL: "g"
FLOW:
  steps: [ask, next, fallback]
  ask:
    REASONING: false
    ON_EXHAUSTED: fallback
    GATHER:
      - size: required
        type: enum
        options: [small, large]
        max_retries: 0
    THEN: next
  next:
    REASONING: false
    RESPOND: "size={{size}}"
  fallback:
    REASONING: false
    RESPOND: "fallback"
"""
    )
    chat = Chat(p)
    assert (await chat.say("hm")).reply == "What is your size?"
    assert (await chat.say("medium")).reply == "fallback"


async def test_free_text_uses_model_then_falls_back_to_message() -> None:
    p = agent(
        """AGENT: F
GOAL: "g"
FLOW:
  steps: [ask, say]
  ask:
    REASONING: false
    GATHER:
      - name: required
        prompt: "Your name?"
    THEN: say
  say:
    REASONING: false
    RESPOND: "Hello {{name}}"
"""
    )
    host = ScriptedHost([tool_call("extract_fields", {"name": "Ann Lee"})])
    chat = Chat(p, host)
    assert (await chat.say("I am Ann Lee")).reply == "Hello Ann Lee"
    req = host.model_requests[0]
    assert req.purpose == "gather_extract" and req.tools[0].name == "extract_fields"
    assert json.loads(json.dumps(req.tools[0].parameters))["properties"]["name"]["type"] == "string"
    chat = Chat(p, ScriptedHost([text("I am Bob")]))  # an echo: no tool call
    assert (await chat.say("Bob")).reply == "Hello Bob"


async def test_top_level_gather_properties_apply_in_flow() -> None:
    p = agent(
        """AGENT: G
GOAL: "g"
GATHER:
  qty:
    prompt: "How many?"
    type: integer
    validate: max(5)
FLOW:
  steps: [a, b]
  a:
    REASONING: false
    GATHER:
      - qty: required
    THEN: b
  b:
    REASONING: false
    RESPOND: "qty={{qty}}"
"""
    )
    chat = Chat(p)
    assert (await chat.say("hello")).reply == "How many?"
    assert (await chat.say("9")).reply == "How many?"
    assert (await chat.say("4 please")).reply == "qty=4"
