"""Turn: the mutable context of one turn (state, scope, events, reply, counters).

Pure: time comes from the injected clock, ids from the injected generator.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from chatplane.lang import Env, EvalError, evaluate, ir, render
from chatplane.lang.builtins import truthy
from chatplane.lang.expr_ast import Expression, Template
from chatplane.runtime.effects import Notice, Reply
from chatplane.runtime.limits import Limits
from chatplane.runtime.state import SessionState
from chatplane.runtime.types import TraceEvent, TurnAction, TurnInput

APOLOGY = "Sorry, something went wrong on my side. Please try again in a moment."
_ACTION_RANK = {"continue": 0, "handoff": 1, "complete": 2, "escalate": 3}
MAX_EVENT_TEXT = 2000


class Turn:
    def __init__(  # noqa: PLR0917 - one internal constructor
        self,
        agents: Mapping[str, ir.Program],
        state: SessionState,
        turn: TurnInput,
        limits: Limits,
        now_ms: Callable[[], int],
        new_id: Callable[[], str],
        env: Env,
    ) -> None:
        self.agents = agents
        self.state = state
        self.input = turn
        self.limits = limits
        self.now_ms = now_ms
        self.new_id = new_id
        self.env = env
        self.root = new_id()
        self.events: list[TraceEvent] = []
        self.notices: list[Notice] = []
        self.flushed = 0  # events already streamed
        self.reply_parts: list[str] = []
        self.action = TurnAction("continue")
        self.answering = state.waiting is not None  # the message answers what we asked
        self.consumed = False  # a GATHER or a reasoning step has taken the message
        self.hold = False  # first turn: ON_START greeted and the flow waits for input
        self.stopped = False  # nothing more runs this turn (limit, escalate, complete...)
        self.model_calls = 0
        self.tool_calls = 0
        self.steps = 0
        self.handoffs = 0
        self.switched = False  # a handoff happened: the new agent runs next
        self.errors = 0
        self.span: str | None = None  # the current step's span (parent of its events)

    @property
    def program(self) -> ir.Program:
        return self.agents[self.state.agent]

    # ---- scope and evaluation ----------------------------------------------------------

    def scope(self) -> dict[str, Any]:
        v = self.state.vars
        md = self.input.metadata
        s: dict[str, Any] = dict(v)
        sess = dict(v["session"]) if isinstance(v.get("session"), dict) else {}
        sess.update(v)
        sess.pop("session", None)
        sess["messageMetadata"] = md
        sess["agent"] = self.state.agent
        s["session"] = sess
        s["message_metadata"] = md
        s["input"] = self.input.message
        s.setdefault("message", self.input.message)
        return s

    def cond(self, e: Expression | None, default: bool = False) -> bool:
        if e is None:
            return default
        try:
            return truthy(evaluate(e, self.scope(), self.env))
        except (EvalError, RecursionError) as exc:
            self.error("validation_error", f"condition {e.text!r}: {exc}")
            return False

    def value(self, e: Expression) -> tuple[bool, Any]:
        try:
            return True, _jsonable(evaluate(e, self.scope(), self.env))
        except (EvalError, RecursionError) as exc:
            self.error("validation_error", f"expression {e.text!r}: {exc}")
            return False, None

    def text(self, t: ir.Text | Template | None) -> str:
        if t is None:
            return ""
        tpl = t.template if isinstance(t, ir.Text) else t
        try:
            return render(tpl, self.scope(), self.env)
        except (EvalError, RecursionError) as exc:
            self.error("validation_error", f"template: {exc}")
            return ""

    def set_var(self, name: str, value: Any) -> None:
        name = name.removeprefix("session.")
        parts = name.split(".")
        target = self.state.vars
        for p in parts[:-1]:
            nxt = target.get(p)
            if not isinstance(nxt, dict):
                nxt = {}
                target[p] = nxt
            target = nxt
        target[parts[-1]] = _jsonable(value)

    def clear_var(self, name: str) -> None:
        name = name.removeprefix("session.")
        parts = name.split(".")
        target: Any = self.state.vars
        for p in parts[:-1]:
            target = target.get(p) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target.pop(parts[-1], None)
        self.state.gather_retries.pop(name, None)

    def is_set(self, name: str) -> bool:
        return self.state.vars.get(name) is not None

    # ---- output ------------------------------------------------------------------------

    def say(self, text: str) -> None:
        if not text:
            return
        self.reply_parts.append(text)
        self.notices.append(Reply(text))

    @property
    def said(self) -> bool:
        return bool(self.reply_parts)

    def event(
        self,
        type: str,
        data: dict[str, Any],
        *,
        kind: str | None = None,
        started: int | None = None,
        span: str | None = None,
        parent: str | None = None,
    ) -> TraceEvent:
        now = self.now_ms()
        start = now if started is None else started
        ev = TraceEvent(
            type=type,
            span_id=span or self.new_id(),
            parent_span_id=parent or self.span or self.root,
            started_ms=start,
            duration_ms=max(0, now - start),
            data=_jsonable(data),
            decision_kind=kind,
        )
        self.events.append(ev)
        return ev

    def decision(self, kind: str, data: dict[str, Any]) -> None:
        self.event("decision", data, kind=kind)

    def error(self, etype: str, message: str, **data: Any) -> None:
        self.errors += 1
        self.event("error", {"errorType": etype, "message": message[:MAX_EVENT_TEXT], **data})

    def set_action(self, type: str, data: dict[str, Any]) -> None:
        if _ACTION_RANK[type] >= _ACTION_RANK[self.action.type]:
            self.action = TurnAction(type, _jsonable(data))

    def tick(self) -> bool:
        """Count one unit of work; False (and the turn stops) past Limits.max_steps."""
        self.steps += 1
        if self.steps > self.limits.max_steps:
            if not self.stopped:
                self.error("limit_exceeded", f"more than {self.limits.max_steps} steps in a turn")
                if not self.said:
                    self.say(APOLOGY)
            self.stopped = True
            return False
        return True


def _jsonable(v: Any) -> Any:
    """A plain-JSON copy (tuples to lists, unknown objects to strings)."""
    try:
        return json.loads(json.dumps(v, default=str))
    except (ValueError, RecursionError):
        return None
