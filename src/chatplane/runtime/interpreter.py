"""The interpreter: one turn as a pure generator. It yields effects (CallModel, CallTool) to the
driver and receives their results; everything else is a change of `Turn` / `SessionState`.

A turn: (first turn) testContext, ON_START, flow start -> the flow runs from its position until
it needs the user (GATHER prompt, reasoning answer) or ends -> ESCALATE / HANDOFF / COMPLETE
conditions are checked at the end of the turn and fire in that same turn (a handoff then runs
the new agent in the same turn, up to Limits.max_handoffs).
"""

from __future__ import annotations

from chatplane.lang import ir
from chatplane.runtime import gather, handlers, reasoning, tools
from chatplane.runtime.context import Turn
from chatplane.runtime.effects import Gen
from chatplane.runtime.handlers import GOTO, NEXT, STOP, WAIT


def run(t: Turn) -> Gen[None]:
    st = t.state
    if st.status != "active":
        t.decision("ended", {"status": st.status})
        t.set_action(
            "complete" if st.status == "completed" else "escalate",
            {"reason": "session already ended"},
        )
        return
    first = st.turns == 0
    st.turns += 1
    if t.input.message:
        st.history.append({"role": "user", "content": t.input.message})
    test = t.input.test
    if test is not None:
        for k, v in test.session_variables.items():
            t.set_var(k, v)
        for k, v in test.gather_values.items():
            t.set_var(k, v)
        if test.caller_context:
            t.set_var("callerContext", test.caller_context)
        t.event(
            "decision",
            {"testContext": True, "mocks": [m.tool_name for m in test.tool_mocks]},
            kind="test_context",
        )
    yield from start_agent(t, first_turn=first)
    if not t.hold and not t.stopped:
        yield from advance(t)
    yield from end_of_turn(t)


def start_agent(t: Turn, *, first_turn: bool) -> Gen[None]:
    st, p = t.state, t.program
    for m in p.memory.session:
        if m.name not in st.vars and m.initial is not None:
            t.set_var(m.name, m.initial)
    test = t.input.test
    if st.agent not in st.on_start_done:
        st.on_start_done.append(st.agent)
        if p.on_start and not (test is not None and test.skip_on_start and first_turn):
            said_before = len(t.reply_parts)
            span = t.new_id()
            t.event("dsl_on_start", {"agent": st.agent, "actions": len(p.on_start)}, span=span)
            prev, t.span = t.span, span
            r = yield from run_actions(t, None, p.on_start, top=False)
            t.span = prev
            if r == STOP:
                return
            greeted = len(t.reply_parts) > said_before
            if greeted and p.flow is not None and _needs_input(p, test):
                t.hold = True
        if p.flow is not None and st.step is None and not st.flow_done:
            start = test.start_at_step if test is not None and first_turn else None
            if start and start not in p.flow.steps:
                t.error("routing_error", f"startAtStep {start!r} is not a step of {p.name}")
                start = None
            st.step, st.pc, st.entered = start or p.flow.entry_point, 0, False
            if start:
                t.hold = False
                t.decision("routing", {"toStep": start, "reason": "startAtStep"})


def _needs_input(p: ir.Program, test: object) -> bool:
    flow = p.flow
    assert flow is not None
    step = flow.steps.get(flow.entry_point)
    if step is None:
        return False
    acts = [a for a in step.actions if not isinstance(a, ir.Log)]
    return step.reasoning or (bool(acts) and isinstance(acts[0], ir.Gather))


def advance(t: Turn) -> Gen[None]:
    st = t.state
    flow = t.program.flow
    if flow is None or st.flow_done:
        if not t.consumed:
            r = yield from reasoning.loop(t, None)
            del r
        return
    while not t.stopped and not t.switched:
        if st.step is None:
            st.flow_done = True
            return
        step = flow.steps.get(st.step)
        if step is None:
            t.error("routing_error", f"no step named {st.step!r}")
            st.step, st.flow_done = None, True
            return
        if not t.tick():
            return
        if not st.entered:
            if step.when is not None and not t.cond(step.when):
                t.decision(
                    "routing",
                    {"step": step.name, "reason": "WHEN is false", "condition": step.when.text},
                )
                handlers.goto(t, step.then or handlers.next_in_order(t, step), why="WHEN skip")
                continue
            n = st.attempts.get(step.name, 0) + 1
            if step.max_attempts is not None and n > step.max_attempts:
                t.decision(
                    "retry",
                    {"step": step.name, "status": "exhausted", "maxAttempts": step.max_attempts},
                )
                st.attempts[step.name] = 0
                if step.on_exhausted:
                    handlers.goto(t, step.on_exhausted, why="ON_EXHAUSTED")
                else:
                    fire = handlers.find_handler(t, step, "validation_error", "max_attempts")
                    handlers.apply_handler(t, step, fire, "validation_error")
                    return
                continue
            st.attempts[step.name] = n
            st.entered, st.pc = True, 0
            st.reasoning_turns.pop(step.name, None)
            t.span = t.new_id()
            t.event(
                "state_change",
                {"step": step.name, "attempt": n, "reasoning": step.reasoning},
                span=t.span,
                parent=t.root,
            )
        r = yield from run_actions(t, step, step.actions, top=True)
        if r == NEXT and step.reasoning:
            r = yield from reasoning.loop(t, step)
            r = NEXT if r == reasoning.EXIT else r
        if r == NEXT:
            handlers.goto(t, step.then, why="THEN")
        elif r in (WAIT, STOP):
            return


