"""Lowering of action lists (steps, ON_START, branches), GATHER fields and ON_ERROR handlers."""

from __future__ import annotations

import re

from chatplane.lang import ir
from chatplane.lang.ast import Node
from chatplane.lang.lower_common import (
    UNSUPPORTED_ACTIONS,
    Ctx,
    assignments,
    bval,
    call_args,
    data_of,
    ival,
    names,
    strings,
    sval,
    with_args,
)
from chatplane.lang.values import node_data, scalar, split_list, unquote

# Step properties read by the step lowerer, not actions.
STEP_PROPS = frozenset(
    [
        "REASONING",
        "WHEN",
        "MAX_ATTEMPTS",
        "ON_EXHAUSTED",
        "GOAL",
        "AVAILABLE_TOOLS",
        "EXIT_WHEN",
        "MAX_TURNS",
        "THEN",
        "GOTO",
        "TRANSITION",
        "ON_ERROR",
        "NAME",
        "COMPLETE_WHEN",
        "WITH",
        "AS",
    ]
)
ERROR_TYPES = frozenset(
    [
        "default",
        "llm_error",
        "tool_error",
        "routing_error",
        "validation_error",
        "timeout_error",
        "unknown_error",
    ]
)
# Older, free-form names mapped onto the fixed set (type, subtype).
LEGACY_ERRORS = {
    "tool_timeout": ("tool_error", "tool_timeout"),
    "api_error": ("tool_error", None),
    "invalid_input": ("validation_error", None),
}
ERROR_THEN = frozenset(["CONTINUE", "COMPLETE", "ESCALATE", "BACKTRACK", "RETRY_STEP", "HANDOFF"])
_TEMPLATE_REF = re.compile(r"^\s*TEMPLATE\(\s*[A-Za-z_][\w.]*\s*\)\s*$")
_FIELD_PROPS = {"PROMPT", "TYPE", "REQUIRED", "DEFAULT", "OPTIONS", "VALIDATE", "VALIDATION"}
_FIELD_PROPS |= {"RETRY_PROMPT", "MAX_RETRIES", "NAME"}


