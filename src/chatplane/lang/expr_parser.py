"""Hand-written recursive-descent parser for ABL expressions and `{{...}}` templates."""

from __future__ import annotations

import re
from collections.abc import Callable

from chatplane.lang.expr_ast import (
    Attr,
    Binary,
    Call,
    Chunk,
    EachBlock,
    Expr,
    Expression,
    IfBlock,
    Index,
    Interp,
    ListExpr,
    Lit,
    MapExpr,
    Method,
    Name,
    Part,
    Template,
    TemplateExpr,
    Unary,
)

MAX_DEPTH = 64
_TOKEN = re.compile(
    r"""\s*(?:
    (?P<num>\d+\.\d+|\d+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_@][\w@]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||\$\{|\{\{|\}\}|[<>=!()\[\]{},.:+\-*/%?])
  )""",
    re.VERBOSE,
)
_CMP = {"==", "!=", "<", ">", "<=", ">=", "="}
_WORD_CMP = {"contains": "contains", "matches": "matches", "startswith": "startswith"}
_WORD_CMP["endswith"] = "endswith"
_WORD_CMP["in"] = "in"


class ExprError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


Tok = tuple[str, str, int]  # kind, text, offset


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            bad = text[pos:].lstrip()
            raise ExprError(f"unexpected character {bad[:1]!r}", n - len(bad))
        kind = m.lastgroup or "op"
        toks.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    toks.append(("end", "", n))
    return toks


def _unescape(s: str) -> str:
    body = s[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self, k: int = 0) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def word(self, k: int = 0) -> str:
        t = self.peek(k)
        return t[1].lower() if t[0] == "name" else ""

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return t

    def expect(self, text: str) -> None:
        t = self.take()
        if t[1] != text:
            raise ExprError(f"expected {text!r} but found {t[1] or 'end of expression'!r}", t[2])

    def parse(self) -> Expr:
        e = self.or_()
        t = self.peek()
        if t[0] != "end":
            raise ExprError(f"unexpected {t[1]!r}; is an operator (AND, OR, ==) missing?", t[2])
        return e

    def or_(self) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError("expression nested too deeply", self.peek()[2])
        e = self.and_()
        while self.word() == "or" or self.peek()[1] == "||":
            self.take()
            e = Binary("or", e, self.and_())
        self.depth -= 1
        return e

    def and_(self) -> Expr:
        e = self.not_()
        while self.word() == "and" or self.peek()[1] == "&&":
            self.take()
            e = Binary("and", e, self.not_())
        return e

    def not_(self) -> Expr:
        if self.word() == "not" or self.peek()[1] == "!":
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExprError("expression nested too deeply", self.peek()[2])
            e = Unary("not", self.not_())
            self.depth -= 1
            return e
        return self.cmp()

    def cmp(self) -> Expr:
        e = self.add()
        t = self.peek()
        w = self.word()
        if t[0] == "op" and t[1] in _CMP:
            self.take()
            op = "==" if t[1] == "=" else t[1]
            return Binary(op, e, self.add())
        if w in _WORD_CMP:
            self.take()
            return Binary(_WORD_CMP[w], e, self.add())
        if w == "not" and self.word(1) == "in":
            self.take()
            self.take()
            return Binary("not_in", e, self.add())
        if w == "is":
            self.take()
            neg = self.word() == "not"
            if neg:
                self.take()
            if self.word() != "set":
                raise ExprError("expected SET after IS (write 'x IS SET' or 'x IS NOT SET')", t[2])
            self.take()
            return Unary("is_not_set" if neg else "is_set", e)
        if w == "is_number":
            self.take()
            return Unary("is_number", e)
        return e

    def add(self) -> Expr:
        e = self.mul()
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            op = self.take()[1]
            e = Binary(op, e, self.mul())
        return e

    def mul(self) -> Expr:
        e = self.unary()
        while self.peek()[1] in ("*", "/", "%") and self.peek()[0] == "op":
            op = self.take()[1]
            e = Binary(op, e, self.unary())
        return e

    def unary(self) -> Expr:
        if self.peek()[1] == "-" and self.peek()[0] == "op":
            self.take()
            return Unary("neg", self.unary())
        return self.postfix(self.primary())

    def args(self, close: str) -> tuple[Expr, ...]:
        out: list[Expr] = []
        while self.peek()[1] != close:
            if self.peek()[0] == "end":
                raise ExprError(f"missing {close!r}", self.peek()[2])
            out.append(self.or_())
            if self.peek()[1] == ",":
                self.take()
            elif self.peek()[1] != close:
                t = self.peek()
                raise ExprError(f"expected ',' or {close!r} but found {t[1]!r}", t[2])
        self.take()
        return tuple(out)

    def postfix(self, e: Expr) -> Expr:
        while True:
            t = self.peek()
            if t[1] == ".":
                self.take()
                nt = self.take()
                if nt[0] not in ("name", "num"):
                    raise ExprError("expected a field name after '.'", nt[2])
                if self.peek()[1] == "(":
                    self.take()
                    e = Method(e, nt[1], self.args(")"))
                else:
                    e = Attr(e, nt[1])
            elif t[1] == "[":
                self.take()
                idx = self.or_()
                self.expect("]")
                e = Index(e, idx)
            else:
                return e

    def primary(self) -> Expr:
        kind, text, off = self.take()
        if kind == "num":
            return Lit(float(text) if "." in text else int(text))
        if kind == "str":
            s = _unescape(text)
            if "{{" in s:
                return TemplateExpr(parse_template(s))
            return Lit(s)
        if kind == "name":
            low = text.lower()
            if low == "true":
                return Lit(True)
            if low == "false":
                return Lit(False)
            if low in ("null", "none", "undefined"):
                return Lit(None)
            if self.peek()[1] == "(":
                self.take()
                return Call(text.upper(), self.args(")"))
            return Name(text)
        if text == "(":
            e = self.or_()
            self.expect(")")
            return e
        if text in ("${", "{{"):
            e = self.or_()
            self.expect("}" if text == "${" else "}}")
            return e
        if text == "[":
            return ListExpr(self.args("]"))
        if text == "{":
            keys: list[str] = []
            vals: list[Expr] = []
            while self.peek()[1] != "}":
                kt = self.take()
                if kt[0] not in ("name", "str", "num"):
                    raise ExprError("expected a key in '{...}'", kt[2])
                keys.append(_unescape(kt[1]) if kt[0] == "str" else kt[1])
                self.expect(":")
                vals.append(self.or_())
                if self.peek()[1] == ",":
                    self.take()
                elif self.peek()[1] != "}":
                    raise ExprError("expected ',' or '}'", self.peek()[2])
            self.take()
            return MapExpr(tuple(keys), tuple(vals))
        if kind == "end":
            raise ExprError("expression is incomplete", off)
        raise ExprError(f"unexpected {text!r}", off)


