# ruff: noqa: E501
"""SessionState JSON round trip, public view, and random conversations (Hypothesis)."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatplane.runtime import SessionState, StateError, TestContext, ToolMock, ToolResult
from tests.fakes.runtime_host import ScriptedHost, text, tool_call
from tests.unit.runtime.helpers import EXAMPLES, Chat, agent
from tests.unit.runtime.test_examples import BILLING

RESET = agent((EXAMPLES / "password-reset.abl").read_text())
SUPPORT = agent((EXAMPLES / "support.abl").read_text())
YAML = agent((EXAMPLES / "support.agent.yaml").read_text())


def test_round_trip_and_version() -> None:
    s = SessionState.new("A")
    s.vars = {"x": [1, {"y": None}]}
    s.step, s.pc, s.waiting = "ask", 2, {"kind": "gather", "fields": ["a"]}
    s.history = [{"role": "user", "content": "hi"}]
    data = json.loads(json.dumps(s.to_json()))
    assert SessionState.from_json(data) == s
    assert s.public()["waitingFor"] == {"kind": "gather", "fields": ["a"]}
    assert s.public()["variables"] == {"x": [1, {"y": None}]}
    with pytest.raises(StateError):
        SessionState.from_json({**data, "version": 99})
    with pytest.raises(StateError):
        SessionState.from_json({**data, "status": "weird"})


async def test_history_is_bounded_and_metadata_alias() -> None:
    from chatplane.runtime import Limits

    p = agent(
        'AGENT: H\nGOAL: "g"\nFLOW:\n  steps: [a]\n  a:\n    REASONING: false\n    RESPOND: "{{message_metadata.k}}"\n    THEN: a\n'
    )
    chat = Chat(p, limits=Limits(history_messages=4, max_steps=3))
    for i in range(5):
        await chat.say(f"m{i}", metadata={"k": i})
    assert chat.state is not None and len(chat.state.history) == 4


messages = st.one_of(
    st.sampled_from(
        ["hi", "ann@example.com", "123456", "AB123456", "refund", "delivery", "yes", "", "12"]
    ),
    st.text(max_size=40),
)
tool_values = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["sent", "valid", "status", "total", "eta", "masked_email"]),
        st.one_of(st.booleans(), st.integers(), st.text(max_size=5), st.none()),
        max_size=4,
    ),
    st.lists(st.integers(), max_size=3),
    st.text(max_size=5),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from(["reset", "support", "yaml"]),
    convo=st.lists(st.tuples(messages, tool_values, st.booleans()), min_size=1, max_size=6),
)
def test_random_conversations_never_raise(
    which: str, convo: list[tuple[str, object, bool]]
) -> None:
    programs = {
        "reset": {"Password_Reset": RESET},
        "support": {"Order_Support": SUPPORT, "Billing_Agent": BILLING},
        "yaml": {YAML.name: YAML, "Billing_Agent": BILLING},
    }[which]

    async def run() -> None:
        host = ScriptedHost(
            [text("ok"), tool_call("get_order", {"order_id": "AB123456"})],
            tools={"get_order": ToolResult(False, None, "down", "timeout")},
        )
        chat = Chat(programs, host)
        for msg, value, fail in convo:
            mocks = tuple(
                ToolMock(n, value, "bad" if fail else None)
                for n in ("send_reset_code", "verify_reset_code", "get_order")
            )
            out = await chat.say(msg, TestContext(tool_mocks=mocks))
            json.dumps(out.state.to_json())
            json.dumps([e.to_json() for e in out.events])
            json.dumps(out.state.public())
            assert not [e for e in out.events if e.data.get("errorType") == "unknown_error"]
            assert out.action.type in ("continue", "complete", "escalate", "handoff")

    asyncio.run(run())
