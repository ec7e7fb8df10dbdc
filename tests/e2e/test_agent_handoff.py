"""A handoff between two deployed agents, through the real Envoy: Order_Support routes a
refund to Billing_Agent with the variables it passes, and the session goes on there."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlmodel import col, select

from chatplane.app import App
from chatplane.storage.models import TaskExecution
from tests.conftest import TenantKeys
from tests.e2e.test_agent_turns import mocks, session_row, turn
from tests.e2e.test_agents_rest import deploy, put
from tests.e2e.test_rest import create_project

AGENTS = Path(__file__).resolve().parents[2] / "examples/agents"
ORDER = {"toolName": "get_order", "response": {"status": "delivered", "eta": "", "total": 42.5}}


async def test_a_refund_is_handed_off_to_billing_and_filed_there(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await create_project(http, tenant)
    for name, file in (("Billing_Agent", "billing.abl"), ("Order_Support", "support.abl")):
        saved = await put(http, tenant, pid, name, (AGENTS / file).read_text())
        assert saved.status_code == 200, saved.text
    deployed = await deploy(http, tenant, pid, entryAgentName="Order_Support")
    assert deployed.status_code == 200, deployed.text

    replies = []
    session = ""
    for message in ("Hi, I need help with an order", "AB123456", "refund", "yes"):
        extra = {"sessionId": session} if session else {}
        r = await turn(http, tenant, pid, message, environment="dev", **extra, **mocks(ORDER))
        assert r.status_code == 200, r.text
        replies.append(r.json())
        session = replies[-1]["sessionId"]
    first, _, handed, filed = replies
    assert first["state"]["currentAgent"] == "Order_Support"
    assert handed["action"] == {
        "type": "handoff",
        "fromAgent": "Order_Support",
        "toAgent": "Billing_Agent",
    }
    # The handing-off agent's last words, then the receiving agent's first question.
    assert handed["response"] == (
        "I'll pass your refund request for $42.50 to our billing team.\n\n"
        "I can refund order AB123456. Shall I file the refund now? (yes/no)"
    )
    state = handed["state"]
    assert (state["currentAgent"], state["currentStep"]) == ("Billing_Agent", "confirm_refund")
    assert (state["order_id"], state["refund_amount"]) == ("AB123456", "$42.50")
    assert "wants_refund" not in state  # only CONTEXT.pass crosses over
    assert state["handoff"]["summary"] == "Refund requested for order AB123456"
    types = [e["type"] for e in handed["traceEvents"]]
    assert types.index("tool_call") < types.index("handoff")
    (event,) = [e for e in handed["traceEvents"] if e["type"] == "handoff"]
    assert (event["data"]["fromAgent"], event["data"]["toAgent"]) == (
        "Order_Support",
        "Billing_Agent",
    )
    assert filed["action"]["type"] == "complete"
    assert filed["response"].startswith("Done: the refund for order AB123456 is filed.")

    # What the session keeps: it ends on the receiving agent, with the handoff recorded.
    row = await session_row(app, session)
    assert (row.agent_name, row.status, row.turn_count) == ("Billing_Agent", "ended", 4)
    assert row.outcome == "selfService"
    # One task per flow run that ended: Order_Support's by the handoff, Billing's complete.
    assert await tasks_of(app, session) == [
        ("Order_Support", "success"),
        ("Billing_Agent", "success"),
    ]
    base = f"/api/projects/{pid}/sessions/{session}"
    got = await http.get(base, headers=tenant.headers)
    assert got.status_code == 200, got.text
    assert got.json()["session"]["agentName"] == "Billing_Agent"
    traced = await http.get(f"{base}/traces?eventType=handoff", headers=tenant.headers)
    assert traced.status_code == 200, traced.text
    (stored,) = traced.json()["traces"]
    assert stored["data"]["toAgent"] == "Billing_Agent"


FRONT = """AGENT: Front
GOAL: "Route the customer"
FLOW:
  entry_point: route
  steps:
    - route
  route:
    REASONING: false
    SET:
      go = true
    RESPOND: "Passing you on."
HANDOFF:
  - TO: Back
    WHEN: go == true
"""
BACK = """AGENT: Back
GOAL: "Answer"
FLOW:
  entry_point: hello
  steps:
    - hello
  hello:
    REASONING: false
    RESPOND: "Back here."
"""


async def tasks_of(app: App, session_id: str) -> list[tuple[str, str]]:
    async with app.db.read() as uow:
        rows = await uow.exec(
            select(TaskExecution)
            .where(TaskExecution.session_id == session_id)
            .order_by(col(TaskExecution.created_at))
        )
        return [(r.task_name, r.status) for r in rows.all()]


async def test_a_handoff_in_the_first_turn_records_the_agent_that_handed_off(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await create_project(http, tenant)
    for name, source in (("Back", BACK), ("Front", FRONT)):
        saved = await put(http, tenant, pid, name, source)
        assert saved.status_code == 200, saved.text
    deployed = await deploy(http, tenant, pid, entryAgentName="Front")
    assert deployed.status_code == 200, deployed.text
    r = await turn(http, tenant, pid, "hello", environment="dev")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["action"] == {"type": "handoff", "fromAgent": "Front", "toAgent": "Back"}
    # The task that ended with the handoff is Front's, though the session is Back's now.
    assert await tasks_of(app, body["sessionId"]) == [("Front", "success")]
    assert (await session_row(app, body["sessionId"])).agent_name == "Back"
