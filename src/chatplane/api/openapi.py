"""OpenAPI 3.1 for every REST route, generated from the descriptor set Envoy transcodes
with (gen/descriptor.binpb): the `google.api.http` bindings give the paths, the proto
comments the descriptions, `google.api.field_behavior` the required and read-only
fields, enums their value names. Nothing is written by hand.

The JSON shapes are the transcoder's: camelCase field names, int64 as strings, enums as
their names, well-known types in their JSON mapping. Methods that pass bytes through
(google.api.HttpBody) are documented by their comment and content type only.

`python -m chatplane.api.openapi` prints the document.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

from chatplane.api.openapi_schema import FDP, WELL_KNOWN, Builder, Index, ref
from chatplane.config import descriptor_path

HTTP_BODY = "google.api.HttpBody"
# Methods answered without an API key (see api/servicers/ops.py).
OPEN_SERVICES = ("chatplane.ops.v1.OpsService",)
SSE_METHODS_HINT = "text/event-stream"

_VARIABLE = re.compile(r"\{([a-zA-Z0-9_.]+)(?:=[^}]*)?\}")


def _binding(rule: http_pb2.HttpRule) -> tuple[str, str] | None:
    for verb in ("get", "post", "put", "delete", "patch"):
        value = getattr(rule, verb)
        if value:
            return verb, value
    if rule.HasField("custom"):
        return rule.custom.kind.lower(), rule.custom.path
    return None


def _rules(rule: http_pb2.HttpRule) -> list[http_pb2.HttpRule]:
    return [rule, *rule.additional_bindings]


def _status_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "An error: google.rpc.Status with one google.rpc.ErrorInfo (AIP-193).",
        "properties": {
            "code": {"type": "integer", "description": "The gRPC status code."},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object"}},
        },
    }


def build(fds: descriptor_pb2.FileDescriptorSet, *, title: str = "chatplane") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every `google.api.http` binding of chatplane.*."""
    index = Index(fds)
    builder = Builder(index)
    paths: dict[str, dict[str, Any]] = {}
    tags = []
    for file in index.files:
        if not file.package.startswith("chatplane."):
            continue
        for service in file.service:
            service_name = f"{file.package}.{service.name}"
            tags.append(
                {
                    "name": service_name,
                    "description": index.comments.get(("service", service_name), ""),
                }
            )
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                for number, binding_rule in enumerate(_rules(rule)):
                    binding = _binding(binding_rule)
                    if binding is None:
                        continue
                    verb, template = binding
                    path, operation = _operation(
                        builder, service_name, method, binding_rule, template
                    )
                    if number:  # an additional binding of the same method
                        operation["operationId"] += f"_{number + 1}"
                    paths.setdefault(path, {})[verb] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "v1",
            "description": (
                "chatplane's REST API, served by Envoy's gRPC-JSON transcoder in front of "
                "the gRPC services. Generated from the protos (`GET /openapi.json`)."
            ),
        },
        "tags": tags,
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {
                **dict(sorted(builder.schemas.items())),
                "google.rpc.Status": _status_schema(),
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }


def _operation(
    builder: Builder,
    service_name: str,
    method: descriptor_pb2.MethodDescriptorProto,
    rule: http_pb2.HttpRule,
    template: str,
) -> tuple[str, dict[str, Any]]:
    index = builder.index
    request_type = method.input_type
    path_fields: list[str] = _VARIABLE.findall(template)
    parameters = []
    openapi_path = template

    for variable in path_fields:
        field = builder.field_by_path(request_type, variable)
        name = field.json_name if field is not None and "." not in variable else variable
        openapi_path = re.sub(
            r"\{" + re.escape(variable) + r"(=[^}]*)?\}", "{" + name + "}", openapi_path
        )
        description = (
            index.comments.get(("field", request_type, variable), "") if field is not None else ""
        )
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                **({"description": description} if description else {}),
            }
        )

    operation: dict[str, Any] = {
        "operationId": f"{service_name.rsplit('.', 1)[-1]}_{method.name}",
        "tags": [service_name],
        "description": index.comments.get(("method", service_name, method.name), ""),
    }
    summary = operation["description"].split("\n", 1)[0]
    if summary:
        operation["summary"] = summary[:120]
    if service_name in OPEN_SERVICES:
        operation["security"] = []

    is_raw_request = request_type.lstrip(".") == HTTP_BODY
    message = None if is_raw_request else index.messages.get(request_type)
    if rule.body == "*":
        if is_raw_request:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        elif message is not None:
            schema = builder.message_schema(request_type, skip=frozenset(path_fields))
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
    elif rule.body:
        field = builder.field_by_path(request_type, rule.body)
        if field is not None and field.type_name.lstrip(".") == HTTP_BODY:
            operation["requestBody"] = {
                "required": True,
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            }
        elif field is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": builder.field_schema(field)}},
            }
    elif message is not None:  # the other fields are query parameters
        for field in message.field:
            if field.name in path_fields or (
                field.type == FDP.TYPE_MESSAGE and field.type_name.lstrip(".") not in WELL_KNOWN
            ):
                continue
            schema = builder.field_schema(field)
            description = index.comments.get(("field", request_type, field.name), "")
            parameters.append(
                {
                    "name": field.json_name,
                    "in": "query",
                    "schema": schema,
                    **({"description": description} if description else {}),
                }
            )
    if parameters:
        operation["parameters"] = parameters

    response_type = method.output_type.lstrip(".")
    if response_type == HTTP_BODY:
        content: dict[str, Any]
        if "metrics" in template:
            content = {"text/plain": {"schema": {"type": "string"}}}
        elif method.server_streaming:  # a JSON body or an event stream (OpenAI's `stream`)
            content = {
                "application/json": {"schema": {"type": "object"}},
                SSE_METHODS_HINT: {"schema": {"type": "string"}},
            }
        else:
            content = {"application/json": {"schema": {"type": "string"}}}
        success: dict[str, Any] = {"description": "OK", "content": content}
    else:
        schema = builder.type_schema(method.output_type)
        if method.server_streaming:
            schema = {"type": "array", "items": schema}
        success = {"description": "OK", "content": {"application/json": {"schema": schema}}}
    operation["responses"] = {
        "200": success,
        "default": {
            "description": "An error",
            "content": {"application/json": {"schema": ref("google.rpc.Status")}},
        },
    }
    return openapi_path, operation


def load(path: Path | None = None) -> dict[str, Any]:
    fds = descriptor_pb2.FileDescriptorSet.FromString((path or descriptor_path()).read_bytes())
    return build(fds)


@functools.cache
def document_bytes() -> bytes:
    """The document of the descriptor set this process serves, built once."""
    return json.dumps(load(), separators=(",", ":")).encode()


if __name__ == "__main__":
    json.dump(load(), sys.stdout, indent=2)
    sys.stdout.write("\n")
