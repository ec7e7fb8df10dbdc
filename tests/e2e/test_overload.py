"""Overload shedding (issue 12, item 6): beyond CHATPLANE_MAX_INFLIGHT calls in flight a
server process answers 503 "Server overloaded" with Retry-After at once, through Envoy,
before any model call; the admitted calls finish normally."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from chatplane.app import App
from chatplane.config import descriptor_path
from chatplane.gateway import EnvoyProcess, render_envoy_config
from tests.conftest import make_settings, new_tenant
from tests.e2e.test_rest import create_project

LIMIT = 3


async def test_calls_beyond_the_limit_are_shed_at_once(tmp_path: Path, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("one backend is enough")
    app = App(
        make_settings(
            tmp_path,
            f"sqlite+aiosqlite:///{tmp_path}/o.db",
            max_inflight=LIMIT,
            local_token_delay=0.02,
            session_rate_limit_per_minute=0,
        )
    )
    await app.start()
    try:
        async with EnvoyProcess(
            http_port=0,
            grpc_port=app.grpc_port,
            descriptor=descriptor_path(),
            work_dir=tmp_path / "envoy",
        ) as envoy:
            tenant = await new_tenant(app)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{envoy.http_port}", timeout=30
            ) as http:
                project = await create_project(http, tenant)
                body = {
                    "projectId": project,
                    "messages": [{"role": "user", "content": "one two three " * 10}],
                }

                async def stream() -> tuple[int, str, str | None, bytes]:
                    async with http.stream(
                        "POST", "/api/v1/chat/stream", json=body, headers=tenant.headers
                    ) as response:
                        data = await response.aread()
                        return (
                            response.status_code,
                            response.headers.get("content-type", ""),
                            response.headers.get("retry-after"),
                            data,
                        )

                results = await asyncio.gather(*(stream() for _ in range(4 * LIMIT)))
                ok = [r for r in results if r[0] == 200]
                shed = [r for r in results if r[0] == 503]
                assert len(ok) + len(shed) == len(results)
                assert 1 <= len(ok) <= LIMIT + 1 and shed  # +1: a stream may end early
                for _, _, retry_after, data in shed:
                    assert retry_after == "1"
                    assert b'"message":"Server overloaded"' in data
                    assert b"SERVER_OVERLOADED" in data
                for _, _, _, data in ok:
                    assert data.rstrip().split(b"\n")[-2] == b"event: complete"
                assert app.server.inflight.in_flight == 0  # every slot came back
                again = await http.post("/api/v1/chat/complete", json=body, headers=tenant.headers)
                assert again.status_code == 200
    finally:
        await app.stop(1.0)


def test_envoy_limits_are_set_deliberately(tmp_path: Path) -> None:
    config = render_envoy_config(
        http_port=0,
        grpc_port=1,
        descriptor=descriptor_path(),
        admin_address_path=None,
        max_upstream_requests=2048,
    )
    assert "max_active_downstream_connections: 10000" in config
    assert "max_requests: 2048" in config
    assert 'flags: ["UO"]' in config
