"""SessionState: everything a session carries between turns, as plain JSON.

`to_json()` / `from_json()` round-trip exactly; `version` guards the format. The flow position
is (`step`, `pc`): the step and the index of its next action; `waiting` says what the session
waits for (`{"kind": "gather", ...}` or `{"kind": "reasoning"}`) and is None when the next turn
simply (re)starts at the position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

STATE_VERSION = 1
STATUSES = ("active", "completed", "escalated")

Json = Any


class StateError(ValueError):
    """A stored state this runtime cannot read."""


def _clone(value: dict[str, Json]) -> dict[str, Json]:
    """A deep copy of JSON data (a JSON round trip: several times faster than deepcopy,
    which matters with a 40-message history copied a few times per turn)."""
    copied: dict[str, Json] = json.loads(json.dumps(value))
    return copied


@dataclass(slots=True)
class SessionState:
    agent: str
    status: str = "active"
    vars: dict[str, Json] = field(default_factory=dict)
    step: str | None = None  # current flow step; None before the flow starts or after it ends
    pc: int = 0  # index of the next action of `step`
    entered: bool = False  # the current step's entry (WHEN, MAX_ATTEMPTS) has been done
    waiting: dict[str, Json] | None = None
    flow_done: bool = False  # the flow ended: further messages go to the reasoning loop
    gather_retries: dict[str, int] = field(default_factory=dict)  # field -> failed answers
    attempts: dict[str, int] = field(default_factory=dict)  # step -> entries (MAX_ATTEMPTS)
    reasoning_turns: dict[str, int] = field(default_factory=dict)  # step -> model rounds
    on_start_done: list[str] = field(default_factory=list)  # agents whose ON_START ran
    handoff_stack: list[dict[str, Json]] = field(default_factory=list)
    history: list[dict[str, Json]] = field(default_factory=list)  # {"role", "content"}
    turns: int = 0
    version: int = STATE_VERSION

    @classmethod
    def new(cls, agent: str) -> SessionState:
        return cls(agent=agent)

    def to_json(self) -> dict[str, Json]:
        return _clone(self._fields())

    def _fields(self) -> dict[str, Json]:
        """The JSON form, sharing this state's containers (callers copy it)."""
        return {
            "version": self.version,
            "agent": self.agent,
            "status": self.status,
            "vars": self.vars,
            "step": self.step,
            "pc": self.pc,
            "entered": self.entered,
            "waiting": self.waiting,
            "flowDone": self.flow_done,
            "gatherRetries": self.gather_retries,
            "attempts": self.attempts,
            "reasoningTurns": self.reasoning_turns,
            "onStartDone": self.on_start_done,
            "handoffStack": self.handoff_stack,
            "history": self.history,
            "turns": self.turns,
        }

    @classmethod
    def loads(cls, text: str) -> SessionState:
        """From its stored JSON text (parsed here, so nothing else shares it)."""
        return cls.from_json(json.loads(text), owned=True)

    @classmethod
    def from_json(cls, data: dict[str, Json], *, owned: bool = False) -> SessionState:
        """From JSON data, copied unless `owned` (nothing else holds it)."""
        if not isinstance(data, dict):
            raise StateError("session state must be an object")
        if data.get("version") != STATE_VERSION:
            raise StateError(f"unsupported session state version {data.get('version')!r}")
        d = data if owned else _clone(data)
        try:
            st = cls(
                agent=str(d["agent"]),
                status=str(d.get("status", "active")),
                vars=dict(d.get("vars") or {}),
                step=d.get("step"),
                pc=int(d.get("pc", 0)),
                entered=bool(d.get("entered", False)),
                waiting=d.get("waiting"),
                flow_done=bool(d.get("flowDone", False)),
                gather_retries={str(k): int(v) for k, v in (d.get("gatherRetries") or {}).items()},
                attempts={str(k): int(v) for k, v in (d.get("attempts") or {}).items()},
                reasoning_turns={
                    str(k): int(v) for k, v in (d.get("reasoningTurns") or {}).items()
                },
                on_start_done=[str(a) for a in d.get("onStartDone") or []],
                handoff_stack=list(d.get("handoffStack") or []),
                history=list(d.get("history") or []),
                turns=int(d.get("turns", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"malformed session state: {exc}") from exc
        if st.status not in STATUSES:
            raise StateError(f"unknown session status {st.status!r}")
        return st

    def copy(self) -> SessionState:
        return SessionState.from_json(_clone(self._fields()), owned=True)

    def public(self) -> dict[str, Json]:
        """What the API returns as `state`: the session variables and where the session is."""
        return _clone(
            {
                "agent": self.agent,
                "status": self.status,
                "step": self.step,
                "waitingFor": _waiting_for(self.waiting),
                "variables": self.vars,
                "turns": self.turns,
            }
        )

    def dumps(self) -> str:
        """The stored JSON text (serialized straight from the fields: no copy needed)."""
        return json.dumps(self._fields(), separators=(",", ":"), sort_keys=True)


def _waiting_for(w: dict[str, Json] | None) -> Json:
    if not w:
        return None
    if w.get("kind") == "gather":
        return {"kind": "gather", "fields": w.get("fields", [])}
    return {"kind": w.get("kind")}
