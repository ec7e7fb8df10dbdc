"""Bot function import: an uploaded ABL tools file (a TOOLS: section) or an OpenAPI 3
document (JSON or YAML) becomes tool declarations of a project (`imported_tools`), kept as
ABL declarations so every agent of the project compiles with them (agents/compile.py).

OpenAPI: every operation of `paths` (get, post, put, patch, delete) is an http tool named
by its operationId (else `method_path`); path and query parameters and the JSON request
body's top-level properties are its typed parameters (required ones required); the
endpoint is `servers[0].url` (variables at their defaults) + the path, whose `{name}`
placeholders the call fills. The outbound safety rules of http tools apply when a tool is
called, not at import."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from chatplane.agents.compile import compile_tools
from chatplane.errors import InvalidArgument

ACCEPTED = "Accepted: an ABL tools file (a TOOLS: section) or an OpenAPI 3 document (JSON or YAML)"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_SECTION = re.compile(r"^[A-Z][A-Z_]*:")
_METHODS = ("get", "post", "put", "patch", "delete")
_TYPES = {"string", "integer", "number", "boolean", "array", "object"}
MAX_TOOLS = 200


@dataclass(frozen=True, slots=True)
class Declaration:
    name: str
    source: str  # indented, as in a TOOLS: section
    origin: str  # abl | openapi


def bad_file(message: str) -> InvalidArgument:
    return InvalidArgument(message, field="fileId", reason="UNSUPPORTED_BOT_FUNCTIONS")


def parse_file(file_name: str, extension: str, data: bytes) -> list[Declaration]:
    """The tool declarations of one uploaded file; 400 naming what is accepted."""
    ext = (extension or file_name.rpartition(".")[2]).lower()
    if ext in ("js", "mjs", "cjs", "ts"):
        raise bad_file(f"JavaScript bot functions are not supported. {ACCEPTED}.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_file(f"The file is not UTF-8 text. {ACCEPTED}.") from None
    lines = text.splitlines()
    if any(line.rstrip() == "TOOLS:" for line in lines):
        return _abl(lines)
    doc: Any = None
    try:
        doc = json.loads(text)
    except ValueError:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            doc = None
    if isinstance(doc, dict) and str(doc.get("openapi", "")).startswith("3"):
        return _openapi(doc)
    if isinstance(doc, dict) and "swagger" in doc:
        raise bad_file(f"Swagger 2 documents are not supported. {ACCEPTED}.")
    raise bad_file(f"The file holds no tool definitions. {ACCEPTED}.")


def _abl(lines: list[str]) -> list[Declaration]:
    start = next(i for i, line in enumerate(lines) if line.rstrip() == "TOOLS:") + 1
    end = next((i for i in range(start, len(lines)) if _SECTION.match(lines[i])), len(lines))
    body = lines[start:end]
    tools, errors = compile_tools("\n".join(body))
    if errors:
        first = errors[0]
        raise bad_file(
            f"The tools file does not compile: line {first.line + start}: [{first.code}] "
            f"{first.message}"
        )
    if not tools:
        raise bad_file(f"The TOOLS: section is empty. {ACCEPTED}.")
    out = []
    for n, tool in enumerate(tools):
        # A tool's text: from its signature line to the next tool's (lines of the body).
        first_line = tool.line - 4
        last = tools[n + 1].line - 4 if n + 1 < len(tools) else len(body)
        out.append(Declaration(tool.name, "\n".join(body[first_line:last]).rstrip(), "abl"))
    return out


def _quote(text: str) -> str:
    return '"' + " ".join(str(text).replace('"', "'").split())[:500] + '"'


def _deref(doc: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """Local `$ref`s (`#/components/...`) resolved, a few levels deep."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < 10:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise bad_file(f"Only local $refs are supported (got {ref[:100]!r})")
        target: Any = doc
        for part in ref[2:].split("/"):
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"), None)
                if isinstance(target, dict)
                else None
            )
        if target is None:
            raise bad_file(f"Unresolved $ref {ref[:100]!r}")
        node, depth = target, depth + 1
    return node


