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
from chatplane.lang.check import check_program
from chatplane.lang.compiler import MAX_SOURCE_CHARS
from chatplane.lang.lower import lower
from chatplane.lang.lower_common import Ctx
from chatplane.lang.parser import check_top_level, detect_format, parse_abl, parse_yaml
from chatplane.lang.source import Sink
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


def compile_with_tools(
    text: str,
    imported: Sequence[ir.Tool] = (),
    *,
    known_agents: frozenset[str] | None = None,
) -> CompileResult:
    """`compile_source`, with the project's imported tools added to the agent's TOOLS
    (those it does not declare itself) before the checks run."""
    if not imported:
        return compile_source(text, known_agents=known_agents)
    sink = Sink()
    fmt = detect_format(text)
    if not text.strip() or len(text) > MAX_SOURCE_CHARS:
        return compile_source(text, known_agents=known_agents)
    root = parse_abl(text, sink) if fmt == "abl" else parse_yaml(text, sink)
    if not root.children and sink.has_errors:
        return CompileResult(None, sink.sorted(), fmt)
    check_top_level(root, fmt, sink)
    try:
        program = lower(Ctx(sink), root, fmt)
        if program is not None:
            own = {t.name for t in program.tools}
            extra = tuple(t for t in imported if t.name not in own)
            program = replace(program, tools=program.tools + extra)
            check_program(program, sink, known_agents)
    except RecursionError:
        sink.error("ABL0101", "the source is nested too deeply", 1)
        program = None
    return CompileResult(None if sink.has_errors else program, sink.sorted(), fmt)


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
        result = compile_with_tools(agent.source, tools, known_agents=known)
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
