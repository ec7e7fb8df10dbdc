"""Lowering of TOOLS: `name(a: t, b?: t = d) -> ret` signatures with indented properties."""

from __future__ import annotations

import re

from chatplane.lang import ir
from chatplane.lang.ast import Node
from chatplane.lang.lower_common import Ctx, data_of, ival, sval
from chatplane.lang.values import Json, node_data, scalar, split_list, unquote

_SIG = re.compile(r"\s*([A-Za-z_][\w.\-]*)\s*(\(.*\))?\s*(?:->\s*(.+?))?\s*$", re.S)
_PARAM = re.compile(r"\s*([A-Za-z_][\w\-]*)(\?)?\s*(?::\s*([^=]+?))?\s*(?:=\s*(.+))?\s*$", re.S)
_PROPS = {"DESCRIPTION", "TYPE", "ENDPOINT", "METHOD", "HEADERS", "TIMEOUT", "PARAMETERS"}
_PROPS |= {"PARAMS", "NAME", "RETURNS"}


def lower_tools(ctx: Ctx, node: Node) -> list[ir.Tool]:
    out: list[ir.Tool] = []
    for c in node.children:
        if c.kind == "text":
            t = _from_signature(ctx, c)
        elif c.kind == "item":
            t = _from_yaml(ctx, c)
        elif c.value is None and c.children:  # `name:` block with `parameters:` etc.
            t = _build(ctx, c.key, [], None, c)
        else:
            ctx.sink.error(
                "ABL0109",
                f"line {c.line} in TOOLS is not a tool signature such as "
                "'lookup(id: string) -> {name: string}'",
                c.line,
                c.col,
            )
            continue
        if t is not None:
            out.append(t)
    return out


def _from_signature(ctx: Ctx, c: Node) -> ir.Tool | None:
    text = c.value or ""
    m = _SIG.match(text)
    if m is None or (m.group(2) is None and "(" in text):
        ctx.sink.error(
            "ABL0109",
            f"tool signature at line {c.line} is malformed; write "
            "'name(param: type, other?: type = default) -> return_type'",
            c.line,
            c.col,
        )
        return None
    params: list[ir.Param] = []
    inner = (m.group(2) or "()")[1:-1]
    if inner.count("(") != inner.count(")"):
        ctx.sink.error(
            "ABL0109", f"unbalanced parentheses in the signature at line {c.line}", c.line, c.col
        )
        return None
    for p in split_list(inner):
        pm = _PARAM.match(p)
        if pm is None:
            ctx.sink.error(
                "ABL0109",
                f"parameter {p!r} at line {c.line} should read 'name: type' or "
                "'name?: type = default'",
                c.line,
                c.col + text.find(p),
            )
            continue
        has_default = pm.group(4) is not None
        params.append(
            ir.Param(
                name=pm.group(1),
                type=(pm.group(3) or "string").strip(),
                optional=bool(pm.group(2)) or has_default,
                default=scalar(pm.group(4)) if has_default else None,
                has_default=has_default,
            )
        )
    return _build(ctx, m.group(1), params, (m.group(3) or "").strip() or None, c)


def _from_yaml(ctx: Ctx, it: Node) -> ir.Tool | None:
    name = sval(it.get("NAME"))
    if not name:
        ctx.sink.error("ABL0109", f"tool at line {it.line} has no name:", it.line, it.col)
        return None
    params: list[ir.Param] = []
    pnode = it.get("PARAMETERS", "PARAMS")
    if pnode is not None:
        for p in pnode.items():
            pname = sval(p.get("NAME")) or ""
            req = p.get("REQUIRED")
            default = p.get("DEFAULT")
            optional = req is not None and scalar(req.value or "") is False
            params.append(
                ir.Param(
                    pname,
                    sval(p.get("TYPE")) or "string",
                    optional or default is not None,
                    node_data(default) if default is not None else None,
                    default is not None,
                    sval(p.get("DESCRIPTION")),
                )
            )
    ret = it.get("RETURNS")
    return _build(ctx, name, params, _yaml_type(ret) if ret is not None else None, it)


def _yaml_type(node: Node) -> str:
    """`returns: {type: object, fields: {a: string}}` back to the signature spelling."""
    if node.value is not None:
        return sval(node) or ""
    fields = node.get("FIELDS", "PROPERTIES")
    if fields is not None:
        inner = ", ".join(f"{f.key}: {_yaml_type(f)}" for f in fields.entries())
        return "{" + inner + "}"
    return sval(node.get("TYPE")) or "object"


def _build(ctx: Ctx, name: str, params: list[ir.Param], returns: str | None, node: Node) -> ir.Tool:
    kind = sval(node.get("TYPE"))
    endpoint = sval(node.get("ENDPOINT"))
    if kind is None and endpoint:
        kind = "http"
    http = None
    if kind == "http":
        if not endpoint:
            ctx.sink.error(
                "ABL0108",
                f"http tool '{name}' at line {node.line} has no endpoint:",
                node.line,
                node.col,
            )
        headers_node = node.get("HEADERS")
        headers: dict[str, str] = {}
        if headers_node is not None:
            data = node_data(headers_node)
            if isinstance(data, dict):
                headers = {str(k): str(v) for k, v in data.items()}
        http = ir.HttpConfig(
            endpoint or "",
            (sval(node.get("METHOD")) or "GET").upper(),
            headers,
            ival(ctx, node.get("TIMEOUT")),
        )
    supported = kind in (None, "http")
    if not supported:
        ctx.sink.unsupported(f"tool type '{kind}' (tool '{name}')", node.line, node.col)
    extra: dict[str, Json] = {}
    for c in node.entries():
        if c.ukey not in _PROPS:
            extra[c.key] = data_of(c)
    enrich = node.get("PARAMETERS", "PARAMS")
    if enrich is not None and node.kind == "text":
        params = _enrich(params, enrich)
    return ir.Tool(
        name,
        tuple(params),
        returns,
        sval(node.get("DESCRIPTION")),
        kind,
        http,
        node.line,
        supported,
        extra,
    )


def _enrich(params: list[ir.Param], node: Node) -> list[ir.Param]:
    """A `parameters:` block adds descriptions, defaults and sources to signature params."""
    by_name = {c.key: c for c in node.entries()}
    out: list[ir.Param] = []
    for p in params:
        c = by_name.get(p.name)
        if c is None:
            out.append(p)
            continue
        data = node_data(c)
        props = data if isinstance(data, dict) else {"fields": data}
        desc = props.get("description", p.description)
        has_default = p.has_default or "default" in props
        default = props.get("default", p.default)
        req = props.get("required")
        optional = p.optional or has_default or req is False
        if req is True:
            optional = False
        extra = {k: v for k, v in props.items() if k not in ("description", "default", "required")}
        out.append(
            ir.Param(
                p.name,
                p.type,
                optional,
                default,
                has_default,
                unquote(desc) if isinstance(desc, str) else None,
                extra,
            )
        )
    return out
