"""GATHER: fill fields from the user's message, validate, ask, retry, exhaust.

Extraction: typed values without a model (`extract.py`); free-text and ambiguous fields via
the model (`purpose="gather_extract"`, one `extract_fields` tool call) when `Limits.gather_model`
is on; if the model gives nothing usable (the local model just echoes) the whole message
fills the field being asked when that field is free text and nothing else came from the
message.

Retries: a message that answers a waiting GATHER but yields no valid value for the field
being asked is a failed answer; `retry_prompt` (else `prompt`) is asked again.
Exhaustion — more failed answers than `max_retries` (no limit when unset): the field's
`default` is used if it has one; else a `validation_error` (subtype `gather_exhausted`) goes
to ON_ERROR (step, then agent; `validation_error` or `default` handlers); else, if the step has
ON_EXHAUSTED, the flow moves there; else the count restarts and the prompt is asked again.
"""

from __future__ import annotations

import json
from typing import Any

from chatplane.lang import ir
from chatplane.runtime import handlers
from chatplane.runtime.context import Turn
from chatplane.runtime.effects import Gen
from chatplane.runtime.extract import coerce, extract_typed, is_free_text, json_type, validate
from chatplane.runtime.handlers import NEXT, WAIT
from chatplane.runtime.reasoning import call_model
from chatplane.runtime.types import ModelResult, ToolSchema

MAX_FREE_TEXT = 1000
EXTRACT_TOOL = "extract_fields"


def merged_fields(t: Turn, g: ir.Gather) -> list[ir.GatherField]:
    """Flow fields completed by the top-level GATHER field of the same name."""
    top = {f.name: f for f in t.program.gather}
    out: list[ir.GatherField] = []
    for f in g.fields:
        base = top.get(f.name)
        if base is None:
            out.append(f)
            continue
        out.append(
            ir.GatherField(
                name=f.name,
                prompt=f.prompt or base.prompt,
                type=f.type if f.type != "string" else base.type,
                required=f.required,
                default=f.default if f.default is not None else base.default,
                options=f.options or base.options,
                validate=f.validate or base.validate,
                retry_prompt=f.retry_prompt or base.retry_prompt,
                max_retries=f.max_retries if f.max_retries is not None else base.max_retries,
                line=f.line,
                extra={**base.extra, **f.extra},
            )
        )
    return out


def run(t: Turn, step: ir.Step | None, g: ir.Gather) -> Gen[str]:
    st = t.state
    fields = merged_fields(t, g)
    answering = t.answering and not t.consumed
    accepted: list[str] = []
    invalid: dict[str, str] = {}
    missing = [f for f in fields if not t.is_set(f.name)]
    if missing and not t.consumed:
        t.consumed = True
        yield from _fill(t, missing, accepted, invalid)
    while True:
        unset = [f for f in fields if not t.is_set(f.name)]
        needed = [f for f in unset if f.required and f.default is None]
        done = t.cond(g.complete_when) if g.complete_when is not None else not needed
        if done:
            for f in unset:
                if f.default is not None:
                    t.set_var(f.name, f.default)
            for f in fields:
                st.gather_retries.pop(f.name, None)
            st.waiting = None
            t.decision("gather", {"status": "complete", "fields": [f.name for f in fields]})
            return NEXT
        target = (needed or unset)[0]
        failed = answering and (not accepted or target.name in invalid)
        if not failed:
            break
        n = st.gather_retries.get(target.name, 0) + 1
        st.gather_retries[target.name] = n
        if target.max_retries is None or n <= target.max_retries:
            t.decision(
                "retry",
                {
                    "field": target.name,
                    "retries": n,
                    "maxRetries": target.max_retries,
                    "reason": invalid.get(target.name, "no value"),
                },
            )
            text = t.text(target.retry_prompt or target.prompt) or _ask(target)
            return _wait(t, step, fields, text)
        # exhausted
        st.gather_retries[target.name] = 0
        t.decision("retry", {"field": target.name, "status": "exhausted", "retries": n})
        if target.default is not None:
            t.set_var(target.name, target.default)
            answering = False
            continue
        t.error(
            "validation_error",
            f"no valid {target.name} after {n} answers",
            subtype="gather_exhausted",
        )
        h = handlers.find_handler(t, step, "validation_error", "gather_exhausted")
        if h is not None:
            r = handlers.apply_handler(t, step, h, "validation_error")
            return _wait(t, step, fields, "") if r == NEXT else r
        if step is not None and step.on_exhausted:
            return handlers.goto(t, step.on_exhausted, why="gather exhausted")
        t.say(f"Let's try that once more. {t.text(target.prompt) or _ask(target)}")
        return _wait(t, step, fields, "")
    text = ""
    if g.prompt is not None and len(needed) > 1:
        text = t.text(g.prompt)
    text = text or t.text(target.prompt) or _ask(target)
    return _wait(t, step, fields, text)


