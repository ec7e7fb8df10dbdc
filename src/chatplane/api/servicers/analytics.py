"""chatplane.analytics.v1.AnalyticsService: the client's JSON body in, the vendor's JSON
out (both `google.api.HttpBody`); the analytics service does the rest."""

from __future__ import annotations

from typing import Any

import grpc
from google.api import httpbody_pb2

from chatplane.analytics.service import AnalyticsService
from chatplane.analytics.types import dumps, parse_body
from chatplane.analytics.v1 import analytics_service_pb2 as pb
from chatplane.analytics.v1 import analytics_service_pb2_grpc as pb_grpc
from chatplane.api import call
from chatplane.iam import scopes

_SERVICE = "/chatplane.analytics.v1.AnalyticsService/"
SCOPES = {
    _SERVICE + "GetSessions": scopes.ANALYTICS_READ,
    _SERVICE + "GetLlmUsageLogs": scopes.ANALYTICS_READ,
    _SERVICE + "StartBillingSummary": scopes.ANALYTICS_READ,
    _SERVICE + "GetBillingSummary": scopes.ANALYTICS_READ,
    _SERVICE + "StartContainmentReport": scopes.ANALYTICS_READ,
    _SERVICE + "GetContainmentReport": scopes.ANALYTICS_READ,
}

Context = grpc.aio.ServicerContext[Any, Any]


def json_body(value: Any) -> httpbody_pb2.HttpBody:
    return httpbody_pb2.HttpBody(content_type="application/json", data=dumps(value))


class AnalyticsServicer(pb_grpc.AnalyticsServiceServicer):
    def __init__(self, analytics: AnalyticsService) -> None:
        self._analytics = analytics

    async def GetSessions(
        self, request: pb.GetSessionsRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        who = call.principal()
        return json_body(
            await self._analytics.get_sessions(
                who.tenant_id,
                request.bot_id,
                parse_body(request.body.data),
                containment_type=request.containment_type,
                call_id=request.call_id,
            )
        )

    async def GetLlmUsageLogs(
        self, request: pb.GetLlmUsageLogsRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        who = call.principal()
        return json_body(
            await self._analytics.llm_logs(
                who.tenant_id, request.bot_id, parse_body(request.body.data)
            )
        )

    async def StartBillingSummary(
        self, request: pb.StartBillingSummaryRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        who = call.principal()
        return json_body(
            await self._analytics.start_billing(
                who.tenant_id,
                request.bot_id,
                parse_body(request.body.data),
                created_by=who.subject,
            )
        )

    async def GetBillingSummary(
        self, request: pb.GetBillingSummaryRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        who = call.principal()
        return json_body(await self._analytics.billing_status(who.tenant_id, request.bot_id))

    async def StartContainmentReport(
        self, request: pb.StartContainmentReportRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        who = call.principal()
        return json_body(
            await self._analytics.start_containment(
                who.tenant_id,
                request.bot_id,
                parse_body(request.body.data),
                skip=request.skip,
                limit=request.limit,
                created_by=who.subject,
            )
        )

    async def GetContainmentReport(
        self, request: pb.GetContainmentReportRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        who = call.principal()
        return json_body(
            await self._analytics.containment_status(who.tenant_id, request.bot_id, request.job_id)
        )
