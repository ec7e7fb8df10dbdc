"""A bounded fuzz of every REST route through the real Envoy: no input gives a 5xx.

Routes come from the `google.api.http` bindings in the descriptor set Envoy loads, so a
new route is fuzzed without editing this file. Inputs come from a seeded generator over a
corpus of hostile values (invalid UTF-8, deep nesting, huge strings, out-of-range dates
and numbers, wrong JSON types, control characters), placed in path variables, query
parameters and bodies, with and without credentials. Set CHATPLANE_FUZZ_SEED to explore
other inputs, CHATPLANE_FUZZ_CASES for more per route.

Allowed 5xx: 501 for what is documented as not built yet, 503 "Runtime not configured"
(a model no provider serves, a documented answer). Every error body stays short (no
input echoed in full) and never names an exception class.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from chatplane.app import App
from chatplane.config import descriptor_path
from tests.conftest import TenantKeys
from tests.e2e.test_rest import create_project

SEED = int(os.environ.get("CHATPLANE_FUZZ_SEED") or 20261130)
CASES_PER_ROUTE = int(os.environ.get("CHATPLANE_FUZZ_CASES") or 60)
ALLOWED_5XX_REASONS = {"UNIMPLEMENTED", "RUNTIME_NOT_CONFIGURED"}
MAX_ERROR_BODY = 4096

NASTY_STRINGS: list[str] = [
    "",
    " ",
    "a" * 100_000,
    "x" * 129,
    "\x00",
    "nul\x00inside",
    "\u202ertl",
    "💥" * 50,
    "\ud7ff\ue000",
    "../../etc/passwd",
    "%ff",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "2026-02-30",
    "claude-sonnet-4-6",
    "chatplane-local-echo",
    "gpt-unknown",
    "fast",
    "model",
    "user",
    "tool",
    "project:read",
    "keys:admin",
    "-1",
    "1e309",
    "null",
]
NASTY_NUMBERS: list[Any] = [0, -1, 1, 2**31, -(2**31) - 1, 2**63, 1e308, -1e308, 0.5, 200_001]
# Path segments, already percent-encoded where they must be.
NASTY_PATH_SEGMENTS: list[str] = [
    "%ff",
    "%c3%28",
    "%ed%a0%80",
    "%00",
    "%2e%2e",
    "a" * 200,
    "a" * 5000,
    "x%20y",
    quote("💥"),
    "key_",
    "proj_nonexistent",
    "%25",
]


def deep(depth: int, kind: str) -> Any:
    """`x` nested `depth` times in arrays, objects, or both in turn (`mixed`)."""
    value: Any = "x"
    for i in range(depth):
        nest_in_object = kind == "object" or (kind == "mixed" and i % 2)
        value = {"a": value} if nest_in_object else [value]
    return value


@dataclass(frozen=True)
class Route:
    verb: str
    template: str
    body: str
    request: Descriptor

    @property
    def variables(self) -> list[str]:
        return re.findall(r"{([^}=]+)", self.template)


def rest_routes(served: set[str]) -> list[Route]:
    """The REST bindings of the services in `served` (full names)."""
    data = descriptor_path().read_bytes()
    fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    pool = descriptor_pool.DescriptorPool()  # what Envoy serves, imported or not
    for file in fds.file:
        pool.Add(file)
    routes = []
    for file in fds.file:
        if not file.package.startswith("chatplane."):
            continue
        for service in file.service:
            if f"{file.package}.{service.name}" not in served:
                continue
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                if verb is None or verb == "custom":
                    continue
                request = pool.FindMessageTypeByName(method.input_type.lstrip("."))
                routes.append(Route(verb.upper(), getattr(rule, verb), rule.body, request))
    return routes


class Fuzzer:
    def __init__(self, rng: random.Random, project_id: str) -> None:
        self.rng = rng
        self.project_id = project_id

    def string(self, field: FieldDescriptor) -> Any:
        r = self.rng.random()
        if r < 0.1 and field.name.endswith("project_id"):
            return self.project_id
        if r < 0.75:
            return self.rng.choice(NASTY_STRINGS)
        return self.wrong_type()

    def wrong_type(self) -> Any:
        return self.rng.choice(
            [
                None,
                True,
                self.rng.choice(NASTY_NUMBERS),
                [],
                {},
                [self.rng.choice(NASTY_STRINGS)],
                {"k": self.rng.choice(NASTY_STRINGS)},
                deep(self.rng.choice([5, 31, 40, 90, 300]), self.rng.choice(["list", "object"])),
            ]
        )

    def json_value(self, depth: int = 0) -> Any:
        """Arbitrary JSON, for Struct/Value fields (message content, tool schemas)."""
        r = self.rng.random()
        if r < 0.15:
            return deep(
                self.rng.choice([31, 33, 45, 90, 300]), self.rng.choice(["list", "object", "mixed"])
            )
        if depth > 3 or r < 0.5:
            return self.rng.choice([*NASTY_STRINGS[:12], *NASTY_NUMBERS, None, True])
        if r < 0.75:
            return [self.json_value(depth + 1) for _ in range(self.rng.randint(0, 3))]
        keys = ["type", "text", "source", "properties", "a", ""]
        return {self.rng.choice(keys): self.json_value(depth + 1) for _ in range(3)}

    def field_value(self, field: FieldDescriptor, depth: int) -> Any:
        if (
            field.is_repeated
            and field.message_type is not None
            and (field.message_type.GetOptions().map_entry)
        ):
            return {self.rng.choice(NASTY_STRINGS[:14]): self.rng.choice(NASTY_STRINGS)}
        if field.is_repeated and self.rng.random() < 0.85:
            return [self.scalar(field, depth) for _ in range(self.rng.randint(0, 3))]
        return self.scalar(field, depth)

    def scalar(self, field: FieldDescriptor, depth: int) -> Any:
        if self.rng.random() < 0.08:
            return self.wrong_type()
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            name = field.message_type.full_name
            if name.startswith("google.protobuf.") and name.endswith(("Value", "Struct")):
                return self.json_value()
            if name.startswith("google.protobuf."):  # wrappers, timestamps
                return self.rng.choice([*NASTY_STRINGS[:16], *NASTY_NUMBERS])
            return self.message(field.message_type, depth + 1)
        if field.type == FieldDescriptor.TYPE_STRING:
            return self.string(field)
        if field.type == FieldDescriptor.TYPE_BOOL:
            return self.rng.choice([True, False, "true", 1])
        if field.type == FieldDescriptor.TYPE_ENUM:
            return self.rng.choice([0, 99, "UNKNOWN", *[v.name for v in field.enum_type.values]])
        return self.rng.choice([*NASTY_NUMBERS, "12", "1e3", "abc"])

    def message(self, descriptor: Descriptor, depth: int = 0) -> dict[str, Any]:
        if depth > 3:
            return {}
        out: dict[str, Any] = {}
        for field in descriptor.fields:
            if self.rng.random() < 0.6:
                out[field.json_name] = self.field_value(field, depth)
        if self.rng.random() < 0.1:
            out["unknownField"] = "x"
        return out

    def query(self, route: Route) -> dict[str, str]:
        params: dict[str, str] = {}
        for field in route.request.fields:
            if field.name in route.variables or field.type == FieldDescriptor.TYPE_MESSAGE:
                continue
            if self.rng.random() < 0.5:
                value = self.scalar(field, 0)
                if isinstance(value, str) or not isinstance(value, dict | list):
                    params[field.json_name] = str(value)[:20_000]  # URLs stay under 64 KiB
        return params

    def path(self, route: Route) -> str:
        path = route.template
        for name in route.variables:
            segment = (
                self.project_id
                if name == "project_id" and self.rng.random() < 0.2
                else self.rng.choice(NASTY_PATH_SEGMENTS)
            )
            path = re.sub(r"{" + re.escape(name) + r"(=[^}]*)?}", segment, path)
        return path

    def body(self, route: Route) -> bytes | None:
        if not route.body:
            return None
        r = self.rng.random()
        if r < 0.08:
            return self.rng.choice(
                [
                    b"",
                    b"{",
                    b"null",
                    b"[]",
                    b'"text"',
                    b'{"name":"\xff\xfe"}',
                    b'{"projectId":"\xc3\x28"}',
                    b'{"messages":[{"role":"user","content":"\xed\xa0\x80"}]}',
                    b'{"name":"\\ud800"}',
                    b"[" * 5000 + b"]" * 5000,
                    b'{"a":' * 3000 + b"1" + b"}" * 3000,
                    b'{"maxTokens": NaN}',
                ]
            )
        ascii_only = self.rng.random() < 0.5
        return json.dumps(self.message(route.request), ensure_ascii=ascii_only).encode()


def _check(response: httpx.Response, what: str) -> None:
    status = response.status_code
    text = response.text
    assert "Traceback" not in text and "<class" not in text, f"{what}: {text[:300]}"
    if status >= 400 and "text/event-stream" not in response.headers.get("content-type", ""):
        assert len(response.content) <= MAX_ERROR_BODY, f"{what}: {status}, {len(text)} bytes"
    if status < 500:
        return
    reason = ""
    with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
        reason = response.json()["details"][0]["reason"]
    assert status in (501, 503) and reason in ALLOWED_5XX_REASONS, f"{what}: {status} {text[:300]}"


async def test_fuzz_every_rest_route_gives_no_5xx(
    app: App, http: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    routes = rest_routes(set(app.server.service_names))
    assert len(routes) >= 10
    project_id = await create_project(http, tenant)
    rng = random.Random(SEED)
    fuzz = Fuzzer(rng, project_id)
    failures: list[str] = []
    sent = 0
    for route in routes:
        for case in range(CASES_PER_ROUTE):
            path = fuzz.path(route)
            params = fuzz.query(route) if route.verb in ("GET", "DELETE") else {}
            if rng.random() < 0.05:  # unknown query parameter, echoed by Envoy's 400
                params["q" * rng.choice([1, 300, 20_000])] = "1"
            if rng.random() < 0.03:  # unknown route, echoed by Envoy's 404
                path += "/" + "z" * rng.choice([1, 3000])
            body = fuzz.body(route)
            headers = dict(tenant.headers) if case % 5 else {}
            if body is not None:
                headers["content-type"] = "application/json"
            shown = (body or b"")[:200]
            what = f"{route.verb} {path[:100]} params={str(params)[:200]} body={shown!r}"
            response = await http.request(
                route.verb, path, params=params, content=body, headers=headers, timeout=30
            )
            sent += 1
            try:
                _check(response, what)
            except AssertionError as exc:
                failures.append(str(exc))
    assert not failures, f"{len(failures)} of {sent} failed:\n" + "\n".join(failures[:20])
