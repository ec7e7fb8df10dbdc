"""Lowering of the block tree to the IR `Program`: one function per top-level section."""

from __future__ import annotations

from chatplane.lang import ir
from chatplane.lang.ast import Node
from chatplane.lang.lower_actions import actions, error_handlers, field_from
from chatplane.lang.lower_common import Ctx, assignments, bval, data_of, names, strings, sval
from chatplane.lang.lower_flow import lower_flow
from chatplane.lang.lower_tools import lower_tools
from chatplane.lang.parser import SECTIONS
from chatplane.lang.values import Json, node_data, scalar, unquote

_DOC_KINDS = {"AGENT": "agent", "SUPERVISOR": "supervisor", "BEHAVIOR_PROFILE": "behavior_profile"}
_TEXT = {"VERSION", "DESCRIPTION", "LANGUAGE", "GOAL", "PERSONA", "INSTRUCTIONS"}
_TYPED = {"TOOLS", "GATHER", "MEMORY", "FLOW", "ON_START", "HANDOFF", "ESCALATE", "COMPLETE"}
_TYPED |= {"ON_ERROR", "LIMITATIONS", "MODE"}
# In a behavior profile these are override blocks (TOOLS: HIDE/ADD, GATHER: FIELD_OVERRIDES,
# FLOW: SKIP/OVERRIDES/INSERTIONS), not the agent sections of the same name: kept as data.
_PROFILE_OVERRIDES = {"TOOLS", "GATHER", "FLOW"}
# Sections the reference defines that the runtime does not execute yet (name for the warning).
_LATER = {
    "GUARDRAILS": "guardrails",
    "CONSTRAINTS": "constraints",
    "BEHAVIOR_PROFILE": "behavior profiles",
    "BEHAVIOR_PROFILES": "behavior profiles",
    "USE_BEHAVIOR_PROFILE": "behavior profiles",
    "PROFILES": "behavior profiles",
    "NLU": "NLU",
    "INTENTS": "NLU intents",
    "ENTITIES": "NLU entities",
    "MULTI_INTENT": "multi-intent",
    "TEMPLATES": "rich content templates",
    "ACTION_HANDLERS": "rich content action handlers",
    "DELEGATE": "DELEGATE",
    "HOOKS": "HOOKS",
    "MESSAGES": "MESSAGES",
}


def lower(ctx: Ctx, root: Node, fmt: str) -> ir.Program | None:
    kind, name, name_node = "agent", "", None
    for c in root.entries():
        if c.ukey in _DOC_KINDS and c.value is not None:
            kind, name, name_node = _DOC_KINDS[c.ukey], sval(c) or "", c
            break
    top: dict[str, Node] = {}
    for c in root.entries():
        top.setdefault(c.ukey, c)
    if name_node is None:
        ctx.sink.error("ABL0106", "the file has no AGENT: section naming the agent", 1, 1)
    goal_node = top.get("GOAL")
    ident = top.get("IDENTITY")
    if goal_node is None and ident is not None:
        goal_node = ident.get("GOAL", "ROLE")
    if goal_node is None and kind != "behavior_profile":
        ctx.sink.error("ABL0106", "the file has no GOAL: section; every agent needs one", 1, 1)

    def text(key: str) -> str | None:
        # IDENTITY's `role` is the goal (agent-declaration page); its other fields keep their names.
        alias = ("ROLE",) if key == "GOAL" else ()
        n = top.get(key) or (ident.get(key, *alias) if ident is not None else None)
        if n is None:
            return None
        if n.value is None and n.children:
            return "\n".join(strings(n))
        return sval(n)

    overrides = _PROFILE_OVERRIDES if kind == "behavior_profile" else set()
    sections: list[ir.Section] = []
    for c in root.entries():
        up = c.ukey
        typed = up in _TYPED and up not in overrides
        if up in _TEXT or typed or (up in _DOC_KINDS and c is name_node):
            continue
        if up in overrides:
            ctx.sink.unsupported(f"behavior profile {c.key} override", c.line, c.col)
            sections.append(ir.Section(up, data_of(c), False, c.line))
            continue
        if up == "IDENTITY":
            continue
        if up in _LATER:
            ctx.sink.unsupported(_LATER[up], c.line, c.col)
        elif up in SECTIONS:
            ctx.sink.unsupported(f"{c.key} section", c.line, c.col)
        else:
            ctx.sink.warning(
                "ABL0105",
                f"unknown section {c.key} at line {c.line}; kept, not executed",
                c.line,
                c.col,
            )
        sections.append(ir.Section(up, data_of(c), False, c.line))
    mode = top.get("MODE")
    if mode is not None:
        ctx.sink.error(
            "ABL0107",
            f"MODE: at line {mode.line} is deprecated; remove it and declare REASONING: per step",
            mode.line,
            mode.col,
        )
    tools_node, gather_node = top.get("TOOLS"), top.get("GATHER")
    flow_node, start_node = top.get("FLOW"), top.get("ON_START")
    if overrides:
        tools_node = gather_node = flow_node = None
    err_node, mem_node = top.get("ON_ERROR"), top.get("MEMORY")
    esc_node, comp_node, hand_node = top.get("ESCALATE"), top.get("COMPLETE"), top.get("HANDOFF")
    tools = tuple(lower_tools(ctx, tools_node)) if tools_node is not None else ()
    # Positional CALL arguments map onto these (imported tools already there, own ones win).
    ctx.tools = {**ctx.tools, **{t.name: t for t in tools}}
    return ir.Program(
        ir_version=ir.IR_VERSION,
        format=fmt,
        kind=kind,
        name=name,
        goal=text("GOAL") or "",
        version=text("VERSION") or "1.0.0",
        description=text("DESCRIPTION"),
        language=text("LANGUAGE"),
        persona=text("PERSONA"),
        instructions=text("INSTRUCTIONS"),
        limitations=strings(
            top.get("LIMITATIONS") or (ident.get("LIMITATIONS") if ident is not None else None)
        ),
        tools=tools,
        gather=tuple(lower_gather(ctx, gather_node)) if gather_node is not None else (),
        memory=lower_memory(ctx, mem_node) if mem_node is not None else ir.Memory(),
        flow=lower_flow(ctx, flow_node) if flow_node is not None else None,
        on_start=tuple(actions(ctx, start_node)) if start_node is not None else (),
        handoffs=tuple(lower_handoffs(ctx, hand_node)) if hand_node is not None else (),
        escalate=lower_escalate(ctx, esc_node) if esc_node is not None else None,
        complete=tuple(lower_complete(ctx, comp_node)) if comp_node is not None else (),
        on_error=error_handlers(ctx, err_node) if err_node is not None else (),
        sections=tuple(sections),
    )