def parse_expr(text: str) -> Expr:
    """Parse one expression; raises ExprError (callers turn it into a diagnostic)."""
    if not text.strip():
        raise ExprError("empty expression", 0)
    return _Parser(text).parse()


def expression(text: str, report: Callable[[str, int], None]) -> Expression | None:
    try:
        return Expression(text, parse_expr(text))
    except ExprError as exc:
        report(str(exc), exc.offset)
    except RecursionError:
        report("expression nested too deeply", 0)
    return None


def parse_template(text: str) -> Template:
    """Parse `{{x}}`, `{{#if c}}..{{else}}..{{/if}}`, `{{#unless}}`, `{{#each}}` templates."""
    pos = 0
    # Stack frames: (kind, cond, then_parts, else_parts or None, open offset).
    root: list[Part] = []
    stack: list[tuple[str, Expr | None, list[Part], list[Part] | None, int]] = []

    def cur() -> list[Part]:
        if not stack:
            return root
        top = stack[-1]
        return top[3] if top[3] is not None else top[2]

    while pos < len(text):
        start = text.find("{{", pos)
        if start < 0:
            cur().append(Chunk(text[pos:]))
            break
        if start > pos:
            cur().append(Chunk(text[pos:start]))
        end = text.find("}}", start + 2)
        if end < 0:
            raise ExprError("'{{' is never closed with '}}'", start)
        inner = text[start + 2 : end].strip()
        pos = end + 2
        if inner.startswith("#"):
            word, _, rest = inner[1:].partition(" ")
            word = word.lower()
            if word not in ("if", "unless", "each"):
                raise ExprError(f"unknown block helper '#{word}'; use #if, #unless or #each", start)
            if len(stack) >= MAX_DEPTH:
                raise ExprError("template blocks nested too deeply", start)
            stack.append((word, _inner_expr(rest, start), [], None, start))
        elif inner.lower() == "else":
            if not stack or stack[-1][3] is not None or stack[-1][0] == "each":
                raise ExprError("{{else}} outside an {{#if}} block", start)
            k, c, then, _, off = stack.pop()
            stack.append((k, c, then, [], off))
        elif inner.startswith("/"):
            word = inner[1:].strip().lower()
            if not stack or stack[-1][0] != word:
                raise ExprError(f"{{{{/{word}}}}} does not close an open block", start)
            k, c, then, other, _ = stack.pop()
            assert c is not None
            block: Part
            if k == "each":
                block = EachBlock(c, tuple(then))
            else:
                block = IfBlock(c, tuple(then), tuple(other or ()), k == "unless")
            cur().append(block)
        else:
            cur().append(Interp(_inner_expr(inner, start)))
    if stack:
        raise ExprError(f"{{{{#{stack[-1][0]}}}}} is never closed", stack[-1][4])
    return Template(tuple(root))


def _inner_expr(text: str, offset: int) -> Expr:
    try:
        return parse_expr(text)
    except ExprError as exc:
        raise ExprError(f"in {{{{{text.strip()}}}}}: {exc}", offset) from None
