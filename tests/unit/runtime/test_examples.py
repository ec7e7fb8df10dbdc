# ruff: noqa: E501
"""Conversations with the example agents (examples/agents/*.abl)."""

from __future__ import annotations

from chatplane.runtime import TestContext, ToolMock
from tests.fakes.runtime_host import ScriptedHost
from tests.unit.runtime.helpers import EXAMPLES, Chat, agent, kinds, types

RESET = agent((EXAMPLES / "password-reset.abl").read_text())
SUPPORT = agent((EXAMPLES / "support.abl").read_text())
BILLING = agent(
    'AGENT: Billing_Agent\nGOAL: "Handle refunds"\nON_START:\n  RESPOND: "Billing here. Refund for {{order_id}} of {{refund_amount}}?"\n'
)


async def test_password_reset_happy_path() -> None:
    host = ScriptedHost(
        tools={
            "send_reset_code": {"sent": True, "masked_email": "a***@example.com"},
            "verify_reset_code": {"valid": True, "reset_url": "https://x/r/1"},
        }
    )
    chat = Chat(RESET, host)
    out = await chat.say("hello")
    assert out.reply == "Hi! I can help you reset your password."
    assert "dsl_on_start" in types(out)
    assert out.action.type == "continue"
    out = await chat.say("it's ann@example.com")
    assert chat.vars["email"] == "ann@example.com"
    assert "a***@example.com" in out.reply
    assert "six-digit code" in out.reply
    out = await chat.say("123456")
    assert "reset_url" not in out.reply and "https://x/r/1" in out.reply
    assert out.action.type == "complete"
    assert chat.state is not None and chat.state.status == "completed"
    assert "All done" in out.reply
    assert host.tool_calls[0] == (
        "send_reset_code",
        {"email": "ann@example.com", "channel": "email"},
    )


async def test_password_reset_bad_email_retries_then_locked_out_escalates() -> None:
    host = ScriptedHost(
        tools={
            "send_reset_code": {"sent": True, "masked_email": "a***"},
            "verify_reset_code": {"valid": False},
        }
    )
    chat = Chat(RESET, host)
    await chat.say("hi")
    out = await chat.say("no idea")  # the first time the flow asks: no retry yet
    assert out.reply == "What is the email address on your account?"
    out = await chat.say("still no idea")
    assert out.reply.startswith("That doesn't look like an email")
    assert "retry" in kinds(out)
    await chat.say("ann@example.com")
    for i in range(1, 3):
        out = await chat.say("111111")
        assert f"{i} of 3 attempts" in out.reply
        assert "Please enter the six-digit code" in out.reply
    out = await chat.say("222222")
    assert out.action.type == "escalate"
    assert out.action.data["priority"] == "high"
    assert out.action.data["context"] == {"email": "ann@example.com", "code_attempts": 3}
    assert chat.state is not None and chat.state.status == "escalated"


async def test_password_reset_tool_error_retries_then_escalates() -> None:
    chat = Chat(RESET, ScriptedHost())
    await chat.say("hi")
    mocks = (ToolMock("send_reset_code", None, "identity down"),)
    out = await chat.say("ann@example.com", TestContext(tool_mocks=mocks))
    assert "isn't responding" in out.reply
    assert [e.data["toolName"] for e in out.events if e.type == "tool_call"] == [
        "send_reset_code"
    ] * 3
    assert out.action.type == "escalate"
    assert out.error_count >= 3
    assert chat.host.tool_calls == []  # mocked: nothing called


async def test_support_refund_hands_off_to_billing() -> None:
    host = ScriptedHost(tools={"get_order": {"status": "shipped", "eta": "", "total": 42.5}})
    chat = Chat({"Order_Support": SUPPORT, "Billing_Agent": BILLING}, host)
    out = await chat.say("Hi, order AB123456, I want a refund")
    assert chat.state is not None and chat.state.agent == "Billing_Agent"
    assert out.action.type == "handoff"
    assert out.action.data == {
        "fromAgent": "Order_Support",
        "toAgent": "Billing_Agent",
        "reason": "condition",
    }
    assert "$42.50" in out.reply
    assert "Billing here. Refund for AB123456 of $42.50?" in out.reply
    ev = next(e for e in out.events if e.type == "handoff")
    assert ev.data["fromAgent"] == "Order_Support" and ev.data["toAgent"] == "Billing_Agent"
    assert "deterministic_handoff" in types(out) and "handoff_condition_check" in types(out)
    assert set(chat.vars) >= {"order_id", "refund_amount", "handoff"}
    assert "request_type" not in chat.vars


async def test_support_delivery_completes() -> None:
    host = ScriptedHost(tools={"get_order": {"status": "shipped", "eta": "Friday", "total": 1}})
    chat = Chat(SUPPORT, host)
    out = await chat.say("where is my order?")
    assert out.reply == "What is your order number?"
    out = await chat.say("AB12")
    assert out.reply == "Order numbers look like AB123456. Could you check it?"
    out = await chat.say("AB123456")
    assert out.reply == "Is this about delivery or a refund?"
    out = await chat.say("delivery please")
    assert out.reply.startswith("Order AB123456 is shipped, arriving Friday.")
    assert out.action.type == "complete"
