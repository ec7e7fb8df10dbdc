"""compile_source: text -> IR program and every diagnostic, in one pass, never raising."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from chatplane.lang import ir
from chatplane.lang.check import check_program
from chatplane.lang.lower import lower
from chatplane.lang.lower_common import Ctx
from chatplane.lang.parser import Format, check_top_level, detect_format, parse_abl, parse_yaml
from chatplane.lang.source import Diagnostic, Severity, Sink

MAX_SOURCE_CHARS = 1_000_000


@dataclass(frozen=True, slots=True)
class CompileResult:
    program: ir.Program | None  # None when there is any error
    diagnostics: tuple[Diagnostic, ...]
    format: Format

    @property
    def ok(self) -> bool:
        return self.program is not None

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)


def compile_source(
    text: str,
    *,
    known_agents: frozenset[str] | None = None,
    format: Format | None = None,
    imported_tools: Sequence[ir.Tool] = (),
) -> CompileResult:
    """Compile ABL or its YAML variant. `known_agents`: the project's agents, for HANDOFF
    checks; `imported_tools`: the project's imported tools, added to the agent's own TOOLS
    (which win on a name clash) before lowering the flow and the checks."""
    sink = Sink()
    fmt: Format = format or detect_format(text)
    if not text.strip():
        sink.error("ABL0001", "the source is empty; an agent needs at least AGENT: and GOAL:", 1)
        return CompileResult(None, sink.sorted(), fmt)
    if len(text) > MAX_SOURCE_CHARS:
        sink.error("ABL0001", f"the source is over {MAX_SOURCE_CHARS} characters", 1)
        return CompileResult(None, sink.sorted(), fmt)
    root = parse_abl(text, sink) if fmt == "abl" else parse_yaml(text, sink)
    if not root.children and sink.has_errors:
        return CompileResult(None, sink.sorted(), fmt)  # unreadable YAML: nothing to lower
    check_top_level(root, fmt, sink)
    ctx = Ctx(sink, tools={t.name: t for t in imported_tools})
    try:
        program = lower(ctx, root, fmt)
        if program is not None:
            own = {t.name for t in program.tools}
            extra = tuple(t for t in imported_tools if t.name not in own)
            if extra:
                program = replace(program, tools=program.tools + extra)
            check_program(program, sink, known_agents)
    except RecursionError:
        sink.error("ABL0101", "the source is nested too deeply", 1)
        program = None
    return CompileResult(None if sink.has_errors else program, sink.sorted(), fmt)