def _type(doc: dict[str, Any], schema: Any) -> str:
    schema = _deref(doc, schema) or {}
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return (
        kind
        if kind in _TYPES
        else "object"
        if isinstance(schema, dict) and "properties" in schema
        else "string"
    )


def _base_url(doc: dict[str, Any]) -> str:
    servers = doc.get("servers") or []
    server = servers[0] if isinstance(servers, list) and servers else {}
    url = str(server.get("url", "")) if isinstance(server, dict) else ""
    for name, var in (server.get("variables") or {}).items() if isinstance(server, dict) else ():
        if isinstance(var, dict):
            url = url.replace("{" + str(name) + "}", str(var.get("default", "")))
    if not re.match(r"^https?://[^/\s]+", url):
        raise bad_file("The OpenAPI document needs servers[0].url as an absolute http(s) URL")
    return url.rstrip("/")


def _openapi(doc: dict[str, Any]) -> list[Declaration]:
    base = _base_url(doc)
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise bad_file("The OpenAPI document has no paths")
    out: list[Declaration] = []
    seen: set[str] = set()
    for path, raw in paths.items():
        item = _deref(doc, raw)
        if not isinstance(item, dict):
            continue
        shared = [_deref(doc, p) for p in item.get("parameters") or []]
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            name = _tool_name(op.get("operationId"), method, str(path))
            if name in seen:
                raise bad_file(f"Two operations are named {name!r}")
            seen.add(name)
            out.append(_operation(doc, name, method, base + str(path), shared=shared, op=op))
            if len(out) > MAX_TOOLS:
                raise bad_file(f"At most {MAX_TOOLS} operations can be imported at once")
    if not out:
        raise bad_file("The OpenAPI document has no operations")
    return out


def _tool_name(operation_id: Any, method: str, path: str) -> str:
    if isinstance(operation_id, str) and operation_id:
        name = re.sub(r"[^A-Za-z0-9_]", "_", operation_id)
    else:
        name = method + "_" + re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    if not _NAME.fullmatch(name):
        name = "op_" + name
    return name[:64]


def _operation(
    doc: dict[str, Any],
    name: str,
    method: str,
    endpoint: str,
    *,
    shared: list[Any],
    op: dict[str, Any],
) -> Declaration:
    params: dict[str, tuple[str, bool]] = {}  # name -> (type, required)
    own = [_deref(doc, p) for p in op.get("parameters") or []]
    by_key = {(p.get("in"), p.get("name")): p for p in [*shared, *own] if isinstance(p, dict)}
    for (where, pname), p in by_key.items():
        if where not in ("path", "query") or not isinstance(pname, str):
            continue  # headers and cookies are not tool arguments
        if not _PARAM_NAME.fullmatch(pname):
            raise bad_file(f"Parameter {pname[:60]!r} of {name} is not a valid tool parameter name")
        params[pname] = (_type(doc, p.get("schema")), where == "path" or bool(p.get("required")))
    body = _deref(doc, op.get("requestBody"))
    if isinstance(body, dict):
        media = (body.get("content") or {}).get("application/json") or {}
        schema = _deref(doc, media.get("schema")) if isinstance(media, dict) else None
        if isinstance(schema, dict):
            required = set(schema.get("required") or [])
            for pname, prop in (schema.get("properties") or {}).items():
                if _PARAM_NAME.fullmatch(str(pname)) and pname not in params:
                    params[str(pname)] = (_type(doc, prop), pname in required)
    ordered = sorted(params.items(), key=lambda kv: not kv[1][1])  # required first
    sig = ", ".join(f"{n}{'' if req else '?'}: {t}" for n, (t, req) in ordered)
    lines = [f"  {name}({sig}) -> object"]
    summary = op.get("summary") or op.get("description")
    if summary:
        lines.append(f"    description: {_quote(summary)}")
    lines += [
        "    type: http",
        f"    endpoint: {_quote(endpoint)}",
        f"    method: {method.upper()}",
    ]
    source = "\n".join(lines)
    _tools, errors = compile_tools(source)
    if errors:
        raise bad_file(f"Operation {name} does not make a valid tool: {errors[0].message}")
    return Declaration(name, source, "openapi")
