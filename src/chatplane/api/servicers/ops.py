"""chatplane.ops.v1.OpsService: probes, Prometheus metrics, the OpenAPI document and its
reference page (`/docs`, api/docs_page.py).

Its methods take no API key (the interceptor lets `OPEN_METHODS` through without
authentication, rate limits or shedding). Metrics answer loopback callers only, unless
the call carries `Authorization: Bearer <CHATPLANE_METRICS_TOKEN>`; through the gateway,
Envoy passes the client's own address in `x-chatplane-peer` (overwriting any the client
sent), so a remote REST client is not mistaken for Envoy's loopback connection.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.api import httpbody_pb2

from chatplane.api import call, docs_page
from chatplane.errors import PermissionDenied
from chatplane.observability import metrics
from chatplane.ops.v1 import ops_service_pb2 as pb
from chatplane.ops.v1 import ops_service_pb2_grpc as pb_grpc

_SERVICE = "/chatplane.ops.v1.OpsService/"
OPEN_METHODS = frozenset(
    _SERVICE + name
    for name in (
        "GetLiveness",
        "GetReadiness",
        "GetMetrics",
        "GetOpenApi",
        "GetDocs",
        "GetDocsAsset",
    )
)
# No scope: the interceptor admits OPEN_METHODS without credentials.
SCOPES = dict.fromkeys(OPEN_METHODS, "")
PEER_HEADER = "x-chatplane-peer"  # the REST client's address, set by Envoy
VIA_HEADER = "x-chatplane-via"  # "envoy" on the ops routes
DATABASE_TIMEOUT = 2.0

Context = grpc.aio.ServicerContext[Any, Any]


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def peer_host(peer: str) -> str:
    """The host of a grpc peer string (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return kind  # unix sockets and the like: not an address


class OpsServicer(pb_grpc.OpsServiceServicer):
    def __init__(
        self,
        *,
        ping_database: Callable[[], Awaitable[None]],
        draining: Callable[[], bool],
        openapi: Callable[[], bytes],
        metrics_token: str | None = None,
    ) -> None:
        self._ping = ping_database
        self._draining = draining
        self._openapi = openapi
        self._token = metrics_token

    async def GetLiveness(
        self, request: pb.GetLivenessRequest, context: Context
    ) -> pb.GetLivenessResponse:
        return pb.GetLivenessResponse(status="ok")

    async def _database(self) -> str:
        try:
            await asyncio.wait_for(self._ping(), DATABASE_TIMEOUT)
        except TimeoutError:
            return "unreachable: no answer within 2 s"
        except Exception as exc:  # any failure means not ready; the class says which
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    async def GetReadiness(
        self, request: pb.GetReadinessRequest, context: Context
    ) -> pb.GetReadinessResponse:
        via = call.request_headers(context).get(VIA_HEADER)
        checks = {
            "database": await self._database(),
            "draining": "yes" if self._draining() else "no",
            "gateway": "ok" if via == "envoy" else "direct",
        }
        ready = checks["database"] == "ok" and checks["draining"] == "no"
        if not ready:
            call.set_http_status(503)
        return pb.GetReadinessResponse(status="ready" if ready else "not_ready", checks=checks)

    def _allowed(self, context: Context) -> bool:
        headers = call.request_headers(context)
        if self._token:
            given = headers.get("authorization", "")
            if hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
                return True
        forwarded = headers.get(PEER_HEADER)
        if forwarded is not None and not _loopback(forwarded):
            return False
        return _loopback(peer_host(context.peer() or ""))

    async def GetMetrics(
        self, request: pb.GetMetricsRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        if not self._allowed(context):
            raise PermissionDenied(
                "Metrics are served to loopback clients, or with the metrics token",
                reason="METRICS_FORBIDDEN",
            )
        data = await asyncio.to_thread(metrics.exposition)
        return httpbody_pb2.HttpBody(content_type=metrics.CONTENT_TYPE, data=data)

    async def GetOpenApi(
        self, request: pb.GetOpenApiRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="application/json", data=self._openapi())

    async def GetDocs(self, request: pb.GetDocsRequest, context: Context) -> httpbody_pb2.HttpBody:
        await _send_headers(context, docs_page.PAGE_CACHE)
        return httpbody_pb2.HttpBody(
            content_type=docs_page.PAGE_CONTENT_TYPE, data=docs_page.page()
        )

    async def GetDocsAsset(
        self, request: pb.GetDocsAssetRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        asset, data = docs_page.asset(request.name)
        await _send_headers(context, docs_page.ASSET_CACHE)
        return httpbody_pb2.HttpBody(content_type=asset.content_type, data=data)


async def _send_headers(context: Context, cache_control: str) -> None:
    """Response headers of the page and its assets. Initial metadata, which the gateway's
    transcoder passes on as HTTP headers (the interceptor's own headers leave as trailers,
    of which status.lua copies only the rate-limit ones)."""
    await context.send_initial_metadata(
        (("cache-control", cache_control), ("x-content-type-options", "nosniff"))
    )
