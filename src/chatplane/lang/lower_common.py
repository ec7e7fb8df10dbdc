"""Lowering helpers shared by the section lowerers: values, texts, expressions, action lists."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chatplane.lang import ir
from chatplane.lang.ast import Node
from chatplane.lang.expr_ast import Call, Expr, Expression, Lit, MapExpr, Semantic
from chatplane.lang.expr_parser import ExprError, parse_expr, parse_template
from chatplane.lang.source import Sink
from chatplane.lang.values import Json, is_quoted, node_data, scalar, split_list, unquote

_COND_OPS = re.compile(r"==|!=|<|>|&&|\|\||!|\bIS\b|\bcontains\b|\bmatches\b|\bin\b|\(", re.I)
_ASSIGN = re.compile(r"\s*([A-Za-z_][\w.]*)\s*(?:=|:)(?!=)\s*(.*)$", re.S)

# Step/action keywords the reference defines that the runtime does not execute yet.
UNSUPPORTED_ACTIONS = frozenset(
    [
        "TRANSFORM",
        "AWAIT_ATTACHMENT",
        "SECURE_INPUT",
        "DIGRESSIONS",
        "SUB_INTENTS",
        "ACTIONS",
        "ON_ACTION",
        "VOICE",
        "FORMATS",
        "RICH_CONTENT",
        "MESSAGE_KEY",
        "BEHAVIOR",
        "RESOLVE_SIP_DESTINATION",
        "CORRECTIONS",
        "DELEGATE",
        "HANDOFF",
        "STEP_CONSTRAINTS",
        "BARGE_IN",
        "STREAMING",
        "SET_INTERACTION_LANGUAGE",
        "CLEAR_INTERACTION_LANGUAGE",
        "COMPLETE",
        "RESUME",
        "ESCALATE",
        "DO",
        "CAROUSEL",
        "TEMPLATE",
        "CRITICAL",
        "QUICK_REPLIES",
        "ON_TIMEOUT",
        "ON_CANCEL",
        "SUBMIT_LABEL",
        "SUBMIT_ID",
        "RENDER_ID",
    ]
)


@dataclass
class Ctx:
    """State of one lowering run: the diagnostics sink and facts checks need later."""

    sink: Sink
    reads: list[tuple[str, int]] = field(default_factory=list)  # (root variable, line)
    tools: dict[str, ir.Tool] = field(default_factory=dict)  # declared tools, by name

    def text(self, node: Node) -> ir.Text | None:
        raw = node.value
        if raw is None:
            if node.children:
                lines = [c.value or "" for c in node.children if c.kind == "text"]
                raw = "\n".join(lines) if lines else None
            if raw is None:
                return None
        src = raw if node.block else unquote(raw)
        return self.template(src, node.line, node.col)

    def template(self, src: str, line: int, col: int) -> ir.Text | None:
        try:
            return ir.Text(src, parse_template(src))
        except ExprError as exc:
            self.sink.error("ABL0202", f"template at line {line}: {exc}", line, col)
        except RecursionError:
            self.sink.error("ABL0202", f"template at line {line} is nested too deeply", line, col)
        return None

    def expr(self, raw: str, line: int, col: int, what: str) -> Expression | None:
        """A value expression (SET, WITH): errors are errors."""
        text = raw.strip()
        try:
            return Expression(text, parse_expr(text))
        except ExprError as exc:
            self.sink.error("ABL0201", f"{what} at line {line}: {exc}", line, col + exc.offset)
        except RecursionError:
            self.sink.error("ABL0201", f"{what} at line {line} is nested too deeply", line, col)
        return None

    def cond(self, node: Node | None, what: str, strict: bool = False) -> Expression | None:
        """A condition. Quoted text without an operator, or free text, is a semantic condition."""
        if node is None or node.value is None:
            return None
        raw = node.value.strip()
        if is_quoted(raw):
            inner = unquote(raw)
            if not _COND_OPS.search(inner):
                return Expression(inner, Semantic(inner))
            raw = inner
        col = node.col + len(node.key) + 2
        try:
            return Expression(raw, parse_expr(raw))
        except ExprError as exc:
            if strict:
                self.sink.error(
                    "ABL0201", f"{what} at line {node.line}: {exc}", node.line, col + exc.offset
                )
                return None
            self.sink.warning(
                "ABL0203",
                f"{what} at line {node.line} is not an expression ({exc}); it is kept as a "
                "free-text condition that deterministic evaluation treats as false",
                node.line,
                col,
            )
            return Expression(raw, Semantic(raw))
        except RecursionError:
            self.sink.error("ABL0201", f"{what} at line {node.line} is too deep", node.line, col)
            return None


def sval(node: Node | None) -> str | None:
    if node is None or node.value is None:
        return None
    return node.value if node.block else unquote(node.value)


def bval(ctx: Ctx, node: Node | None, default: bool) -> bool:
    if node is None or node.value is None:
        return default
    v = scalar(node.value)
    if isinstance(v, bool):
        return v
    ctx.sink.error(
        "ABL0108",
        f"{node.key} at line {node.line} must be true or false, not {node.value!r}",
        node.line,
        node.col,
    )
    return default


def ival(ctx: Ctx, node: Node | None) -> int | None:
    if node is None or node.value is None:
        return None
    v = scalar(node.value)
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and re.fullmatch(r"\d+\s*(ms|s)", v):
        n = int(re.sub(r"\D", "", v))
        return n * 1000 if v.endswith("s") and not v.endswith("ms") else n
    ctx.sink.error(
        "ABL0108",
        f"{node.key} at line {node.line} must be a whole number, not {node.value!r}",
        node.line,
        node.col,
    )
    return None


def names(node: Node | None) -> tuple[str, ...]:
    """A list of names: `[a, b]`, `a, b`, a single `a`, or `- a` items."""
    if node is None:
        return ()
    out: list[str] = []
    if node.value is not None and not node.block:
        raw = node.value.strip()
        parts = split_list(raw) if raw.startswith("[") else [p for p in raw.split(",")]
        out.extend(unquote(p).strip() for p in parts if p.strip())
    for it in node.items():
        h = it.head()
        if h is not None and h.kind == "text" and h.value:
            out.append(unquote(h.value))
        elif h is not None and h.kind == "entry":
            out.append(h.key if h.value is None else unquote(h.value))
    return tuple(out)


def strings(node: Node | None) -> tuple[str, ...]:
    """A list of strings from items, an inline list, or a `|` block (one per line)."""
    if node is None:
        return ()
    if node.block and node.value:
        return tuple(
            ln.strip().lstrip("- ").strip() for ln in node.value.splitlines() if ln.strip()
        )
    data = node_data(node)
    if isinstance(data, list):
        return tuple(str(x) for x in data if x is not None)
    if isinstance(data, str):
        return (data,)
    return ()


def data_of(node: Node) -> Json:
    return node_data(node)


def assignments(ctx: Ctx, node: Node) -> list[ir.Set]:
    """SET in its forms: inline `a = x`, lines `a = x`, entries `a: x`, `- a = x` items."""
    out: list[ir.Set] = []
    pieces: list[tuple[str, int, int]] = []
    if node.value and not node.block:
        pieces.append((node.value, node.line, node.col + len(node.key) + 2))
    elif node.value and node.block:
        pieces.extend((ln, node.line + i + 1, 1) for i, ln in enumerate(node.value.splitlines()))
    for c in node.children:
        if c.kind == "text" and c.value:
            pieces.append((c.value, c.line, c.col))
        elif c.kind == "entry" and c.value is not None:
            pieces.append((f"{c.key} = {c.value}", c.line, c.col))
        elif c.kind == "item":
            h = c.head()
            if h is not None and h.kind == "text" and h.value:
                pieces.append((h.value, h.line, h.col))
            elif h is not None and h.kind == "entry" and h.value is not None:
                pieces.append((f"{h.key} = {h.value}", h.line, h.col))
    for text, line, col in pieces:
        if not text.strip():
            continue
        m = _ASSIGN.match(text)
        if m is None:
            ctx.sink.error(
                "ABL0201", f"SET at line {line} needs 'name = expression', got {text!r}", line, col
            )
            continue
        value = m.group(2).strip()
        if not value:
            ctx.sink.error("ABL0201", f"SET {m.group(1)} at line {line} has no value", line, col)
            continue
        e = ctx.expr(value, line, col, f"SET {m.group(1)}")
        if e is not None:
            out.append(ir.Set(m.group(1), e, line))
    return out


def call_args(ctx: Ctx, raw: str, line: int, col: int) -> tuple[str, list[ir.Arg]]:
    """`tool`, `tool()`, `tool(a = x, b: y)`, `tool(x, y)` -> name and inline arguments.

    Positional arguments (the examples pages write `CALL: search_hotels(destination, 1)`) take
    the declared tool's parameter names in order; an undeclared tool is reported by the checks.
    """
    raw = raw.strip()
    if "(" not in raw:
        return raw, []
    name, _, rest = raw.partition("(")
    name = name.strip()
    inner = rest.rsplit(")", 1)[0]
    tool = ctx.tools.get(name)
    params = [p.name for p in tool.params] if tool is not None else []
    args: list[ir.Arg] = []
    position = 0
    for part in split_list(inner):
        m = _ASSIGN.match(part)
        if m is not None:
            e = ctx.expr(m.group(2), line, col, f"argument {m.group(1)}")
            if e is not None:
                args.append(ir.Arg(m.group(1), e))
            continue
        position += 1
        if tool is None:
            continue  # CALL of an undeclared tool: ABL0304 from the checks
        if position > len(params):
            ctx.sink.error(
                "ABL0305",
                f"CALL {name} at line {line} passes {position} positional arguments; "
                f"{name} takes {len(params)}",
                line,
                col,
            )
            continue
        e = ctx.expr(part, line, col, f"argument {position} of {name}")
        if e is not None:
            args.append(ir.Arg(params[position - 1], e))
    return name, args


def with_args(ctx: Ctx, node: Node) -> list[ir.Arg]:
    """A WITH block: `param: expr` entries, nested entries become maps, or an inline map."""
    args: list[ir.Arg] = []
    if node.value and not node.children:
        e = ctx.expr(node.value, node.line, node.col, "WITH")
        if e is not None and isinstance(e.root, MapExpr):
            for k, v in zip(e.root.keys, e.root.values, strict=True):
                args.append(ir.Arg(k, Expression(k, v)))
        elif e is not None:
            ctx.sink.error(
                "ABL0108",
                f"WITH at line {node.line} must be a map of arguments",
                node.line,
                node.col,
            )
        return args
    for c in node.entries():
        args.append(ir.Arg(c.key, Expression(c.value or c.key, _arg_value(ctx, c))))
    return args


def _arg_value(ctx: Ctx, c: Node) -> Expr:
    if c.children:
        kids = list(c.entries())
        return MapExpr(tuple(k.key for k in kids), tuple(_arg_value(ctx, k) for k in kids))
    if c.value is None:
        return Lit(None)
    if c.block:
        t = ctx.template(c.value, c.line, c.col)
        return Lit(c.value) if t is None or len(t.template.parts) <= 1 else _tmpl(c.value, ctx, c)
    try:
        return parse_expr(c.value)
    except (ExprError, RecursionError):
        # Scalar leaves keep their raw form (the reference coerces them at run time).
        v = scalar(c.value)
        return Lit(v if not isinstance(v, list | dict) else c.value)


def _tmpl(src: str, ctx: Ctx, c: Node) -> Expr:
    try:
        return parse_expr('"' + src.replace("\\", "\\\\").replace('"', '\\"') + '"')
    except ExprError:
        return Lit(src)


def is_call(e: Expr) -> bool:
    return isinstance(e, Call)
