"""Transitions and outcomes: THEN/GOTO, ON_ERROR handlers, COMPLETE, ESCALATE, HANDOFF."""

from __future__ import annotations

from typing import Any

from chatplane.lang import ir
from chatplane.runtime.context import APOLOGY, Turn
from chatplane.runtime.effects import Complete, Escalate, Handoff

FLOW_END = frozenset({"END", "DONE", "EXIT"})

# What an action returns to its caller: go on with the next action ("next"), the flow moved
# ("goto"), the session now waits for the user ("wait"), nothing more runs this turn ("stop").
NEXT, GOTO, WAIT, STOP = "next", "goto", "wait", "stop"


def next_in_order(t: Turn, step: ir.Step) -> str | None:
    flow = t.program.flow
    if flow is None or step.name not in flow.order:
        return None
    i = flow.order.index(step.name)
    return flow.order[i + 1] if i + 1 < len(flow.order) else None


def goto(t: Turn, target: str | None, *, why: str = "then") -> str:
    """Move the flow to `target` (a step, END/DONE/EXIT, COMPLETE, ESCALATE, CONTINUE)."""
    st = t.state
    frm = st.step
    st.pc, st.entered, st.waiting = 0, False, None
    flow = t.program.flow
    if flow is not None and target is not None and target in flow.steps:
        st.step = target
        t.decision("routing", {"fromStep": frm, "toStep": target, "reason": why})
        return GOTO
    if target is not None and target.upper() == "CONTINUE":
        cur = t.program.flow.steps.get(frm or "") if t.program.flow else None
        target = next_in_order(t, cur) if cur is not None else None
    if target is None or target.upper() in FLOW_END:
        st.step, st.flow_done = None, True
        t.event("state_change", {"fromStep": frm, "toStep": None, "reason": why})
        return GOTO
    if target.upper() == "COMPLETE":
        st.step, st.flow_done = None, True
        fire_complete(t, None, reason=f"flow {why} COMPLETE")
        return STOP
    if target.upper() == "ESCALATE":
        fire_escalate(t, reason=f"flow {why} ESCALATE")
        return STOP
    if flow is None or target not in flow.steps:
        t.error("routing_error", f"no step named {target!r}", fromStep=frm)
        st.step, st.flow_done = None, True
        return GOTO
    st.step = target
    t.decision("routing", {"fromStep": frm, "toStep": target, "reason": why})
    return GOTO


# ---- ON_ERROR -----------------------------------------------------------------------------


def find_handler(
    t: Turn, step: ir.Step | None, etype: str, subtype: str | None
) -> ir.ErrorHandler | None:
    def match(hs: tuple[ir.ErrorHandler, ...], typ: str) -> ir.ErrorHandler | None:
        for h in hs:
            if h.type == typ and (
                not h.subtypes or (subtype is not None and subtype in h.subtypes)
            ):
                return h
        return None

    layers = [step.on_error if step is not None else (), t.program.on_error]
    for hs in layers:
        h = match(hs, etype) or match(hs, "default")
        if h is not None:
            return h
    if etype == "validation_error" and subtype == "gather_exhausted":
        return None
    for hs in layers:
        h = match(hs, "unknown_error")
        if h is not None and etype not in ("validation_error",):
            return h
    return None


def apply_handler(t: Turn, step: ir.Step | None, h: ir.ErrorHandler | None, etype: str) -> str:
    """Run a handler's SET/RESPOND/THEN. Without one: an apology, and the turn stops."""
    if h is None:
        if not t.said:
            t.say(APOLOGY)
        st = t.state
        st.pc = 0  # the next message re-runs the step's actions (not counted as an attempt)
        t.stopped = True
        return STOP
    t.decision("error_handler", {"errorType": etype, "handler": h.type, "then": h.then})
    for s in h.sets:
        ok, v = t.value(s.value)
        if ok:
            t.set_var(s.var, v)
    if h.respond is not None:
        t.say(t.text(h.respond))
    then = (h.then or "CONTINUE").upper()
    if then == "CONTINUE":
        return NEXT
    if then == "COMPLETE":
        fire_complete(t, None, reason=etype)
        return STOP
    if then == "ESCALATE":
        fire_escalate(t, reason=f"unhandled {etype}")
        return STOP
    if then == "HANDOFF" and h.handoff_target:
        t.state.vars.setdefault("error_type", etype)
        request_handoff(t, h.handoff_target, None, reason=etype)
        return STOP
    if then == "RETRY_STEP" and step is not None:
        return goto(t, step.name, why="RETRY_STEP")
    if then == "BACKTRACK" and h.backtrack_to:
        return goto(t, h.backtrack_to, why="BACKTRACK")
    return NEXT


