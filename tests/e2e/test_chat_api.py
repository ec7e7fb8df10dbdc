"""The simple Chat API (seed 002) through the real Envoy: secret and publishable keys,
allowed origins, CORS preflights, 204 on delete, chats as sessions."""

from __future__ import annotations

import httpx

from chatplane.app import App
from tests.conftest import TenantKeys
from tests.e2e.test_agent_turns import agent_project

ORIGIN = "https://shop.example.com"


async def chat_agent(http: httpx.AsyncClient, tenant: TenantKeys) -> tuple[str, str]:
    """(projectId, agentId) of a project with the password-reset agent."""
    pid = await agent_project(http, tenant)
    agent = await http.get(f"/api/projects/{pid}/agents/Password_Reset", headers=tenant.headers)
    return pid, str(agent.json()["agent"]["id"])


async def publishable(http: httpx.AsyncClient, tenant: TenantKeys, *origins: str) -> dict[str, str]:
    created = await http.post(
        "/api/keys",
        json={"name": "web", "type": "publishable", "allowedOrigins": list(origins or (ORIGIN,))},
        headers=tenant.headers,
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["secret"].startswith("pk_live_")
    assert body["key"]["type"] == "publishable"
    assert body["key"]["allowedOrigins"] == list(origins or (ORIGIN,))
    assert sorted(body["key"]["scopes"]) == ["session:execute", "session:read"]
    return {"Authorization": f"Bearer {body['secret']}", "Origin": (origins or (ORIGIN,))[0]}


async def test_chat_lifecycle_with_a_secret_key(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid, agent_id = await chat_agent(http, tenant)
    created = await http.post(
        "/chat",
        json={"agentId": agent_id, "userId": "user-42", "metadata": {"plan": "pro"}},
        headers=tenant.headers,
    )
    assert created.status_code == 200, created.text
    chat = created.json()
    assert set(chat) >= {"id", "agentId", "teamId", "createdAt"}
    assert (chat["agentId"], chat["teamId"]) == (agent_id, tenant.tenant_id)
    chat_id = chat["id"]

    reply = await http.post(
        f"/chat/{chat_id}/message",
        json={"content": "I forgot my password", "role": "user"},
        headers=tenant.headers,
    )
    assert reply.status_code == 200, reply.text
    message = reply.json()
    assert set(message) == {"id", "chatId", "content", "role", "createdAt"}
    assert (message["chatId"], message["role"]) == (chat_id, "assistant")
    assert "reset your password" in message["content"]
    assert message["id"].startswith("msg_")

    got = await http.get(f"/chat/{chat_id}", headers=tenant.headers)
    assert got.status_code == 200
    assert [m["role"] for m in got.json()["messages"]] == ["user", "assistant"]
    assert got.json()["messages"][1]["id"] == message["id"]
    assert got.json()["teamId"] == tenant.tenant_id
    listed = await http.get("/chat/" + chat_id + "/message", headers=tenant.headers)
    assert listed.json()["messages"][0]["content"] == "I forgot my password"
    assert set(listed.json()["messages"][0]) == {"id", "content", "role", "createdAt"}

    chats = await http.get("/chat", headers=tenant.headers)
    assert chats.status_code == 200
    assert chats.json()["chats"][0] == {
        "id": chat_id,
        "agentId": agent_id,
        "userId": "user-42",
        "createdAt": chat["createdAt"],
    }
    by_user = await http.get("/chat?userId=user-42", headers=tenant.headers)
    assert [c["id"] for c in by_user.json()["chats"]] == [chat_id]
    assert (await http.get("/chat?userId=nobody", headers=tenant.headers)).json()["chats"] == []
    by_type = await http.get("/chat?agentType=Password_Reset", headers=tenant.headers)
    assert [c["id"] for c in by_type.json()["chats"]] == [chat_id]

    # The same session in the project's sessions API, channel `chat`.
    sessions = await http.get(f"/api/projects/{pid}/sessions?channel=chat", headers=tenant.headers)
    assert [s["id"] for s in sessions.json()["sessions"]] == [chat_id]
    assert sessions.json()["sessions"][0]["messageCount"] == 2

    bad_role = await http.post(
        f"/chat/{chat_id}/message",
        json={"content": "hi", "role": "assistant"},
        headers=tenant.headers,
    )
    assert bad_role.status_code == 400
    long = await http.post(
        f"/chat/{chat_id}/message", json={"content": "x" * 2000}, headers=tenant.headers
    )
    assert long.status_code == 200, long.text

    deleted = await http.delete(f"/chat/{chat_id}", headers=tenant.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    gone = await http.get(f"/chat/{chat_id}", headers=tenant.headers)
    assert gone.status_code == 404 and gone.json()["message"] == "Chat not found"
    assert (await http.delete(f"/chat/{chat_id}", headers=tenant.headers)).status_code == 404
    unknown = await http.post("/chat", json={"agentId": "nope"}, headers=tenant.headers)
    assert unknown.status_code == 404 and unknown.json()["message"] == "Agent not found"


async def test_publishable_keys(app: App, http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    pid, agent_id = await chat_agent(http, tenant)
    web = await publishable(http, tenant)
    created = await http.post("/chat", json={"agentId": agent_id}, headers=web)
    assert created.status_code == 200, created.text
    assert created.headers["access-control-allow-origin"] == ORIGIN
    chat_id = created.json()["id"]
    reply = await http.post(f"/chat/{chat_id}/message", json={"content": "hi"}, headers=web)
    assert reply.status_code == 200, reply.text
    assert (await http.get(f"/chat/{chat_id}", headers=web)).status_code == 200

    # Another Origin, or none: 403.
    for origin in ("https://evil.example.com", None):
        headers = {"Authorization": web["Authorization"]}
        if origin:
            headers["Origin"] = origin
        refused = await http.get(f"/chat/{chat_id}", headers=headers)
        assert refused.status_code == 403, origin
        assert refused.json()["details"][0]["reason"] == "ORIGIN_NOT_ALLOWED"

    # Secret routes: 403, whatever the origin.
    for method, path in (
        ("GET", "/api/projects"),
        ("GET", f"/api/projects/{pid}/sessions"),
        ("GET", f"/api/v1/sessions/{chat_id}/transcripts"),
        ("POST", "/api/keys"),
    ):
        refused = await http.request(
            method, path, json={} if method == "POST" else None, headers=web
        )
        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.json()["details"][0]["reason"] in {
            "PUBLISHABLE_KEY_NOT_ALLOWED",
            "MISSING_SCOPE",
        }
    sessions = await http.get(f"/api/projects/{pid}/sessions", headers=web)
    assert sessions.json()["message"] == "Publishable keys may only use the Chat API"

    # Only the chats made with that key.
    mine = await http.get("/chat", headers=web)
    assert [c["id"] for c in mine.json()["chats"]] == [chat_id]
    secret_chat = (
        await http.post("/chat", json={"agentId": agent_id}, headers=tenant.headers)
    ).json()
    other_web = await publishable(http, tenant, "http://localhost:3000")
    for headers in (web, other_web):
        theirs = secret_chat["id"] if headers is web else chat_id
        assert (await http.get(f"/chat/{theirs}", headers=headers)).status_code == 404
        assert (
            await http.post(f"/chat/{theirs}/message", json={"content": "x"}, headers=headers)
        ).status_code == 404
        assert (await http.delete(f"/chat/{theirs}", headers=headers)).status_code == 404
    assert (await http.get("/chat", headers=other_web)).json()["chats"] == []
    # The secret key sees every chat.
    everything = await http.get("/chat", headers=tenant.headers)
    assert {c["id"] for c in everything.json()["chats"]} >= {chat_id, secret_chat["id"]}
    assert (await http.delete(f"/chat/{chat_id}", headers=web)).status_code == 204


async def test_cors_preflight(http: httpx.AsyncClient) -> None:
    preflight = await http.options(
        "/chat",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    nested = await http.options(
        "/chat/abc/message",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert nested.status_code == 200
    assert nested.headers["access-control-allow-origin"] == ORIGIN
    # Other routes have no CORS policy.
    other = await http.options(
        "/api/projects", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in other.headers


async def test_key_validation(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    cases = [
        ({"name": "w", "type": "publishable"}, "allowedOrigins"),
        (
            {"name": "w", "type": "publishable", "allowedOrigins": ["https://a.com/path"]},
            "allowedOrigins",
        ),
        (
            {
                "name": "w",
                "type": "publishable",
                "allowedOrigins": [ORIGIN],
                "scopes": ["project:write"],
            },
            "scopes",
        ),
        ({"name": "w", "type": "other", "scopes": ["session:read"]}, "type"),
        ({"name": "w", "scopes": ["session:read"], "allowedOrigins": [ORIGIN]}, "allowedOrigins"),
    ]
    for body, field in cases:
        response = await http.post("/api/keys", json=body, headers=tenant.headers)
        assert response.status_code == 400, body
        assert response.json()["details"][0]["metadata"]["field"] == field
    secret = await http.post(
        "/api/keys", json={"name": "s", "scopes": ["session:read"]}, headers=tenant.headers
    )
    assert secret.json()["key"]["type"] == "secret"
    assert secret.json()["key"]["allowedOrigins"] == []
    assert secret.json()["secret"].startswith("abl_sk-")


async def test_cross_tenant_chats_are_404(
    http: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    _, agent_id = await chat_agent(http, tenant)
    chat_id = (await http.post("/chat", json={"agentId": agent_id}, headers=tenant.headers)).json()[
        "id"
    ]
    other = other_tenant.headers
    assert (await http.post("/chat", json={"agentId": agent_id}, headers=other)).status_code == 404
    for method, path, body in (
        ("GET", f"/chat/{chat_id}", None),
        ("GET", f"/chat/{chat_id}/message", None),
        ("POST", f"/chat/{chat_id}/message", {"content": "hi"}),
        ("DELETE", f"/chat/{chat_id}", None),
    ):
        response = await http.request(method, path, json=body, headers=other)
        assert response.status_code == 404, (method, path)
    assert (await http.get("/chat", headers=other)).json()["chats"] == []
