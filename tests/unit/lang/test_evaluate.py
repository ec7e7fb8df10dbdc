"""Sandboxed evaluator and template renderer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chatplane.lang.evaluate import Env, EvalError, evaluate, render
from chatplane.lang.expr_parser import ExprError, parse_expr, parse_template

ENV = Env(now=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC), random_id=lambda n: "X" * n)
SCOPE: dict[str, Any] = {
    "amount": 50,
    "balance": "120.5",
    "name": "Ada",
    "card": "4111111111111111",
    "user": {"tier": "gold", "addresses": [{"city": "Oslo"}]},
    "items": [{"n": "a"}, {"n": "b"}],
    "empty": "",
}


def ev(text: str, scope: dict[str, Any] | None = None) -> Any:
    return evaluate(parse_expr(text), SCOPE if scope is None else scope, ENV)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("amount <= balance AND ADD(amount, 10) == 60", True),
        ('user.tier == "gold" OR missing == 1', True),
        ("user.addresses[0].city", "Oslo"),
        ("missing.deep.path", None),
        ("missing IS SET", False),
        ("empty IS SET", True),
        ("NOT missing", True),
        ("!(amount > 10)", False),
        ("amount IN [10, 50]", True),
        ('"x" NOT IN ["a"]', True),
        ('name contains "d"', True),
        ('name.startsWith("A")', True),
        ('card matches "^4[0-9]+$"', True),
        ('COALESCE(missing, empty, "dflt")', "dflt"),
        ("SUB(10, 3)", 7),
        ("ROUND(3.14159, 2)", 3.14),
        ('FORMAT_CURRENCY(1234.5, "USD")', "$1,234.50"),
        ('MASK(card, "last4")', "************1111"),
        ('MASK(card, "first4")', "4111************"),
        ("UNIQUE_ID(6)", "XXXXXX"),
        ("NOW()", "2026-03-01T12:00:00Z"),
        ("DIV(1, 0)", None),
        ("amount is_number", True),
        ('UPPER("a") + LOWER("B")', "Ab"),
        ("ORDINAL(22)", "22nd"),
        ('FORMAT_DATE("2024-03-15T10:30:00Z", "YYYY-MM-DD HH:mm")', "2024-03-15 10:30"),
    ],
)
def test_expressions(text: str, want: Any) -> None:
    assert ev(text) == want


def test_templates() -> None:
    t = parse_template("Hi {{name}}{{#if user.tier}} ({{user.tier}}){{else}}!{{/if}} {{missing}}.")
    assert render(t, SCOPE, ENV) == "Hi Ada (gold) ."
    t = parse_template("{{#unless missing}}none{{/unless}}|{{#each items}}{{n}}{{@index}}{{/each}}")
    assert render(t, SCOPE, ENV) == "none|a0b1"
    assert (
        render(parse_template("{{user}}"), SCOPE, ENV)
        == '{"tier":"gold","addresses":[{"city":"Oslo"}]}'
    )


@pytest.mark.parametrize(
    "text",
    ["{{#if x}}", "{{/if}}", "{{a b}}", "{{", "{{#each x}}{{else}}{{/each}}", "{{#bogus x}}"],
)
def test_bad_templates(text: str) -> None:
    with pytest.raises(ExprError):
        parse_template(text)


class _Obj:
    secret = "s3cret"


def test_python_internals_are_unreachable() -> None:
    scope: dict[str, Any] = {"x": {"a": 1}, "obj": _Obj(), "s": "str"}
    for text in [
        "x.__dict__",
        "x.__class__",
        "s.__class__",
        "__builtins__",
        "obj.secret",
        "obj",
        "s.__len__()",
        "x._private",
        'x["__class__"]',
    ]:
        assert evaluate(parse_expr(text), scope, ENV) is None, text
    for tpl in ["{{__class__}}", "{{x.__class__.__mro__}}", "{{obj.secret}}", "{{s.format}}"]:
        assert render(parse_template(tpl), scope, ENV) == "", tpl


def test_unknown_function_is_error() -> None:
    with pytest.raises(EvalError):
        ev('EVAL("1+1")')
    with pytest.raises(EvalError):
        ev("__import__()")


def test_limits() -> None:
    with pytest.raises(EvalError):
        ev('REPEAT("x", 10000000)')
    with pytest.raises(EvalError):
        ev('PAD_START("x", 100000000)')
    big = {"s": "x" * 60_000}
    with pytest.raises(EvalError):
        render(parse_template("{{s}}{{s}}"), big, ENV)
    with pytest.raises(ExprError):
        parse_expr("(" * 500 + "1" + ")" * 500)
    with pytest.raises(ExprError):
        parse_template("{{#if a}}" * 100 + "{{/if}}" * 100)
    with pytest.raises(ExprError):
        parse_expr("NOT " * 200 + "x")
