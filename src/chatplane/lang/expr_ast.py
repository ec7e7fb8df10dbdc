"""Expression and template trees: parsed once at compile time, evaluated by `evaluate.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any  # str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Name:
    name: str


@dataclass(frozen=True, slots=True)
class Attr:
    obj: Expr
    name: str


@dataclass(frozen=True, slots=True)
class Index:
    obj: Expr
    index: Expr


@dataclass(frozen=True, slots=True)
class Call:
    func: str  # built-in function, uppercase
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Method:
    """`x.contains("y")` style calls on a value."""

    obj: Expr
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "not" | "neg" | "is_set" | "is_not_set" | "is_number"
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    # "or" "and" "==" "!=" "<" ">" "<=" ">=" "in" "not_in" "contains" "matches"
    # "startswith" "endswith" "+" "-" "*" "/" "%"
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class MapExpr:
    keys: tuple[str, ...]
    values: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class TemplateExpr:
    """A quoted string containing `{{...}}`: renders to a string."""

    template: Template


@dataclass(frozen=True, slots=True)
class Semantic:
    """A free-text condition (not an expression); the runtime judges it, or treats it as unset."""

    text: str


Expr = (
    Lit
    | Name
    | Attr
    | Index
    | Call
    | Method
    | Unary
    | Binary
    | ListExpr
    | MapExpr
    | TemplateExpr
    | Semantic
)


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str


@dataclass(frozen=True, slots=True)
class Interp:
    expr: Expr


@dataclass(frozen=True, slots=True)
class IfBlock:
    cond: Expr
    then: tuple[Part, ...]
    otherwise: tuple[Part, ...]
    negate: bool = False  # {{#unless}}


@dataclass(frozen=True, slots=True)
class EachBlock:
    items: Expr
    body: tuple[Part, ...]


Part = Chunk | Interp | IfBlock | EachBlock


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Expression:
    """An expression with the source text it came from (for messages and traces)."""

    text: str
    root: Expr
