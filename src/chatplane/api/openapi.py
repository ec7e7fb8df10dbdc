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

from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf import descriptor_pb2

from chatplane.config import descriptor_path

FDP = descriptor_pb2.FieldDescriptorProto
HTTP_BODY = "google.api.HttpBody"
# Methods answered without an API key (see api/servicers/ops.py).
OPEN_SERVICES = ("chatplane.ops.v1.OpsService",)
SSE_METHODS_HINT = "text/event-stream"

_SCALARS: dict[int, dict[str, Any]] = {
    FDP.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FDP.TYPE_FLOAT: {"type": "number", "format": "float"},
    FDP.TYPE_INT32: {"type": "integer", "format": "int32"},
    FDP.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FDP.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FDP.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    FDP.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    FDP.TYPE_INT64: {"type": "string", "format": "int64"},
    FDP.TYPE_SINT64: {"type": "string", "format": "int64"},
    FDP.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FDP.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FDP.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FDP.TYPE_BOOL: {"type": "boolean"},
    FDP.TYPE_STRING: {"type": "string"},
    FDP.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
    "google.protobuf.DoubleValue": {"type": ["number", "null"]},
    "google.protobuf.FloatValue": {"type": ["number", "null"]},
    "google.protobuf.Int32Value": {"type": ["integer", "null"]},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"]},
    "google.protobuf.Int64Value": {"type": ["string", "null"]},
    "google.protobuf.UInt64Value": {"type": ["string", "null"]},
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"]},
}
_VARIABLE = re.compile(r"\{([a-zA-Z0-9_.]+)(?:=[^}]*)?\}")


def _clean(comment: str) -> str:
    lines = [line.strip() for line in comment.strip().splitlines()]
    lines = [line for line in lines if not line.startswith("buf:lint:ignore")]
    return "\n".join(lines).strip()


class _Index:
    """Messages, enums and comments of a descriptor set by full name."""

    def __init__(self, fds: descriptor_pb2.FileDescriptorSet) -> None:
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        self.comments: dict[tuple[str, ...], str] = {}
        self.files = list(fds.file)
        for file in fds.file:
            comments = {
                tuple(loc.path): _clean(loc.leading_comments)
                for loc in file.source_code_info.location
                if loc.leading_comments.strip()
            }
            prefix = f".{file.package}" if file.package else ""
            for i, message in enumerate(file.message_type):
                self._message(f"{prefix}.{message.name}", message, (4, i), comments)
            for i, enum in enumerate(file.enum_type):
                self._enum(f"{prefix}.{enum.name}", enum, (5, i), comments)
            for i, service in enumerate(file.service):
                name = f"{file.package}.{service.name}"
                self.comments[("service", name)] = comments.get((6, i), "")
                for j, method in enumerate(service.method):
                    self.comments[("method", name, method.name)] = comments.get((6, i, 2, j), "")

    def _message(
        self,
        name: str,
        message: descriptor_pb2.DescriptorProto,
        path: tuple[int, ...],
        comments: dict[tuple[int, ...], str],
    ) -> None:
        self.messages[name] = message
        self.comments[("message", name)] = comments.get(path, "")
        for i, field in enumerate(message.field):
            self.comments[("field", name, field.name)] = comments.get((*path, 2, i), "")
        for i, nested in enumerate(message.nested_type):
            self._message(f"{name}.{nested.name}", nested, (*path, 3, i), comments)
        for i, enum in enumerate(message.enum_type):
            self._enum(f"{name}.{enum.name}", enum, (*path, 4, i), comments)

    def _enum(
        self,
        name: str,
        enum: descriptor_pb2.EnumDescriptorProto,
        path: tuple[int, ...],
        comments: dict[tuple[int, ...], str],
    ) -> None:
        self.enums[name] = enum
        self.comments[("enum", name)] = comments.get(path, "")
        for i, value in enumerate(enum.value):
            self.comments[("value", name, value.name)] = comments.get((*path, 2, i), "")


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name.lstrip('.')}"}


class _Builder:
    def __init__(self, index: _Index) -> None:
        self.index = index
        self.schemas: dict[str, Any] = {}

    def field_schema(self, field: FDP) -> dict[str, Any]:
        if field.type == FDP.TYPE_MESSAGE:
            entry = self.index.messages.get(field.type_name)
            if entry is not None and entry.options.map_entry:
                value = next(f for f in entry.field if f.name == "value")
                return {"type": "object", "additionalProperties": self.field_schema(value)}
            schema = self.type_schema(field.type_name)
        elif field.type == FDP.TYPE_ENUM:
            schema = self.enum_schema(field.type_name)
        else:
            schema = dict(_SCALARS[field.type])
        if field.label == FDP.LABEL_REPEATED:
            return {"type": "array", "items": schema}
        return schema

    def type_schema(self, type_name: str) -> dict[str, Any]:
        bare = type_name.lstrip(".")
        if bare in _WELL_KNOWN:
            return dict(_WELL_KNOWN[bare])
        if bare not in self.schemas:
            self.schemas[bare] = {}  # placeholder: recursion ends here
            self.schemas[bare] = self.message_schema(type_name)
        return _ref(bare)

    def enum_schema(self, type_name: str) -> dict[str, Any]:
        bare = type_name.lstrip(".")
        if bare not in self.schemas:
            enum = self.index.enums[type_name]
            lines = [self.index.comments.get(("enum", type_name), "")]
            for value in enum.value:
                text = self.index.comments.get(("value", type_name, value.name), "")
                lines.append(f"- `{value.name}`: {text}" if text else f"- `{value.name}`")
            self.schemas[bare] = {
                "type": "string",
                "enum": [value.name for value in enum.value],
                "description": "\n".join(line for line in lines if line),
            }
        return _ref(bare)

    def message_schema(self, type_name: str, *, skip: frozenset[str] = frozenset()) -> Any:
        message = self.index.messages[type_name]
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in message.field:
            if field.name in skip:
                continue
            schema = self.field_schema(field)
            description = self.index.comments.get(("field", type_name, field.name), "")
            behaviours = list(field.options.Extensions[field_behavior_pb2.field_behavior])
            if description:
                schema = {**schema, "description": description}
            if field_behavior_pb2.OUTPUT_ONLY in behaviours:
                schema = {**schema, "readOnly": True}
            if field_behavior_pb2.REQUIRED in behaviours:
                required.append(field.json_name)
            properties[field.json_name] = schema
        out: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            out["required"] = required
        description = self.index.comments.get(("message", type_name), "")
        if description:
            out["description"] = description
        return out

    def field_by_path(self, type_name: str, path: str) -> FDP | None:
        message = self.index.messages.get(type_name)
        field = None
        for part in path.split("."):
            if message is None:
                return None
            field = next((f for f in message.field if f.name == part), None)
            if field is None:
                return None
            message = self.index.messages.get(field.type_name)
        return field


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
    index = _Index(fds)
    builder = _Builder(index)
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
    builder: _Builder,
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
                field.type == FDP.TYPE_MESSAGE and field.type_name.lstrip(".") not in _WELL_KNOWN
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
        kind = SSE_METHODS_HINT if method.server_streaming else "application/json"
        content = {kind: {"schema": {"type": "string"}}}
        if method.server_streaming:  # a JSON body or an event stream (OpenAI's `stream`)
            content = {
                "application/json": {"schema": {"type": "object"}},
                SSE_METHODS_HINT: {"schema": {"type": "string"}},
            }
        if "metrics" in template:
            content = {"text/plain": {"schema": {"type": "string"}}}
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
            "content": {"application/json": {"schema": _ref("google.rpc.Status")}},
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
