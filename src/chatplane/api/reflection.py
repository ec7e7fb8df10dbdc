"""Server reflection under both names clients ask for: `grpc.reflection.v1` (grpcurl,
buf curl and Postman try it first) and `grpc.reflection.v1alpha`.

grpcio-reflection ships only v1alpha. The v1 service's messages are field for field the
v1alpha ones (same numbers, types and names; only the package differs), so the same bytes
decode as either: v1 is the library's servicer registered under the v1 method path.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1_SERVICE = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE: str = reflection.SERVICE_NAME


def enable(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Reflection (v1 and v1alpha) over `service_names`, which both names join."""
    servicer = reflection.aio.ReflectionServicer([*service_names, V1_SERVICE, V1ALPHA_SERVICE])
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": handler}),)
    )
