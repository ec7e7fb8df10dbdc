"""JWTs must expire, within a maximum lifetime (issue 12, item 12), through Envoy."""

from __future__ import annotations

import time

import httpx
import jwt

from chatplane.app import App
from tests.conftest import TenantKeys


async def test_jwts_need_exp_and_a_bounded_lifetime(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    client = await app.iam.create_client(tenant.tenant_id, "lifetimes", ["project:read"])
    now = int(time.time())

    def headers(**claims: object) -> dict[str, str]:
        body = {"appId": client.id, **claims}
        return {"auth": jwt.encode(body, client.secret, algorithm="HS256")}

    day = 86_400  # CHATPLANE_JWT_MAX_LIFETIME_SECONDS' default
    cases: list[tuple[dict[str, object], int, str | None]] = [
        ({}, 401, "JWT_EXP_REQUIRED"),  # valid forever before: 200
        ({"iat": now}, 401, "JWT_EXP_REQUIRED"),
        ({"iat": now, "exp": now + day + 60}, 401, "JWT_LIFETIME_TOO_LONG"),
        ({"exp": now + 10 * day}, 401, "JWT_LIFETIME_TOO_LONG"),  # no iat: exp - now
        ({"iat": now - day, "exp": now + 60}, 401, "JWT_LIFETIME_TOO_LONG"),
        ({"iat": now, "exp": now + day}, 200, None),
        ({"exp": now + 300}, 200, None),
    ]
    for claims, status, reason in cases:
        response = await http.get("/api/projects", headers=headers(**claims))
        assert response.status_code == status, (claims, response.text)
        if reason:
            assert response.json()["details"][0]["reason"] == reason
