# ruff: noqa: E501
"""Deterministic FLOW constructs: RESPOND, SET, CHECK, CLEAR, THEN, WHEN, MAX_ATTEMPTS, CALL."""

from __future__ import annotations

from chatplane.errors import Unavailable
from chatplane.runtime import TestContext, ToolMock, ToolResult
from tests.fakes.runtime_host import ScriptedHost
from tests.unit.runtime.helpers import Chat, agent, kinds, types

COUNTER = agent(
    """AGENT: Counter
GOAL: "count"
MEMORY:
  session:
    - n
      TYPE: number
      INITIAL: 0
FLOW:
  entry_point: start
  steps:
    - start
    - big
    - small
  start:
    REASONING: false
    SET:
      n = ADD(n, 1)
      label = "n{{n}}"
    RESPOND: "Count {{n}} ({{label}}){{#if vip}} VIP{{/if}} meta={{session.messageMetadata.channel}}"
    CHECK: n < 3
    ON_FAIL: big
    THEN: small
  big:
    REASONING: false
    WHEN: n >= 3
    CLEAR: [label]
    RESPOND: "Big"
  small:
    REASONING: false
    RESPOND: "Small"
"""
)


async def test_respond_set_check_then_and_metadata_one_turn_only() -> None:
    chat = Chat(COUNTER)
    out = await chat.say("go", TestContext(session_variables={"vip": True}), {"channel": "web"})
    assert out.reply == "Count 1 (n1) VIP meta=web\n\nSmall"
    assert chat.vars["label"] == "n1" and "messageMetadata" not in str(chat.vars)
    assert {"dsl_set", "dsl_respond", "state_change"} <= set(types(out))
    assert chat.state is not None and chat.state.flow_done


async def test_check_on_fail_clear_and_when() -> None:
    chat = Chat(COUNTER)
    out = await chat.say("go", TestContext(session_variables={"n": 2}))
    assert out.reply == "Count 3 (n3) meta=\n\nBig"
    assert "label" not in chat.vars
    assert "check" in kinds(out)


async def test_when_false_skips_step() -> None:
    p = agent(
        """AGENT: W
GOAL: "g"
FLOW:
  steps: [a, b, c]
  a:
    REASONING: false
    THEN: b
  b:
    REASONING: false
    WHEN: flag == true
    RESPOND: "B"
    THEN: c
  c:
    REASONING: false
    RESPOND: "C"
"""
    )
    out = await Chat(p).say("x")
    assert out.reply == "C"
    out = await Chat(p).say("x", TestContext(session_variables={"flag": True}))
    assert out.reply == "B\n\nC"


LOOP = agent(
    """AGENT: Loop
GOAL: "g"
FLOW:
  steps: [ask, check, locked]
  ask:
    REASONING: false
    MAX_ATTEMPTS: 2
    ON_EXHAUSTED: locked
    GATHER:
      - pin: required
        prompt: "PIN?"
        validate: pattern(^\\d{4}$)
    THEN: check
  check:
    REASONING: false
    CHECK: pin == "1234"
    ON_FAIL:
      RESPOND: "Wrong PIN."
      COLLECT: [pin]
      GOTO: ask
    RESPOND: "OK"
  locked:
    REASONING: false
    RESPOND: "Locked."
"""
)


async def test_max_attempts_counts_entries_then_on_exhausted() -> None:
    chat = Chat(LOOP)
    assert (await chat.say("hello")).reply == "PIN?"
    assert (await chat.say("0000")).reply == "Wrong PIN.\n\nPIN?"
    out = await chat.say("1111")
    assert out.reply == "Wrong PIN.\n\nLocked."
    assert "retry" in kinds(out)
    assert chat.state is not None and chat.state.flow_done


async def test_start_at_step_and_gather_values() -> None:
    chat = Chat(LOOP)
    out = await chat.say("x", TestContext(gather_values={"pin": "1234"}, start_at_step="check"))
    assert out.reply == "OK"


TOOLS = agent(
    """AGENT: T
GOAL: "g"
TOOLS:
  lookup(id: string, count?: integer = 1) -> {name: string}
    description: "Look up"
    type: http
    endpoint: "https://example.com/x"
FLOW:
  steps: [one, two, failed]
  one:
    REASONING: false
    CALL: lookup
      WITH:
        id: ref
        count: "3"
      AS: res
    ON_SUCCESS:
      RESPOND: "Found {{res.name}}"
      THEN: two
    ON_FAIL:
      RESPOND: "Failed: {{res.error}}"
      THEN: failed
  two:
    REASONING: false
    RESPOND: "two"
  failed:
    REASONING: false
    RESPOND: "failed step"
"""
)


