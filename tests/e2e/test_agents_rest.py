"""Agents and deployments through the real Envoy: REST shapes, statuses, error details."""

from __future__ import annotations

import re

import httpx

from tests.conftest import TenantKeys
from tests.e2e.test_rest import create_project

BILLING = 'AGENT: Billing\nDESCRIPTION: "Refunds"\nGOAL: "Handle refunds"\n'
FRONT = """AGENT: Front
GOAL: "Route the customer"

MEMORY:
  session:
    - wants_refund
      TYPE: boolean

HANDOFF:
  - TO: Billing
    WHEN: wants_refund == true
"""
FRONT_YAML = """agent: Front
goal: "Route the customer, YAML edition"
"""
BROKEN = """AGENT: Front
GOAL: "x"

FLOW:
  greet:
    REASONING: false
    RESPOND: "Hello"
    THEN: confrim
  confirm:
    REASONING: false
    RESPOND: "Confirmed"
"""


async def put(
    http: httpx.AsyncClient, tenant: TenantKeys, pid: str, name: str, source: str
) -> httpx.Response:
    return await http.put(
        f"/api/projects/{pid}/agents/{name}", json={"source": source}, headers=tenant.headers
    )


async def deploy(
    http: httpx.AsyncClient, tenant: TenantKeys, pid: str, **body: object
) -> httpx.Response:
    return await http.post(
        f"/api/projects/{pid}/deployments",
        json={"environment": "dev", "entryAgentName": "Front", **body},
        headers=tenant.headers,
    )


