"""run_turn: drives the interpreter, performs its effects on the host, streams, bounds.

Never raises for agent-level problems (tool errors, bad data, limits, a bug in an agent): those
become `error` trace events and the ON_ERROR handler's or a generic apology reply. It raises
only a chatplane.errors.ChatplaneError from `host.call_model` of a kind that means no model can
serve the turn (UNAVAILABLE, FAILED_PRECONDITION, RESOURCE_EXHAUSTED, PERMISSION_DENIED,
UNAUTHENTICATED) during a reasoning call; the turn then has no effect.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from chatplane.errors import ChatplaneError
from chatplane.kit.ids import cuid
from chatplane.lang import Env, ir
from chatplane.runtime import interpreter
from chatplane.runtime.context import APOLOGY, Turn
from chatplane.runtime.effects import CallModel, CallTool, ModelFailure, Reply
from chatplane.runtime.host import Host
from chatplane.runtime.limits import Limits
from chatplane.runtime.state import SessionState
from chatplane.runtime.types import TextDelta, ToolResult, TurnAction, TurnInput, TurnOutcome

_DEFAULT_LIMITS = Limits()


async def run_turn(
    agents: Mapping[str, ir.Program],
    state: SessionState | None,
    turn: TurnInput,
    host: Host,
    *,
    entry: str,
    limits: Limits = _DEFAULT_LIMITS,
    clock: Callable[[], float] = time.monotonic,
    ids: Callable[[], str] = cuid,
    env: Env | None = None,
) -> TurnOutcome:
    """Run one user turn. `state` None starts a session at the agent `entry`."""
    t0 = clock()

    def now_ms() -> int:
        return max(0, int((clock() - t0) * 1000))

    # `before` is never changed: the caller's state stays as it was, and a failed turn
    # starts again from a copy of it.
    before = state if state is not None else SessionState.new(entry)
    st = before.copy()
    t = Turn(agents, st, turn, limits, now_ms, ids, env or Env())
    if st.agent not in agents:
        t.error("routing_error", f"agent {st.agent!r} is not part of this deployment")
        t.say(APOLOGY)
        return _outcome(t, before, failed=True)
    mocks = _Mocks(turn)
    gen = interpreter.run(t)
    failed = False
    try:
        send: Any = None
        while True:
            eff = gen.send(send)
            await _flush(t, host)
            if isinstance(eff, CallModel):
                try:
                    send = await host.call_model(eff.request)
                except Exception as exc:
                    send = ModelFailure(exc)
            else:
                assert isinstance(eff, CallTool)
                send = mocks.result(eff.tool.name)
                if send is None:
                    try:
                        send = await host.call_tool(eff.tool, eff.args, span_id=eff.span_id)
                    except Exception as exc:
                        send = ToolResult(False, None, f"{type(exc).__name__}: {exc}", "tool_error")
    except StopIteration:
        pass
    except ChatplaneError:
        gen.close()
        raise
    except Exception as exc:
        failed = True
        t.error("unknown_error", f"internal error: {type(exc).__name__}: {exc}")
        t.reply_parts = [APOLOGY]
        t.notices.append(Reply(APOLOGY))
    await _flush(t, host)
    return _outcome(t, before, failed=failed)


class _Mocks:
    def __init__(self, turn: TurnInput) -> None:
        self.by_tool: dict[str, list[Any]] = {}
        for m in turn.test.tool_mocks if turn.test is not None else ():
            self.by_tool.setdefault(m.tool_name, []).append(m)
        self.used: dict[str, int] = {}

    def result(self, name: str) -> ToolResult | None:
        ms = self.by_tool.get(name)
        if not ms:
            return None
        i = self.used.get(name, 0)
        self.used[name] = i + 1
        m = ms[min(i, len(ms) - 1)]
        if m.error is not None:
            return ToolResult(False, None, str(m.error), "tool_error")
        return ToolResult(True, m.response, None, None)


async def _flush(t: Turn, host: Host) -> None:
    notices, t.notices = t.notices, []
    events = t.events[t.flushed :]
    t.flushed = len(t.events)
    for n in notices:
        if isinstance(n, Reply):
            await host.emit(TextDelta(n.text))
    for ev in events:
        await host.emit(ev)


def _outcome(t: Turn, before: SessionState, *, failed: bool) -> TurnOutcome:
    reply = "\n\n".join(p for p in t.reply_parts if p)[: t.limits.max_reply_chars]
    st = before if failed else t.state
    if failed:
        st = before.copy()
    if reply:
        st.history.append({"role": "assistant", "content": reply})
    if len(st.history) > t.limits.history_messages:
        del st.history[: len(st.history) - t.limits.history_messages]
    action = t.action if not failed else TurnAction("continue")
    return TurnOutcome(
        reply=reply,
        action=action,
        state=st,
        events=tuple(t.events),
        error_count=t.errors,
        span_id=t.root,
    )
