"""Sandboxed evaluation of expression and template trees over plain JSON data.

Reads only dict/list/str/number/bool/None values: no getattr, no eval/exec, bounded depth,
bounded string sizes. Missing paths evaluate to None; misuse raises EvalError.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from chatplane.lang import builtins as fns
from chatplane.lang.builtins import MAX_STR, Env, EvalError, to_num, to_str, truthy
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
    Semantic,
    Template,
    TemplateExpr,
    Unary,
)

MAX_DEPTH = 200
MAX_EACH = 1000

__all__ = ["Env", "EvalError", "evaluate", "render", "to_str", "truthy"]


def evaluate(expr: Expr | Expression, scope: Mapping[str, Any], env: Env | None = None) -> Any:
    root = expr.root if isinstance(expr, Expression) else expr
    return _Eval(scope, env or Env()).ev(root, 0)


def render(template: Template, scope: Mapping[str, Any], env: Env | None = None) -> str:
    ev = _Eval(scope, env or Env())
    out: list[str] = []
    ev.parts(template.parts, out, 0)
    return "".join(out)


def _plain(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool | list | dict)


class _Eval:
    def __init__(self, scope: Mapping[str, Any], env: Env) -> None:
        self.scopes: list[Mapping[str, Any]] = [scope]
        self.env = env
        self.size = 0

    def lookup(self, name: str) -> Any:
        if name.startswith("_"):
            return None
        for s in reversed(self.scopes):
            if isinstance(s, Mapping) and name in s:
                v = s[name]
                return v if _plain(v) else None
        return None

    def ev(self, e: Expr, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise EvalError("expression nested too deeply")
        d = depth + 1
        if isinstance(e, Lit):
            return e.value if _plain(e.value) and not isinstance(e.value, list | dict) else None
        if isinstance(e, Name):
            return self.lookup(e.name)
        if isinstance(e, Attr):
            return _field(self.ev(e.obj, d), e.name)
        if isinstance(e, Index):
            return _index(self.ev(e.obj, d), self.ev(e.index, d))
        if isinstance(e, Call):
            return fns.call(e.func, [self.ev(a, d) for a in e.args], self.env)
        if isinstance(e, Method):
            return fns.method(self.ev(e.obj, d), e.name, [self.ev(a, d) for a in e.args])
        if isinstance(e, Unary):
            return self.unary(e, d)
        if isinstance(e, Binary):
            return self.binary(e, d)
        if isinstance(e, ListExpr):
            return [self.ev(x, d) for x in e.items]
        if isinstance(e, MapExpr):
            return {k: self.ev(v, d) for k, v in zip(e.keys, e.values, strict=False)}
        if isinstance(e, TemplateExpr):
            out: list[str] = []
            self.parts(e.template.parts, out, d)
            return "".join(out)
        if isinstance(e, Semantic):
            return None
        raise EvalError(f"not an expression node: {type(e).__name__}")

    def unary(self, e: Unary, d: int) -> Any:
        v = self.ev(e.operand, d)
        if e.op == "not":
            return not truthy(v)
        if e.op == "neg":
            n = to_num(v)
            return None if n is None else -n
        if e.op == "is_set":
            return v is not None
        if e.op == "is_not_set":
            return v is None
        if e.op == "is_number":
            return isinstance(v, int | float) and not isinstance(v, bool)
        raise EvalError(f"unknown operator {e.op}")

    def binary(self, e: Binary, d: int) -> Any:
        op = e.op
        if op == "and":
            return truthy(self.ev(e.left, d)) and truthy(self.ev(e.right, d))
        if op == "or":
            return truthy(self.ev(e.left, d)) or truthy(self.ev(e.right, d))
        a, b = self.ev(e.left, d), self.ev(e.right, d)
        if op in ("==", "!="):
            return _eq(a, b) == (op == "==")
        if op in ("<", ">", "<=", ">="):
            return _order(op, a, b)
        if op in ("in", "not_in"):
            found = isinstance(b, list) and any(_eq(a, x) for x in b)
            found = found or (isinstance(b, str) and isinstance(a, str) and a in b)
            return found == (op == "in")
        if op in ("contains", "matches", "startswith", "endswith"):
            return fns.method(a, op, [b])
        if op == "+" and (isinstance(a, str) or isinstance(b, str)):
            s = to_str(a) + to_str(b)
            if len(s) > MAX_STR:
                raise EvalError("string too long")
            return s
        x, y = to_num(a), to_num(b)
        if x is None or y is None:
            return None
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            r = x * y
            return r if not isinstance(r, float) or math.isfinite(r) else None
        if op in ("/", "%"):
            if y == 0:
                return None
            return x / y if op == "/" else x % y
        raise EvalError(f"unknown operator {op}")

    def emit(self, out: list[str], s: str) -> None:
        self.size += len(s)
        if self.size > self.env.max_output:
            raise EvalError(f"rendered text exceeds {self.env.max_output} characters")
        out.append(s)

    def parts(self, parts: tuple[Part, ...], out: list[str], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise EvalError("template nested too deeply")
        for p in parts:
            if isinstance(p, Chunk):
                self.emit(out, p.text)
            elif isinstance(p, Interp):
                self.emit(out, to_str(self.ev(p.expr, depth + 1)))
            elif isinstance(p, IfBlock):
                hit = truthy(self.ev(p.cond, depth + 1)) != p.negate
                self.parts(p.then if hit else p.otherwise, out, depth + 1)
            elif isinstance(p, EachBlock):
                items = self.ev(p.items, depth + 1)
                if not isinstance(items, list):
                    continue
                for i, item in enumerate(items[:MAX_EACH]):
                    self.scopes.append({"this": item, "@index": i})
                    if isinstance(item, dict):
                        self.scopes.append(item)
                    try:
                        self.parts(p.body, out, depth + 1)
                    finally:
                        if isinstance(item, dict):
                            self.scopes.pop()
                        self.scopes.pop()


def _field(obj: Any, name: str) -> Any:
    if name.startswith("_"):
        return None
    if isinstance(obj, dict):
        v = obj.get(name)
        return v if _plain(v) else None
    if isinstance(obj, list | str) and name == "length":
        return len(obj)
    if isinstance(obj, list) and name.isdigit():
        return _index(obj, int(name))
    return None


def _index(obj: Any, key: Any) -> Any:
    if isinstance(obj, list) and isinstance(key, int) and not isinstance(key, bool):
        return obj[key] if -len(obj) <= key < len(obj) and _plain(obj[key]) else None
    if isinstance(obj, dict) and isinstance(key, str):
        return _field(obj, key)
    return None


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        if isinstance(a, str) or isinstance(b, str):
            return str(a).lower() == str(b).lower()
        return a is b or (a == b and type(a) is type(b))
    if (isinstance(a, int | float) and isinstance(b, str)) or (
        isinstance(b, int | float) and isinstance(a, str)
    ):
        x, y = to_num(a), to_num(b)
        return x is not None and x == y
    try:
        return bool(a == b) if _plain(a) and _plain(b) else False
    except RecursionError:
        return False


def _order(op: str, a: Any, b: Any) -> bool:
    x, y = to_num(a), to_num(b)
    if x is None or y is None:
        if isinstance(a, str) and isinstance(b, str):
            x2, y2 = a, b
            return {"<": x2 < y2, ">": x2 > y2, "<=": x2 <= y2, ">=": x2 >= y2}[op]
        return False
    return {"<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]


def dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), default=str)