def actions(ctx: Ctx, block: Node, skip: frozenset[str] = STEP_PROPS) -> list[ir.Action]:
    """The ordered actions of a block; THEN and other step properties are skipped."""
    out: list[ir.Action] = []
    last_call: int | None = None
    last_check: int | None = None
    kids = block.children
    for idx, c in enumerate(kids):
        if c.kind == "item":
            out.extend(actions(ctx, c, skip))
            continue
        if c.kind == "text":
            text = c.value or ""
            if text.upper().startswith("CALL "):
                name, args = call_args(ctx, text[5:].split(" WITH", 1)[0], c.line, c.col)
                out.append(ir.CallTool(name, tuple(args), None, line=c.line))
                last_call, last_check = len(out) - 1, None
            else:
                ctx.sink.error(
                    "ABL0103",
                    f"unexpected line {text[:40]!r} at line {c.line}; expected a KEYWORD: entry",
                    c.line,
                    c.col,
                )
            continue
        k = c.ukey
        if k in skip:
            continue
        if k in ("RESPOND", "SAY", "PRESENT", "MESSAGE") and _TEMPLATE_REF.match(c.value or ""):
            # `RESPOND: TEMPLATE(name)` names a TEMPLATES entry (rich content page); templates
            # are not lowered yet, so this must not be sent as the literal text.
            ctx.sink.unsupported(f"{c.key}: TEMPLATE()", c.line, c.col)
            out.append(ir.Unsupported(c.key, data_of(c), c.line))
        elif k in ("RESPOND", "SAY", "PRESENT", "MESSAGE"):
            t = ctx.text(c)
            if t is not None:
                out.append(ir.Respond(t, c.line))
            if any(ch.ukey == "VOICE" for ch in c.entries()):
                ctx.sink.unsupported("per-RESPOND VOICE", c.line, c.col)
        elif k == "CALL":
            out.append(call(ctx, c, kids[idx + 1 :]))
            last_call, last_check = len(out) - 1, None
        elif k == "SET":
            out.extend(assignments(ctx, c))
        elif k == "CHECK":
            e = ctx.cond(c, "CHECK", strict=True)
            if e is not None:
                out.append(ir.Check(e, (), c.line))
                last_check = len(out) - 1
        elif k == "CLEAR":
            out.append(ir.Clear(names(c), c.line))
        elif k == "GATHER":
            out.append(gather_action(ctx, c, block))
        elif k == "LOG":
            msg = c if c.value is not None else (c.get("MESSAGE") or c)
            t = ctx.text(msg)
            level = sval(c.get("LEVEL")) or "info"
            if t is not None:
                out.append(ir.Log(t, level, c.line))
        elif k in ("BRANCHES", "ON_INPUT"):
            out.append(ir.Branches(branches(ctx, c), k == "ON_INPUT", c.line))
        elif k == "ON_FAIL" and last_check is not None and isinstance(out[last_check], ir.Check):
            chk = out[last_check]
            assert isinstance(chk, ir.Check)
            out[last_check] = ir.Check(chk.cond, fail_actions(ctx, c), chk.line)
        elif k in ("ON_RESULT", "ON_SUCCESS", "ON_FAIL", "ON_FAILURE") and last_call is not None:
            # ON_FAILURE (scripting page) is the CALL's failure outcome, the same as ON_FAIL.
            cl = out[last_call]
            assert isinstance(cl, ir.CallTool)
            arms = branches(ctx, c)
            field_name = {"ON_RESULT": "on_result", "ON_SUCCESS": "on_success"}.get(k, "on_fail")
            out[last_call] = _replace(cl, field_name, arms)
        elif k in ("ON_RESULT", "ON_SUCCESS", "ON_FAIL"):
            ctx.sink.error(
                "ABL0103", f"{c.key} at line {c.line} has no CHECK or CALL before it", c.line, c.col
            )
        else:
            if k not in UNSUPPORTED_ACTIONS:
                ctx.sink.warning(
                    "ABL0105",
                    f"unknown keyword {c.key} at line {c.line}; kept, not executed",
                    c.line,
                    c.col,
                )
            else:
                ctx.sink.unsupported(c.key, c.line, c.col)
            out.append(ir.Unsupported(c.key, data_of(c), c.line))
    return out


def _replace(cl: ir.CallTool, name: str, arms: tuple[ir.Branch, ...]) -> ir.CallTool:
    return ir.CallTool(
        cl.tool,
        cl.args,
        cl.as_var,
        arms if name == "on_result" else cl.on_result,
        arms if name == "on_success" else cl.on_success,
        arms if name == "on_fail" else cl.on_fail,
        cl.line,
    )


def call(ctx: Ctx, c: Node, following: list[Node]) -> ir.CallTool:
    """`CALL: tool` with WITH/AS indented under it (ABL) or as following siblings (YAML)."""
    name, args = call_args(ctx, c.value or "", c.line, c.col)
    if c.value is None and c.get("TOOL", "NAME") is not None:
        name = sval(c.get("TOOL", "NAME")) or ""
    if not name:
        ctx.sink.error("ABL0108", f"CALL at line {c.line} names no tool", c.line, c.col)
    w = c.get("WITH")
    a = c.get("AS")
    for sib in following:
        if sib.kind != "entry" or sib.ukey not in ("WITH", "AS"):
            break
        if sib.ukey == "WITH" and w is None:
            w = sib
        if sib.ukey == "AS" and a is None:
            a = sib
    if w is not None:
        args.extend(with_args(ctx, w))
    return ir.CallTool(name, tuple(args), sval(a), line=c.line)


def fail_actions(ctx: Ctx, c: Node) -> tuple[ir.Action, ...]:
    """ON_FAIL of a CHECK: a step name, or a block with RESPOND/COLLECT/GOTO/THEN."""
    if c.value is not None and not c.children:
        return (ir.Goto(unquote(c.value), c.line),)
    acts = actions(ctx, c, STEP_PROPS - {"WHEN", "NAME"} | {"COLLECT", "RETRY"})
    coll = c.get("COLLECT")
    if coll is not None:
        acts.append(ir.Clear(names(coll), coll.line))
    tgt = c.get("GOTO", "THEN", "TRANSITION")
    if tgt is not None and tgt.value:
        acts.append(ir.Goto(unquote(tgt.value), tgt.line))
    return tuple(acts)


