"""The intermediate representation (IR) the runtime executes. Frozen, versioned, JSON-able.

Expressions and templates are already parsed (`expr_ast`). Constructs the runtime does not
execute yet are carried with `supported=False` (and a compile warning), never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatplane.lang.expr_ast import Expression, Template

IR_VERSION = "1.0"

Json = Any  # plain JSON data: str | int | float | bool | None | list | dict


@dataclass(frozen=True, slots=True)
class Text:
    """A string property with its parsed template (`{{...}}`)."""

    source: str
    template: Template


# ---- tools -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str = "string"
    optional: bool = False
    default: Json = None
    has_default: bool = False
    description: str | None = None
    extra: dict[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HttpConfig:
    endpoint: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    params: tuple[Param, ...]
    returns: str | None
    description: str | None
    kind: str | None  # the `type:` binding: http, mcp, sandbox, ...; None = not bound
    http: HttpConfig | None
    line: int
    supported: bool = True
    extra: dict[str, Json] = field(default_factory=dict)


# ---- gather and memory --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Validation:
    kind: str  # "pattern" | "min" | "max" | "enum" | "email" | "expr" | "other"
    source: str
    pattern: str | None = None
    args: tuple[Json, ...] = ()
    expr: Expression | None = None


@dataclass(frozen=True, slots=True)
class GatherField:
    name: str
    prompt: Text | None
    type: str = "string"
    required: bool = True
    default: Json = None
    options: tuple[str, ...] = ()
    validate: Validation | None = None
    retry_prompt: Text | None = None
    max_retries: int | None = None
    line: int = 0
    extra: dict[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MemoryVar:
    name: str
    type: str | None = None
    initial: Json = None
    reset: str = "per_session"
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Memory:
    session: tuple[MemoryVar, ...] = ()
    persistent: tuple[MemoryVar, ...] = ()
    extra: dict[str, Json] = field(default_factory=dict)  # remember / recall: not executed yet


# ---- actions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Respond:
    text: Text
    line: int = 0


@dataclass(frozen=True, slots=True)
class Gather:
    fields: tuple[GatherField, ...]
    complete_when: Expression | None = None
    strategy: str | None = None
    prompt: Text | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    value: Expression


@dataclass(frozen=True, slots=True)
class Branch:
    """One `IF:` (or `ELSE:` when cond is None) arm with its actions."""

    cond: Expression | None
    actions: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class CallTool:
    tool: str
    args: tuple[Arg, ...] = ()
    as_var: str | None = None
    on_result: tuple[Branch, ...] = ()
    on_success: tuple[Branch, ...] = ()
    on_fail: tuple[Branch, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Set:
    var: str
    value: Expression
    line: int = 0


@dataclass(frozen=True, slots=True)
class Check:
    cond: Expression
    on_fail: tuple[Action, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Clear:
    vars: tuple[str, ...]
    line: int = 0


@dataclass(frozen=True, slots=True)
class Goto:
    """THEN / GOTO: move to a step (or the terminal `COMPLETE` / `END`)."""

    step: str
    line: int = 0


@dataclass(frozen=True, slots=True)
class Branches:
    """ON_START `BRANCHES:` and ON_INPUT: the first arm whose condition holds runs."""

    arms: tuple[Branch, ...]
    on_input: bool = False
    line: int = 0


@dataclass(frozen=True, slots=True)
class Log:
    message: Text
    level: str = "info"
    line: int = 0


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A construct that parses but the runtime does not execute yet (a warning was issued)."""

    keyword: str
    data: Json
    line: int = 0


Action = Respond | Gather | CallTool | Set | Check | Clear | Goto | Branches | Log | Unsupported


# ---- flow ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorHandler:
    type: str  # default, llm_error, tool_error, routing_error, validation_error, ...
    subtypes: tuple[str, ...] = ()
    respond: Text | None = None
    retry: int = 0
    retry_delay_ms: int | None = None
    retry_backoff: str | None = None
    retry_max_delay_ms: int | None = None
    then: str | None = None  # CONTINUE | COMPLETE | ESCALATE | BACKTRACK | RETRY_STEP | HANDOFF
    handoff_target: str | None = None
    backtrack_to: str | None = None
    sets: tuple[Set, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    reasoning: bool
    actions: tuple[Action, ...]
    then: str | None = None
    then_line: int = 0
    when: Expression | None = None
    max_attempts: int | None = None
    on_exhausted: str | None = None
    goal: str | None = None
    available_tools: tuple[str, ...] | None = None
    exit_when: Expression | None = None
    max_turns: int = 10
    on_error: tuple[ErrorHandler, ...] = ()
    line: int = 0
    extra: dict[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Flow:
    entry_point: str
    order: tuple[str, ...]
    steps: dict[str, Step]
    extra: dict[str, Json] = field(default_factory=dict)


# ---- coordination -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handoff:
    target: str
    when: Expression | None
    pass_vars: tuple[str, ...] = ()
    summary: Text | None = None
    history: str = "full"
    expect_return: bool = False
    line: int = 0
    extra: dict[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EscalateTrigger:
    when: Expression | None
    reason: str | None = None
    priority: str = "medium"
    tags: tuple[str, ...] = ()
    sets: tuple[Set, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Escalate:
    triggers: tuple[EscalateTrigger, ...]
    context_for_human: tuple[str, ...] = ()
    routing: dict[str, Json] = field(default_factory=dict)
    extra: dict[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CompleteRule:
    when: Expression | None
    respond: Text | None = None
    sets: tuple[Set, ...] = ()
    terminal: bool = True
    store: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Section:
    """A section carried as data: `supported=False` ones are not executed yet."""

    name: str
    data: Json
    supported: bool
    line: int


@dataclass(frozen=True, slots=True)
class Program:
    ir_version: str
    format: str  # "abl" | "yaml"
    kind: str  # "agent" | "supervisor" | "behavior_profile"
    name: str
    goal: str
    version: str = "1.0.0"
    description: str | None = None
    language: str | None = None
    persona: str | None = None
    instructions: str | None = None
    limitations: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()
    gather: tuple[GatherField, ...] = ()
    memory: Memory = field(default_factory=Memory)
    flow: Flow | None = None
    on_start: tuple[Action, ...] = ()
    handoffs: tuple[Handoff, ...] = ()
    escalate: Escalate | None = None
    complete: tuple[CompleteRule, ...] = ()
    on_error: tuple[ErrorHandler, ...] = ()
    sections: tuple[Section, ...] = ()