# ---- outcomes -----------------------------------------------------------------------------


def fire_complete(t: Turn, rule: ir.CompleteRule | None, *, reason: str) -> None:
    data: dict[str, Any] = {"reason": reason}
    if rule is not None:
        for s in rule.sets:
            ok, v = t.value(s.value)
            if ok:
                t.set_var(s.var, v)
        if rule.respond is not None:
            t.say(t.text(rule.respond))
        if rule.when is not None:
            data["condition"] = rule.when.text
    terminal = rule is None or rule.terminal
    if terminal:
        t.state.status = "completed"
        t.stopped = True
    t.decision("completion", {**data, "terminal": terminal})
    t.set_action("complete", data)
    t.notices.append(Complete(data))


def fire_escalate(t: Turn, *, reason: str, trigger: ir.EscalateTrigger | None = None) -> None:
    esc = t.program.escalate
    data: dict[str, Any] = {"reason": reason, "priority": "medium", "tags": []}
    if trigger is not None:
        for s in trigger.sets:
            ok, v = t.value(s.value)
            if ok:
                t.set_var(s.var, v)
        data.update(priority=trigger.priority, tags=list(trigger.tags))
        if trigger.when is not None:
            data["condition"] = trigger.when.text
    if esc is not None and esc.context_for_human:
        data["context"] = {k: t.state.vars.get(k) for k in esc.context_for_human}
    t.state.status = "escalated"
    t.state.waiting = None
    t.stopped = True
    t.decision("escalation", data)
    t.set_action("escalate", data)
    t.notices.append(Escalate(data))


def request_handoff(t: Turn, target: str, rule: ir.Handoff | None, *, reason: str) -> bool:
    """Switch the session to `target`; the caller runs the new agent. False if impossible."""
    frm = t.state.agent
    if target not in t.agents:
        t.error("routing_error", f"handoff target {target!r} is not an agent of this deployment")
        return False
    if t.handoffs >= t.limits.max_handoffs:
        t.error("limit_exceeded", f"more than {t.limits.max_handoffs} handoffs in a turn")
        return False
    t.handoffs += 1
    t.switched = True
    st = t.state
    passed = {k: st.vars[k] for k in (rule.pass_vars if rule else ()) if k in st.vars}
    summary = t.text(rule.summary) if rule is not None and rule.summary is not None else None
    history = rule.history if rule is not None else "full"
    st.handoff_stack.append(
        {
            "agent": frm,
            "vars": st.vars,
            "step": st.step,
            "pc": st.pc,
            "flowDone": st.flow_done,
            "expectReturn": bool(rule.expect_return) if rule else False,
        }
    )
    st.vars = dict(passed)
    st.vars["handoff"] = {"from": frm, "reason": reason, "summary": summary}
    st.history = _history(st.history, history)
    if summary:
        st.history.append({"role": "assistant", "content": f"[handoff from {frm}] {summary}"})
    st.agent = target
    st.step, st.pc, st.entered, st.waiting, st.flow_done = None, 0, False, None, False
    st.gather_retries, st.attempts, st.reasoning_turns = {}, {}, {}
    span = t.new_id()
    data = {"fromAgent": frm, "toAgent": target, "reason": reason, "passed": sorted(passed)}
    t.event("handoff", data, span=span)
    if rule is not None:
        t.event(
            "deterministic_handoff",
            {**data, "condition": rule.when.text if rule.when else None},
            parent=span,
        )
    t.decision("handoff", data)
    t.set_action("handoff", {"fromAgent": frm, "toAgent": target, "reason": reason})
    t.notices.append(Handoff(frm, target, data))
    return True


def _history(h: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    m = mode.lower()
    if m in ("none", "summary", "summary_only"):
        return []
    if m.startswith("last_n:"):
        try:
            n = int(m.split(":", 1)[1])
        except ValueError:
            n = 10
        return h[-n:] if n > 0 else []
    if m == "auto":
        return h[-10:]
    return list(h)