def branches(ctx: Ctx, c: Node) -> tuple[ir.Branch, ...]:
    """`- IF: cond ... THEN: step` / `- ELSE:` arms, or a plain block (one unconditional arm)."""
    items = list(c.items())
    if not items:
        return (ir.Branch(None, tuple(_arm(ctx, c))),)
    arms: list[ir.Branch] = []
    for it in items:
        cond_node = it.get("IF", "CONDITION")
        cond = ctx.cond(cond_node, "IF") if cond_node is not None else None
        arms.append(ir.Branch(cond, tuple(_arm(ctx, it))))
    return tuple(arms)


def _arm(ctx: Ctx, block: Node) -> list[ir.Action]:
    acts = actions(ctx, block, STEP_PROPS | {"IF", "ELSE", "CONDITION"})
    tgt = block.get("THEN", "GOTO", "TRANSITION")
    if tgt is not None and tgt.value:
        acts.append(ir.Goto(unquote(tgt.value), tgt.line))
    # `- ELSE:` with its actions nested under ELSE rather than beside it.
    els = block.get("ELSE")
    if els is not None and els.children:
        acts.extend(_arm(ctx, els))
    return acts


def gather_action(ctx: Ctx, c: Node, step: Node) -> ir.Gather:
    fields_node = c.get("FIELDS") or c
    fields = tuple(flow_fields(ctx, fields_node))
    cw = step.get("COMPLETE_WHEN") or c.get("COMPLETE_WHEN")
    strategy = sval(c.get("STRATEGY"))
    prompt_node = c.get("PROMPT")
    prompt = ctx.text(prompt_node) if prompt_node is not None else None
    return ir.Gather(fields, ctx.cond(cw, "COMPLETE_WHEN"), strategy, prompt, c.line)


def flow_fields(ctx: Ctx, node: Node) -> list[ir.GatherField]:
    """Flow GATHER fields: `- name: required` items with properties, or `[a, b]`."""
    out: list[ir.GatherField] = []
    if node.value and not node.block and node.value.strip().startswith("["):
        for p in split_list(node.value):
            out.append(ir.GatherField(unquote(p), None, line=node.line))
    for it in node.items():
        h = it.head()
        if h is None:
            continue
        if h.kind == "text":
            out.append(field_from(ctx, unquote(h.value or ""), it, it.line, True))
            continue
        val = (h.value or "").strip().lower()
        if h.ukey == "NAME" and val not in ("required", "optional", "", "true", "false"):
            out.append(field_from(ctx, unquote(h.value or ""), it, h.line, True))
        elif h.children and h.value is None:
            out.append(field_from(ctx, h.key, h, h.line, True))
        else:
            fld = field_from(ctx, h.key, it, h.line, val != "optional")
            out.append(fld)
    return out


def field_from(ctx: Ctx, name: str, node: Node, line: int, required: bool) -> ir.GatherField:
    extra: dict[str, object] = {}
    for c in node.entries():
        if c.ukey not in _FIELD_PROPS and c.key != name:
            extra[c.key] = data_of(c)
    req = node.get("REQUIRED")
    opts = node.get("OPTIONS")
    val = node.get("VALIDATE", "VALIDATION")
    prompt = node.get("PROMPT")
    retry = node.get("RETRY_PROMPT")
    default = node.get("DEFAULT")
    return ir.GatherField(
        name=name,
        prompt=ctx.text(prompt) if prompt is not None else None,
        type=sval(node.get("TYPE")) or "string",
        required=bval(ctx, req, required),
        default=node_data(default) if default is not None else None,
        options=strings(opts),
        validate=validation(ctx, val) if val is not None else None,
        retry_prompt=ctx.text(retry) if retry is not None else None,
        max_retries=ival(ctx, node.get("MAX_RETRIES")),
        line=line,
        extra=extra,
    )


