"""`chatplane agents push` and `chatplane deploy` against the real Envoy in front of the app."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from chatplane import cli
from tests.conftest import TenantKeys
from tests.e2e.test_rest import create_project

BILLING = 'AGENT: Billing_Agent\nGOAL: "Handle refunds"\n'
FRONT = """AGENT: Front
GOAL: "Route the customer"

MEMORY:
  session:
    - wants_refund
      TYPE: boolean

HANDOFF:
  - TO: Billing_Agent
    WHEN: wants_refund == true
"""


async def run_cli(*argv: str) -> int:
    # urllib blocks: off the loop that serves the app.
    return await asyncio.to_thread(cli.main, list(argv))


async def test_push_and_deploy(
    http: httpx.AsyncClient,
    gateway: str,
    tenant: TenantKeys,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pid = await create_project(http, tenant)
    # "a-front" sorts first but hands off to Billing_Agent: push retries it after.
    (tmp_path / "a-front.abl").write_text(FRONT, encoding="utf-8")
    (tmp_path / "billing.abl").write_text(BILLING, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not an agent", encoding="utf-8")
    api = ["--url", gateway, "--key", tenant.key]
    assert await run_cli("agents", "push", str(tmp_path), "--project", pid, *api) == 0
    out = capsys.readouterr().out
    assert "pushed Billing_Agent" in out and "pushed Front" in out
    listed = await http.get(f"/api/projects/{pid}/agents", headers=tenant.headers)
    assert [a["name"] for a in listed.json()["agents"]] == ["Billing_Agent", "Front"]

    deploy = ["deploy", "--project", pid, "--env", "staging", "--entry", "Front", *api]
    assert await run_cli(*deploy, "--label", "abc123") == 0
    out = capsys.readouterr().out
    assert "to staging (active), entry Front, agents: Billing_Agent, Front" in out
    deployments = await http.get(f"/api/projects/{pid}/deployments", headers=tenant.headers)
    assert deployments.json()["deployments"][0]["label"] == "abc123"

    bad = ["deploy", "--project", pid, "--entry", "Ghost", *api]
    assert await run_cli(*bad) == 1
    assert "400: entryAgentName 'Ghost'" in capsys.readouterr().err


async def test_push_reports_errors(
    http: httpx.AsyncClient,
    gateway: str,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pid = await create_project(http, tenant)
    (tmp_path / "front.abl").write_text(FRONT, encoding="utf-8")  # Billing_Agent is missing
    api = ["--url", gateway, "--key", tenant.key]
    # Saved with a warning; deploying is what fails while the target is missing.
    assert await run_cli("agents", "push", str(tmp_path), "--project", pid, *api) == 0
    assert "warning: HANDOFF at line" in capsys.readouterr().out
    assert await run_cli("deploy", "--project", pid, "--entry", "Front", *api) == 1
    err = capsys.readouterr().err
    assert "400: Agent source does not compile" in err and "[ABL0306]" in err

    other = ["--url", gateway, "--key", other_tenant.key]
    assert await run_cli("agents", "push", str(tmp_path), "--project", pid, *other) == 1
    assert "404: Project not found" in capsys.readouterr().err
    nowhere = ["--url", "http://127.0.0.1:9", "--key", "k"]
    assert await run_cli("deploy", "--project", pid, "--entry", "Front", *nowhere) == 1
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err