async def test_agents_crud(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid = await create_project(http, tenant)
    billing = await put(http, tenant, pid, "Billing", BILLING)
    assert billing.status_code == 200, billing.text
    body = billing.json()
    assert body["success"] is True
    agent = body["agent"]
    assert set(agent) >= {"id", "name", "format", "description", "updatedAt"}
    assert agent["name"] == "Billing" and agent["format"] == "abl"
    assert agent["description"] == "Refunds" and "source" not in agent

    front = await put(http, tenant, pid, "Front", FRONT)
    assert front.status_code == 200, front.text
    yaml = await put(http, tenant, pid, "Front", FRONT_YAML)
    assert yaml.status_code == 200, yaml.text
    assert yaml.json()["agent"]["format"] == "yaml"
    assert yaml.json()["agent"]["id"] == front.json()["agent"]["id"]

    listed = await http.get(f"/api/projects/{pid}/agents", headers=tenant.headers)
    assert listed.status_code == 200
    assert [a["name"] for a in listed.json()["agents"]] == ["Billing", "Front"]

    got = await http.get(f"/api/projects/{pid}/agents/Front", headers=tenant.headers)
    assert got.status_code == 200 and got.json()["agent"]["source"] == FRONT_YAML

    deleted = await http.delete(f"/api/projects/{pid}/agents/Front", headers=tenant.headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"success": True, "id": agent_id(yaml), "name": "Front"}
    missing = await http.get(f"/api/projects/{pid}/agents/Front", headers=tenant.headers)
    assert missing.status_code == 404 and missing.json()["message"] == "Agent not found"


def agent_id(response: httpx.Response) -> str:
    return str(response.json()["agent"]["id"])


async def test_compile_errors_are_400_with_bad_request(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await create_project(http, tenant)
    # A handoff to an agent the project does not have is a warning when saving (agents
    # that hand off to each other can be saved in any order) and an error when deploying.
    saved = await put(http, tenant, pid, "Front", FRONT)
    assert saved.status_code == 200, saved.text
    assert [w["code"] for w in saved.json()["agent"]["warnings"]] == ["ABL0306"]
    await http.delete(f"/api/projects/{pid}/agents/Front", headers=tenant.headers)
    for source, code in ((BROKEN, "ABL0301"),):
        response = await put(http, tenant, pid, "Front", source)
        assert response.status_code == 400, response.text
        error = response.json()
        assert error["code"] == 3
        assert error["message"].startswith("Agent source does not compile: ")
        info, bad = error["details"]
        assert info["reason"] == "COMPILE_ERROR"
        assert bad["@type"] == "type.googleapis.com/google.rpc.BadRequest"
        violations = bad["fieldViolations"]
        assert all(v["field"] == "source" for v in violations)
        assert any(code in v["description"] for v in violations), violations
        assert all(
            re.match(r"^line \d+, col \d+: \[ABL\d{4}\] ", v["description"]) for v in violations
        )
    broken = (await put(http, tenant, pid, "Front", BROKEN)).json()
    assert broken["details"][1]["fieldViolations"][0]["description"] == (
        "line 8, col 1: [ABL0301] THEN at line 8 names step 'confrim', which is not defined; "
        "did you mean 'confirm'?"
    )
    listed = await http.get(f"/api/projects/{pid}/agents", headers=tenant.headers)
    assert listed.json().get("agents", []) == []  # nothing stored

    empty = await put(http, tenant, pid, "Front", "")
    assert empty.status_code == 400 and empty.json()["details"][0]["metadata"] == {
        "field": "source"
    }
    mismatch = await put(http, tenant, pid, "Other", BILLING)
    assert mismatch.status_code == 400
    assert mismatch.json()["details"][0]["reason"] == "AGENT_NAME_MISMATCH"
    bad_name = await put(http, tenant, pid, "bad%20name", BILLING)
    assert bad_name.status_code == 400


async def test_deployments_and_lifecycle(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid = await create_project(http, tenant)
    no_agents = await deploy(http, tenant, pid)
    assert no_agents.status_code == 400 and no_agents.json()["details"][0]["reason"] == "NO_AGENTS"
    assert (await put(http, tenant, pid, "Billing", BILLING)).status_code == 200
    assert (await put(http, tenant, pid, "Front", FRONT)).status_code == 200

    created = await deploy(http, tenant, pid, label="v1")
    assert created.status_code == 200, created.text
    first = created.json()["deployment"]
    assert set(first) >= {
        "id",
        "environment",
        "status",
        "entryAgentName",
        "label",
        "agents",
        "createdAt",
    }
    assert (first["environment"], first["status"], first["entryAgentName"], first["label"]) == (
        "dev",
        "active",
        "Front",
        "v1",
    )
    assert [a["name"] for a in first["agents"]] == ["Billing", "Front"]

    second = (await deploy(http, tenant, pid)).json()["deployment"]
    assert second["previousDeploymentId"] == first["id"]
    got = await http.get(f"/api/projects/{pid}/deployments/{first['id']}", headers=tenant.headers)
    assert got.json()["deployment"]["status"] == "draining"

    listed = await http.get(
        f"/api/projects/{pid}/deployments?environment=dev", headers=tenant.headers
    )
    assert listed.status_code == 200
    page = listed.json()
    assert [(d["id"], d["status"]) for d in page["deployments"]] == [
        (second["id"], "active"),
        (first["id"], "retired"),
    ]
    base = f"/api/projects/{pid}/deployments"

    promoted = await http.post(
        f"{base}/{second['id']}/promote", json={"environment": "staging"}, headers=tenant.headers
    )
    assert promoted.status_code == 200, promoted.text
    staging = promoted.json()["deployment"]
    assert staging["environment"] == "staging" and staging["status"] == "active"

    rolled = await http.post(f"{base}/{second['id']}/rollback", json={}, headers=tenant.headers)
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["deployment"]["id"] == first["id"]
    assert rolled.json()["deployment"]["status"] == "active"
    assert rolled.json()["retired"]["status"] == "retired"

    restored = await http.post(f"{base}/{second['id']}/restore", headers=tenant.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["deployment"]["status"] == "draining"

    retired = await http.post(f"{base}/{staging['id']}/retire", headers=tenant.headers)
    assert retired.status_code == 200 and retired.json()["deployment"]["status"] == "retired"

    # Invalid transitions: 400 with the reason.
    invalid = [
        await http.post(f"{base}/{staging['id']}/retire", headers=tenant.headers),
        await http.post(f"{base}/{first['id']}/restore", headers=tenant.headers),
        await http.post(f"{base}/{first['id']}/rollback", headers=tenant.headers),  # no previous
        await http.post(
            f"{base}/{first['id']}/promote", json={"environment": "dev"}, headers=tenant.headers
        ),
    ]
    for response in invalid:
        assert response.status_code == 400, response.text
        error = response.json()
        assert error["details"][0]["reason"] == "INVALID_TRANSITION"
        assert error["message"].startswith("Cannot ")
    bad_env = await deploy(http, tenant, pid, environment="qa")
    assert bad_env.status_code == 400 and "environment" in bad_env.json()["message"]
    bad_entry = await deploy(http, tenant, pid, entryAgentName="Ghost")
    assert bad_entry.status_code == 400
    unknown = await http.get(f"{base}/cnothere", headers=tenant.headers)
    assert unknown.status_code == 404 and unknown.json()["message"] == "Deployment not found"


async def test_deploy_recompiles_with_every_agent(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await create_project(http, tenant)
    await put(http, tenant, pid, "Billing", BILLING)
    await put(http, tenant, pid, "Front", FRONT)
    await http.delete(f"/api/projects/{pid}/agents/Billing", headers=tenant.headers)
    response = await deploy(http, tenant, pid)
    assert response.status_code == 400
    bad = response.json()["details"][1]
    assert bad["fieldViolations"][0]["field"] == "agents.Front.source"
    assert "ABL0306" in bad["fieldViolations"][0]["description"]


async def test_cross_tenant_and_scopes(
    http: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    pid = await create_project(http, tenant)
    await put(http, tenant, pid, "Billing", BILLING)
    dep = (await deploy(http, tenant, pid, entryAgentName="Billing")).json()["deployment"]
    base = f"/api/projects/{pid}"
    for method, path in [
        ("GET", f"{base}/agents"),
        ("GET", f"{base}/agents/Billing"),
        ("DELETE", f"{base}/agents/Billing"),
        ("GET", f"{base}/deployments"),
        ("GET", f"{base}/deployments/{dep['id']}"),
        ("POST", f"{base}/deployments/{dep['id']}/retire"),
    ]:
        response = await http.request(method, path, headers=other_tenant.headers)
        assert response.status_code == 404, (method, path, response.text)
    foreign = await put(http, other_tenant, pid, "Billing", BILLING)
    assert foreign.status_code == 404

    reader = await http.post(
        "/api/keys", json={"name": "reader", "scopes": ["project:read"]}, headers=tenant.headers
    )
    headers = {"Authorization": f"Bearer {reader.json()['secret']}"}
    assert (await http.get(f"{base}/agents/Billing", headers=headers)).status_code == 200
    assert (await http.get(f"{base}/deployments", headers=headers)).status_code == 200
    for method, path, body in [
        ("PUT", f"{base}/agents/Billing", {"source": BILLING}),
        ("DELETE", f"{base}/agents/Billing", None),
        ("POST", f"{base}/deployments", {"environment": "dev", "entryAgentName": "Billing"}),
        ("POST", f"{base}/deployments/{dep['id']}/retire", {}),
        ("POST", f"{base}/deployments/{dep['id']}/promote", {"environment": "staging"}),
        ("POST", f"{base}/deployments/{dep['id']}/rollback", {}),
        ("POST", f"{base}/deployments/{dep['id']}/restore", {}),
    ]:
        response = await http.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path)
        assert response.json()["message"] == "Missing required scope: project:write"


async def test_many_errors_fit_and_project_delete_cascades(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await create_project(http, tenant)
    steps = "".join(
        f'  s{i}:\n    REASONING: false\n    RESPOND: "{"x" * 200}"\n    THEN: missing_{i}\n'
        for i in range(200)
    )
    source = f'AGENT: Many\nGOAL: "g"\n\nFLOW:\n{steps}'
    response = await put(http, tenant, pid, "Many", source)
    assert response.status_code == 400, response.text  # not a 502: the details fit
    violations = response.json()["details"][1]["fieldViolations"]
    assert len(violations) == 51 and violations[-1]["description"].startswith("... and ")

    await put(http, tenant, pid, "Billing", BILLING)
    assert (await deploy(http, tenant, pid, entryAgentName="Billing")).status_code == 200
    deleted = await http.delete(f"/api/projects/{pid}", headers=tenant.headers)
    assert deleted.status_code == 200, deleted.text
    gone = await http.get(f"/api/projects/{pid}/agents", headers=tenant.headers)
    assert gone.status_code == 404
