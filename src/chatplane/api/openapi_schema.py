"""JSON Schemas of protobuf messages as Envoy's transcoder prints them (camelCase names,
int64 as strings, enums as their names, well-known types in their JSON mapping), from the
descriptor set; the OpenAPI document (openapi.py) refers to them."""

from __future__ import annotations

from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2

FDP = descriptor_pb2.FieldDescriptorProto

SCALARS: dict[int, dict[str, Any]] = {
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
WELL_KNOWN: dict[str, dict[str, Any]] = {
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


def clean(comment: str) -> str:
    lines = [line.strip() for line in comment.strip().splitlines()]
    lines = [line for line in lines if not line.startswith("buf:lint:ignore")]
    return "\n".join(lines).strip()


class Index:
    """Messages, enums and comments of a descriptor set by full name."""

    def __init__(self, fds: descriptor_pb2.FileDescriptorSet) -> None:
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        self.comments: dict[tuple[str, ...], str] = {}
        self.files = list(fds.file)
        for file in fds.file:
            comments = {
                tuple(loc.path): clean(loc.leading_comments)
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


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name.lstrip('.')}"}


class Builder:
    def __init__(self, index: Index) -> None:
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
            schema = dict(SCALARS[field.type])
        if field.label == FDP.LABEL_REPEATED:
            return {"type": "array", "items": schema}
        return schema

    def type_schema(self, type_name: str) -> dict[str, Any]:
        bare = type_name.lstrip(".")
        if bare in WELL_KNOWN:
            return dict(WELL_KNOWN[bare])
        if bare not in self.schemas:
            self.schemas[bare] = {}  # placeholder: recursion ends here
            self.schemas[bare] = self.message_schema(type_name)
        return ref(bare)

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
        return ref(bare)

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
