"""Conversation test suites: the file formats, the stored document, and the assertions.

A suite file is JSON in one of two shapes (the vendor publishes no schema):
- the stored shape of the vendor's creation status / export: `{"testSteps": [...]}` (or the
  whole creation-status answer with the document under `response`, or a bare array of
  steps). Each `event: "Start_Flow"` step starts a new test case (a fresh session), and a
  step may name its case with `testCase` and carry `toolMocks` (our extensions);
- `{"testCases": [{"name", "messages": [{"input", "event"?, "outputs": [{"contains": "..."
  | [...]}]}], "toolMocks"?: [...]}]}` (the shape of the unofficial sample), where an
  output may also carry `flow` ({agent, step, actionType}) and `context` ({var: value}).

Both become the stored document's `testSteps`: one step per user input, each with the
vendor's per-output `assertions` ({flowLevel, text, context}, each {enabled, contains}).

Assertions on a bot output:
- text: the expected text equals the actual one after collapsing whitespace; `{{...}}`
  in the expected text is a dynamic span (matches any text); several `contains` items are
  the OneOf variations (any one passes);
- flow: every `contains` item's keys equal the turn's: `nodeId`/`nodeName`/`step` (the
  step), `dialogName`/`agent` (the agent), `actionType` (continue, complete, escalate,
  handoff);
- context: each `{key, value}` (or `{name, value}`, or `{var: value}`) equals the
  session variable (dotted paths reach into objects).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from chatplane.errors import InvalidArgument

START_FLOW = "Start_Flow"
MAX_STEPS = 500
MAX_INPUT_CHARS = 4000
_DYNAMIC = re.compile(r"\{\{.*?\}\}", re.S)
_STEP_KEYS = ("nodeId", "nodeName", "step")
_AGENT_KEYS = ("dialogName", "agent", "taskName")
_ACTION_KEYS = ("actionType", "action")
OUTPUT_DEFAULTS: dict[str, Any] = {
    "nodeId": "",
    "componentType": "",
    "intentId": "",
    "nodeName": "",
    "intentType": "",
    "taskId": "",
    "dialogName": "",
    "transitions": [],
    "transitionNodeNames": [],
    "transitionNodeType": [],
}


@dataclass
class Problems:
    """Errors per invalid step, as the import status shows them."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, step: int, msg: str) -> None:
        self.items.append({"step": step, "msg": msg})