def _ask(f: ir.GatherField) -> str:
    return f"What is your {f.name.replace('_', ' ')}?"


def _wait(t: Turn, step: ir.Step | None, fields: list[ir.GatherField], text: str) -> str:
    t.say(text)
    t.state.waiting = {
        "kind": "gather",
        "step": step.name if step is not None else None,
        "fields": [f.name for f in fields if not t.is_set(f.name)],
    }
    return WAIT


def _accept(  # noqa: PLR0917
    t: Turn, f: ir.GatherField, raw: Any, accepted: list[str], invalid: dict[str, str], source: str
) -> None:
    ok, v = coerce(f, raw, t.env.now().date())
    reason = None if ok else f"{f.name} must be {f.type}"
    if reason is None:
        reason = validate(f, v, t.scope(), t.env)
    if reason is None and f.options and str(v) not in f.options:
        reason = f"{f.name} must be one of {list(f.options)}"
    if reason is not None:
        invalid[f.name] = reason
        t.decision(
            "gather", {"field": f.name, "status": "invalid", "reason": reason, "source": source}
        )
        return
    t.set_var(f.name, v)
    accepted.append(f.name)
    invalid.pop(f.name, None)
    t.event("dsl_set", {"variable": f.name, "value": v, "source": source})


def _fill(
    t: Turn, missing: list[ir.GatherField], accepted: list[str], invalid: dict[str, str]
) -> Gen[None]:
    msg = t.input.message
    values, ambiguous = extract_typed(missing, msg, t.env.now().date())
    by_name = {f.name: f for f in missing}
    for name, raw in values.items():
        _accept(t, by_name[name], raw, accepted, invalid, "typed")
    rest = [f for f in missing if f.name not in accepted]
    want = [f for f in rest if is_free_text(f) or f.name in ambiguous]
    if want and msg.strip() and t.limits.gather_model and t.model_calls < t.limits.max_model_calls:
        got = yield from _model(t, want, msg)
        for name, raw in got.items():
            if name in by_name and name not in accepted and raw is not None:
                _accept(t, by_name[name], raw, accepted, invalid, "model")
    rest = [f for f in missing if f.name not in accepted]
    first = next((f for f in rest if f.required and f.default is None), rest[0] if rest else None)
    if (
        first is not None
        and not accepted
        and first.name not in invalid
        and is_free_text(first)
        and msg.strip()
    ):
        _accept(t, first, msg.strip()[:MAX_FREE_TEXT], accepted, invalid, "message")


def _model(t: Turn, want: list[ir.GatherField], msg: str) -> Gen[dict[str, Any]]:
    props = {f.name: json_type(f) for f in want}
    tool = ToolSchema(
        EXTRACT_TOOL,
        "Record the values the user's message gives for these fields (omit unknown ones).",
        {"type": "object", "properties": props},
    )
    system = (
        "Extract field values from the user's message. Call extract_fields with only the "
        "fields the message states; never guess.\nFields: "
        + json.dumps(
            {
                f.name: {"type": f.type, "prompt": f.prompt.source if f.prompt else None}
                for f in want
            }
        )
    )
    res = yield from call_model(
        t, system, [{"role": "user", "content": msg}], (tool,), "gather_extract"
    )
    if not isinstance(res, ModelResult):
        return {}
    for c in res.tool_calls:
        if c.name != EXTRACT_TOOL:
            continue
        try:
            data = json.loads(c.arguments)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return {}