async def test_call_with_real_host_coerces_args() -> None:
    host = ScriptedHost(tools={"lookup": lambda a: {"name": f"N-{a['id']}-{a['count']}"}})
    out = await Chat(TOOLS, host).say("x", TestContext(session_variables={"ref": "r1"}))
    assert out.reply == "Found N-r1-3\n\ntwo"
    assert host.tool_calls == [("lookup", {"id": "r1", "count": 3})]
    res = next(e for e in out.events if e.type == "tool_result")
    assert res.data["toolName"] == "lookup" and res.data["success"] is True
    assert "latencyMs" in res.data
    call = next(e for e in out.events if e.type == "tool_call")
    assert res.parent_span_id == call.span_id


async def test_call_mock_error_goes_to_on_fail() -> None:
    host = ScriptedHost()
    mocks = (ToolMock("lookup", None, "boom"),)
    out = await Chat(TOOLS, host).say(
        "x", TestContext(session_variables={"ref": "r"}, tool_mocks=mocks)
    )
    assert out.reply == "Failed: boom\n\nfailed step"
    assert host.tool_calls == []
    assert out.error_count == 1


async def test_call_missing_argument_is_a_tool_error() -> None:
    out = await Chat(TOOLS, ScriptedHost(tools={"lookup": {}})).say("x")  # ref unset
    assert out.reply.startswith("Failed: missing required argument 'id'")


ON_ERR = agent(
    """AGENT: E
GOAL: "g"
TOOLS:
  ping() -> {ok: boolean}
    type: http
    endpoint: "https://example.com/p"
FLOW:
  steps: [a, b]
  a:
    REASONING: false
    CALL: ping
      AS: p
    RESPOND: "after"
    THEN: b
    ON_ERROR:
      tool_error:
        SUBTYPE: tool_timeout
        RESPOND: "Slow service."
        THEN: CONTINUE
  b:
    REASONING: false
    RESPOND: "b"
ON_ERROR:
  tool_error:
    RESPOND: "Service down."
    THEN: COMPLETE
"""
)


async def test_on_error_step_subtype_and_agent_level() -> None:
    slow = ScriptedHost(tools={"ping": ToolResult(False, None, "timed out", "timeout", 5000)})
    out = await Chat(ON_ERR, slow).say("x")
    assert out.reply == "Slow service.\n\nafter\n\nb"
    down = ScriptedHost(tools={"ping": ConnectionError("refused")})
    out = await Chat(ON_ERR, down).say("x")
    assert out.reply == "Service down."
    assert out.action.type == "complete"
    assert "error" in types(out)


async def test_no_handler_apologises_and_never_raises() -> None:
    p = agent(
        'AGENT: N\nGOAL: "g"\nTOOLS:\n  ping() -> {ok: boolean}\n    type: http\n    endpoint: "https://e.com"\nFLOW:\n  steps: [a]\n  a:\n    REASONING: false\n    CALL: ping\n    RESPOND: "x"\n'
    )
    out = await Chat(p, ScriptedHost()).say("x")
    assert out.reply.startswith("Sorry")
    assert out.action.type == "continue"


async def test_on_start_branches_and_skip_on_start() -> None:
    p = agent(
        """AGENT: S
GOAL: "g"
ON_START:
  SET:
    greeted = true
  BRANCHES:
    - IF: returning == true
      RESPOND: "Welcome back!"
    - ELSE:
      RESPOND: "Welcome!"
FLOW:
  steps: [a]
  a:
    REASONING: false
    RESPOND: "Step a"
"""
    )
    out = await Chat(p).say("x", TestContext(session_variables={"returning": True}))
    assert out.reply == "Welcome back!\n\nStep a"  # a does not need input: the flow runs
    out = await Chat(p).say("x")
    assert out.reply == "Welcome!\n\nStep a"
    chat = Chat(p)
    out = await chat.say("x", TestContext(skip_on_start=True))
    assert out.reply == "Step a" and "greeted" not in chat.vars


async def test_max_steps_limit_stops_an_endless_loop() -> None:
    p = agent(
        'AGENT: L\nGOAL: "g"\nFLOW:\n  steps: [a, b]\n  a:\n    REASONING: false\n    THEN: b\n  b:\n    REASONING: false\n    THEN: a\n'
    )
    out = await Chat(p).say("x")
    assert out.reply.startswith("Sorry") and out.error_count == 1
    assert any(e.data.get("errorType") == "limit_exceeded" for e in out.events)


async def test_ended_session_and_unavailable_model() -> None:
    chat = Chat(
        agent('AGENT: R\nGOAL: "help"\n'), ScriptedHost([Unavailable("Runtime not configured")])
    )
    try:
        await chat.say("hi")
    except Unavailable as exc:
        assert exc.message == "Runtime not configured"
    else:
        raise AssertionError("expected Unavailable")