def _text_items(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [{"text": v if isinstance(v, str) else json.dumps(v)} for v in values]


def _assertions(
    text: list[dict[str, Any]], flow: Any = None, context: Any = None
) -> dict[str, Any]:
    flow_items = [flow] if isinstance(flow, dict) else list(flow or [])
    ctx_items = (
        [{"key": k, "value": v} for k, v in context.items()]
        if isinstance(context, dict)
        else list(context or [])
    )
    return {
        "flowLevel": {"enabled": bool(flow_items), "contains": flow_items},
        "text": {"enabled": bool(text), "contains": text},
        "context": {"enabled": bool(ctx_items), "contains": ctx_items},
    }


def _normal_output(out: Any, step_no: int, problems: Problems) -> dict[str, Any] | None:
    if isinstance(out, str):
        out = {"text": out}
    if not isinstance(out, dict):
        problems.add(step_no, "each output must be an object")
        return None
    if "assertions" in out:  # the stored shape: keep it, fill the defaults
        a = out["assertions"]
        if not isinstance(a, dict):
            problems.add(step_no, "assertions must be an object")
            return None
        result = {"text": str(out.get("text", "")), **OUTPUT_DEFAULTS}
        result |= {k: v for k, v in out.items() if k not in ("text", "assertions")}
        assertions: dict[str, Any] = {}
        for key in ("flowLevel", "text", "context"):
            found = a.get(key)
            block: dict[str, Any] = found if isinstance(found, dict) else {}
            contains = block.get("contains") or []
            if not isinstance(contains, list):
                problems.add(step_no, f"assertions.{key}.contains must be an array")
                return None
            assertions[key] = {"enabled": bool(block.get("enabled", False)), "contains": contains}
        if not assertions["text"]["contains"] and result["text"] and "text" not in a:
            assertions["text"] = {"enabled": True, "contains": [{"text": result["text"]}]}
        result["assertions"] = assertions
        return result
    text = _text_items(out.get("contains", out.get("text")))
    assertions = _assertions(text, out.get("flow"), out.get("context"))
    if out.get("flow") is None:  # on by default: the import's replay fills it in
        assertions["flowLevel"]["enabled"] = True
    return {"text": text[0]["text"] if text else "", **OUTPUT_DEFAULTS, "assertions": assertions}


def _normal_step(
    raw: Any, step_no: int, case: str, problems: Problems, mocks: list[Any] | None
) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        problems.add(step_no, "each test step must be an object")
        return None
    event = raw.get("event") or ""
    text = raw.get("input", event)
    if not isinstance(text, str) or not text.strip():
        problems.add(step_no, "input is required (a user message, or event Start_Flow)")
        return None
    if len(text) > MAX_INPUT_CHARS:
        problems.add(step_no, f"input is longer than {MAX_INPUT_CHARS} characters")
        return None
    if event and event != START_FLOW:
        problems.add(step_no, f"unknown event {str(event)[:60]!r} (only Start_Flow)")
        return None
    outputs_raw = raw.get("outputs") or []
    if not isinstance(outputs_raw, list):
        problems.add(step_no, "outputs must be an array")
        return None
    outputs = [_normal_output(o, step_no, problems) for o in outputs_raw]
    step: dict[str, Any] = {"input": text}
    if event:
        step["event"] = event
    step["outputs"] = [o for o in outputs if o is not None]
    step["testCase"] = case
    if mocks:
        step["toolMocks"] = mocks
    return step


def normalize(doc: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The suite file -> (test steps of the stored document, problems per step)."""
    problems = Problems()
    if isinstance(doc, dict) and isinstance(doc.get("response"), dict):
        doc = doc["response"]
    steps: list[dict[str, Any]] = []
    if isinstance(doc, dict) and isinstance(doc.get("testCases"), list):
        for n, case in enumerate(doc["testCases"], 1):
            if not isinstance(case, dict) or not isinstance(case.get("messages"), list):
                problems.add(len(steps) + 1, f"test case {n} needs a messages array")
                continue
            name = str(case.get("name") or f"case {n}")[:200]
            mocks = _mocks(case.get("toolMocks"), len(steps) + 1, problems)
            for i, message in enumerate(case["messages"]):
                step = _normal_step(
                    message, len(steps) + 1, name, problems, mocks if i == 0 else None
                )
                if step is not None:
                    steps.append(step)
    else:
        raw_steps = doc.get("testSteps") if isinstance(doc, dict) else doc
        if not isinstance(raw_steps, list):
            raise InvalidArgument(
                "The suite file must hold testSteps or testCases (JSON)",
                field="fileName",
                reason="INVALID_TEST_SUITE",
            )
        case_no, current = 0, ""
        for n, raw in enumerate(raw_steps, 1):
            named = raw.get("testCase") if isinstance(raw, dict) else None
            starts = isinstance(raw, dict) and (raw.get("event") == START_FLOW or n == 1)
            if named and named != current:
                current = str(named)[:200]
            elif starts and not named:
                case_no += 1
                current = f"case {case_no}"
            mocks = _mocks(raw.get("toolMocks"), n, problems) if isinstance(raw, dict) else None
            step = _normal_step(raw, n, current, problems, mocks)
            if step is not None:
                steps.append(step)
    if not steps and not problems.items:
        problems.add(0, "the suite has no test steps")
    if len(steps) > MAX_STEPS:
        problems.add(MAX_STEPS + 1, f"a suite has at most {MAX_STEPS} test steps")
    return steps, problems.items


def _mocks(value: Any, step_no: int, problems: Problems) -> list[Any] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(m, dict) and isinstance(m.get("toolName"), str) for m in value
    ):
        problems.add(step_no, "toolMocks must be an array of {toolName, response | error}")
        return None
    return value


def cases(steps: list[dict[str, Any]]) -> list[tuple[str, list[tuple[int, dict[str, Any]]]]]:
    """Steps grouped into test cases (in order; a case is consecutive steps of one name)."""
    out: list[tuple[str, list[tuple[int, dict[str, Any]]]]] = []
    for n, step in enumerate(steps):
        name = str(step.get("testCase") or "case 1")
        if not out or out[-1][0] != name or (step.get("event") == START_FLOW and out[-1][1]):
            out.append((name, []))
        out[-1][1].append((n, step))
    return out


# --- assertions ---------------------------------------------------------------------------


def _squash(text: str) -> str:
    return " ".join(text.split())


def text_matches(expected: str, actual: str) -> bool:
    """Equality after collapsing whitespace; `{{...}}` spans match any text."""
    exp, act = _squash(expected), _squash(actual)
    if "{{" not in exp:
        return exp == act
    parts = _DYNAMIC.split(exp)
    pattern = ".*?".join(re.escape(p) for p in parts)
    return re.fullmatch(pattern, act, re.S) is not None


def _lookup(variables: dict[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = variables
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _equal(expected: Any, actual: Any) -> bool:
    if expected == actual:
        return True
    return (
        isinstance(expected, str) and not isinstance(actual, str) and expected == json.dumps(actual)
    ) or (isinstance(expected, str) and str(actual) == expected)


@dataclass(frozen=True, slots=True)
class Observed:
    """What a turn produced for one expected output."""

    text: str
    agent: str
    step: str
    action: str
    variables: dict[str, Any]


def check_output(expected: dict[str, Any], seen: Observed) -> tuple[dict[str, Any], list[str]]:
    """The expected output with a `status` per assertion (and per `contains` item), and
    the reasons it failed (each naming its assertion)."""
    out = json.loads(json.dumps(expected))
    reasons: list[str] = []
    a = out.setdefault("assertions", _assertions([]))
    text = a.get("text") or {}
    if text.get("enabled"):
        for item in text.get("contains", []):
            item["status"] = (
                "passed" if text_matches(str(item.get("text", "")), seen.text) else "failed"
            )
        ok = any(i.get("status") == "passed" for i in text.get("contains", []))
        text["status"] = "passed" if ok else "failed"
        if not ok:
            wanted = " | ".join(str(i.get("text", "")) for i in text.get("contains", []))
            reasons.append(f"text: expected {wanted[:300]!r}, got {seen.text[:300]!r}")
    flow = a.get("flowLevel") or {}
    if flow.get("enabled"):
        all_ok = True
        for item in flow.get("contains", []):
            bad = _flow_mismatch(item, seen) if isinstance(item, dict) else ["not an object"]
            item_status = "failed" if bad else "passed"
            if isinstance(item, dict):
                item["status"] = item_status
            if bad:
                all_ok = False
                reasons.append("flow: " + "; ".join(bad))
        flow["status"] = "passed" if all_ok else "failed"
    context = a.get("context") or {}
    if context.get("enabled"):
        all_ok = True
        for item in context.get("contains", []):
            pairs = _context_pairs(item)
            item_ok = True
            for key, value in pairs:
                found, actual = _lookup(seen.variables, key)
                if not found or not _equal(value, actual):
                    item_ok = False
                    got = json.dumps(actual)[:200] if found else "unset"
                    reasons.append(f"context: {key} expected {json.dumps(value)[:200]}, got {got}")
            if isinstance(item, dict):
                item["status"] = "passed" if item_ok else "failed"
            all_ok = all_ok and item_ok
        context["status"] = "passed" if all_ok else "failed"
    out["status"] = "failed" if reasons else "passed"
    return out, reasons


def _flow_mismatch(item: dict[str, Any], seen: Observed) -> list[str]:
    bad: list[str] = []
    for keys, actual, what in (
        (_STEP_KEYS, seen.step, "step"),
        (_AGENT_KEYS, seen.agent, "agent"),
        (_ACTION_KEYS, seen.action, "action"),
    ):
        for key in keys:
            if key in item and item[key] not in ("", None) and str(item[key]) != actual:
                bad.append(f"expected {what} {item[key]!r}, got {actual!r}")
    return bad


def _context_pairs(item: Any) -> list[tuple[str, Any]]:
    if not isinstance(item, dict):
        return []
    if "key" in item or "name" in item:
        return [(str(item.get("key", item.get("name"))), item.get("value"))]
    return [(str(k), v) for k, v in item.items() if k != "status"]


def split_reply(reply: str, count: int) -> list[str]:
    """The reply's parts (the runtime joins its RESPONDs with a blank line) matched to
    `count` expected outputs: pairwise when the numbers agree, else the whole reply."""
    parts = [p for p in reply.split("\n\n") if p.strip()] if reply else []
    if count > 1 and len(parts) == count:
        return parts
    return [reply] * max(1, count)
