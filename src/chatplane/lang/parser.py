"""Parsers from source text to the block tree (`ast.Node`), for both surface syntaxes.

Errors are collected in a `Sink`; nothing here raises on bad input.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml

from chatplane.lang.ast import Node
from chatplane.lang.lexer import canonical_key, lex
from chatplane.lang.source import Sink

Format = Literal["abl", "yaml"]

# Top-level section keywords the reference defines (both copies, agents and supervisors).
SECTIONS = frozenset(
    [
        "AGENT",
        "SUPERVISOR",
        "BEHAVIOR_PROFILE",
        "USE_BEHAVIOR_PROFILE",
        "VERSION",
        "DESCRIPTION",
        "LANGUAGE",
        "GOAL",
        "PERSONA",
        "LIMITATIONS",
        "IDENTITY",
        "INSTRUCTIONS",
        "EXECUTION",
        "TOOLS",
        "GATHER",
        "FLOW",
        "MEMORY",
        "CONSTRAINTS",
        "GUARDRAILS",
        "DELEGATE",
        "HANDOFF",
        "ESCALATE",
        "COMPLETE",
        "ON_ERROR",
        "ON_START",
        "MESSAGES",
        "TEMPLATES",
        "HOOKS",
        "NLU",
        "MULTI_INTENT",
        "INTENTS",
        "ENTITIES",
        "LOOKUP_TABLES",
        "SYSTEM_PROMPT",
        "ATTACHMENTS",
        "DESTINATIONS",
        "TRANSFER_FLOW_POLICIES",
        "RETURN_HANDLERS",
        "ACTION_HANDLERS",
        "CONVERSATION",
        "TESTS",
        "MODE",
        "AGENTS",
        "ROUTING",
        "STATE",
        "POLICIES",
        "COMMUNICATION",
        "BEHAVIOR",
        "IMPORTS",
        "IMPORT",
        "PROFILES",
        "BEHAVIOR_PROFILES",
        "APPLIES_TO",
        "PRIORITY",
        "MODEL",
        "CONTEXT",
        "VARIABLES",
        "DEFAULTS",
        "METADATA",
        "TAGS",
        "ON_END",
        "RETURN",
    ]
)


def detect_format(text: str) -> Format:
    """The first top-level key naming a known section decides: UPPERCASE is ABL."""
    for raw in text.splitlines():
        if not raw or raw[0] in " \t#-":
            continue
        key = raw.split(":", 1)[0].strip()
        if key.upper() in SECTIONS:
            return "abl" if key.isupper() else "yaml"
    return "abl"


def parse_abl(text: str, sink: Sink) -> Node:
    root = Node("root", 1, 0)
    stack: list[tuple[int, Node]] = [(-1, root)]
    levels: set[int] = {1}
    for lg in lex(text, sink):
        while stack[-1][0] >= lg.col:
            stack.pop()
        parent = stack[-1][1]
        if lg.col not in levels and lg.col < max(levels) and parent.kind != "item":
            sink.warning(
                "ABL0101",
                f"line {lg.line} is indented to column {lg.col}, which matches no enclosing block",
                lg.line,
                lg.col,
            )
        levels = {c for c in levels if c <= lg.col} | {lg.col}
        node = Node(lg.kind, lg.line, lg.col, lg.key, lg.value, lg.block)  # type: ignore[arg-type]
        parent.children.append(node)
        stack.append((lg.col, node))
    return root


def check_top_level(root: Node, fmt: Format, sink: Sink) -> None:
    """Top-level lines must be `SECTION:` entries in the file's case, each section once."""
    seen: dict[str, int] = {}
    for c in root.children:
        if c.kind != "entry":
            what = "a list item" if c.kind == "item" else f"'{(c.value or '')[:30]}'"
            sink.error(
                "ABL0103",
                f"unexpected {what} at the top level; expected a section such as GOAL:",
                c.line,
                c.col,
            )
            continue
        up = c.ukey
        if up in SECTIONS:
            wrong = (fmt == "abl" and not c.key.isupper()) or (
                fmt == "yaml" and not c.key.islower()
            )
            if wrong:
                want = up if fmt == "abl" else up.lower()
                sink.error(
                    "ABL0002",
                    f"section '{c.key}' at line {c.line} mixes syntaxes: this file is "
                    f"{fmt.upper()}, write '{want}:'",
                    c.line,
                    c.col,
                )
        if up in seen and up not in {"TESTS"}:
            sink.error(
                "ABL0104",
                f"section {c.key} at line {c.line} repeats the one at line {seen[up]}; merge them",
                c.line,
                c.col,
            )
        seen.setdefault(up, c.line)


def parse_yaml(text: str, sink: Sink) -> Node:
    """The YAML variant through PyYAML's composer, keeping line numbers."""
    root = Node("root", 1, 0)
    try:
        doc = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        sink.error("ABL0003", f"YAML syntax error: {exc.problem or exc}", line, col)
        return root
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        sink.error("ABL0003", f"YAML syntax error: {exc}", 1, 1)
        return root
    if doc is None:
        return root
    if not isinstance(doc, yaml.MappingNode):
        sink.error("ABL0003", "a YAML agent must be a mapping of sections", 1, 1)
        return root
    _yaml_children(doc, root, 0)
    return root


def _scalar_raw(node: Any) -> str:
    if node.style in ('"', "'"):
        return json.dumps(node.value)
    return str(node.value)


def _yaml_children(ynode: Any, parent: Node, depth: int) -> None:
    if depth > 200:
        return
    if isinstance(ynode, yaml.MappingNode):
        for k, v in ynode.value:
            key = canonical_key(str(k.value)) if isinstance(k, yaml.ScalarNode) else "?"
            entry = Node("entry", k.start_mark.line + 1, k.start_mark.column + 1, key)
            _yaml_value(v, entry, depth)
            parent.children.append(entry)
    elif isinstance(ynode, yaml.SequenceNode):
        for v in ynode.value:
            item = Node("item", v.start_mark.line + 1, max(v.start_mark.column - 1, 1))
            if isinstance(v, yaml.ScalarNode):
                item.children.append(
                    Node(
                        "text", v.start_mark.line + 1, v.start_mark.column + 1, value=_scalar_raw(v)
                    )
                )
            else:
                _yaml_children(v, item, depth + 1)
            parent.children.append(item)


def _yaml_value(v: Any, entry: Node, depth: int) -> None:
    if isinstance(v, yaml.ScalarNode):
        if v.style in ("|", ">"):
            entry.value, entry.block = str(v.value), True
        elif v.value == "" and v.style is None:
            entry.value = None
        else:
            entry.value = _scalar_raw(v)
    else:
        _yaml_children(v, entry, depth + 1)
