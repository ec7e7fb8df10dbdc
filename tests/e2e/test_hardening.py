"""Defects found by a security probe (issue 12), each reproduced through Envoy."""

from __future__ import annotations

import grpc
import httpx
from sqlmodel import col, func, select

from chatplane.app import App
from chatplane.chat.v1 import chat_service_pb2 as chat_pb
from chatplane.chat.v1 import chat_service_pb2_grpc as chat_grpc
from chatplane.ratelimit import InProcessRateLimiter
from chatplane.storage.models import UsageRecord
from tests.conftest import TenantKeys
from tests.e2e.test_rest import create_project


async def _key(http: httpx.AsyncClient, owner: TenantKeys, *scopes: str) -> dict[str, str]:
    created = await http.post(
        "/api/keys", json={"name": "k", "scopes": list(scopes)}, headers=owner.headers
    )
    assert created.status_code == 200, created.text
    body = created.json()
    return {"Authorization": f"Bearer {body['secret']}", "id": body["key"]["id"]}


async def test_keys_admin_cannot_grant_scopes_it_lacks(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    admin = await _key(http, tenant, "keys:admin")
    auth = {"Authorization": admin["Authorization"]}
    escalate = await http.post(
        "/api/keys",
        json={"name": "x", "scopes": ["keys:admin", "project:write", "session:execute"]},
        headers=auth,
    )
    assert escalate.status_code == 403
    body = escalate.json()
    assert body["message"] == (
        "Cannot grant scopes you do not hold: project:read, project:write, session:execute"
    )
    assert body["details"][0]["reason"] == "SCOPE_ESCALATION"
    # Nothing was stored.
    listed = (await http.get("/api/keys", headers=auth)).json()["keys"]
    assert all(k["name"] != "x" for k in listed)
    # Within its own scopes it may create keys.
    same = await http.post("/api/keys", json={"name": "y", "scopes": ["keys:admin"]}, headers=auth)
    assert same.status_code == 200


async def test_keys_admin_cannot_revoke_broader_keys(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    admin = await _key(http, tenant, "keys:admin", "project:read")
    auth = {"Authorization": admin["Authorization"]}
    broad = await _key(http, tenant, "keys:admin", "project:write")
    narrow = await _key(http, tenant, "project:read")
    denied = await http.delete(f"/api/keys/{broad['id']}", headers=auth)
    assert denied.status_code == 403
    assert denied.json()["message"] == (
        "Cannot revoke a key with scopes you do not hold: project:write"
    )
    still = await http.get("/api/projects", headers={"Authorization": broad["Authorization"]})
    assert still.status_code == 200  # not revoked
    allowed = await http.delete(f"/api/keys/{narrow['id']}", headers=auth)
    assert allowed.status_code == 200 and allowed.json()["key"]["revokedAt"]


async def _usage_rows(app: App, session_id_length: int) -> int:
    await app.usage_writer.flush()
    async with app.db.read() as uow:
        found = await uow.exec(
            select(func.count())
            .select_from(UsageRecord)
            .where(func.length(col(UsageRecord.session_id)) == session_id_length)
        )
        return int(found.one())


async def test_oversized_session_id_is_refused_before_anything_is_stored(
    app: App, http: httpx.AsyncClient, channel: grpc.aio.Channel, tenant: TenantKeys
) -> None:
    pid = await create_project(http, tenant)
    limiter = app.session_limiter
    assert isinstance(limiter, InProcessRateLimiter)
    tracked = len(limiter)
    huge = "s" * 200_000
    body = {"projectId": pid, "sessionId": huge, "messages": [{"role": "user", "content": "hi"}]}
    for route in ("/api/v1/chat/complete", "/api/v1/chat/stream"):
        response = await http.post(route, json=body, headers=tenant.headers)
        assert response.status_code == 400, response.text
        error = response.json()
        assert error["message"] == "Invalid request: sessionId is too long (max 128)"
        assert error["details"][0]["metadata"] == {"field": "sessionId"}
        assert huge[:1000] not in response.text
    stub = chat_grpc.ChatServiceStub(channel)
    try:
        await stub.CompleteChat(
            chat_pb.CompleteChatRequest(
                project_id=pid,
                session_id="x" * 129,
                messages=[chat_pb.ChatMessage(role="user")],
            ),
            metadata=tenant.metadata,
        )
        raise AssertionError("accepted")
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.details() == "Invalid request: sessionId is too long (max 128)"
    assert await _usage_rows(app, 200_000) == 0
    assert await _usage_rows(app, 129) == 0
    assert len(limiter) == tracked  # the refused sessions hold no rate-limit memory


async def test_identifier_charset_and_control_characters(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await create_project(http, tenant)
    bad_id = await http.post(
        "/api/v1/chat/complete",
        json={"projectId": pid, "sessionId": "a b", "messages": [{"role": "user", "content": "x"}]},
        headers=tenant.headers,
    )
    assert bad_id.status_code == 400
    assert bad_id.json()["message"] == (
        "Invalid request: sessionId may contain only letters, digits and . _ : -"
    )
    nul = await http.post("/api/projects", json={"name": "a\u0000b"}, headers=tenant.headers)
    assert nul.status_code == 400
    assert nul.json()["message"] == "Invalid request: name must not contain control characters"
    # The check comes before authentication: no key needed to be told.
    anonymous = await http.post("/api/projects", json={"name": "x" * 201})
    assert anonymous.status_code == 400
    assert anonymous.json()["message"] == "Invalid request: name is too long (max 200)"
    # A session id at the limit is fine.
    ok = await http.post(
        "/api/v1/chat/complete",
        json={
            "projectId": pid,
            "sessionId": "a.b_c:d-" + "e" * 120,
            "messages": [{"role": "user", "content": "x"}],
        },
        headers=tenant.headers,
    )
    assert ok.status_code == 200, ok.text
