"""Shared fixtures: a real chatplane server on 127.0.0.1:0 per storage backend, and helpers.

The server fixtures run once per backend: SQLite always, PostgreSQL too when
CHATPLANE_TEST_DATABASE_URL is set (`.ci/run` sets it when a local PostgreSQL answers).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from sqlalchemy.engine import make_url

from chatplane.app import App
from chatplane.config import Settings
from chatplane.iam import scopes

BOOTSTRAP_KEY = "abl_sk-test-bootstrap-admin-key"
PG_URL = os.environ.get("CHATPLANE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'chatplane.db'}"
        return
    yield from _fresh_postgres_database()


@pytest.fixture
def sqlite_only(database_url: str) -> None:
    """For tests of the default embedded configuration: they run once, with SQLite."""
    if not database_url.startswith("sqlite"):
        pytest.skip("runs the default embedded configuration")


def _fresh_postgres_database() -> Iterator[str]:
    """A throwaway database on the test PostgreSQL, dropped afterwards."""
    import asyncio

    import asyncpg

    base = make_url(PG_URL)
    name = f"chatplane_test_{uuid.uuid4().hex[:10]}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(data_dir: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "grpc_port": 0,
        "http_port": 0,
        "data_dir": data_dir,
        "database_url": database_url,
        "bootstrap_api_key": BOOTSTRAP_KEY,
        "rate_limit_per_minute": 100_000,
        "rate_limit_per_hour": 1_000_000,
        "shutdown_grace_seconds": 2.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[App]:
    server = App(make_settings(tmp_path_factory.mktemp("data"), database_url))
    await server.start()
    yield server
    await server.stop(1.0)


@pytest.fixture(scope="session")
async def channel(app: App) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as ch:
        yield ch


@dataclass(frozen=True)
class TenantKeys:
    """A fresh tenant with an all-scopes key."""

    tenant_id: str
    key: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def new_tenant(app: App, name: str = "t") -> TenantKeys:
    tenant = await app.iam.create_tenant(f"{name}-{uuid.uuid4().hex[:6]}")
    created = await app.iam.create_key(tenant.id, "test admin", list(scopes.ALL_SCOPES))
    return TenantKeys(tenant.id, created.secret)


@pytest.fixture
async def tenant(app: App) -> TenantKeys:
    return await new_tenant(app)


@pytest.fixture
async def other_tenant(app: App) -> TenantKeys:
    return await new_tenant(app, "other")


@pytest.fixture(scope="session")
async def gateway(app: App, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A real Envoy on 127.0.0.1:0 in front of the app; yields its base URL."""
    from chatplane.config import descriptor_path
    from chatplane.gateway import EnvoyProcess

    envoy = EnvoyProcess(
        http_port=0,
        grpc_port=app.grpc_port,
        descriptor=descriptor_path(),
        work_dir=tmp_path_factory.mktemp("envoy"),
        host="127.0.0.1",
    )
    await envoy.start()
    try:
        yield f"http://127.0.0.1:{envoy.http_port}"
    finally:
        await envoy.stop()


@pytest.fixture(scope="session")
async def http(gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway, timeout=10.0) as client:
        yield client
