"""Lowering of FLOW: entry point, step order and step definitions."""

from __future__ import annotations

import re

from chatplane.lang import ir
from chatplane.lang.ast import Node
from chatplane.lang.lower_actions import actions, error_handlers
from chatplane.lang.lower_common import Ctx, bval, data_of, ival, names, sval
from chatplane.lang.values import unquote

_FLOW_KEYS = {"ENTRY_POINT", "STEPS", "GLOBAL_DIGRESSIONS"}
_FLOW_KEYS_LOWER = {k.lower() for k in _FLOW_KEYS}
_THEN_REASON = re.compile(r"(?i)^(ESCALATE|COMPLETE)\s+with\s+REASON\s*:\s*(.*)$")


def lower_flow(ctx: Ctx, node: Node) -> ir.Flow:
    order: list[str] = []
    defs: list[Node] = []
    steps_node = node.get("STEPS")
    if steps_node is not None:
        for it in steps_node.items():
            h = it.head()
            if h is None:
                continue
            if h.kind == "text" and len(it.children) == 1:
                order.append(unquote(h.value or ""))
            elif h.kind == "entry" and h.ukey == "NAME":
                # YAML-style: `- name: greet` followed by the step's properties.
                nm = unquote(h.value or "")
                order.append(nm)
                defs.append(Node("entry", it.line, it.col, nm, None, False, it.children[1:]))
            elif h.kind == "entry" and h.value is None:
                order.append(h.key)
                defs.append(h)
        for c in steps_node.entries():  # `steps:` as a map of step blocks
            order.append(c.key)
            defs.append(c)
        if steps_node.value:
            order.extend(names(steps_node))
    extra = {}
    for c in node.entries():
        if c.key.lower() in _FLOW_KEYS_LOWER:
            if c.ukey == "GLOBAL_DIGRESSIONS":
                ctx.sink.unsupported("global_digressions", c.line, c.col)
                extra["global_digressions"] = data_of(c)
            continue
        defs.append(c)
    for c in node.children:
        if c.kind == "text" and "->" in (c.value or ""):
            # `start -> collect -> done`: the scripting page's sequence sketch, read as the order.
            order.extend(n.strip() for n in (c.value or "").split("->") if n.strip())
            continue
        if c.kind != "entry":
            ctx.sink.error(
                "ABL0103",
                f"unexpected line at line {c.line} in FLOW; expected 'step_name:'",
                c.line,
                c.col,
            )
    steps: dict[str, ir.Step] = {}
    for d in defs:
        if d.key in steps:
            ctx.sink.error(
                "ABL0307",
                f"step '{d.key}' at line {d.line} is defined twice (first at line "
                f"{steps[d.key].line})",
                d.line,
                d.col,
            )
            continue
        steps[d.key] = lower_step(ctx, d)
    if not order:
        order = list(steps)
    else:
        order.extend(s for s in steps if s not in order)
    entry_node = node.get("ENTRY_POINT")
    entry = sval(entry_node) or (order[0] if order else "")
    return ir.Flow(entry, tuple(order), steps, extra)


def lower_step(ctx: Ctx, node: Node) -> ir.Step:
    r = node.get("REASONING")
    if r is None:
        ctx.sink.warning(
            "ABL0110",
            f"step '{node.key}' at line {node.line} has no REASONING: true|false; "
            "it is read as deterministic (false)",
            node.line,
            node.col,
        )
    reasoning = bval(ctx, r, False)
    when = ctx.cond(node.get("WHEN"), f"WHEN of step '{node.key}'")
    then_node = node.get("THEN", "GOTO", "TRANSITION")
    on_err = node.get("ON_ERROR")
    avail = node.get("AVAILABLE_TOOLS")
    goal = node.get("GOAL")
    extra = {}
    sc = node.get("STEP_CONSTRAINTS")
    if sc is not None:
        extra["step_constraints"] = data_of(sc)
    max_turns = ival(ctx, node.get("MAX_TURNS"))
    if not reasoning:
        for bad in (goal, avail):
            if bad is not None:
                ctx.sink.warning(
                    "ABL0108",
                    f"{bad.key} at line {bad.line} has no effect on a REASONING: false step",
                    bad.line,
                    bad.col,
                )
    then = unquote(then_node.value) if then_node is not None and then_node.value else None
    if then is not None:
        m = _THEN_REASON.match(then)
        if m is not None:
            # `THEN: ESCALATE with REASON: "..."` (scripting page): the action, and its reason.
            then = m.group(1).upper()
            extra["then_reason"] = unquote(m.group(2).strip())
    return ir.Step(
        name=node.key,
        reasoning=reasoning,
        actions=tuple(actions(ctx, node)),
        then=then,
        then_line=then_node.line if then_node is not None else 0,
        when=when,
        max_attempts=ival(ctx, node.get("MAX_ATTEMPTS")),
        on_exhausted=sval(node.get("ON_EXHAUSTED")),
        goal=sval(goal),
        available_tools=names(avail) if avail is not None else None,
        exit_when=ctx.cond(node.get("EXIT_WHEN"), "EXIT_WHEN"),
        max_turns=10 if max_turns is None else max_turns,
        on_error=error_handlers(ctx, on_err) if on_err is not None else (),
        line=node.line,
        extra=extra,
    )
