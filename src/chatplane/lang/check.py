"""Static checks over the IR: step references, reachability, variables, tools, handoffs."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator

from chatplane.lang import expr_ast as x
from chatplane.lang import ir
from chatplane.lang.builtins import KNOWN_FUNCTIONS
from chatplane.lang.source import Sink

# Flow targets that are not steps.
TERMINALS = frozenset({"COMPLETE", "END", "ESCALATE", "CONTINUE", "DONE", "EXIT"})
# Roots the runtime provides without a SET/GATHER/MEMORY writing them.
PROVIDED = frozenset(
    [
        "input",
        "user",
        "session",
        "intent",
        "system",
        "secure",
        "route",
        "sip",
        "env",
        "this",
        "agent",
        "context",
        "result",
        "error",
        "conversation",
        "channel",
        "metadata",
        "human",
        "attachments",
        "message",
        "entities",
        "language",
        "now",
        "turn",
    ]
)


def _hint(name: str, choices: Iterable[str]) -> str:
    near = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{near[0]}'?" if near else ""


def walk_actions(acts: Iterable[ir.Action]) -> Iterator[ir.Action]:
    for a in acts:
        yield a
        if isinstance(a, ir.Check):
            yield from walk_actions(a.on_fail)
        elif isinstance(a, ir.CallTool):
            for arm in (*a.on_result, *a.on_success, *a.on_fail):
                yield from walk_actions(arm.actions)
        elif isinstance(a, ir.Branches):
            for arm in a.arms:
                yield from walk_actions(arm.actions)


def _names(e: x.Expr | x.Template | None, out: set[str], funcs: set[str] | None = None) -> None:
    """Root variable names an expression or template reads (and the functions it calls)."""
    stack: list[object] = [e]
    while stack:
        n = stack.pop()
        if isinstance(n, x.Name):
            out.add(n.name)
        elif isinstance(n, x.Attr):
            stack.append(n.obj)
        elif isinstance(n, x.Index):
            stack += [n.obj, n.index]
        elif isinstance(n, x.Call):
            stack += list(n.args)
            if funcs is not None:
                funcs.add(n.func)
        elif isinstance(n, x.Method):
            stack += [n.obj, *n.args]
        elif isinstance(n, x.Unary):
            stack.append(n.operand)
        elif isinstance(n, x.Binary):
            stack += [n.left, n.right]
        elif isinstance(n, x.ListExpr | x.MapExpr):
            stack += list(n.items if isinstance(n, x.ListExpr) else n.values)
        elif isinstance(n, x.TemplateExpr):
            stack.append(n.template)
        elif isinstance(n, x.Template):
            stack += list(n.parts)
        elif isinstance(n, x.Interp):
            stack.append(n.expr)
        elif isinstance(n, x.IfBlock):
            stack += [n.cond, *n.then, *n.otherwise]
        elif isinstance(n, x.EachBlock):
            stack += [n.items, *n.body]


def _reads(a: ir.Action, funcs: set[str] | None = None) -> set[str]:
    out: set[str] = set()
    if isinstance(a, ir.Respond | ir.Log):
        _names((a.text if isinstance(a, ir.Respond) else a.message).template, out, funcs)
    elif isinstance(a, ir.Set):
        _names(a.value.root, out, funcs)
    elif isinstance(a, ir.Check):
        _names(a.cond.root, out, funcs)
    elif isinstance(a, ir.CallTool):
        for arg in a.args:
            _names(arg.value.root, out, funcs)
        for arm in (*a.on_result, *a.on_success, *a.on_fail):
            _names(arm.cond.root if arm.cond else None, out)
    elif isinstance(a, ir.Branches):
        for arm in a.arms:
            _names(arm.cond.root if arm.cond else None, out)
    return out


def check_program(program: ir.Program, sink: Sink, known_agents: frozenset[str] | None) -> None:
    _check_duplicates(program, sink)
    tools = {t.name: t for t in program.tools}
    all_actions: list[ir.Action] = list(walk_actions(program.on_start))
    if program.flow is not None:
        _check_flow(program.flow, sink)
        for s in program.flow.steps.values():
            all_actions.extend(walk_actions(s.actions))
            for tname in s.available_tools or ():
                if tname not in tools:
                    sink.error(
                        "ABL0304",
                        f"AVAILABLE_TOOLS of step '{s.name}' at line {s.line} "
                        f"names tool '{tname}', which is not declared in TOOLS"
                        + _hint(tname, tools),
                        s.line,
                    )
    for a in all_actions:
        if isinstance(a, ir.CallTool):
            _check_call(a, tools, sink)
    targets = [(h.target, h.line) for h in program.handoffs]
    targets += [(e.handoff_target, e.line) for e in program.on_error if e.handoff_target]
    if known_agents is not None:
        for target, line in targets:
            if target and target not in known_agents:
                sink.error(
                    "ABL0306",
                    f"HANDOFF at line {line} goes to agent '{target}', which "
                    "this project does not have" + _hint(target, known_agents),
                    line,
                )
    _check_variables(program, all_actions, sink)


def _check_duplicates(p: ir.Program, sink: Sink) -> None:
    groups: list[tuple[str, list[tuple[str, int]]]] = [
        ("tool", [(t.name, t.line) for t in p.tools]),
        ("GATHER field", [(f.name, f.line) for f in p.gather]),
    ]
    for what, pairs in groups:
        seen: dict[str, int] = {}
        for name, line in pairs:
            if name in seen:
                sink.error(
                    "ABL0307",
                    f"{what} '{name}' at line {line} is already declared at line {seen[name]}",
                    line,
                )
            seen.setdefault(name, line)


def _edges(step: ir.Step) -> list[tuple[str, int]]:
    out = [(g.step, g.line) for g in walk_actions(step.actions) if isinstance(g, ir.Goto)]
    if step.then:
        out.append((step.then, step.then_line or step.line))
    if step.on_exhausted:
        out.append((step.on_exhausted, step.line))
    out += [(h.backtrack_to, h.line or step.line) for h in step.on_error if h.backtrack_to]
    return out


def _check_flow(flow: ir.Flow, sink: Sink) -> None:
    steps = flow.steps
    if flow.entry_point and flow.entry_point not in steps:
        sink.error(
            "ABL0301",
            f"entry_point names step '{flow.entry_point}', which is not "
            "defined" + _hint(flow.entry_point, steps),
            1,
        )
    for name in flow.order:
        if name not in steps and name.upper() not in TERMINALS:
            sink.warning(
                "ABL0301", f"steps: lists '{name}', which has no definition" + _hint(name, steps), 1
            )
    for s in steps.values():
        for target, line in _edges(s):
            if target not in steps and target.upper() not in TERMINALS:
                sink.error(
                    "ABL0301",
                    f"THEN at line {line} names step '{target}', which is not "
                    "defined" + _hint(target, steps),
                    line,
                )
    seen: set[str] = set()
    todo = [flow.entry_point] if flow.entry_point in steps else []
    while todo:
        cur = todo.pop()
        if cur in seen:
            continue
        seen.add(cur)
        todo.extend(t for t, _ in _edges(steps[cur]) if t in steps)
    if todo or seen:
        for s in steps.values():
            if s.name not in seen:
                sink.warning(
                    "ABL0302",
                    f"step '{s.name}' at line {s.line} is unreachable from "
                    f"entry_point '{flow.entry_point}'",
                    s.line,
                )


def _check_call(a: ir.CallTool, tools: dict[str, ir.Tool], sink: Sink) -> None:
    tool = tools.get(a.tool)
    if tool is None:
        sink.error(
            "ABL0304",
            f"CALL at line {a.line} uses tool '{a.tool}', which is not declared "
            "in TOOLS" + _hint(a.tool, tools),
            a.line,
        )
        return
    params = {p.name: p for p in tool.params}
    given = {arg.name for arg in a.args}
    if params:
        for arg in a.args:
            if arg.name not in params:
                sink.error(
                    "ABL0305",
                    f"CALL {a.tool} at line {a.line} passes '{arg.name}', which "
                    f"is not a parameter of {a.tool}" + _hint(arg.name, params),
                    a.line,
                )
    missing = [p.name for p in tool.params if not p.optional and p.name not in given]
    if missing and a.args:
        sink.error(
            "ABL0305",
            f"CALL {a.tool} at line {a.line} is missing required argument(s) {', '.join(missing)}",
            a.line,
        )


def _check_variables(p: ir.Program, acts: list[ir.Action], sink: Sink) -> None:
    written: set[str] = {f.name for f in p.gather} | set(PROVIDED) | {t.name for t in p.tools}
    written |= {v.name.split(".")[0] for v in (*p.memory.session, *p.memory.persistent)}
    reads: list[tuple[set[str], int]] = []
    for a in acts:
        if isinstance(a, ir.Set):
            written.add(a.var.split(".")[0])
        elif isinstance(a, ir.Gather):
            written |= {f.name for f in a.fields}
        elif isinstance(a, ir.CallTool) and a.as_var:
            written.add(a.as_var)
        funcs: set[str] = set()
        reads.append((_reads(a, funcs), getattr(a, "line", 0)))
        for f in sorted(funcs - KNOWN_FUNCTIONS):
            line = getattr(a, "line", 0)
            sink.warning(
                "ABL0204",
                f"function {f} at line {line} is not a built-in function"
                + _hint(f, KNOWN_FUNCTIONS),
                line,
            )
    for h in p.handoffs:
        reads.append(({v.split(".")[0] for v in h.pass_vars}, h.line))
    for c in p.complete:
        written |= {s.var for s in c.sets}
    for s in p.flow.steps.values() if p.flow else ():
        cond: set[str] = set()
        for e in (s.when, s.exit_when):
            _names(e.root if e else None, cond)
        reads.append((cond, s.line))
    warned: set[str] = set()
    for names, line in reads:
        for n in sorted(names - written - warned):
            warned.add(n)
            sink.warning(
                "ABL0303",
                f"'{n}' is read at line {line} but nothing (SET, GATHER, "
                "MEMORY, a tool result) writes it" + _hint(n, written - PROVIDED),
                line,
            )