_VALIDATOR = re.compile(r"\s*(min|max|enum|email|pattern|regex)\s*\((.*)\)\s*$", re.S | re.I)


def validation(ctx: Ctx, node: Node) -> ir.Validation | None:
    raw = sval(node)
    if raw is None:
        return None
    m = _VALIDATOR.match(raw)
    if m is not None:
        kind, inner = m.group(1).lower(), m.group(2)
        if kind in ("pattern", "regex"):
            pat = unquote(inner.strip())
            try:
                re.compile(pat)
            except re.error as exc:
                ctx.sink.error(
                    "ABL0108", f"validate pattern at line {node.line}: {exc}", node.line, node.col
                )
            return ir.Validation("pattern", raw, pattern=pat)
        args = tuple(scalar(p) for p in split_list(inner)) if inner.strip() else ()
        return ir.Validation(kind, raw, args=args)
    e = ctx.cond(node, "validate")
    return ir.Validation("expr", raw, expr=e)


def error_handlers(ctx: Ctx, node: Node) -> tuple[ir.ErrorHandler, ...]:
    """ON_ERROR as a map keyed by error type, or as a list of items with TYPE:."""
    out: list[ir.ErrorHandler] = []
    for c in node.children:
        if c.kind == "entry":
            out.append(_handler(ctx, c.key, c, c.value if not c.children else None))
        elif c.kind == "item":
            t = c.get("TYPE")
            if t is None or not t.value:
                ctx.sink.error(
                    "ABL0308", f"ON_ERROR item at line {c.line} needs TYPE:", c.line, c.col
                )
                continue
            out.append(_handler(ctx, unquote(t.value), c, None))
    return tuple(out)


def _handler(ctx: Ctx, etype: str, node: Node, inline: str | None) -> ir.ErrorHandler:
    subtypes = list(names(node.get("SUBTYPES", "SUBTYPE")))
    if etype in LEGACY_ERRORS:
        new, sub = LEGACY_ERRORS[etype]
        ctx.sink.warning(
            "ABL0308",
            f"ON_ERROR type '{etype}' at line {node.line} is an older name; it is read as '{new}'"
            + (f" with subtype '{sub}'" if sub else ""),
            node.line,
            node.col,
        )
        etype = new
        if sub and sub not in subtypes:
            subtypes.append(sub)
    elif etype not in ERROR_TYPES:
        ctx.sink.warning(
            "ABL0308",
            f"ON_ERROR type '{etype}' at line {node.line} is not one of "
            f"{', '.join(sorted(ERROR_TYPES))}; it will never match",
            node.line,
            node.col,
        )
    then_raw = unquote(inline) if inline else sval(node.get("THEN"))
    then, target = None, sval(node.get("HANDOFF_TARGET"))
    if then_raw:
        word, _, rest = then_raw.strip().partition(" ")
        then = word.upper()
        if then not in ERROR_THEN:
            ctx.sink.error(
                "ABL0308",
                f"ON_ERROR THEN at line {node.line} is '{then_raw}'; it takes an action "
                f"({', '.join(sorted(ERROR_THEN))}), not a step name",
                node.line,
                node.col,
            )
        if then == "HANDOFF" and rest.strip():
            target = rest.strip().removeprefix("to ").strip()
    respond = node.get("RESPOND")
    set_node = node.get("SET")
    return ir.ErrorHandler(
        type=etype,
        subtypes=tuple(subtypes),
        respond=ctx.text(respond) if respond is not None else None,
        retry=ival(ctx, node.get("RETRY")) or 0,
        retry_delay_ms=ival(ctx, node.get("RETRY_DELAY")),
        retry_backoff=sval(node.get("RETRY_BACKOFF")),
        retry_max_delay_ms=ival(ctx, node.get("RETRY_MAX_DELAY")),
        then=then,
        handoff_target=target,
        backtrack_to=sval(node.get("BACKTRACK_TO")),
        sets=tuple(assignments(ctx, set_node)) if set_node is not None else (),
        line=node.line,
    )
