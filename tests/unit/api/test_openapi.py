"""The OpenAPI generator over a small hand-made descriptor set: paths, parameters,
comments, behaviours, enums, streams."""

from __future__ import annotations

from google.api import annotations_pb2, field_behavior_pb2
from google.protobuf import descriptor_pb2
from openapi_spec_validator import validate

from chatplane.api.openapi import build

FDP = descriptor_pb2.FieldDescriptorProto


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    file = descriptor_pb2.FileDescriptorProto(
        name="chatplane/demo/v1/demo.proto", package="chatplane.demo.v1", syntax="proto3"
    )
    color = file.enum_type.add(name="Color")
    color.value.add(name="COLOR_UNSPECIFIED", number=0)
    color.value.add(name="COLOR_RED", number=1)
    thing = file.message_type.add(name="Thing")
    thing.field.add(name="thing_id", number=1, type=FDP.TYPE_STRING, json_name="thingId")
    thing.field.add(
        name="color",
        number=2,
        type=FDP.TYPE_ENUM,
        type_name=".chatplane.demo.v1.Color",
        json_name="color",
    )
    thing.field.add(
        name="count", number=3, type=FDP.TYPE_INT64, json_name="count", label=FDP.LABEL_REPEATED
    )
    created = thing.field.add(
        name="created",
        number=4,
        type=FDP.TYPE_MESSAGE,
        type_name=".google.protobuf.Timestamp",
        json_name="created",
    )
    created.options.Extensions[field_behavior_pb2.field_behavior].append(
        field_behavior_pb2.OUTPUT_ONLY
    )
    get = file.message_type.add(name="GetThingRequest")
    get.field.add(name="thing_id", number=1, type=FDP.TYPE_STRING, json_name="thingId")
    get.field.add(name="verbose", number=2, type=FDP.TYPE_BOOL, json_name="verbose")
    make = file.message_type.add(name="CreateThingRequest")
    name = make.field.add(name="name", number=1, type=FDP.TYPE_STRING, json_name="name")
    name.options.Extensions[field_behavior_pb2.field_behavior].append(field_behavior_pb2.REQUIRED)
    service = file.service.add(name="DemoService")
    method = service.method.add(
        name="GetThing",
        input_type=".chatplane.demo.v1.GetThingRequest",
        output_type=".chatplane.demo.v1.Thing",
    )
    method.options.Extensions[annotations_pb2.http].get = "/things/{thing_id}"
    create = service.method.add(
        name="CreateThing",
        input_type=".chatplane.demo.v1.CreateThingRequest",
        output_type=".chatplane.demo.v1.Thing",
        server_streaming=True,
    )
    create.options.Extensions[annotations_pb2.http].post = "/things"
    create.options.Extensions[annotations_pb2.http].body = "*"
    info = file.source_code_info
    info.location.add(path=[6, 0], leading_comments=" DemoService makes things.\n")
    info.location.add(path=[6, 0, 2, 0], leading_comments=" Returns one thing.\n")
    info.location.add(path=[4, 0, 2, 1], leading_comments=" The thing's color.\n")
    info.location.add(path=[5, 0, 2, 1], leading_comments=" Red.\n")
    return descriptor_pb2.FileDescriptorSet(file=[file])


def test_build() -> None:
    document = build(_descriptor_set())
    validate(document)  # type: ignore[arg-type]
    get = document["paths"]["/things/{thingId}"]["get"]
    assert get["summary"] == "Returns one thing."
    assert [(p["name"], p["in"]) for p in get["parameters"]] == [
        ("thingId", "path"),
        ("verbose", "query"),
    ]
    schemas = document["components"]["schemas"]
    thing = schemas["chatplane.demo.v1.Thing"]
    assert thing["properties"]["color"]["description"] == "The thing's color."
    assert thing["properties"]["count"] == {
        "type": "array",
        "items": {"type": "string", "format": "int64"},
    }
    assert thing["properties"]["created"]["readOnly"] is True
    assert thing["properties"]["created"]["format"] == "date-time"
    color = schemas["chatplane.demo.v1.Color"]
    assert color["enum"] == ["COLOR_UNSPECIFIED", "COLOR_RED"]
    assert "`COLOR_RED`: Red." in color["description"]
    post = document["paths"]["/things"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["name"]
    streamed = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert streamed["type"] == "array"
    assert document["tags"][0]["description"] == "DemoService makes things."
