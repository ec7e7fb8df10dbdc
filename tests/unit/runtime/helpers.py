"""Helpers for the runtime tests: compile inline agents, run conversations."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from chatplane.lang import compile_source, ir
from chatplane.runtime import (
    Limits,
    SessionState,
    TestContext,
    TurnInput,
    TurnOutcome,
    run_turn,
)
from tests.fakes.runtime_host import ScriptedHost

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "agents"
AGENTS = Path(__file__).parent / "agents"


def agent(text: str) -> ir.Program:
    r = compile_source(text)
    assert r.program is not None, [d.format() for d in r.diagnostics]
    return r.program


def agents(*texts: str) -> dict[str, ir.Program]:
    out = {}
    for t in texts:
        p = agent(t)
        out[p.name] = p
    return out


class Chat:
    """A conversation with one deployment, state carried between turns."""

    def __init__(
        self,
        programs: dict[str, ir.Program] | ir.Program,
        host: ScriptedHost | None = None,
        entry: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        if isinstance(programs, ir.Program):
            programs = {programs.name: programs}
        self.agents = programs
        self.entry = entry or next(iter(programs))
        self.host = host or ScriptedHost()
        self.state: SessionState | None = None
        self.limits = limits or Limits()
        self.outcomes: list[TurnOutcome] = []
        self._ids = itertools.count(1)

    async def say(
        self, message: str, test: TestContext | None = None, metadata: dict[str, Any] | None = None
    ) -> TurnOutcome:
        out = await run_turn(
            self.agents,
            self.state,
            TurnInput(message, metadata or {}, test),
            self.host,
            entry=self.entry,
            limits=self.limits,
            ids=lambda: f"s{next(self._ids)}",
        )
        # every state survives a JSON round trip
        assert SessionState.from_json(out.state.to_json()).to_json() == out.state.to_json()
        self.state = SessionState.from_json(out.state.to_json())
        self.outcomes.append(out)
        return out

    @property
    def vars(self) -> dict[str, Any]:
        assert self.state is not None
        return self.state.vars


def types(out: TurnOutcome) -> list[str]:
    return [e.type for e in out.events]


def kinds(out: TurnOutcome) -> list[str | None]:
    return [e.decision_kind for e in out.events if e.type == "decision"]