def run_actions(
    t: Turn, step: ir.Step | None, actions: tuple[ir.Action, ...], *, top: bool
) -> Gen[str]:
    st = t.state
    start = st.pc if top else 0
    for i in range(start, len(actions)):
        if top:
            st.pc = i
        if t.stopped or not t.tick():
            return STOP
        r = yield from action(t, step, actions[i])
        if t.switched:
            return STOP
        if r != NEXT:
            return r
    if top:
        st.pc = len(actions)
    return NEXT


def action(t: Turn, step: ir.Step | None, a: ir.Action) -> Gen[str]:
    if isinstance(a, ir.Respond):
        text = t.text(a.text)
        t.say(text)
        t.event("dsl_respond", {"text": text[:500], "line": a.line})
    elif isinstance(a, ir.Set):
        ok, v = t.value(a.value)
        if ok:
            t.set_var(a.var, v)
            t.event("dsl_set", {"variable": a.var, "value": v, "line": a.line})
    elif isinstance(a, ir.Clear):
        for name in a.vars:
            t.clear_var(name)
        t.event("state_change", {"cleared": list(a.vars), "line": a.line})
    elif isinstance(a, ir.Check):
        ok2 = t.cond(a.cond)
        t.decision("check", {"condition": a.cond.text, "result": ok2, "line": a.line})
        if not ok2:
            if a.on_fail:
                r = yield from run_actions(t, step, a.on_fail, top=False)
                if r == NEXT and step is not None:
                    return handlers.goto(t, step.name, why="ON_FAIL")
                return r
            h = handlers.find_handler(t, step, "validation_error", "check_failed")
            return handlers.apply_handler(t, step, h, "validation_error")
    elif isinstance(a, ir.Goto):
        return handlers.goto(t, a.step)
    elif isinstance(a, ir.CallTool):
        return (yield from tools.call_action(t, step, a))
    elif isinstance(a, ir.Gather):
        return (yield from gather.run(t, step, a))
    elif isinstance(a, ir.Branches):
        return (yield from run_arms(t, step, a.arms))
    elif isinstance(a, ir.Log):
        t.event("log", {"level": a.level, "message": t.text(a.message)[:500]})
    else:
        t.decision("unsupported", {"keyword": a.keyword, "line": a.line})
    return NEXT


def run_arms(t: Turn, step: ir.Step | None, arms: tuple[ir.Branch, ...]) -> Gen[str]:
    for i, arm in enumerate(arms):
        if arm.cond is None or t.cond(arm.cond):
            t.decision("branch", {"arm": i, "condition": arm.cond.text if arm.cond else None})
            return (yield from run_actions(t, step, arm.actions, top=False))
    return NEXT


def end_of_turn(t: Turn) -> Gen[None]:
    """ESCALATE, then HANDOFF, then COMPLETE conditions; a handoff runs the new agent."""
    st = t.state
    while st.status == "active":
        if t.switched:
            t.switched = False
            t.stopped = False
            t.hold = False
            yield from start_agent(t, first_turn=False)
            if not t.hold and not t.stopped:
                yield from advance(t)
            continue
        p = t.program
        if p.escalate is not None:
            trig = next(
                (x for x in p.escalate.triggers if x.when is not None and t.cond(x.when)), None
            )
            if trig is not None:
                handlers.fire_escalate(
                    t, reason=trig.reason or "escalation condition met", trigger=trig
                )
                return
        moved = False
        for h in p.handoffs:
            if h.when is None:
                continue
            hit = t.cond(h.when)
            t.event(
                "handoff_condition_check",
                {"toAgent": h.target, "condition": h.when.text, "result": hit},
            )
            if hit and handlers.request_handoff(t, h.target, h, reason="condition"):
                moved = True
                break
        if moved:
            continue
        rule = next((r for r in p.complete if r.when is not None and t.cond(r.when)), None)
        if rule is not None and t.action.type != "complete":
            handlers.fire_complete(t, rule, reason="condition")
        return


__all__ = ["GOTO", "run"]
