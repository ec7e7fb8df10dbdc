"""End to end through a real Envoy: REST shapes, status codes and SSE bytes."""

from __future__ import annotations

import json
import re

import httpx

from tests.conftest import BOOTSTRAP_KEY, TenantKeys


async def create_project(http: httpx.AsyncClient, tenant: TenantKeys, **body: object) -> str:
    response = await http.post(
        "/api/projects", json={"name": "demo", **body}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return str(response.json()["project"]["id"])


async def test_project_lifecycle(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    response = await http.post(
        "/api/projects", json={"name": "demo", "description": "first"}, headers=tenant.headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    project = body["project"]
    assert re.match(r"^c[0-9a-z]{24}$", project["id"])
    assert project["name"] == "demo" and project["description"] == "first"
    assert set(project) >= {"id", "name", "description", "createdAt", "updatedAt"}

    got = await http.get(f"/api/projects/{project['id']}", headers=tenant.headers)
    assert got.status_code == 200 and got.json()["project"] == project

    listed = await http.get("/api/projects?limit=10&offset=0", headers=tenant.headers)
    assert listed.status_code == 200
    page = listed.json()
    assert page["total"] == 1 and page["limit"] == 10 and page["offset"] == 0
    assert [p["id"] for p in page["projects"]] == [project["id"]]

    deleted = await http.delete(f"/api/projects/{project['id']}", headers=tenant.headers)
    assert deleted.status_code == 200 and deleted.json() == {"success": True, "id": project["id"]}
    gone = await http.get(f"/api/projects/{project['id']}", headers=tenant.headers)
    assert gone.status_code == 404


async def test_auth_statuses(
    http: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    pid = await create_project(http, tenant)
    other = await http.get(f"/api/projects/{pid}", headers=other_tenant.headers)
    assert other.status_code == 404
    error = other.json()
    assert error["code"] == 5 and error["message"] == "Project not found"
    assert error["details"][0]["reason"] == "PROJECT_NOT_FOUND"

    anonymous = await http.get(f"/api/projects/{pid}")
    assert anonymous.status_code == 401
    assert anonymous.json()["message"] == "Authentication required"
    wrong = await http.get("/api/projects", headers={"Authorization": "Bearer abl_sk-wrong"})
    assert wrong.status_code == 401

    by_header = await http.get(f"/api/projects/{pid}", headers={"X-API-Key": tenant.key})
    assert by_header.status_code == 200

    reader = await http.post(
        "/api/keys", json={"name": "reader", "scopes": ["project:read"]}, headers=tenant.headers
    )
    assert reader.status_code == 200
    secret = reader.json()["secret"]
    forbidden = await http.post(
        "/api/projects", json={"name": "x"}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["message"] == "Missing required scope: project:write"


async def test_unknown_route_and_query_parameter(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    # Envoy's own replies come in the same JSON google.rpc.Status shape as the server's.
    cases = [
        (await http.get("/api/nothing-here", headers=tenant.headers), 404, 5, "ROUTE_NOT_FOUND"),
        (
            await http.get("/api/projects?colour=blue", headers=tenant.headers),
            400,
            3,
            "INVALID_REQUEST",
        ),
        (
            await http.get("/api/projects?limit=abc", headers=tenant.headers),
            400,
            3,
            "INVALID_REQUEST",
        ),
        (
            await http.post(
                "/api/projects",
                content=b'{"name": 5',
                headers={**tenant.headers, "Content-Type": "application/json"},
            ),
            400,
            3,
            "INVALID_REQUEST",
        ),
        (
            await http.post("/api/projects", json={"name": ["x"]}, headers=tenant.headers),
            400,
            3,
            "INVALID_REQUEST",
        ),
    ]
    for response, status, code, reason in cases:
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["code"] == code and body["message"]
        assert body["details"][0]["reason"] == reason
    assert "colour" in cases[1][0].json()["message"]


async def test_validation_error_body(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    response = await http.post("/api/projects", json={"name": ""}, headers=tenant.headers)
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "name is required"
    assert body["details"][0]["metadata"] == {"field": "name"}


async def test_keys_api(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    created = await http.post(
        "/api/keys", json={"name": "ci", "scopes": ["session:read"]}, headers=tenant.headers
    )
    assert created.status_code == 200
    key = created.json()["key"]
    listed = (await http.get("/api/keys", headers=tenant.headers)).json()
    assert key["id"] in [k["id"] for k in listed["keys"]]
    # No secret anywhere (a key's `type` may be the word "secret"; its value never shows).
    assert all("secret" not in k for k in listed["keys"])
    assert created.json()["secret"] not in json.dumps(listed["keys"])
    revoked = await http.delete(f"/api/keys/{key['id']}", headers=tenant.headers)
    assert revoked.status_code == 200 and revoked.json()["key"]["revokedAt"]


async def test_bootstrap_key_works(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/projects", headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"})
    assert response.status_code == 200


async def test_rate_limit_headers_on_success(http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    response = await http.get("/api/projects", headers=tenant.headers)
    assert response.status_code == 200
    assert int(response.headers["x-ratelimit-limit"]) > 0
    assert int(response.headers["x-ratelimit-remaining"]) >= 0
    assert "x-chatplane-http-status" not in response.headers
