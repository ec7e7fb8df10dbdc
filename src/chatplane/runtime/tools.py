"""Tool calls: arguments checked against the signature, mocks, results, CALL's branches."""

from __future__ import annotations

import json
from typing import Any

from chatplane.lang import ir
from chatplane.runtime import handlers
from chatplane.runtime.context import Turn
from chatplane.runtime.effects import CallTool, Gen
from chatplane.runtime.handlers import NEXT, STOP
from chatplane.runtime.types import ToolResult, ToolSchema

_JSON_TYPES = {
    "string": "string",
    "str": "string",
    "number": "number",
    "float": "number",
    "integer": "integer",
    "int": "integer",
    "boolean": "boolean",
    "bool": "boolean",
    "object": "object",
    "array": "array",
    "list": "array",
}


def schema(tool: ir.Tool) -> ToolSchema:
    props: dict[str, Any] = {}
    required: list[str] = []
    for p in tool.params:
        jt = _JSON_TYPES.get(p.type.lower().rstrip("[]"))
        prop: dict[str, Any] = {"type": "array"} if p.type.endswith("[]") else {}
        if jt and not prop:
            prop["type"] = jt
        if p.description:
            prop["description"] = p.description
        props[p.name] = prop
        if not p.optional and not p.has_default:
            required.append(p.name)
    params = {"type": "object", "properties": props, "required": required}
    return ToolSchema(tool.name, tool.description or tool.name, params)


def check_args(tool: ir.Tool, args: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Arguments coerced to the signature's types; an error for missing/unknown/bad ones."""
    out: dict[str, Any] = {}
    known = {p.name for p in tool.params}
    extra = sorted(set(args) - known - {"message_metadata"})
    if extra:
        return args, f"unknown argument(s) {', '.join(extra)} for {tool.name}"
    for p in tool.params:
        v = args.get(p.name)
        if v is None:
            if p.has_default:
                out[p.name] = p.default
            elif not p.optional:
                return args, f"missing required argument {p.name!r} for {tool.name}"
            continue
        ok, cv = _coerce(p.type, v)
        if not ok:
            return args, f"argument {p.name!r} of {tool.name} must be {p.type}"
        out[p.name] = cv
    if "message_metadata" in args:
        out["message_metadata"] = args["message_metadata"]
    return out, None


def _coerce(typ: str, v: Any) -> tuple[bool, Any]:
    t = typ.lower()
    if t.endswith("[]") or t in ("array", "list"):
        if isinstance(v, str):
            v = _parse(v)
        return isinstance(v, list), v
    jt = _JSON_TYPES.get(t)
    if jt == "string":
        if isinstance(v, dict | list):
            return False, v
        return True, v if isinstance(v, str) else json.dumps(v)
    if jt in ("number", "integer"):
        if isinstance(v, str):
            v = _parse(v.strip())
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False, v
        if jt == "integer" and isinstance(v, float):
            return v.is_integer(), int(v) if v.is_integer() else v
        return True, v
    if jt == "boolean":
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            return True, v.strip().lower() == "true"
        return isinstance(v, bool), v
    if jt == "object":
        if isinstance(v, str):
            v = _parse(v)
        return isinstance(v, dict), v
    return True, v  # any other declared type (date, email, custom objects): as given


def _parse(s: str) -> Any:
    try:
        return json.loads(s)
    except ValueError:
        return s


def invoke(
    t: Turn, name: str, args: dict[str, Any], *, parent: str | None = None
) -> Gen[ToolResult]:
    """One tool call with its tool_call / tool_result events. Never raises."""
    tool = next((x for x in t.program.tools if x.name == name), None)
    span = t.new_id()
    started = t.now_ms()
    mocked = t.input.test is not None and any(m.tool_name == name for m in t.input.test.tool_mocks)
    t.event(
        "tool_call",
        {"toolName": name, "arguments": args, "mocked": mocked},
        span=span,
        parent=parent,
    )
    res: ToolResult
    if t.tool_calls >= t.limits.max_tool_calls:
        res = ToolResult(
            False,
            None,
            f"more than {t.limits.max_tool_calls} tool calls in a turn",
            "limit_exceeded",
        )
    elif tool is None:
        res = ToolResult(False, None, f"unknown tool {name!r}", "invalid_arguments")
    elif not tool.supported and not mocked:
        res = ToolResult(False, None, f"tool type {tool.kind!r} is not supported yet", "tool_error")
    else:
        checked, err = check_args(tool, args)
        if err is not None:
            res = ToolResult(False, None, err, "invalid_arguments")
        else:
            t.tool_calls += 1
            got = yield CallTool(tool, checked, span)
            res = (
                got
                if isinstance(got, ToolResult)
                else ToolResult(False, None, "no result", "tool_error")
            )
    t.event(
        "tool_result",
        {
            "toolName": name,
            "success": res.ok,
            "latencyMs": res.latency_ms,
            "error": res.error,
            "errorType": res.error_type,
        },
        started=started,
        parent=span,
    )
    if not res.ok:
        t.error("tool_error", res.error or "tool failed", toolName=name, subtype=res.error_type)
    return res


def call_action(t: Turn, step: ir.Step | None, a: ir.CallTool) -> Gen[str]:
    """CALL ... WITH ... AS ... with ON_RESULT / ON_SUCCESS / ON_FAIL and ON_ERROR retries."""
    from chatplane.runtime.interpreter import run_arms  # noqa: PLC0415 (cycle)

    args: dict[str, Any] = {}
    for arg in a.args:
        ok, v = t.value(arg.value)
        if not ok:
            h = handlers.find_handler(t, step, "validation_error", None)
            return handlers.apply_handler(t, step, h, "validation_error")
        args[arg.name] = v
    if "message_metadata" in {p.name for p in _params(t, a.tool)}:
        args.setdefault("message_metadata", t.input.metadata)
    res = yield from invoke(t, a.tool, args)
    if not res.ok:
        subtype = (
            "tool_timeout" if res.error_type in ("timeout", "tool_timeout") else res.error_type
        )
        h = handlers.find_handler(t, step, "tool_error", subtype)
        for i in range(h.retry if h is not None and not a.on_fail else 0):
            if t.stopped:
                break
            t.decision(
                "retry",
                {"toolName": a.tool, "attempt": i + 2, "backoff": h.retry_backoff if h else None},
            )
            res = yield from invoke(t, a.tool, args)
            if res.ok:
                break
    if t.stopped:
        return STOP
    if res.ok:
        if a.as_var:
            t.set_var(a.as_var, res.value)
        if a.on_success:
            r = yield from run_arms(t, step, a.on_success)
            if r != NEXT:
                return r
        if a.on_result:
            return (yield from run_arms(t, step, a.on_result))
        return NEXT
    if a.as_var:
        t.set_var(a.as_var, {"error": res.error, "errorType": res.error_type})
    if a.on_fail:
        return (yield from run_arms(t, step, a.on_fail))
    subtype = "tool_timeout" if res.error_type in ("timeout", "tool_timeout") else res.error_type
    h = handlers.find_handler(t, step, "tool_error", subtype)
    return handlers.apply_handler(t, step, h, "tool_error")


def _params(t: Turn, name: str) -> tuple[ir.Param, ...]:
    tool = next((x for x in t.program.tools if x.name == name), None)
    return tool.params if tool is not None else ()