def lower_gather(ctx: Ctx, node: Node) -> list[ir.GatherField]:
    out: list[ir.GatherField] = []
    for c in node.children:
        if c.kind == "entry":
            out.append(field_from(ctx, c.key, c, c.line, True))
        elif c.kind == "item" and c.get("NAME") is not None:
            out.append(field_from(ctx, sval(c.get("NAME")) or "", c, c.line, True))
        else:
            ctx.sink.error(
                "ABL0103", f"line {c.line} in GATHER is not a 'field_name:' block", c.line, c.col
            )
    return out


def _vars(ctx: Ctx, node: Node | None, initial_keys: tuple[str, ...]) -> list[ir.MemoryVar]:
    out: list[ir.MemoryVar] = []
    if node is None:
        return out
    for it in node.items():
        h = it.head()
        if h is None:
            continue
        holder = it
        if h.kind == "text":
            nm = unquote(h.value or "")
        elif h.ukey in ("NAME", "PATH"):
            nm = sval(h) or ""
        else:
            nm, holder = h.key, h
            if h.value is not None and not h.children:
                out.append(ir.MemoryVar(nm, initial=scalar(h.value)))
                continue
        init = holder.get(*initial_keys)
        out.append(
            ir.MemoryVar(
                nm,
                sval(holder.get("TYPE")),
                node_data(init) if init is not None else None,
                sval(holder.get("RESET")) or "per_session",
                sval(holder.get("DESCRIPTION")),
            )
        )
    for c in node.entries():  # map form: `name: initial` or `name:` with properties
        if c.children:
            init = c.get(*initial_keys)
            out.append(
                ir.MemoryVar(
                    c.key,
                    sval(c.get("TYPE")),
                    node_data(init) if init is not None else None,
                    sval(c.get("RESET")) or "per_session",
                    sval(c.get("DESCRIPTION")),
                )
            )
        else:
            out.append(ir.MemoryVar(c.key, initial=node_data(c)))
    if node.value and not node.children:
        out.extend(ir.MemoryVar(n) for n in names(node))
    return out


