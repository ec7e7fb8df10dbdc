"""JWT clients, the CLI, and rate limits shared by two replicas through Redis."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

import grpc
import httpx
import jwt
import pytest

from chatplane.app import App
from chatplane.project.v1 import project_service_pb2 as pb
from chatplane.project.v1 import project_service_pb2_grpc as pb_grpc
from tests.conftest import TenantKeys, make_settings, new_tenant
from tests.e2e.test_operator import cli_process


async def test_jwt_auth_header(app: App, http: httpx.AsyncClient, tenant: TenantKeys) -> None:
    client = await app.iam.create_client(
        tenant.tenant_id, "analytics", ["project:read", "analytics:read"]
    )
    secret = client.secret
    created = await http.post("/api/projects", json={"name": "jwt"}, headers=tenant.headers)
    pid = created.json()["project"]["id"]

    def token(key: str = secret, **claims: object) -> dict[str, str]:
        body = {"appId": client.id, "exp": int(time.time()) + 60, **claims}
        return {"auth": jwt.encode(body, key, algorithm="HS256")}

    ok = await http.get(f"/api/projects/{pid}", headers=token())
    assert ok.status_code == 200 and ok.json()["project"]["name"] == "jwt"
    # The client's scopes apply: read-only.
    denied = await http.post("/api/projects", json={"name": "x"}, headers=token())
    assert denied.status_code == 403
    for headers, reason in (
        (token("a-wrong-secret-that-is-long-enough-for-hs256"), "INVALID_JWT"),
        (token(exp=int(time.time()) - 10), "JWT_EXPIRED"),
        (token(appId="cs-unknown"), "UNKNOWN_APP_ID"),
        ({"auth": "not-a-jwt"}, "INVALID_JWT"),
    ):
        response = await http.get(f"/api/projects/{pid}", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["details"][0]["reason"] == reason


async def test_cli_creates_a_working_key(tmp_path: Path, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the CLI runs on the default embedded database")
    env = {**os.environ, "CHATPLANE_DATA_DIR": str(tmp_path)}
    env.pop("CHATPLANE_DATABASE_URL", None)
    code, out, _ = await cli_process(
        env, "keys", "create", "--name", "ci", "--scopes", "project:read"
    )
    assert code == 0
    created = json.loads(out)
    assert created["secret"].startswith("abl_sk-") and created["scopes"] == ["project:read"]

    app = App(
        make_settings(
            tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'chatplane.db'}", bootstrap_api_key=None
        )
    )
    await app.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = pb_grpc.ProjectServiceStub(channel)
            md = (("x-api-key", created["secret"]),)
            assert (await stub.ListProjects(pb.ListProjectsRequest(), metadata=md)).success
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.CreateProject(pb.CreateProjectRequest(name="x"), metadata=md)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await app.stop(1.0)


async def test_cli_creates_a_publishable_key(tmp_path: Path, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the CLI runs on the default embedded database")
    env = {**os.environ, "CHATPLANE_DATA_DIR": str(tmp_path)}
    env.pop("CHATPLANE_DATABASE_URL", None)
    origin = "https://shop.example.com"
    code, out, _ = await cli_process(
        env, "keys", "create", "--name", "web", "--type", "publishable", "--allowed-origins", origin
    )
    assert code == 0
    created = json.loads(out)
    assert created["secret"].startswith("pk_live_") and created["type"] == "publishable"
    assert sorted(created["scopes"]) == ["session:execute", "session:read"]
    assert created["allowedOrigins"] == [origin]
    # Without an origin, or with more than the Chat API's scopes: one clear line, no key.
    code, out, err = await cli_process(
        env, "keys", "create", "--name", "x", "--type", "publishable"
    )
    assert (code, out) == (1, "") and "origin" in err.lower() and "Traceback" not in err
    code, out, err = await cli_process(
        env,
        "keys",
        "create",
        "--name",
        "x",
        "--type",
        "publishable",
        "--allowed-origins",
        origin,
        "--scopes",
        "project:write",
    )
    assert (code, out) == (1, "")
    assert "chatplane: A publishable key may hold only session:read and session:execute" in err
    code, out, _ = await cli_process(env, "keys", "list")
    assert code == 0 and out.count("\tweb\t") == 1 and "\tx\t" not in out


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


async def test_two_replicas_share_one_limit_through_redis(
    tmp_path: Path, database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the limiter path")
    if not _redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    settings = {"rate_limit_per_minute": 4, "redis_url": "redis://127.0.0.1:6379/0"}
    one = App(make_settings(tmp_path, url, **settings))
    await one.start()
    two = App(make_settings(tmp_path, url, **settings))
    await two.start()
    try:
        tenant = await new_tenant(one, f"redis-{uuid.uuid4().hex[:6]}")
        codes = []
        for i in range(6):
            replica = (one, two)[i % 2]
            async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.grpc_port}") as channel:
                stub = pb_grpc.ProjectServiceStub(channel)
                try:
                    await stub.ListProjects(pb.ListProjectsRequest(), metadata=tenant.metadata)
                    codes.append("OK")
                except grpc.aio.AioRpcError as err:
                    codes.append(err.code().name)
        assert codes == ["OK"] * 4 + ["RESOURCE_EXHAUSTED"] * 2
    finally:
        await two.stop(1.0)
        await one.stop(1.0)
