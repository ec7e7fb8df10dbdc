"""Unary calls send their response metadata (rate-limit headers, the HTTP status override)
with the reply, as trailing metadata, instead of in a separate initial-metadata round
(issue 15). REST clients still get them as HTTP headers: Envoy's status.lua moves them
from the trailers into the headers of a unary response."""

from __future__ import annotations

import grpc
import httpx

from chatplane.project.v1 import project_service_pb2 as pb
from chatplane.project.v1 import project_service_pb2_grpc as pb_grpc
from tests.conftest import TenantKeys
from tests.e2e.test_rest import create_project

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


async def test_chat_complete_rate_limit_headers_are_headers(
    http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    pid = await create_project(http, tenant)
    response = await http.post(
        "/api/v1/chat/complete",
        headers=tenant.headers,
        json={"projectId": pid, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200, response.text
    for name in RATE_HEADERS:
        assert int(response.headers[name]) >= 0, name
    assert int(response.headers["x-ratelimit-limit"]) > 0
    assert not any(k.startswith(("x-chatplane-", "grpc-")) for k in response.headers)
    assert response.json()["content"]


async def test_native_grpc_unary_gets_them_with_the_reply(
    channel: grpc.aio.Channel, tenant: TenantKeys
) -> None:
    call = pb_grpc.ProjectServiceStub(channel).ListProjects(
        pb.ListProjectsRequest(), metadata=tenant.metadata
    )
    assert (await call).success
    trailing = dict(await call.trailing_metadata() or ())
    assert int(trailing["x-ratelimit-limit"]) > 0
    assert int(trailing["x-ratelimit-remaining"]) >= 0
    assert int(trailing["x-ratelimit-reset"]) >= 0