def lower_memory(ctx: Ctx, node: Node) -> ir.Memory:
    session = _vars(ctx, node.get("SESSION"), ("INITIAL", "INITIAL_VALUE", "DEFAULT"))
    persistent = _vars(ctx, node.get("PERSISTENT"), ("DEFAULT_VALUE", "DEFAULT", "INITIAL"))
    for key in ("READS", "WRITES"):
        persistent.extend(_vars(ctx, node.get(key), ("DEFAULT_VALUE", "DEFAULT")))
    extra: dict[str, Json] = {}
    for c in node.entries():
        if c.ukey not in ("SESSION", "PERSISTENT", "READS", "WRITES"):
            ctx.sink.unsupported(f"MEMORY {c.key}", c.line, c.col)
            extra[c.key] = data_of(c)
    return ir.Memory(tuple(session), tuple(persistent), extra)


_HANDOFF_KEYS = {"TO", "AGENT", "WHEN", "CONTEXT", "PASS", "SUMMARY", "HISTORY", "EXPECT_RETURN"}
_HANDOFF_KEYS |= {"RETURN"}


def lower_handoffs(ctx: Ctx, node: Node) -> list[ir.Handoff]:
    out: list[ir.Handoff] = []
    for it in node.items():
        target = sval(it.get("TO", "AGENT"))
        if not target:
            ctx.sink.error(
                "ABL0108", f"HANDOFF at line {it.line} needs TO: <agent>", it.line, it.col
            )
            continue
        cx = it.get("CONTEXT") or it
        hist = cx.get("HISTORY") or it.get("HISTORY")
        history: str = "full"
        if hist is not None:
            hd = node_data(hist)
            history = str(hd) if not isinstance(hd, dict) else f"{hd.get('mode')}:{hd.get('count')}"
        summary = cx.get("SUMMARY")
        extra: dict[str, Json] = {}
        for c in it.entries():
            if c.ukey not in _HANDOFF_KEYS:
                ctx.sink.unsupported(f"HANDOFF {c.key}", c.line, c.col)
                extra[c.key] = data_of(c)
        out.append(
            ir.Handoff(
                target=target,
                when=ctx.cond(it.get("WHEN"), "HANDOFF WHEN"),
                pass_vars=names(cx.get("PASS")),
                summary=ctx.text(summary) if summary is not None else None,
                history=history,
                expect_return=bval(ctx, it.get("EXPECT_RETURN", "RETURN"), False),
                line=it.line,
                extra=extra,
            )
        )
    return out


def lower_escalate(ctx: Ctx, node: Node) -> ir.Escalate:
    trig_node = node.get("TRIGGERS")
    items = list(trig_node.items()) if trig_node is not None else list(node.items())
    if not items and node.get("WHEN") is not None:
        items = [node]
    triggers: list[ir.EscalateTrigger] = []
    for it in items:
        s = it.get("SET")
        pr = it.get("PRIORITY")
        triggers.append(
            ir.EscalateTrigger(
                when=ctx.cond(it.get("WHEN"), "ESCALATE WHEN"),
                reason=sval(it.get("REASON")),
                priority=str(scalar(pr.value)) if pr is not None and pr.value else "medium",
                tags=names(it.get("TAGS")),
                sets=tuple(assignments(ctx, s)) if s is not None else (),
                line=it.line,
            )
        )
    cfh = node.get("CONTEXT_FOR_HUMAN")
    routing = node.get("ROUTING")
    rdata = node_data(routing) if routing is not None else {}
    extra: dict[str, Json] = {}
    for c in node.entries():
        if c.ukey not in ("TRIGGERS", "CONTEXT_FOR_HUMAN", "ROUTING", "WHEN", "REASON"):
            ctx.sink.unsupported(f"ESCALATE {c.key}", c.line, c.col)
            extra[c.key] = data_of(c)
    ctx_names = tuple(n for n in names(cfh) if n) if cfh is not None else ()
    return ir.Escalate(tuple(triggers), ctx_names, rdata if isinstance(rdata, dict) else {}, extra)


def lower_complete(ctx: Ctx, node: Node) -> list[ir.CompleteRule]:
    items = list(node.items()) or ([node] if node.get("WHEN") is not None else [])
    out: list[ir.CompleteRule] = []
    for it in items:
        s = it.get("SET")
        r = it.get("RESPOND")
        out.append(
            ir.CompleteRule(
                when=ctx.cond(it.get("WHEN"), "COMPLETE WHEN"),
                respond=ctx.text(r) if r is not None else None,
                sets=tuple(assignments(ctx, s)) if s is not None else (),
                terminal=bval(ctx, it.get("TERMINAL"), True),
                store=sval(it.get("STORE")),
                line=it.line,
            )
        )
    if node.value is not None and not items:
        out.append(ir.CompleteRule(ctx.cond(node, "COMPLETE"), line=node.line))
    return out
