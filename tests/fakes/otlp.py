"""An OTLP/HTTP trace receiver on 127.0.0.1:0 (POST /v1/traces, protobuf, gzip or not)
that keeps every span: for the tracing tests and the bench's tracing-cost section."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def _attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items if isinstance(kv, KeyValue)}


@dataclass(frozen=True)
class Exported:
    """One span as the receiver got it (ids in hex), with its resource's attributes."""

    span: PbSpan
    resource: dict[str, Any]
    name: str = ""
    trace_id: str = ""
    span_id: str = ""
    parent_id: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, s: PbSpan, resource: dict[str, Any]) -> Exported:
        ids = (s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex())
        return cls(s, resource, s.name, *ids, _attributes(s.attributes))


class OtlpReceiver:
    """POST /v1/traces (OTLP/HTTP, protobuf) on 127.0.0.1:0; keeps every span."""

    def __init__(self) -> None:
        self.spans: list[Exported] = []
        self.requests = 0  # export requests received
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        self.requests += 1
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope in resource_spans.scope_spans:
                self.spans.extend(Exported.of(s, resource) for s in scope.spans)
        self._arrived.set()
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_for(
        self, found: Callable[[list[Exported]], bool], *, seconds: float = 30.0
    ) -> list[Exported]:
        """The spans once `found` holds for them (the exporter sends in batches)."""
        async with asyncio.timeout(seconds):
            while not found(self.spans):
                self._arrived.clear()
                await self._arrived.wait()
        return self.spans
