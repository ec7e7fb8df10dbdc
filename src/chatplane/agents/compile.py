"""Compiling agent sources for storage: diagnostics -> violations, hashes, snapshots."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from chatplane.errors import InvalidFields
from chatplane.lang import (
    IR_VERSION,
    CompileResult,
    Diagnostic,
    Severity,
    compile_source,
    ir,
    to_json,
)
from chatplane.storage.models import Agent as AgentRow

COMPILE_ERROR = "COMPILE_ERROR"


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def snapshot_hash(agents: Mapping[str, tuple[str, str]]) -> str:
    """SHA-256 over the IR version and every agent's (name, format, source hash)."""
    canonical = json.dumps(
        [IR_VERSION, sorted((name, fmt, h) for name, (fmt, h) in agents.items())],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def describe(d: Diagnostic) -> str:
    """A violation's description: `line L, col C: [CODE] message`."""
    return f"line {d.line}, col {d.col}: [{d.code}] {d.message}"


def compile_failed(results: Iterable[tuple[str, str, CompileResult]]) -> InvalidFields:
    """One error for every compile error of (field, agent name, result); the message
    counts them and quotes the first."""
    violations: list[tuple[str, str]] = []
    first = ""
    for field, name, result in results:
        for d in result.errors:
            text = describe(d)
            if field != "source":
                text = f"{name}: {text}"
            violations.append((field, text))
            first = first or text
    count = len(violations)
    noun = "error" if count == 1 else "errors"
    return InvalidFields(
        f"Agent source does not compile: {count} {noun}; {first}",
        violations,
        reason=COMPILE_ERROR,
        metadata={"errors": str(count)},
    )


# --- imported tools (issue 13) ----------------------------------------------------------
# Tools imported into a project (`imported_tools`, from an ABL tools file or an OpenAPI
# document) are stored as ABL declarations: the body of a TOOLS: section. An agent sees
# them as if declared in its own TOOLS, unless it declares a tool of the same name (its
# own wins). The merge happens between lowering and checking, so CALLs to an imported
# tool are checked against its signature and line numbers stay the agent's own.

_TOOLS_HEADER = 'AGENT: Imported_Tools\nGOAL: "Imported tools"\nTOOLS:\n'
_HEADER_LINES = 3


def compile_tools(declarations: str) -> tuple[tuple[ir.Tool, ...], tuple[Diagnostic, ...]]:
    """The body of a TOOLS: section (indented declarations) -> IR tools, and the errors
    with lines counted from the first line of `declarations`."""
    result = compile_source(_TOOLS_HEADER + declarations.rstrip() + "\n", format="abl")
    errors = tuple(
        replace(d, line=max(1, d.line - _HEADER_LINES))
        for d in result.diagnostics
        if d.severity is Severity.ERROR
    )
    tools = result.program.tools if result.program is not None else ()
    return tools, errors


def tools_of(declarations: Iterable[str]) -> tuple[ir.Tool, ...]:
    """The IR tools of stored declarations (each compiled when it was imported)."""
    out: list[ir.Tool] = []
    for text in declarations:
        out.extend(compile_tools(text)[0])
    return tuple(out)


def compile_all(agents: list[AgentRow], imported: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Every agent compiled again with the whole project known and the project's
    imported tools (frozen into the snapshot); every error at once."""
    known = frozenset(a.name for a in agents)
    tools: tuple[ir.Tool, ...] = tools_of(imported)
    snapshot: dict[str, dict[str, Any]] = {}
    failed = []
    for agent in agents:
        result = compile_source(agent.source, known_agents=known, imported_tools=tools)
        if result.program is None:
            failed.append((f"agents.{agent.name}.source", agent.name, result))
            continue
        snapshot[agent.name] = {
            "id": agent.id,
            "format": result.format,
            "content_hash": source_hash(agent.source),
            "source": agent.source,
            "ir": to_json(result.program),
        }
    if failed:
        raise compile_failed(failed)
    return snapshot
